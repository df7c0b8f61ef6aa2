/*
 * sendmail_modes - the modes of "sendmail" that only the full command runs
 *
 * sendmail_main()
 *	"relayq sendmail [options] [RCPT...]", also run as "sendmail", as
 *	the full command (libexec's relayq-command) runs it: the options
 *	(sendmail_args), then the mode. -bp is mailq; -q is "relayq flush"
 *	(-qR SITE: flush -s SITE); -bi, and the program run as "newaliases",
 *	say that a null client has no aliases; -bs speaks SMTP on standard
 *	input and output; with none of them the message on standard input
 *	is queued (sendmail_queue). The front (front.c) runs that last case
 *	and -bi itself and hands the others to this function.
 *
 * -bs speaks SMTP on standard input and output (smtpd_proto.c), as
 * PHP's, Symfony's and Laravel's mailers expect: every message of the
 * session is written by the same code as a message from the command line
 * (sendmail_open, sendmail_content, sendmail_commit), and the reply to its
 * final dot is 250 only once pickup has committed it or its file is
 * durably in maildrop/. A failure is a 451/452/554 reply, not an exit;
 * the session goes on. The session logs to maillog_file (or syslog), as
 * the daemons do. Bare local parts in MAIL FROM and RCPT TO get
 * "@myorigin" here, as Postfix's sendmail -bs does.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "iostuff.h"
#include "mail_proto.h"
#include "maildrop.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "qdir.h"
#include "smtpd_proto.h"

#define SENDMAIL_BS_TIMEOUT_MS (300 * 1000) /* Postfix's smtpd_timeout */
#define SENDMAIL_BS_ERROR_LIMIT 20          /* Postfix's smtpd_hard_error_limit */

/* sendmail_bp - "sendmail -bp" is mailq */
static int sendmail_bp(const char *config)
{
    char *args[4] = {"mailq", NULL, NULL, NULL};

    if (config != NULL) {
        args[1] = "-c";
        args[2] = (char *)config;
    }
    optind = 1;
    return mailq_main(config ? 3 : 1, args);
}

/* sendmail_q - "sendmail -q" is relayq flush, "-qR SITE" / "-qRSITE" flush -s SITE */
static int sendmail_q(const char *config, const char *site)
{
    char *args[6] = {"flush", NULL, NULL, NULL, NULL, NULL};
    int n = 1;

    if (config != NULL) {
        args[n++] = "-c";
        args[n++] = (char *)config;
    }
    if (site != NULL) {
        args[n++] = "-s";
        args[n++] = (char *)site;
    }
    optind = 1;
    return flush_main(n, args);
}

/* SENDMAIL_BS - the queue's side of a "sendmail -bs" session */
typedef struct SENDMAIL_BS {
    char *maildrop; /* the directory */
    long long uid;  /* the submitting user */
} SENDMAIL_BS;

/* sendmail_bs_write - smtpd_proto's replies to standard output */
static int sendmail_bs_write(void *ctx, const char *data, size_t len)
{
    (void)ctx;
    return write_all(1, data, len) < 0 ? -1 : 0;
}

/*
 * sendmail_bs_message - one message of the session to a maildrop file
 *
 * The file is written exactly as the command line writes one; the
 * answer is SMTPD_QUEUED only once it is durably in maildrop/. What
 * pickup would set aside (a NUL byte in the header section) is refused
 * here, so that a 250 is never followed by a message in corrupt/.
 */
static SMTPD_RESULT sendmail_bs_message(void *ctx, const SMTPD_MSG *msg, VSTR *text)
{
    SENDMAIL_BS *bs = ctx;
    MAILDROP_ENV env;
    SENDMAIL_OUT out;
    SMTPD_RESULT result = SMTPD_QUEUED;
    const char *blank;
    size_t header_len;

    blank = msg->content_len >= 2 && memcmp(msg->content, "\r\n", 2) == 0
                ? msg->content
                : memmem(msg->content, msg->content_len, "\r\n\r\n", 4);
    header_len = blank ? (size_t)(blank - msg->content) : msg->content_len;
    if (memchr(msg->content, '\0', header_len) != NULL) {
        vstr_strcpy(text, "a NUL byte in the message header");
        msg_warn("message from <%s> refused: %s", msg->sender, vstr_str(text));
        return SMTPD_REJECTED;
    }
    maildrop_env_init(&env);
    env.uid = bs->uid;
    env.posted = (long long)time(NULL);
    myfree(env.sender);
    env.sender = mystrdup(msg->sender);
    myfree(env.ret);
    env.ret = mystrdup(msg->ret);
    myfree(env.envid);
    env.envid = mystrdup(msg->envid);
    for (size_t i = 0; i < msg->nrcpt; i++)
        maildrop_env_add_rcpt_dsn(&env, msg->rcpts[i].addr, msg->rcpts[i].notify,
                                  msg->rcpts[i].orcpt);
    if (sendmail_open(&out, &env, bs->maildrop) < 0 ||
        sendmail_content(&out, msg->content, msg->content_len) < 0 ||
        sendmail_commit(&out, bs->maildrop) < 0) {
        msg_warn("message from <%s> not queued: %s", msg->sender, vstr_str(out.why));
        vstr_strcpy(text, vstr_str(out.why));
        result = out.status == EX_DATAERR ? SMTPD_REJECTED
                 : out.nospace            ? SMTPD_NOSPACE
                                          : SMTPD_TEMPFAIL;
    } else if (out.filed) {
        msg_info("maildrop/%s: uid=%lld from=<%s> nrcpt=%zu", strrchr(out.name, '/') + 1, bs->uid,
                 msg->sender, msg->nrcpt);
        vstr_sprintf(text, "as %s", strrchr(out.name, '/') + 1);
        sendmail_wakeup();
    } else {
        vstr_sprintf(text, "as %s", out.queue_id);
    }
    sendmail_close(&out);
    maildrop_env_free(&env);
    return result;
}

