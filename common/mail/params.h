/*
 * params.h - relayq's parameter registry and the process-wide configuration
 */
#ifndef RELAYQ_PARAMS_H
#define RELAYQ_PARAMS_H

#include "cfgfile.h"
#include "params_list.h"
#include "vstr.h"

extern const CONFIG_PARAM params_table[];

/* The configuration of this process, set by params_load(). */
extern CONFIG *var_config;

const char *params_default_path(void);
CONFIG *params_load(const char *path, VSTR *why);
CONFIG *params_read(const char *path, VSTR *why);
int params_use(CONFIG *cfg, VSTR *why);
void params_adopt(CONFIG *cfg);
void params_hint(const char *name, VSTR *message);
const CONFIG_PARAM *params_find(const char *name);
void params_load_or_die(const char *path);

/*
 * A parameter of this process's configuration by its name, written as an
 * identifier: var_str(relayhost), var_int(smtpout_workers) (INT, TIME in
 * seconds, SIZE in bytes), var_bool(smtp_sasl_auth_enable). The name must
 * be in PARAMS_LIST() with a kind the accessor reads (var_str: STR or
 * ENUM), or the call does not compile. PARAM_ID(name) is its index in
 * params_table[], for the lists of parameters each daemon reads.
 */
#define PARAM_NAME_STR(name) PARAM_STR_##name,
#define PARAM_NAME_ENUM(name) PARAM_STR_##name,
#define PARAM_NAME_INT(name) PARAM_INT_##name,
#define PARAM_NAME_TIME(name) PARAM_INT_##name,
#define PARAM_NAME_SIZE(name) PARAM_INT_##name,
#define PARAM_NAME_BOOL(name) PARAM_BOOL_##name,
#define PARAM_TYPED_NAME(kind, name, ...) PARAM_NAME_##kind(name)
#define PARAM_ID_NAME(kind, name, ...) PARAM_ID_##name,
enum PARAM_TYPED_NAMES { PARAMS_LIST(PARAM_TYPED_NAME) PARAM_TYPED_NAMES_END };
enum PARAM_ID { PARAMS_LIST(PARAM_ID_NAME) PARAM_ID_COUNT };

#define PARAM_ID(name) PARAM_ID_##name
#define var_str(name) ((void)PARAM_STR_##name, config_str(var_config, #name))
#define var_int(name) ((void)PARAM_INT_##name, config_int(var_config, #name))
#define var_bool(name) ((void)PARAM_BOOL_##name, config_bool(var_config, #name))

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
