/*
 * relayq - the user's command: start, stop, check, queue and inspect mail
 *
 * main()
 *	dispatch on the program name first (invoked as "sendmail", "newaliases", "mailq",
 *	"postqueue", "postsuper" or "postconf" it is that command, so it can
 *	stand in for the system's sendmail and run a Postfix operator's
 *	scripts), else on the first argument ("relayq COMMAND [args]").
 *	"relayq -c FILE COMMAND" is accepted too and sets the configuration
 *	file of a command that has no -c of its own.
 * relayq_config_file()
 *	the configuration file to use: -c FILE of the command, else the -c
 *	given before the command word, else params_default_path().
 * relayq_load_config()
 *	load the configuration (-c FILE, else $RELAYQ_CONFIG, else the
 *	built-in path) or exit EX_CONFIG with its "file:line: reason" line.
 *	Installed setgid, the command keeps its group from here on only
 *	when it needs it and the file is trusted (privs.c).
 * relayq_read_as_mail_owner()
 *	root's commands that read what the daemons wrote (the queue's LMDB
 *	file, qmgr's replies: mailq, show, qshape, stats) give up root for
 *	mail_owner for good before they open any of it, as master does
 *	before it starts a daemon: a file or a reply a compromised daemon
 *	crafted is never parsed with root's privileges. Other users keep
 *	who they are (the queue's own modes keep them out of db/).
 * relayq_config_dir()
 *	the configuration file of a Postfix-style "-c CONFIG_DIR": the file
 *	relayq.conf in that directory; the caller frees it.
 * relayq_usage()
 *	print a one-line usage and exit EX_USAGE.
 *
 * Diagnostics go to standard error as "relayq: fatal: reason"; exit codes
 * come from sysexits.h so that scripts and mail programs can tell a
 * temporary failure from a permanent one.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "cli.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "privs.h"

#define OPS_USAGE                                                                                  \
    "[-c FILE] [--dry-run] [--sender ADDR] [--recipient ADDR] [--domain DOMAIN] "                  \
    "[--older-than TIME] [--ids] QUEUE_ID...|ALL|- [QUEUE_NAME...]"
#define CONFIG_USAGE "[-n|-d] [-h] [-x] [NAME...]"

/* The configuration file named before the command word ("relayq -c FILE cmd"). */
static const char *relayq_config_path;

/*
 * Installed setgid to setgid_group, only the commands that drop mail or talk
 * to qmgr over public/ keep the group; qmgr checks who the peer is.
 */
static const CLI_CMD relayq_commands[] = {
    {"start", start_main, "[-c FILE] [-f]", PRIVS_GROUP_DROP},
    {"stop", start_stop_main, "[-c FILE]", PRIVS_GROUP_DROP},
    {"reload", start_reload_main, "[-c FILE]", PRIVS_GROUP_DROP},
    {"status", start_status_main, "[-c FILE]", PRIVS_GROUP_KEEP},
    {"check", check_main, "[-c FILE]", PRIVS_GROUP_DROP},
    {"keygen", keygen_main, "[-c FILE] [ID]", PRIVS_GROUP_DROP},
    {"passwd", passwd_main, "USER", PRIVS_GROUP_DROP},
    {"sendmail", sendmail_main,
     "[-c FILE] [-t] [-i] [-f SENDER] [-F NAME] [-N DSN] [-R RET] [-V ENVID] [RCPT...] | -bs | "
     "-bp | -q | -bi",
     PRIVS_GROUP_KEEP},
    {"mailq", mailq_main, "[-c FILE] [-v] [--json]", PRIVS_GROUP_KEEP},
    {"flush", flush_main, "[-c FILE] [-i QUEUE_ID]... [-s DOMAIN]...", PRIVS_GROUP_KEEP},
    {"stats", stats_main, "[-c FILE] [--json]", PRIVS_GROUP_KEEP},
    {"show", show_main, "[-c FILE] QUEUE_ID", PRIVS_GROUP_DROP},
    {"qshape", qshape_main, "[-c FILE] [-s] [-b BUCKETS] [-t MINUTES] [--json]", PRIVS_GROUP_DROP},
    {"hold", ops_main, OPS_USAGE, PRIVS_GROUP_KEEP},
    {"release", ops_main, OPS_USAGE, PRIVS_GROUP_KEEP},
    {"delete", ops_main, OPS_USAGE, PRIVS_GROUP_KEEP},
    {"requeue", ops_main, OPS_USAGE, PRIVS_GROUP_KEEP},
    {"config", config_main, "[-c FILE] " CONFIG_USAGE, PRIVS_GROUP_DROP},
    {NULL, NULL, NULL, PRIVS_GROUP_DROP},
};

