/*
 * front - the relayq program users run: sendmail's messages here, the rest by exec
 *
 * main()
 *	run as "sendmail" or "newaliases", or as "relayq [-c FILE] sendmail":
 *	queue the message on standard input (sendmail_queue), or say that
 *	there are no aliases (-bi). Everything else (every other command and
 *	program name, sendmail's -bs, -bp and -q, an option sendmail does
 *	not know) belongs to the full command: exec
 *	RELAYQ_COMMAND_PATH (libexec's relayq-command) with the same
 *	arguments, the program name included, so that it dispatches as if
 *	it had been run itself.
 *
 * Why a front: an application that sends mail through sendmail starts one
 * process per message, and most of that process's time is the start
 * itself: exec, the dynamic loader mapping and relocating its libraries,
 * page faults. The front holds only the sendmail path (sendmail.c and the
 * parts of the common library it uses) and, where the build can
 * (configure --enable-static-front, on by default), it is linked
 * statically: no loader, few pages. So it must never use glibc's NSS (the
 * user and host databases), whose modules a static program cannot load
 * safely: the sender of a message without -f is named by pickup, bare
 * addresses are qualified by pickup, myhostname is not looked up
 * (params_adopt instead of params_load), and a root-owned file goes to the
 * owner of maildrop/ rather than to mail_owner by name. The build checks
 * the linked program for NSS entry points (tests/t_front.sh).
 *
 * Privileges: installed set-group-id like the full command, the front
 * suspends the group at once (privs_group_suspend) and takes it back for
 * a message only with a trusted configuration, as the full command does.
 * Before the exec it gives the group up for good: the full command,
 * installed set-group-id itself, gets it from its own file mode.
 *
 * RELAYQ_COMMAND in the environment names another full command (the test
 * suite's build tree, a staged install). That gives a user nothing: the
 * group is given up for good before the exec, so the program named runs
 * with the user's own rights, as if the user had run it.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "cli.h"
#include "msg.h"
#include "params.h"
#include "privs.h"

/* front_load_config - the configuration, without asking the system for myhostname */
static void front_load_config(const char *path)
{
    VSTR *why = vstr_alloc(128);
    CONFIG *cfg;

    if ((cfg = params_read(path ? path : params_default_path(), why)) == NULL)
        msg_fatal_status(EX_CONFIG, "%s", vstr_str(why));
    params_adopt(cfg);
    privs_group_settle(var_config, PRIVS_GROUP_KEEP);
    vstr_free(why);
}

/* front_exec - run the full command with our arguments */
static void front_exec(char **argv) __attribute__((noreturn));
static void front_exec(char **argv)
{
    const char *path = getenv("RELAYQ_COMMAND");

    if (path == NULL || *path == '\0')
        path = RELAYQ_COMMAND_PATH;
    privs_group_settle(NULL, PRIVS_GROUP_DROP);
    execv(path, argv);
    msg_fatal_status(EX_OSFILE, "cannot run the relayq command %s: %s", path, strerror(errno));
}

/* main - sendmail's message here, anything else by the full command */
int main(int argc, char **argv)
{
    SENDMAIL_ARGS args;
    const char *base;
    const char *config = NULL;
    char **sub_argv = NULL;
    int sub_argc = 0;

    msg_init("relayq", MSG_TO_STDERR_PLAIN);
    privs_group_suspend();
    if (argc < 1 || argv[0] == NULL)
        msg_fatal_status(EX_USAGE, "no program name");
    base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    if (strcmp(base, "sendmail") == 0 || strcmp(base, "newaliases") == 0) {
        sub_argc = argc;
        sub_argv = argv;
    } else if (strcmp(base, "relayq") == 0 && argc >= 2 && strcmp(argv[1], "sendmail") == 0) {
        sub_argc = argc - 1;
        sub_argv = argv + 1;
    } else if (strcmp(base, "relayq") == 0 && argc >= 4 && strcmp(argv[1], "-c") == 0 &&
               strcmp(argv[3], "sendmail") == 0) {
        config = argv[2];
        sub_argc = argc - 3;
        sub_argv = argv + 3;
    }
    if (sub_argv != NULL && sendmail_args(sub_argc, sub_argv, &args) == 0) {
        if (args.mode == 'i')
            return sendmail_no_aliases();
        if (args.mode == 'm') {
            front_load_config(args.config ? args.config : config);
            return sendmail_queue(&args, sub_argc, sub_argv);
        }
    }
    front_exec(argv);
}
