/*
 * check - validate the configuration before anything runs on it; make queue keys
 *
 * check_main()
 *	"relayq check [-c FILE]": when all is well, say which file was read
 *	and exit 0; else print every problem found and exit EX_CONFIG.
 * check_run()
 *	the checks themselves, shared with "relayq start": load the file
 *	(its "file:line: reason" when it does not load), then what the
 *	parameter table cannot know: relayq only relays, so relayhost must be
 *	set; the daemons must be where daemon_directory says; the queue
 *	directory must exist or be creatable by master; the files the
 *	configuration names must exist. Run as root, what master will need
 *	when it gives root up: mail_owner and setgid_group as master accepts
 *	them, and every file the daemons open (the configuration, the
 *	credentials, the keys, the CA file, the tables) readable by
 *	mail_owner: a root-owned 0600 credentials file, Postfix's habit,
 *	is refused with the chown that fixes it. A minimal_backoff_time
 *	above maximal_backoff_time is a warning. Returns the number of
 *	problems, each printed as "relayq: error: FILE: reason".
 *
 * The credentials file (smtp_sasl_password_maps) gets the checks smtpout
 * makes before it uses it: owned by root or by the user the daemons run as
 * (mail_owner when started as root, else this user), not accessible to
 * other users, and every line "relay user:secret".
 *
 * The routing tables (transport_maps, sender_dependent_relayhost_maps)
 * must load, and every relay they name must parse, as qmgr requires.
 * destination_policy_maps must load, and every entry parse (dest_policy.c:
 * its key a relay, its value the limits words), as qmgr requires.
 *
 * The queue's key file (queue_encryption_key_file) gets the checks the
 * daemons make when they open the queue (seal.c): owner, no access for
 * group or others, every line "ID:KEY" with a 32-byte key, no duplicate id.
 *
 * Files this process is not allowed to look at (a credentials file of
 * another user) are not reported: master, which reads them, will.
 *
 * keygen_main()
 *	"relayq keygen [-c FILE] [ID]": print a new line for the key file,
 *	"ID:KEY" with 32 random bytes in base64. Without ID, the next id after
 *	the highest of the configured key file (1 when there is none yet);
 *	appended to the file, it becomes the key that seals new mail.
 */
#include "config.h"

#include <errno.h>
#include <pwd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "cli.h"
#include "msg.h"
#include "mymalloc.h"
#include "dest_policy.h"
#include "maps.h"
#include "params.h"
#include "privs.h"
#include "qdir.h"
#include "sasl_passwd.h"
#include "seal.h"
#include "tls_policy.h"

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

/* check_file_path - the file a parameter's value names, or NULL */
static const char *check_file_path(const char *value)
{
    const char *colon;

    /* A Postfix-style table reference "type:/path" names the file after the colon. */
    if (*value != '/' && (colon = strchr(value, ':')) != NULL)
        value = colon + 1;
    return *value == '/' ? value : NULL;
}

/*
 * check_readable - a file the daemons open must be readable by mail_owner,
 * the user they run as when started as root; secret files are fixed by
 * giving them to mail_owner (they may not be readable by group or others)
 */
static int check_readable(const char *file, const char *param, const char *value,
                          const char *reader, int secret)
{
    const char *path = check_file_path(value);
    VSTR *why;
    int bad;

    if (path == NULL || reader == NULL)
        return 0;
    why = vstr_alloc(128);
    /* A file that cannot be examined is check_file()'s to report. */
    if ((bad = privs_user_may_read(path, reader, why) == 0) != 0) {
        if (secret)
            msg_error("%s: %s %s; relayq's daemons run as mail_owner \"%s\", never as root: "
                      "chown %s %s (and keep its mode 0600)",
                      file, param, vstr_str(why), reader, reader, path);
        else
            msg_error("%s: %s %s; relayq's daemons run as mail_owner \"%s\": make it readable "
                      "by that user",
                      file, param, vstr_str(why), reader);
    }
    vstr_free(why);
    return bad;
}