/*
 * The names relayq answers to as a program (a link to it), each the
 * command of that name: sendmail and mailq as every MTA has them, and
 * Postfix's postqueue, postsuper and postconf. The group column follows
 * the commands they map onto.
 */
static const CLI_CMD relayq_programs[] = {
    {"sendmail", sendmail_main, NULL, PRIVS_GROUP_KEEP},
    {"newaliases", sendmail_main, NULL, PRIVS_GROUP_KEEP},
    {"mailq", mailq_main, NULL, PRIVS_GROUP_KEEP},
    {"postqueue", postqueue_main, "[-c CONFIG_DIR] -p|-j|-f|-i QUEUE_ID...|-s SITE...",
     PRIVS_GROUP_KEEP},
    {"postsuper", postsuper_main,
     "[-c CONFIG_DIR] [-d ID|ALL|-]... [-h ID|ALL|-]... [-H ID|ALL|-]... [-r ID|ALL|-]... "
     "[QUEUE_NAME...]",
     PRIVS_GROUP_KEEP},
    {"postconf", config_postconf_main, "[-c CONFIG_DIR] " CONFIG_USAGE, PRIVS_GROUP_DROP},
    {NULL, NULL, NULL, PRIVS_GROUP_DROP},
};

/* Whether the command being run keeps the setgid group (see relayq_commands). */
static int relayq_group = PRIVS_GROUP_DROP;

/* relayq_config_file - the file a command reads */
const char *relayq_config_file(const char *path)
{
    if (path != NULL)
        return path;
    if (relayq_config_path != NULL)
        return relayq_config_path;
    return params_default_path();
}

/* relayq_load_config - load the configuration or exit EX_CONFIG */
void relayq_load_config(const char *path)
{
    VSTR *why = vstr_alloc(128);

    if (params_load(relayq_config_file(path), why) == NULL)
        msg_fatal_status(EX_CONFIG, "%s", vstr_str(why));
    /* The group is taken back only for a configuration that only root can
     * have written, judged by the descriptor that was read. */
    privs_group_settle(var_config, relayq_group);
    vstr_free(why);
}

/* relayq_read_as_mail_owner - root reads the daemons' files only as mail_owner */
void relayq_read_as_mail_owner(void)
{
    const char *owner = var_str(mail_owner);
    VSTR *why;
    uid_t uid;
    gid_t gid;

    if (geteuid() != 0)
        return;
    why = vstr_alloc(100);
    if (privs_mail_owner(owner, &uid, &gid, why) < 0)
        msg_fatal_status(EX_CONFIG, "%s: root reads the queue only as mail_owner", vstr_str(why));
    privs_become(owner, uid, gid);
    vstr_free(why);
}

/* relayq_config_dir - "-c CONFIG_DIR" as Postfix has it: DIR/relayq.conf */
char *relayq_config_dir(const char *dir)
{
    VSTR *path = vstr_alloc(100);
    char *file;

    vstr_sprintf(path, "%s%srelayq.conf", dir, *dir && dir[strlen(dir) - 1] == '/' ? "" : "/");
    file = mystrdup(vstr_str(path));
    vstr_free(path);
    return file;
}

