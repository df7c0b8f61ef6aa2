/*
 * params.h - relayq's parameter registry and the process-wide configuration
 */
#ifndef RELAYQ_PARAMS_H
#define RELAYQ_PARAMS_H

#include "cfgfile.h"
#include "vstr.h"

extern const CONFIG_PARAM params_table[];

/* The configuration of this process, set by params_load(). */
extern CONFIG *var_config;

const char *params_default_path(void);
CONFIG *params_load(const char *path, VSTR *why);
CONFIG *params_read(const char *path, VSTR *why);
int params_use(CONFIG *cfg, VSTR *why);
void params_hint(const char *name, VSTR *message);
const CONFIG_PARAM *params_find(const char *name);
void params_load_or_die(const char *path);

#define var_str(name) config_str(var_config, (name))
#define var_int(name) config_int(var_config, (name))
#define var_bool(name) config_bool(var_config, (name))

/* A relay as written in relayhost: "[host]:port", "host:port", "[host]", "host". */
typedef struct RELAY_ADDR {
    char host[256]; /* name or address literal, without brackets */
    unsigned port;  /* 25 when omitted */
    int bracketed;  /* [host]: no MX lookup, the host itself */
} RELAY_ADDR;

int params_parse_relay(const char *text, RELAY_ADDR *relay, VSTR *why);
int params_parse_relays(const char *list, void (*each)(const RELAY_ADDR *relay, void *ctx),
                        void *ctx, VSTR *why);
const char *params_nexthop(const char *transport_value);

#endif