/*
 * sendmail_bs - "sendmail -bs": SMTP on standard input and output
 *
 * smtpd_proto speaks the protocol; each message becomes one maildrop file
 * (sendmail_bs_message). The session logs to maillog_file (or syslog) as
 * the daemons do, not to standard error, which the client may read.
 */
static int sendmail_bs(void)
{
    static const SMTPD_OPS ops = {sendmail_bs_write, sendmail_bs_message, NULL};
    SMTPD_LIMITS limits;
    SENDMAIL_BS bs;
    SMTPD_PROTO *sp;
    VSTR *client = vstr_alloc(32);
    struct pollfd pfd;
    char *buf;
    ssize_t got;
    int state;
    int ready;

    bs.maildrop = qdir_path(var_str(queue_directory), QDIR_MAILDROP);
    bs.uid = (long long)getuid();
    msg_init("sendmail", MSG_TO_STDERR);
    if (msg_set_log(var_str(syslog_name), var_str(maillog_file)) < 0)
        (void)msg_set_log(var_str(syslog_name), "");
    sendmail_catch_signals();
    /* A client that goes away is an end of session, not a kill. */
    signal(SIGPIPE, SIG_IGN);

    vstr_sprintf(client, "local[uid=%lld]", bs.uid);
    memset(&limits, 0, sizeof(limits));
    limits.hostname = var_str(myhostname);
    limits.client = vstr_str(client);
    limits.qualify = var_str(myorigin);
    limits.size_limit = var_int(message_size_limit);
    limits.rcpt_limit = MAILDROP_RCPT_MAX;
    limits.error_limit = SENDMAIL_BS_ERROR_LIMIT;
    sp = smtpd_proto_create(&limits, &ops, &bs);
    buf = mymalloc(SENDMAIL_PIECE_MAX);
    state = smtpd_proto_start(sp);
    while (state == SMTPD_MORE) {
        pfd.fd = 0;
        pfd.events = POLLIN;
        if ((ready = poll(&pfd, 1, SENDMAIL_BS_TIMEOUT_MS)) < 0 && errno == EINTR)
            continue;
        if (ready == 0) {
            smtpd_proto_timeout(sp);
            break;
        }
        if ((got = read(0, buf, SENDMAIL_PIECE_MAX)) < 0 && errno == EINTR)
            continue;
        if (got < 0)
            msg_warn("read standard input: %s", strerror(errno));
        if (got <= 0) {
            smtpd_proto_eof(sp);
            break;
        }
        state = smtpd_proto_input(sp, buf, (size_t)got);
    }
    smtpd_proto_free(sp);
    myfree(buf);
    vstr_free(client);
    myfree(bs.maildrop);
    return 0;
}

/* sendmail_main - the sendmail command, every mode */
int sendmail_main(int argc, char **argv)
{
    SENDMAIL_ARGS args;

    if (sendmail_args(argc, argv, &args) < 0)
        relayq_usage("sendmail", NULL);
    switch (args.mode) {
    case 'p':
        return sendmail_bp(args.config);
    case 'q':
        return sendmail_q(args.config, args.site);
    case 'i':
        return sendmail_no_aliases();
    case 's':
        relayq_load_config(args.config);
        if (args.first_rcpt != argc || args.extract)
            msg_fatal_status(EX_USAGE, "-bs takes the recipients from RCPT TO: no recipients "
                                       "or -t on the command line");
        return sendmail_bs();
    default:
        relayq_load_config(args.config);
        return sendmail_queue(&args, argc, argv);
    }
}