/* relayq_usage - a one-line usage, then EX_USAGE */
void relayq_usage(const char *command, const char *args)
{
    const CLI_CMD *cmd;

    /* A program name (postqueue, ...) is its own command word. */
    for (cmd = relayq_programs; cmd->name; cmd++)
        if (strcmp(cmd->name, command) == 0 && cmd->usage != NULL) {
            fprintf(stderr, "usage: %s %s\n", command, args ? args : cmd->usage);
            exit(EX_USAGE);
        }
    if (args == NULL)
        for (cmd = relayq_commands; cmd->name; cmd++)
            if (strcmp(cmd->name, command) == 0)
                args = cmd->usage;
    fprintf(stderr, "usage: relayq %s %s\n", command, args ? args : "");
    exit(EX_USAGE);
}

/* relayq_all_usage - the list of commands */
static void relayq_all_usage(FILE *fp)
{
    const CLI_CMD *cmd;

    fprintf(fp, "usage: relayq [-c FILE] COMMAND [args]\ncommands:\n");
    for (cmd = relayq_commands; cmd->name; cmd++)
        fprintf(fp, "  relayq %s %s\n", cmd->name, cmd->usage);
    fprintf(fp, "also run, through a link of that name, as:");
    for (cmd = relayq_programs; cmd->name; cmd++)
        fprintf(fp, " %s", cmd->name);
    fprintf(fp, "\n");
}

/* relayq_short_usage - the one-line usage of the program, then EX_USAGE */
static void relayq_short_usage(void)
{
    const CLI_CMD *cmd;

    fprintf(stderr, "usage: relayq [-c FILE] ");
    for (cmd = relayq_commands; cmd->name; cmd++)
        fprintf(stderr, "%s%s", cmd == relayq_commands ? "" : "|", cmd->name);
    fprintf(stderr, " [args] (relayq --help lists them)\n");
    exit(EX_USAGE);
}

/* relayq_find - the command of a name in a table, or NULL */
static const CLI_CMD *relayq_find(const CLI_CMD *table, const char *name)
{
    const CLI_CMD *cmd;

    for (cmd = table; cmd->name; cmd++)
        if (strcmp(cmd->name, name) == 0)
            return cmd;
    return NULL;
}

/* relayq_run - run a command with the group its table entry says */
static int relayq_run(const CLI_CMD *cmd, int argc, char **argv)
{
    relayq_group = cmd->group;
    if (relayq_group == PRIVS_GROUP_DROP)
        privs_group_settle(NULL, PRIVS_GROUP_DROP);
    return cmd->run(argc, argv);
}

/* main - dispatch on the program name or the command word */
int main(int argc, char **argv)
{
    const char *base;
    const CLI_CMD *cmd;

    msg_init("relayq", MSG_TO_STDERR_PLAIN);
    privs_group_suspend();
    if (argc < 1 || argv[0] == NULL)
        msg_fatal_status(EX_USAGE, "no program name");
    base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    if ((cmd = relayq_find(relayq_programs, base)) != NULL)
        return relayq_run(cmd, argc, argv);

    argc--, argv++;
    if (argc >= 2 && strcmp(argv[0], "-c") == 0) {
        relayq_config_path = argv[1];
        argc -= 2, argv += 2;
    }
    if (argc == 0)
        relayq_short_usage();
    if (strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0 ||
        strcmp(argv[0], "help") == 0) {
        relayq_all_usage(stdout);
        return 0;
    }
    if ((cmd = relayq_find(relayq_commands, argv[0])) == NULL) {
        char *shown = relayq_printable(argv[0], 0);

        fprintf(stderr, "relayq: fatal: unknown command \"%s\"\n", shown);
        myfree(shown);
        relayq_short_usage();
    }
    return relayq_run(cmd, argc, argv);
}
