/*
 * check - validate the configuration before anything runs on it
 *
 * check_main()
 *	"relayq check [-c FILE]": exit 0 silently when all is well, else
 *	print every problem found and exit EX_CONFIG.
 * check_run()
 *	the checks themselves, shared with "relayq start": load the file
 *	(its "file:line: reason" when it does not load), then what the
 *	parameter table cannot know: relayq only relays, so relayhost must be
 *	set; the daemons must be where daemon_directory says; the queue
 *	directory must exist or be creatable by master; the files the
 *	configuration names must exist. Returns the number of problems, each
 *	printed as "relayq: error: FILE: reason".
 *
 * Files this process is not allowed to look at (a credentials file of
 * another user) are not reported: master, which reads them, will.
 */
#include "config.h"

#include <errno.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "cli.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"

/* check_daemon - one daemon program must be an executable file */
static int check_daemon(const char *file, const char *dir, const char *name)
{
    VSTR *path = vstr_alloc(256);
    struct stat st;
    int bad;

    vstr_sprintf(path, "%s/%s", dir, name);
    bad = stat(vstr_str(path), &st) < 0 || !S_ISREG(st.st_mode) || access(vstr_str(path), X_OK) < 0;
    if (bad)
        msg_error("%s: daemon_directory %s: no executable \"%s\"", file, dir, name);
    vstr_free(path);
    return bad;
}

/* check_queue_dir - the queue directory, or at least its parent, must exist */
static int check_queue_dir(const char *file, const char *dir)
{
    struct stat st;
    char *parent;
    char *slash;
    size_t len;
    int bad = 0;

    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            msg_error("%s: queue_directory %s: not a directory", file, dir);
            return 1;
        }
        return 0;
    }
    if (errno != ENOENT) {
        msg_error("%s: queue_directory %s: %s", file, dir, strerror(errno));
        return 1;
    }
    /* Master creates the queue directory itself, but not a whole missing tree. */
    parent = mystrdup(dir);
    len = strlen(parent);
    while (len > 1 && parent[len - 1] == '/')
        parent[--len] = '\0';
    if ((slash = strrchr(parent, '/')) == parent)
        parent[1] = '\0';
    else if (slash != NULL)
        *slash = '\0';
    if (stat(parent, &st) < 0 || !S_ISDIR(st.st_mode)) {
        msg_error("%s: queue_directory %s: does not exist, and neither does its parent %s", file,
                  dir, parent);
        bad = 1;
    }
    myfree(parent);
    return bad;
}

/* check_file - a file the configuration names must exist */
static int check_file(const char *file, const char *param, const char *value)
{
    struct stat st;
    const char *path = value;
    const char *colon;

    if (*value == '\0')
        return 0;
    /* A Postfix-style table reference "type:/path" names the file after the colon. */
    if (*path != '/' && (colon = strchr(path, ':')) != NULL)
        path = colon + 1;
    if (*path != '/')
        return 0;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            msg_error("%s: %s %s: is a directory, not a file", file, param, path);
            return 1;
        }
        return 0;
    }
    if (errno == EACCES)
        return 0; /* not ours to see; master will say */
    msg_error("%s: %s %s: %s", file, param, path, strerror(errno));
    return 1;
}

/* check_run - every check, each problem printed; the number of problems */
int check_run(const char *path)
{
    static const char *daemons[] = {"master", "pickup", "qmgr", "smtpout"};
    VSTR *why = vstr_alloc(128);
    const char *file;
    const char *dir;
    int problems = 0;

    if (params_load(relayq_config_file(path), why) == NULL) {
        msg_error("%s", vstr_str(why));
        vstr_free(why);
        return 1;
    }
    vstr_free(why);
    file = config_path(var_config);
    if (*var_str("relayhost") == '\0') {
        msg_error("%s: relayhost is empty: relayq only relays, set relayhost = [host]:port", file);
        problems++;
    }
    dir = var_str("daemon_directory");
    for (size_t i = 0; i < sizeof(daemons) / sizeof(daemons[0]); i++)
        problems += check_daemon(file, dir, daemons[i]);
    problems += check_queue_dir(file, var_str("queue_directory"));
    /* Master gives up root for mail_owner; a missing user would stop it cold. */
    if (geteuid() == 0 && getpwnam(var_str("mail_owner")) == NULL) {
        char *shown = relayq_printable(var_str("mail_owner"), 0);

        msg_error("%s: mail_owner \"%s\": no such user", file, shown);
        myfree(shown);
        problems++;
    }
    if (var_bool("smtp_sasl_auth_enable") && *var_str("smtp_sasl_password_maps") == '\0') {
        msg_error("%s: smtp_sasl_auth_enable = yes needs smtp_sasl_password_maps", file);
        problems++;
    }
    problems += check_file(file, "smtp_sasl_password_maps", var_str("smtp_sasl_password_maps"));
    problems += check_file(file, "smtp_tls_CAfile", var_str("smtp_tls_CAfile"));
    problems += check_file(file, "queue_encryption_key_file", var_str("queue_encryption_key_file"));
    return problems;
}

/* check_main - "relayq check [-c FILE]" */
int check_main(int argc, char **argv)
{
    const char *path = NULL;
    int ch;

    opterr = 0;
    while ((ch = getopt(argc, argv, "+c:")) != -1) {
        switch (ch) {
        case 'c':
            path = optarg;
            break;
        default:
            relayq_usage("check", NULL);
        }
    }
    if (optind != argc)
        relayq_usage("check", NULL);
    return check_run(path) ? EX_CONFIG : 0;
}
