/*
 * fuzz_config - fuzz target for the configuration file parser
 *
 * LLVMFuzzerTestOneInput()
 *	write the input to a memory file (memfd_create; cfgfile has no
 *	buffer interface) and config_load() it, through /proc/self/fd/N,
 *	against relayq's parameter table. A loaded configuration must hold a
 *	checked value for every parameter: numbers within the table's bounds,
 *	booleans 0 or 1, an enum spelled as one of its choices. Then
 *	config_set() replaces myhostname: when it fails, every value must be
 *	as it was (its documented promise).
 *
 * fuzz-sources: common/util/cfgfile.c common/mail/params.c common/util/vstr.c
 * fuzz-sources: common/mail/netaddr.c
 * fuzz-sources: common/util/mymalloc.c common/util/msg.c
 *
 * The memory file lives for the whole process and is truncated for each
 * input. A broken invariant aborts; failing to make the memory file is
 * an environment problem and exits.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "cfgfile.h"
#include "params.h"
#include "vstr.h"

/* fuzz_config_file - the memory file's name, with the input as its content */
static const char *fuzz_config_file(const uint8_t *data, size_t size)
{
    static char path[64];
    static int fd = -1;
    size_t done = 0;
    ssize_t n;

    if (fd < 0) {
        if ((fd = memfd_create("fuzz_config", MFD_CLOEXEC)) < 0) {
            perror("fuzz_config: memfd_create");
            exit(1);
        }
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) < 0) {
        perror("fuzz_config: ftruncate");
        exit(1);
    }
    while (done < size) {
        if ((n = pwrite(fd, data + done, size - done, (off_t)done)) <= 0) {
            perror("fuzz_config: pwrite");
            exit(1);
        }
        done += (size_t)n;
    }
    return path;
}

/* fuzz_check_values - every parameter has a value of its type within bounds */
static void fuzz_check_values(const CONFIG *cfg)
{
    for (const CONFIG_PARAM *p = params_table; p->name != NULL; p++) {
        const char *value = config_str(cfg, p->name);
        size_t len = strlen(value);
        const char *cp;
        long num;

        switch (p->type) {
        case CONFIG_INT:
        case CONFIG_TIME:
        case CONFIG_SIZE:
            num = config_int(cfg, p->name);
            FUZZ_CHECK(num >= p->min && num <= p->max);
            break;
        case CONFIG_BOOL:
            FUZZ_CHECK(config_bool(cfg, p->name) == 0 || config_bool(cfg, p->name) == 1);
            break;
        case CONFIG_ENUM:
            /* The value is the table's spelling of one of the choices. */
            for (cp = p->choices; cp != NULL; cp = strchr(cp, ','), cp = cp ? cp + 1 : NULL)
                if (strncmp(cp, value, len) == 0 && (cp[len] == ',' || cp[len] == '\0'))
                    break;
            FUZZ_CHECK(len > 0 && cp != NULL);
            break;
        case CONFIG_STR:
            break;
        }
    }
}

/* fuzz_snapshot - every parameter's text, "name=value\n" */
static void fuzz_snapshot(const CONFIG *cfg, VSTR *out)
{
    vstr_reset(out);
    for (const CONFIG_PARAM *p = params_table; p->name != NULL; p++)
        vstr_sprintf_append(out, "%s=%s\n", p->name, config_str(cfg, p->name));
}

/* LLVMFuzzerTestOneInput - one configuration file */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    VSTR *why = vstr_alloc(64);
    CONFIG *cfg;

    cfg = config_load(params_table, fuzz_config_file(data, size), why);
    if (cfg == NULL) {
        FUZZ_CHECK(vstr_len(why) > 0);
    } else {
        VSTR *before = vstr_alloc(1024);
        VSTR *after = vstr_alloc(1024);

        fuzz_check_values(cfg);
        fuzz_snapshot(cfg, before);
        if (config_set(cfg, "myhostname", "fuzz.example", why) < 0) {
            fuzz_snapshot(cfg, after);
            FUZZ_CHECK(vstr_len(before) == vstr_len(after) &&
                       memcmp(vstr_str(before), vstr_str(after), vstr_len(before)) == 0);
        } else {
            FUZZ_CHECK(strcmp(config_str(cfg, "myhostname"), "fuzz.example") == 0);
        }
        fuzz_check_values(cfg);
        vstr_free(before);
        vstr_free(after);
        config_free(cfg);
    }
    vstr_free(why);
    return 0;
}
