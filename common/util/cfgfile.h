/*
 * cfgfile.h - a main.cf-style configuration file against a parameter table
 */
#ifndef RELAYQ_CFGFILE_H
#define RELAYQ_CFGFILE_H

#include <sys/stat.h>

#include "vstr.h"

/* The kind of value a parameter holds, which decides how it is checked. */
typedef enum {
    CONFIG_STR,  /* any text, $name expanded */
    CONFIG_INT,  /* a decimal integer within [min, max] */
    CONFIG_BOOL, /* yes or no */
    CONFIG_TIME, /* a number with an optional unit s, m, h, d, w (default s) -> seconds */
    CONFIG_SIZE, /* a number with an optional unit k, m, g (powers of 1024) -> bytes */
    CONFIG_ENUM  /* one of the words in `choices` (comma-separated) */
} CONFIG_TYPE;

/* One parameter of the registry: name, type, default, bounds. */
typedef struct CONFIG_PARAM {
    const char *name;
    CONFIG_TYPE type;
    const char *defval; /* default, as it would be written in the file */
    long min;           /* INT, TIME, SIZE: inclusive bounds */
    long max;
    const char *choices; /* ENUM: allowed words */
    /* Optional extra check of the expanded text; returns 0, or -1 with a reason. */
    int (*check)(const char *value, VSTR *why);
} CONFIG_PARAM;

/* A loaded configuration: every parameter of its table with a checked value. */
typedef struct CONFIG CONFIG;

/* Appends a hint about an unknown parameter name to a message, or nothing. */
typedef void (*CONFIG_HINT_FN)(const char *name, VSTR *message);

CONFIG *config_load(const CONFIG_PARAM *table, const char *path, VSTR *why);
CONFIG *config_load_hinted(const CONFIG_PARAM *table, CONFIG_HINT_FN hint, const char *path,
                           VSTR *why);
CONFIG *config_defaults(const CONFIG_PARAM *table, VSTR *why);
int config_set(CONFIG *cfg, const char *name, const char *value, VSTR *why);
void config_free(CONFIG *cfg);
const char *config_path(const CONFIG *cfg);
const struct stat *config_file_stat(const CONFIG *cfg);
const char *config_str(const CONFIG *cfg, const char *name);
long config_int(const CONFIG *cfg, const char *name);
int config_bool(const CONFIG *cfg, const char *name);
const char *config_raw_str(const CONFIG *cfg, const char *name);
int config_line(const CONFIG *cfg, const char *name);

#endif