/* check_file - a file the configuration names must exist */
static int check_file(const char *file, const char *param, const char *value)
{
    struct stat st;
    const char *path = check_file_path(value);

    if (path == NULL)
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

static int check_sasl_problems; /* malformed lines found by check_sasl_line */

/* check_sasl_line - one malformed line of the credentials file */
static void check_sasl_line(const char *text)
{
    msg_error("%s", text);
    check_sasl_problems++;
}

/* check_sasl - the credentials file must be one smtpout will accept */
static int check_sasl(const char *file)
{
    const char *map = var_str(smtp_sasl_password_maps);
    VSTR *why;
    SASL_PASSWD *table;
    struct passwd *pw;
    uid_t owner = geteuid();
    int problems = 0;

    if (*map == '\0' || *sasl_passwd_path(map) != '/')
        return 0;
    /* Started as root, the daemons run as mail_owner; otherwise as this user. */
    if (owner == 0 && (pw = getpwnam(var_str(mail_owner))) != NULL)
        owner = pw->pw_uid;
    why = vstr_alloc(128);
    check_sasl_problems = 0;
    table = sasl_passwd_load(map, owner, check_sasl_line, why);
    if (table == NULL) {
        /* Missing files are reported by check_file(); unreadable ones are master's to report. */
        if (strstr(vstr_str(why), ": open: ") == NULL) {
            msg_error("%s: smtp_sasl_password_maps %s", file, vstr_str(why));
            problems++;
        }
    } else if (var_bool(smtp_sasl_auth_enable) && sasl_passwd_count(table) == 0) {
        msg_error("%s: smtp_sasl_password_maps %s: no credentials in the file", file,
                  sasl_passwd_path(map));
        problems++;
    }
    sasl_passwd_free(table);
    vstr_free(why);
    return problems + check_sasl_problems;
}

/* check_key_owner - who besides root may own the key files: the user the daemons run as */
static uid_t check_key_owner(void)
{
    uid_t owner = geteuid();
    struct passwd *pw;

    /* Started as root, the daemons run as mail_owner; otherwise as this user. */
    if (owner == 0 && (pw = getpwnam(var_str(mail_owner))) != NULL)
        owner = pw->pw_uid;
    return owner;
}

/* check_keys - the queue's key file must be one the daemons will accept */
static int check_keys(const char *file)
{
    const char *path = var_str(queue_encryption_key_file);
    VSTR *why;
    SEAL_RING *ring;
    int problems = 0;

    if (*path == '\0')
        return 0;
    why = vstr_alloc(128);
    if ((ring = seal_ring_load(path, check_key_owner(), why)) == NULL &&
        strstr(vstr_str(why), ": open: ") == NULL) {
        /* Missing files are check_file()'s to report, unreadable ones master's. */
        msg_error("%s: queue_encryption_key_file %s", file, vstr_str(why));
        problems++;
    }
    seal_ring_free(ring);
    vstr_free(why);
    return problems;
}

/* A routing table being checked. */
typedef struct CHECK_ROUTES {
    const char *file;  /* the configuration file, for messages */
    const char *param; /* the parameter naming the table */
    const char *table; /* the table's path */
    int transport;     /* values may carry smtp: or relay: and be empty */
    int problems;
} CHECK_ROUTES;

/* check_route_value - maps_walk callback: every relay of a value must parse */
static void check_route_value(const char *key, void *value, void *ctx)
{
    CHECK_ROUTES *check = ctx;
    VSTR *why = vstr_alloc(100);

    if (params_parse_relays(check->transport ? params_nexthop(value) : value, NULL, NULL, why) <
        0) {
        msg_error("%s: %s: %s: entry \"%s\": %s", check->file, check->param, check->table, key,
                  vstr_str(why));
        check->problems++;
    }
    vstr_free(why);
}

/* check_routes - a routing table must load and name only valid relays */
static int check_routes(const char *file, const char *param, int transport)
{
    CHECK_ROUTES check = {file, param, NULL, transport, 0};
    VSTR *why = vstr_alloc(100);
    MAPS *map = maps_open(config_str(var_config, param), why);

    if (map == NULL) {
        if (vstr_len(why) > 0) {
            msg_error("%s: %s: %s", file, param, vstr_str(why));
            check.problems++;
        }
        vstr_free(why);
        return check.problems;
    }
    check.table = maps_path(map);
    maps_walk(map, check_route_value, &check);
    maps_free(map);
    vstr_free(why);
    return check.problems;
}

/* check_dest_policy - destination_policy_maps loads, every entry parses */
static int check_dest_policy(const char *file)
{
    VSTR *why = vstr_alloc(100);
    MAPS *map = maps_open(var_str(destination_policy_maps), why);
    int problems = 0;

    if (map == NULL && vstr_len(why) > 0) {
        msg_error("%s: destination_policy_maps: %s", file, vstr_str(why));
        problems = 1;
    } else if (dest_policy_check(map, why) < 0) {
        msg_error("%s: destination_policy_maps: %s: %s", file, maps_path(map), vstr_str(why));
        problems = 1;
    } else if (*var_str(shared_limits_server) == '\0' && dest_policy_daily_entry(map) != NULL) {
        msg_warn("%s: destination_policy_maps: %s: entry \"%s\": daily= is kept by "
                 "shared_limits_server, which is not set: the quota is not enforced",
                 file, maps_path(map), dest_policy_daily_entry(map));
    }
    maps_free(map);
    vstr_free(why);
    return problems;
}

/* check_tls_policy - smtp_tls_policy_maps loads, every entry parses, each CAfile= is readable */
static int check_tls_policy(const char *file)
{
    VSTR *why = vstr_alloc(100);
    MAPS *map = maps_open(var_str(smtp_tls_policy_maps), why);
    int problems = 0;

    if (map == NULL && vstr_len(why) > 0) {
        msg_error("%s: smtp_tls_policy_maps: %s", file, vstr_str(why));
        problems = 1;
    } else if (tls_policy_check(map, why) < 0) {
        msg_error("%s: smtp_tls_policy_maps %s: %s", file, maps_path(map), vstr_str(why));
        problems = 1;
    }
    maps_free(map);
    vstr_free(why);
    return problems;
}

/*
 * check_identities - as root, master becomes mail_owner and gives maildrop/
 * and public/ to setgid_group: both must be what master accepts. *reader is
 * then mail_owner's name, the user whose rights the daemons' files need.
 */
static int check_identities(const char *file, const char **reader)
{
    const char *owner = var_str(mail_owner);
    VSTR *why = vstr_alloc(128);
    uid_t uid;
    gid_t gid = (gid_t)-1;
    gid_t drop_gid;
    int problems = 0;

    if (privs_mail_owner(owner, &uid, &gid, why) < 0) {
        msg_error("%s: %s", file, vstr_str(why));
        gid = (gid_t)-1;
        problems++;
    } else {
        *reader = owner;
        /* What master, as root, would refuse in the queue tree: links, strangers' files. */
        if (qdir_verify(var_str(queue_directory), uid, why) < 0) {
            msg_error("%s: queue_directory %s", file, vstr_str(why));
            problems++;
        }
    }
    if (privs_setgid_group(var_str(setgid_group), gid, &drop_gid, why) < 0) {
        msg_error("%s: %s", file, vstr_str(why));
        problems++;
    }
    vstr_free(why);
    return problems;
}

/* check_run - every check, each problem printed; the number of problems */
int check_run(const char *path)
{
    static const char *daemons[] = {"master", "pickup", "qmgr", "showq", "smtpout"};
    VSTR *why = vstr_alloc(128);
    const char *file;
    const char *dir;
    const char *reader = NULL;
    long minimal, maximal;
    int problems = 0;

    if (params_load(relayq_config_file(path), why) == NULL) {
        msg_error("%s", vstr_str(why));
        vstr_free(why);
        return 1;
    }
    vstr_free(why);
    file = config_path(var_config);
    minimal = var_int(minimal_backoff_time);
    maximal = var_int(maximal_backoff_time);
    if (*var_str(relayhost) == '\0') {
        msg_error("%s: relayhost is empty: relayq only relays, set relayhost = [host]:port", file);
        problems++;
    }
    dir = var_str(daemon_directory);
    for (size_t i = 0; i < sizeof(daemons) / sizeof(daemons[0]); i++)
        problems += check_daemon(file, dir, daemons[i]);
    problems += check_queue_dir(file, var_str(queue_directory));
    if (geteuid() == 0)
        problems += check_identities(file, &reader);
    if (minimal > maximal)
        msg_warn("%s: minimal_backoff_time (%lds) is greater than maximal_backoff_time (%lds): "
                 "every retry waits maximal_backoff_time",
                 file, minimal, maximal);
    if (var_bool(smtp_sasl_auth_enable) && *var_str(smtp_sasl_password_maps) == '\0') {
        msg_error("%s: smtp_sasl_auth_enable = yes needs smtp_sasl_password_maps", file);
        problems++;
    }
    problems += check_file(file, "smtp_sasl_password_maps", var_str(smtp_sasl_password_maps));
    problems += check_sasl(file);
    problems += check_file(file, "smtp_tls_CAfile", var_str(smtp_tls_CAfile));
    problems += check_routes(file, "transport_maps", 1);
    problems += check_routes(file, "sender_dependent_relayhost_maps", 0);
    problems += check_dest_policy(file);
    problems += check_tls_policy(file);
    problems += check_file(file, "queue_encryption_key_file", var_str(queue_encryption_key_file));
    problems += check_keys(file);
    /* Started as root, the daemons read these as mail_owner, never as root. */
    problems += check_readable(file, "configuration file", file, reader, 0);
    problems += check_readable(file, "smtp_sasl_password_maps", var_str(smtp_sasl_password_maps),
                               reader, 1);
    problems += check_readable(file, "queue_encryption_key_file",
                               var_str(queue_encryption_key_file), reader, 1);
    problems += check_readable(file, "smtp_tls_CAfile", var_str(smtp_tls_CAfile), reader, 0);
    problems += check_readable(file, "transport_maps", var_str(transport_maps), reader, 0);
    problems += check_readable(file, "sender_dependent_relayhost_maps",
                               var_str(sender_dependent_relayhost_maps), reader, 0);
    problems += check_readable(file, "destination_policy_maps", var_str(destination_policy_maps),
                               reader, 0);
    problems +=
        check_readable(file, "smtp_tls_policy_maps", var_str(smtp_tls_policy_maps), reader, 0);
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
    if (check_run(path) > 0)
        return EX_CONFIG;
    /* Which file was read: the built-in path, -c, or $RELAYQ_CONFIG. */
    printf("relayq check: %s: no problems found\n", config_path(var_config));
    return 0;
}

/* keygen_main - "relayq keygen [-c FILE] [ID]": a new line for queue_encryption_key_file */
int keygen_main(int argc, char **argv)
{
    const char *config = NULL;
    const char *path;
    unsigned char *key;
    char b64[sodium_base64_ENCODED_LEN(SEAL_KEY_LEN, sodium_base64_VARIANT_ORIGINAL)];
    unsigned long id = 1;
    SEAL_RING *ring;
    VSTR *why;
    int ch;

    opterr = 0;
    while ((ch = getopt(argc, argv, "+c:")) != -1) {
        switch (ch) {
        case 'c':
            config = optarg;
            break;
        default:
            relayq_usage("keygen", NULL);
        }
    }
    if (argc - optind > 1)
        relayq_usage("keygen", NULL);
    relayq_load_config(config);
    path = var_str(queue_encryption_key_file);
    if (optind < argc) {
        if (strspn(argv[optind], "0123456789") != strlen(argv[optind]) ||
            strlen(argv[optind]) > 5 || (id = strtoul(argv[optind], NULL, 10)) < 1 ||
            id > SEAL_KEY_ID_MAX)
            msg_fatal_status(EX_USAGE, "key id must be a number from 1 to %d", SEAL_KEY_ID_MAX);
    } else if (*path != '\0' && access(path, F_OK) == 0) {
        why = vstr_alloc(128);
        if ((ring = seal_ring_load(path, check_key_owner(), why)) == NULL &&
            strstr(vstr_str(why), "no key in the file") == NULL)
            msg_fatal_status(EX_CONFIG, "%s; to choose the id yourself: relayq keygen ID",
                             vstr_str(why));
        if (ring != NULL && (id = seal_ring_max_id(ring) + 1UL) > SEAL_KEY_ID_MAX)
            msg_fatal_status(EX_CONFIG, "%s: key id %d is taken: give an unused id", path,
                             SEAL_KEY_ID_MAX);
        seal_ring_free(ring);
        vstr_free(why);
    }
    if (sodium_init() < 0 || (key = sodium_malloc(SEAL_KEY_LEN)) == NULL)
        msg_fatal_status(EX_SOFTWARE, "cannot initialise libsodium");
    randombytes_buf(key, SEAL_KEY_LEN);
    sodium_bin2base64(b64, sizeof(b64), key, SEAL_KEY_LEN, sodium_base64_VARIANT_ORIGINAL);
    sodium_free(key);
    printf("%lu:%s\n", id, b64);
    sodium_memzero(b64, sizeof(b64));
    if (fflush(stdout) != 0 || ferror(stdout))
        msg_fatal_status(EX_IOERR, "write the key: %s", strerror(errno));
    return 0;
}
