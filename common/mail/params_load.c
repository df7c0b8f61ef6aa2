/*
 * params_load - the configuration of this process, with myhostname from the system
 *
 * params_load()
 *	load and check a file against the table (NULL: the default path),
 *	fill an empty myhostname from the system, and make the result the
 *	process-wide var_config (freeing the one before).
 * params_use()
 *	the second half of params_load(): fill an empty myhostname of a
 *	configuration params_read() returned and make it var_config (it
 *	takes the configuration; on error it frees it).
 * params_load_or_die()
 *	the same, exiting with the "file:line: reason" line on error.
 *
 * The system's host name is qualified through the resolver when it has no
 * dot (getaddrinfo with AI_CANONNAME), so this file is apart from
 * params.c: the front, linked without the dynamic loader, reads its
 * configuration with params_read() and params_adopt() and never links it.
 *
 * Failures: a one-line reason in `why`; params_load_or_die() turns it
 * into msg_fatal(). Allocation failure is fatal (mymalloc).
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <string.h>
#include <unistd.h>

#include "cfgfile.h"
#include "msg.h"
#include "params.h"
#include "vstr.h"

/* params_system_hostname - the host's name, fully qualified when the resolver knows it */
static int params_system_hostname(VSTR *name, VSTR *why)
{
    char buf[256]; /* HOST_NAME_MAX is 64 on Linux; gethostname() truncates, we terminate */
    struct addrinfo hints;
    struct addrinfo *res;

    if (gethostname(buf, sizeof(buf) - 1) < 0) {
        vstr_sprintf(why, "cannot find the host name: %s", strerror(errno));
        return -1;
    }
    buf[sizeof(buf) - 1] = '\0';
    vstr_strcpy(name, buf);
    if (strchr(buf, '.') != NULL)
        return 0;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_CANONNAME;
    /* An unqualified name is still usable; the canonical name is only a better one. */
    if (getaddrinfo(buf, NULL, &hints, &res) == 0) {
        if (res->ai_canonname != NULL && strchr(res->ai_canonname, '.') != NULL)
            vstr_strcpy(name, res->ai_canonname);
        freeaddrinfo(res);
    }
    return 0;
}

/* params_load - load the configuration of this process */
CONFIG *params_load(const char *path, VSTR *why)
{
    CONFIG *cfg;

    if (path == NULL)
        path = params_default_path();
    if ((cfg = params_read(path, why)) == NULL || params_use(cfg, why) < 0)
        return NULL;
    return cfg;
}

/* params_use - complete a configuration that was read, and make it the process's */
int params_use(CONFIG *cfg, VSTR *why)
{
    VSTR *name;
    VSTR *reason;

    if (*config_str(cfg, "myhostname") == '\0') {
        name = vstr_alloc(64);
        reason = vstr_alloc(64);
        if (params_system_hostname(name, reason) < 0 ||
            config_set(cfg, "myhostname", vstr_str(name), reason) < 0) {
            vstr_sprintf(why,
                         "%s: myhostname is not set and the system's host name is not "
                         "usable (%s); set myhostname",
                         config_path(cfg), vstr_str(reason));
            vstr_free(name);
            vstr_free(reason);
            config_free(cfg);
            return -1;
        }
        vstr_free(name);
        vstr_free(reason);
    }
    params_adopt(cfg);
    return 0;
}

/* params_load_or_die - load the configuration or exit with the reason */
void params_load_or_die(const char *path)
{
    VSTR *why = vstr_alloc(128);

    if (params_load(path, why) == NULL)
        msg_fatal("%s", vstr_str(why));
    vstr_free(why);
}
