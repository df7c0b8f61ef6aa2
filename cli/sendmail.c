/*
 * sendmail - the sendmail-compatible mail submission command
 *
 * sendmail_main()
 *	"relayq sendmail [options] [RCPT...]", also run as "sendmail": read a
 *	message from standard input and hand it to pickup, or leave it in
 *	the queue's maildrop/ directory. Exit 0 only when the message is
 *	durably queued: committed by pickup, or its file written, fsynced
 *	and renamed to its final name, and the rename fsynced. Every
 *	failure is one line on standard error and a sysexits
 *	code (EX_USAGE for bad options, EX_DATAERR for bad addresses and
 *	oversized mail, EX_CONFIG, EX_CANTCREAT, EX_TEMPFAIL), and leaves
 *	nothing in maildrop/.
 *
 * Options are those of Postfix's sendmail: -t (recipients from To:, Cc:,
 * Bcc:), -i / -oi (a lone "." line is data), -f, -F, -N, -R, -V; the
 * common flags of other programs (-odi, -oem, -v, -B, -bm, -U, -L, -o*)
 * are accepted and ignored. A recipient argument may be an address list
 * as in a To: header ("Name <a@b>", "a@x,b@y"), parsed as -t parses one.
 * Other modes: -bp is mailq; -q is "relayq flush" (-qR SITE: flush -s
 * SITE); -bi, and the program run as "newaliases", say on standard error
 * that a null client has no aliases and exit 0.
 *
 * -bs speaks SMTP on standard input and output (smtpd_proto.c), as
 * PHP's, Symfony's and Laravel's mailers expect: every message of the
 * session is written as its own maildrop file by the same code as a
 * message from the command line (sendmail_open, sendmail_content,
 * sendmail_commit), and the reply to its final dot is 250 only once the
 * file is durably in maildrop/. A failure is a 451/452/554 reply, not an
 * exit; the session goes on. The session logs to maillog_file (or
 * syslog), as the daemons do.
 *
 * Handing over (sendmail_hand_over): a message of at most
 * PICKUP_SUBMIT_MAX bytes, envelope included, is kept in memory and sent
 * whole to pickup on public/pickup, which queues it in the commit it
 * shares with SMTP clients and other sendmails and answers once that
 * commit is done: no fsync here, one fsync for many submitters. When
 * pickup is not running, cannot take the message now (a full queue, a
 * failed commit) or says nothing within SENDMAIL_HAND_OVER_MS (for its
 * greeting, then for its verdict), the message is written to maildrop/
 * instead; when pickup refuses it for good (a bad envelope), that is the
 * command's error.
 *
 * A larger message is streamed to a file: the size limit is checked as it
 * grows, and past PICKUP_SUBMIT_MAX the temporary file is made and the
 * rest goes straight to it. A signal or a fatal error removes the
 * temporary file (atexit and signal handlers); one left by a SIGKILL is
 * removed by pickup an hour later. After the rename, pickup is woken
 * through its public socket; that is best effort, since pickup also
 * scans maildrop/ on its own.
 *
 * With queue_encryption_key_file set, the file is sealed as it is written
 * (seal.c) to the public key pickup publishes in public/maildrop_key: the
 * command never reads the secret key file, and no byte of the envelope or
 * the message reaches the disk in the clear. When that file is missing
 * (pickup never ran with the key) or unusable, the command exits
 * EX_TEMPFAIL before it writes anything, rather than write mail in the
 * clear that the configuration says must not be.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "cli.h"
#include "iostuff.h"
#include "mail_proto.h"
#include "maildrop.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "qdir.h"
#include "seal.h"
#include "smtpd_proto.h"

#define SENDMAIL_HEADER_MAX (1024 * 1024) /* header bytes parsed for -t; the rest is body */
#define SENDMAIL_FULLNAME_MAX 256
#define SENDMAIL_ENVID_MAX 100              /* RFC 3461 */
#define SENDMAIL_WRITE_CHUNK (64 * 1024)    /* output buffered up to this */
#define SENDMAIL_WAKEUP_MS 1000             /* for pickup's greeting to a wake-up after a file */
#define SENDMAIL_HAND_OVER_MS (60 * 1000)   /* for each step of handing a message over */
#define SENDMAIL_BS_TIMEOUT_MS (300 * 1000) /* Postfix's smtpd_timeout */
#define SENDMAIL_BS_ERROR_LIMIT 20          /* Postfix's smtpd_hard_error_limit */

/* The temporary file to remove if we die before the rename; "" when none. */
static char sendmail_tmp[PATH_MAX];

/* sendmail_cleanup - remove an unfinished temporary file (atexit) */
static void sendmail_cleanup(void)
{
    if (sendmail_tmp[0])
        (void)unlink(sendmail_tmp);
    sendmail_tmp[0] = '\0';
}

/* sendmail_signal - an interrupted submission leaves nothing behind */
static void sendmail_signal(int sig)
{
    (void)sig;
    if (sendmail_tmp[0])
        (void)unlink(sendmail_tmp);
    _exit(EX_TEMPFAIL);
}

/* sendmail_fatal_addr - "bad ... address "X": reason", then exit */
static void sendmail_fatal_addr(int status, const char *what, const char *addr, const char *reason)
    __attribute__((noreturn));
static void sendmail_fatal_addr(int status, const char *what, const char *addr, const char *reason)
{
    char *shown = relayq_printable(addr, 0);

    msg_fatal_status(status, "bad %s address \"%s\": %s", what, shown, reason);
}

/* sendmail_qualify - an address as stored: brackets off, "@myorigin" added when bare */
static char *sendmail_qualify(const char *addr)
{
    size_t len = strlen(addr);
    VSTR *buf = vstr_alloc(len + 64);
    const char *scan;
    const char *quote;
    char *result;

    if (len >= 2 && addr[0] == '<' && addr[len - 1] == '>')
        vstr_append(buf, addr + 1, len - 2);
    else
        vstr_append(buf, addr, len);
    /* A quoted local part may hold "@"; only an "@" after it counts. */
    scan = vstr_str(buf);
    if (scan[0] == '"' && (quote = strchr(scan + 1, '"')) != NULL)
        scan = quote;
    if (vstr_len(buf) > 0 && strchr(scan, '@') == NULL) {
        vstr_addch(buf, '@');
        vstr_strcat(buf, var_str(myorigin));
    }
    result = mystrdup(vstr_str(buf));
    vstr_free(buf);
    return result;
}

/* sendmail_add_rcpt - qualify, validate and add a recipient, once */
static void sendmail_add_rcpt(MAILDROP_ENV *env, const char *addr)
{
    VSTR *why = vstr_alloc(100);
    char *rcpt;

    /* Check the raw text first: a line break must be reported as such, not mangled. */
    if (memchr(addr, '\r', strlen(addr)) || memchr(addr, '\n', strlen(addr)))
        sendmail_fatal_addr(EX_DATAERR, "recipient", addr, "contains a line break (CR or LF)");
    rcpt = sendmail_qualify(addr);
    if (addr_check(rcpt, strlen(rcpt), ADDR_ALLOW_UTF8, why) < 0)
        sendmail_fatal_addr(EX_DATAERR, "recipient", addr, vstr_str(why));
    for (size_t i = 0; i < env->nrcpt; i++) {
        if (strcmp(env->rcpts[i], rcpt) == 0) {
            myfree(rcpt);
            vstr_free(why);
            return;
        }
    }
    if (env->nrcpt >= MAILDROP_RCPT_MAX)
        msg_fatal_status(EX_DATAERR, "too many recipients (more than %d)", MAILDROP_RCPT_MAX);
    maildrop_env_add_rcpt(env, rcpt);
    myfree(rcpt);
    vstr_free(why);
}

/* sendmail_found - addr_extract_list callback for -t and for address lists as arguments */
static void sendmail_found(const char *addr, void *ctx)
{
    sendmail_add_rcpt((MAILDROP_ENV *)ctx, addr);
}

/*
 * sendmail_add_arg - a recipient argument: an address, or a list
 *
 * As sendmail does, an argument may be an address list as in a To:
 * header: "Name <a@b>", "a@x,b@y", "\"Name, Jr\" <a@b>, c@d". An argument
 * that is a valid address by itself is taken as it is (a quoted local
 * part may hold "," or "<"); otherwise one that holds "<" or "," is
 * parsed as a list, with the parser of -t.
 */
static void sendmail_add_arg(MAILDROP_ENV *env, const char *arg)
{
    VSTR *why;
    char *rcpt;
    char *shown;
    int plain;

    if (strpbrk(arg, "<,") == NULL || strpbrk(arg, "\r\n") != NULL) {
        sendmail_add_rcpt(env, arg);
        return;
    }
    why = vstr_alloc(100);
    rcpt = sendmail_qualify(arg);
    plain = arg[0] != '<' && addr_check(rcpt, strlen(rcpt), ADDR_ALLOW_UTF8, why) == 0;
    myfree(rcpt);
    if (plain) {
        sendmail_add_rcpt(env, arg);
    } else if (addr_extract_list(arg, strlen(arg), sendmail_found, env, why) <= 0) {
        shown = relayq_printable(arg, 0);
        msg_fatal_status(EX_DATAERR, "bad recipient list \"%s\": %s", shown,
                         vstr_len(why) ? vstr_str(why) : "no address in it");
    }
    vstr_free(why);
}

/* sendmail_set_sender - -f, or the login name of the real uid at myorigin */
static void sendmail_set_sender(MAILDROP_ENV *env, const char *sender)
{
    VSTR *why = vstr_alloc(100);
    struct passwd *pw;
    char *addr;

    if (sender != NULL && (strcmp(sender, "") == 0 || strcmp(sender, "<>") == 0)) {
        addr = mystrdup("");
    } else if (sender != NULL) {
        if (strchr(sender, '\r') || strchr(sender, '\n'))
            sendmail_fatal_addr(EX_DATAERR, "sender", sender, "contains a line break (CR or LF)");
        addr = sendmail_qualify(sender);
    } else {
        if ((pw = getpwuid(getuid())) == NULL)
            msg_fatal_status(EX_OSERR, "cannot find the login name of uid %ld: use -f SENDER",
                             (long)getuid());
        addr = sendmail_qualify(pw->pw_name);
    }
    if (addr_check(addr, strlen(addr), ADDR_ALLOW_EMPTY | ADDR_ALLOW_UTF8, why) < 0)
        sendmail_fatal_addr(EX_DATAERR, "sender", sender ? sender : addr, vstr_str(why));
    myfree(env->sender);
    env->sender = addr;
    vstr_free(why);
}

/* sendmail_set_notify - -N never | success,delay,failure (any subset, in any order) */
static void sendmail_set_notify(MAILDROP_ENV *env, const char *text)
{
    VSTR *out = vstr_alloc(64);
    char *shown;

    if (smtpd_proto_notify(text, strlen(text), out) == 0) {
        myfree(env->notify);
        env->notify = mystrdup(vstr_str(out));
        vstr_free(out);
        return;
    }
    shown = relayq_printable(text, 0);
    msg_fatal_status(
        EX_USAGE, "bad -N value \"%s\": use never, or one or more of success,delay,failure", shown);
}

/* sendmail_set_ret - -R full | hdrs */
static void sendmail_set_ret(MAILDROP_ENV *env, const char *text)
{
    char *shown;

    if (strcasecmp(text, "full") == 0 || strcasecmp(text, "hdrs") == 0) {
        myfree(env->ret);
        env->ret = mystrdup(strcasecmp(text, "full") == 0 ? "full" : "hdrs");
        return;
    }
    shown = relayq_printable(text, 0);
    msg_fatal_status(EX_USAGE, "bad -R value \"%s\": use full or hdrs", shown);
}

/* sendmail_set_envid - -V: printable ASCII without blanks, at most 100 (smtpout xtext-encodes it)
 */
static void sendmail_set_envid(MAILDROP_ENV *env, const char *text)
{
    size_t len = strlen(text);
    char *shown;

    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)text[i];

        if (ch < 0x21 || ch > 0x7e)
            len = 0;
    }
    if (len > 0 && len <= SENDMAIL_ENVID_MAX) {
        myfree(env->envid);
        env->envid = mystrdup(text);
        return;
    }
    shown = relayq_printable(text, 0);
    msg_fatal_status(EX_USAGE,
                     "bad -V value \"%s\": use 1 to %d printable ASCII characters, without "
                     "blanks",
                     shown, SENDMAIL_ENVID_MAX);
}

/* sendmail_set_fullname - -F: one line of printable text */
static void sendmail_set_fullname(MAILDROP_ENV *env, const char *text)
{
    size_t len = strlen(text);

    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f)
            msg_fatal_status(EX_USAGE, "bad -F value: contains a control character");
    if (len > SENDMAIL_FULLNAME_MAX)
        msg_fatal_status(EX_USAGE, "bad -F value: longer than %d bytes", SENDMAIL_FULLNAME_MAX);
    myfree(env->fullname);
    env->fullname = mystrdup(text);
}

/* sendmail_read_piece - the next line, or the next SENDMAIL_PIECE_MAX bytes of it */
static int sendmail_read_piece(SENDMAIL_INPUT *in, VSTR *piece, int *at_line_start)
{
    ssize_t got;
    char *nl;
    size_t take;

    vstr_reset(piece);
    *at_line_start = in->line_start;
    for (;;) {
        if (in->pos < in->len) {
            nl = memchr(in->buf + in->pos, '\n', in->len - in->pos);
            take = nl ? (size_t)(nl - (in->buf + in->pos)) + 1 : in->len - in->pos;
            if (take > SENDMAIL_PIECE_MAX - vstr_len(piece))
                take = SENDMAIL_PIECE_MAX - vstr_len(piece);
            vstr_append(piece, in->buf + in->pos, take);
            in->pos += take;
            if (vstr_str(piece)[vstr_len(piece) - 1] == '\n' ||
                vstr_len(piece) == SENDMAIL_PIECE_MAX)
                break;
        }
        if (in->eof)
            break;
        in->pos = in->len = 0;
        got = read(in->fd, in->buf, SENDMAIL_PIECE_MAX);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            msg_fatal_status(EX_IOERR, "cannot read the message from standard input: %s",
                             strerror(errno));
        if (got == 0)
            in->eof = 1;
        in->len = (size_t)got;
    }
    if (vstr_len(piece) == 0)
        return 0;
    in->line_start = vstr_str(piece)[vstr_len(piece) - 1] == '\n';
    return 1;
}

/* sendmail_is_dot - a line consisting of a single "." */
static int sendmail_is_dot(const VSTR *piece, int at_line_start, int eof)
{
    const char *s = vstr_str(piece);
    size_t len = vstr_len(piece);

    return at_line_start &&
           ((len == 2 && strcmp(s, ".\n") == 0) || (len == 3 && strcmp(s, ".\r\n") == 0) ||
            (len == 1 && s[0] == '.' && eof));
}

/* sendmail_header_name - length of "name" in "name:" or "name :", or 0 */
static size_t sendmail_header_name(const char *s, size_t len)
{
    size_t i;
    size_t n;

    for (i = 0; i < len && (unsigned char)s[i] > 0x20 && (unsigned char)s[i] < 0x7f && s[i] != ':';
         i++)
        /* field name: printable ASCII except ":" (RFC 5322 2.2) */;
    n = i;
    while (i < len && (s[i] == ' ' || s[i] == '\t'))
        i++;
    return n > 0 && i < len && s[i] == ':' ? n : 0;
}

/* sendmail_is_rcpt_header - To:, Cc: or Bcc: */
static int sendmail_is_rcpt_header(const char *s, size_t name_len)
{
    return (name_len == 2 && strncasecmp(s, "To", 2) == 0) ||
           (name_len == 2 && strncasecmp(s, "Cc", 2) == 0) ||
           (name_len == 3 && strncasecmp(s, "Bcc", 3) == 0);
}

/*
 * sendmail_read_headers - the header section, into memory
 *
 * Ends at an empty line, at a line that is neither a header nor a
 * continuation, at a lone "." (unless -i) or at SENDMAIL_HEADER_MAX bytes.
 * The line that ended it, if any, is left in `pending` for the body.
 * Returns 1 when the message ended within the header section.
 */
static int sendmail_read_headers(SENDMAIL_INPUT *in, int dots, VSTR *headers, SENDMAIL_HDR **hdrs,
                                 size_t *nhdr, VSTR *pending)
{
    VSTR *piece = vstr_alloc(256);
    SENDMAIL_HDR *cur = NULL;
    size_t cap = 0;
    size_t name_len;
    int at_start;
    int first = 1;
    int ended = 1;

    *hdrs = NULL;
    *nhdr = 0;
    while (sendmail_read_piece(in, piece, &at_start)) {
        if (dots && sendmail_is_dot(piece, at_start, in->eof && in->pos == in->len))
            break;
        /* A leading mbox "From " line is an artifact of the caller, not a header. */
        if (first && at_start && strncmp(vstr_str(piece), "From ", 5) == 0) {
            first = 0;
            while (!in->line_start && sendmail_read_piece(in, piece, &at_start))
                /* skip the rest of an overlong From_ line */;
            continue;
        }
        first = 0;
        if (!at_start) {
            /* The rest of an overlong physical line: part of whatever it started. */
            if (cur == NULL) {
                vstr_append(pending, vstr_str(piece), vstr_len(piece));
                ended = 0;
                break;
            }
            cur->len += vstr_len(piece);
            vstr_append(headers, vstr_str(piece), vstr_len(piece));
        } else if ((vstr_str(piece)[0] == ' ' || vstr_str(piece)[0] == '\t') && cur != NULL) {
            cur->len += vstr_len(piece);
            vstr_append(headers, vstr_str(piece), vstr_len(piece));
        } else if ((name_len = sendmail_header_name(vstr_str(piece), vstr_len(piece))) > 0) {
            if (*nhdr == cap)
                *hdrs = myrealloc(*hdrs, sizeof(**hdrs) * (cap = cap ? cap * 2 : 16));
            cur = *hdrs + (*nhdr)++;
            cur->offset = vstr_len(headers);
            cur->len = vstr_len(piece);
            cur->name_len = name_len;
            cur->drop = name_len == 3 && strncasecmp(vstr_str(piece), "Bcc", 3) == 0;
            vstr_append(headers, vstr_str(piece), vstr_len(piece));
        } else {
            /* The empty line, or body text without one: the body starts here. */
            vstr_append(pending, vstr_str(piece), vstr_len(piece));
            ended = 0;
            break;
        }
        if (vstr_len(headers) > SENDMAIL_HEADER_MAX) {
            ended = 0;
            break;
        }
    }
    vstr_free(piece);
    return ended;
}

/*
 * sendmail_header_has_nul - a NUL byte in a header line before any CR in it.
 * pickup refuses such a message into corrupt/, where its sender would never
 * hear of it, so the command refuses it first. After a CR the rest of the
 * line may be body to pickup (a bare CR ends a line): pickup decides.
 */
static int sendmail_header_has_nul(const VSTR *headers, const SENDMAIL_HDR *hdrs, size_t nhdr)
{
    for (size_t i = 0; i < nhdr; i++) {
        const char *text = vstr_str(headers) + hdrs[i].offset;
        int after_cr = 0;

        /* Each physical line of the header, continuation lines included. */
        for (size_t k = 0; k < hdrs[i].len; k++) {
            if (text[k] == '\n')
                after_cr = 0;
            else if (text[k] == '\r')
                after_cr = 1;
            else if (text[k] == '\0' && !after_cr)
                return 1;
        }
    }
    return 0;
}

/* sendmail_extract - -t: recipients of the To:, Cc: and Bcc: headers */
static void sendmail_extract(MAILDROP_ENV *env, const VSTR *headers, const SENDMAIL_HDR *hdrs,
                             size_t nhdr)
{
    VSTR *why = vstr_alloc(100);
    const char *text;
    const char *colon;

    for (size_t i = 0; i < nhdr; i++) {
        text = vstr_str(headers) + hdrs[i].offset;
        if (!sendmail_is_rcpt_header(text, hdrs[i].name_len))
            continue;
        colon = memchr(text, ':', hdrs[i].len);
        if (addr_extract_list(colon + 1, hdrs[i].len - (size_t)(colon + 1 - text), sendmail_found,
                              env, why) < 0)
            msg_fatal_status(EX_DATAERR, "bad address list in the %.*s: header: %s",
                             (int)hdrs[i].name_len, text, vstr_str(why));
    }
    vstr_free(why);
}

/* SENDMAIL_OUT - the maildrop file being written, its size accounting, its first failure */
typedef struct SENDMAIL_OUT {
    int fd;
    VSTR *buf;            /* not yet written */
    long long content;    /* message bytes so far */
    long long limit;      /* message_size_limit, 0: none */
    SEAL_DROP *seal;      /* sealing the file (queue_encryption_key_file), or NULL */
    VSTR *sealed;         /* sealed bytes not yet written */
    int status;           /* 0, or the sysexits code of the first failure */
    int nospace;          /* that failure was ENOSPC or EDQUOT */
    VSTR *why;            /* its one-line reason */
    const char *maildrop; /* the directory of the file */
    int filed;            /* the file exists: the message was too big to hand to pickup */
    char name[PATH_MAX];  /* the file's final path, once committed */
    char queue_id[64];    /* or the queue id pickup committed it as, "" */
} SENDMAIL_OUT;

/* sendmail_fail - record the first failure, drop the unfinished file; returns -1 */
static int sendmail_fail(SENDMAIL_OUT *out, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int sendmail_fail(SENDMAIL_OUT *out, int status, const char *fmt, ...)
{
    int saved_errno = errno;
    va_list ap;

    if (out->status == 0) {
        out->status = status;
        out->nospace = saved_errno == ENOSPC || saved_errno == EDQUOT;
        va_start(ap, fmt);
        vstr_reset(out->why);
        vstr_vsprintf_append(out->why, fmt, ap);
        va_end(ap);
    }
    if (out->fd >= 0)
        (void)close(out->fd);
    out->fd = -1;
    sendmail_cleanup();
    return -1;
}

/* sendmail_flush - write out the buffer (sealed, the last time final) */
static int sendmail_flush(SENDMAIL_OUT *out, int final)
{
    VSTR *bytes = out->buf;

    if (out->status != 0)
        return -1;
    if (out->seal != NULL) {
        if (vstr_len(out->buf) == 0 && !final)
            return 0;
        seal_drop_push(out->seal, vstr_str(out->buf), vstr_len(out->buf), final, out->sealed);
        vstr_reset(out->buf);
        bytes = out->sealed;
    }
    if (vstr_len(bytes) > 0 && write_all(out->fd, vstr_str(bytes), vstr_len(bytes)) < 0)
        return sendmail_fail(out, EX_TEMPFAIL, "cannot queue the message: write %s: %s",
                             sendmail_tmp, strerror(errno));
    vstr_reset(bytes);
    return 0;
}

/* sendmail_seal_setup - with encryption at rest, seal the file to pickup's public key */
static int sendmail_seal_setup(SENDMAIL_OUT *out)
{
    char *path;
    VSTR *why;
    unsigned char public_key[SEAL_PUBLIC_LEN];
    unsigned id;
    int ret = 0;

    if (*var_str(queue_encryption_key_file) == '\0')
        return 0;
    path = qdir_path(var_str(queue_directory), SEAL_DROP_KEY_FILE);
    why = vstr_alloc(100);
    out->sealed = vstr_alloc(SENDMAIL_WRITE_CHUNK + SENDMAIL_PIECE_MAX + 64);
    if (seal_drop_key_read(path, &id, public_key, why) < 0)
        ret = sendmail_fail(out, EX_TEMPFAIL,
                            "cannot queue the message: queue_encryption_key_file is set, but the "
                            "maildrop key that pickup publishes is not usable (is relayq "
                            "started?): %s",
                            vstr_str(why));
    else if ((out->seal = seal_drop_create(id, public_key, out->sealed)) == NULL)
        ret = sendmail_fail(out, EX_TEMPFAIL,
                            "cannot queue the message: %s: not a usable public key", path);
    vstr_free(why);
    myfree(path);
    return ret;
}

static int sendmail_create(SENDMAIL_OUT *out, const char *maildrop);

/* sendmail_content - add message bytes, enforcing message_size_limit */
static int sendmail_content(SENDMAIL_OUT *out, const char *data, size_t len)
{
    if (out->status != 0)
        return -1;
    out->content += (long long)len;
    if (out->limit > 0 && out->content > out->limit)
        return sendmail_fail(out, EX_DATAERR,
                             "message is larger than message_size_limit (%lld bytes)", out->limit);
    vstr_append(out->buf, data, len);
    /* Too big to hand to pickup whole: it goes to a maildrop file. */
    if (!out->filed && vstr_len(out->buf) > PICKUP_SUBMIT_MAX) {
        if (sendmail_create(out, out->maildrop) < 0)
            return -1;
        out->filed = 1;
    }
    if (out->filed && vstr_len(out->buf) >= SENDMAIL_WRITE_CHUNK)
        return sendmail_flush(out, 0);
    return 0;
}

/* sendmail_random - 32 random bits for a file name */
static unsigned sendmail_random(void)
{
    unsigned value = 0;

    if (getrandom(&value, sizeof(value), GRND_NONBLOCK) != sizeof(value))
        value = (unsigned)getpid() ^ (unsigned)time(NULL) ^ (unsigned)now_ms();
    return value;
}

/* sendmail_signal_set - the signals that would leave a temporary file behind */
static void sendmail_signal_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGQUIT);
    sigaddset(set, SIGTERM);
}

/* sendmail_catch_signals - remove the temporary file when interrupted */
static void sendmail_catch_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = sendmail_signal;
    sendmail_signal_set(&sa.sa_mask);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* A file size limit must show as a write error, not a kill. */
    signal(SIGXFSZ, SIG_IGN);
}

/* sendmail_create - the temporary file, with its mode and owner */
static int sendmail_create(SENDMAIL_OUT *out, const char *maildrop)
{
    struct passwd *pw;
    sigset_t block;
    sigset_t saved;
    int tries;

    /* No signal between creating the file and knowing its name. */
    sendmail_signal_set(&block);
    sigprocmask(SIG_BLOCK, &block, &saved);
    for (tries = 0; tries < 10 && out->fd < 0; tries++) {
        snprintf(sendmail_tmp, sizeof(sendmail_tmp), "%s/tmp.%ld.%08x", maildrop, (long)getpid(),
                 sendmail_random());
        out->fd = open(sendmail_tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (out->fd < 0) {
            int saved_errno = errno;

            sendmail_tmp[0] = '\0';
            errno = saved_errno;
            if (errno != EEXIST)
                break;
        }
    }
    sigprocmask(SIG_SETMASK, &saved, NULL);
    if (out->fd < 0) {
        if (errno == ENOENT)
            return sendmail_fail(out, EX_CANTCREAT,
                                 "queue directory %s does not exist: is relayq started?", maildrop);
        return sendmail_fail(out, EX_TEMPFAIL, "cannot queue the message: create a file in %s: %s",
                             maildrop, strerror(errno));
    }
    /*
     * Pickup runs as mail_owner: as root, give the file to it and keep it
     * private; otherwise make it readable whatever our umask is.
     */
    if (geteuid() == 0 && (pw = getpwnam(var_str(mail_owner))) != NULL) {
        if (fchown(out->fd, pw->pw_uid, pw->pw_gid) < 0)
            return sendmail_fail(out, EX_TEMPFAIL, "cannot queue the message: chown %s: %s",
                                 sendmail_tmp, strerror(errno));
    } else if (geteuid() != 0 && fchmod(out->fd, 0644) < 0) {
        return sendmail_fail(out, EX_TEMPFAIL, "cannot queue the message: chmod %s: %s",
                             sendmail_tmp, strerror(errno));
    }
    return 0;
}

/*
 * sendmail_open - start a message: its envelope, and what sealing it needs
 *
 * Every message, from the command line or from "sendmail -bs", goes
 * through sendmail_open(), sendmail_content() and sendmail_commit(); after
 * a failure (out->status, out->why) nothing is left in maildrop/.
 * sendmail_close() releases the rest either way. The message stays in
 * memory until it passes PICKUP_SUBMIT_MAX bytes; only then is its
 * maildrop file made.
 */
static int sendmail_open(SENDMAIL_OUT *out, const MAILDROP_ENV *env, const char *maildrop)
{
    memset(out, 0, sizeof(*out));
    out->fd = -1;
    out->limit = var_int(message_size_limit);
    out->buf = vstr_alloc(SENDMAIL_WRITE_CHUNK + SENDMAIL_PIECE_MAX);
    out->why = vstr_alloc(100);
    out->maildrop = maildrop;
    if (sendmail_seal_setup(out) < 0)
        return -1;
    maildrop_encode_envelope(env, out->buf);
    return 0;
}

/*
 * sendmail_hand_over - give pickup the whole message and wait for the commit that holds it
 *
 * 1: committed (out->queue_id); 0: pickup is not there or cannot take it
 * now (not running, queue full, a failed commit, no verdict in time): the
 * caller writes the file instead; -1: pickup refused the message for good
 * (out->status and out->why say why). A verdict lost after a commit
 * means the file is written too: the message may go out twice, never
 * not at all.
 */
static int sendmail_hand_over(SENDMAIL_OUT *out)
{
    char *path = qdir_path(var_str(queue_directory), SOCK_PICKUP);
    VSTR *why = vstr_alloc(100);
    IPC_CHAN *chan;
    IPC_REC *rec = NULL;
    int ret = 0;

    /* A pickup busy with a long commit greets late: waiting costs less than a file. */
    if ((chan = ipc_client_open(path, PROTO_PICKUP, SENDMAIL_HAND_OVER_MS, why)) != NULL) {
        rec = ipc_rec_create("submit");
        ipc_rec_add_long(rec, "size", (long long)vstr_len(out->buf));
        ipc_chan_send(chan, rec);
        ipc_rec_free(rec);
        ipc_chan_send_raw(chan, vstr_str(out->buf), vstr_len(out->buf));
        rec = NULL;
        if (ipc_chan_send_wait(chan, NULL, SENDMAIL_HAND_OVER_MS, why) == 0)
            rec = ipc_chan_recv_wait(chan, SENDMAIL_HAND_OVER_MS, why);
    }
    if (rec != NULL && strcmp(ipc_rec_type(rec), "queued") == 0 &&
        ipc_rec_check(rec, "queue_id", "", why) == 0) {
        snprintf(out->queue_id, sizeof(out->queue_id), "%s", ipc_rec_get(rec, "queue_id"));
        ret = 1;
    } else if (rec != NULL && strcmp(ipc_rec_type(rec), "refused") == 0 &&
               ipc_rec_check(rec, "status,reason", "", why) == 0) {
        if (strcmp(ipc_rec_get(rec, "status"), "rejected") == 0)
            ret = sendmail_fail(out, EX_DATAERR, "message refused: %s", ipc_rec_get(rec, "reason"));
        else if (msg_verbose)
            msg_info("pickup cannot take the message now (%s): writing it to maildrop/",
                     ipc_rec_get(rec, "reason"));
    } else if (msg_verbose) {
        msg_info("no verdict from pickup (%s): writing the message to maildrop/", vstr_str(why));
    }
    if (rec != NULL)
        ipc_rec_free(rec);
    if (chan != NULL)
        ipc_chan_free(chan);
    vstr_free(why);
    myfree(path);
    return ret;
}

/* sendmail_commit - hand the message to pickup, or else: its file written, fsynced, renamed
 * into place, the directory fsynced */
static int sendmail_commit(SENDMAIL_OUT *out, const char *maildrop)
{
    struct timeval tv;
    int sync_errno = 0;
    int ret;

    if (out->status != 0)
        return -1;
    if (!out->filed) {
        if ((ret = sendmail_hand_over(out)) != 0)
            return ret > 0 ? 0 : -1;
        if (sendmail_create(out, maildrop) < 0)
            return -1;
        out->filed = 1;
    }
    if (sendmail_flush(out, 1) < 0)
        return -1;
    if (fsync(out->fd) < 0)
        return sendmail_fail(out, EX_TEMPFAIL, "cannot queue the message: fsync %s: %s",
                             sendmail_tmp, strerror(errno));
    gettimeofday(&tv, NULL);
    snprintf(out->name, sizeof(out->name), "%s/%lld.%06ld.%ld.%08x", maildrop, (long long)tv.tv_sec,
             (long)tv.tv_usec, (long)getpid(), sendmail_random());
    if (rename(sendmail_tmp, out->name) < 0)
        return sendmail_fail(out, EX_TEMPFAIL, "cannot queue the message: rename %s: %s",
                             sendmail_tmp, strerror(errno));
    sendmail_tmp[0] = '\0';
    /*
     * Through setgid_group the user may write maildrop/ but not read it, so
     * cannot open it to fsync it: sync the file system the file is on.
     */
    if (fsync_dir(maildrop) < 0 && (errno != EACCES || syncfs(out->fd) < 0))
        sync_errno = errno;
    if (close(out->fd) < 0) {
        out->fd = -1;
        return sendmail_fail(out, EX_TEMPFAIL, "cannot queue the message: close %s: %s", out->name,
                             strerror(errno));
    }
    out->fd = -1;
    if (sync_errno != 0) {
        /*
         * The rename may not survive a crash. Take the file back; if it is
         * already gone, pickup has committed it to the queue (it unlinks
         * only after its commit), and the message is safe.
         */
        if (unlink(out->name) == 0 || errno != ENOENT) {
            errno = sync_errno;
            return sendmail_fail(out, EX_TEMPFAIL, "cannot queue the message: fsync %s: %s",
                                 maildrop, strerror(sync_errno));
        }
    }
    return 0;
}

/* sendmail_close - release what sendmail_open() took */
static void sendmail_close(SENDMAIL_OUT *out)
{
    if (out->fd >= 0)
        (void)close(out->fd);
    sendmail_cleanup();
    seal_drop_free(out->seal);
    if (out->sealed != NULL)
        vstr_free(out->sealed);
    vstr_free(out->buf);
    vstr_free(out->why);
}

/* sendmail_out_fatal - the command line's way out of a failed file */
static void sendmail_out_fatal(SENDMAIL_OUT *out) __attribute__((noreturn));
static void sendmail_out_fatal(SENDMAIL_OUT *out)
{
    msg_fatal_status(out->status, "%s", vstr_str(out->why));
}

/* sendmail_wakeup - tell pickup, best effort; it scans maildrop/ anyway */
static void sendmail_wakeup(void)
{
    char *path = qdir_path(var_str(queue_directory), SOCK_PICKUP);
    VSTR *why = vstr_alloc(100);
    IPC_CHAN *chan;
    IPC_REC *rec;

    if ((chan = ipc_client_open(path, PROTO_PICKUP, SENDMAIL_WAKEUP_MS, why)) != NULL) {
        rec = ipc_rec_create("wakeup");
        (void)ipc_chan_send_wait(chan, rec, SENDMAIL_WAKEUP_MS, why);
        ipc_rec_free(rec);
        ipc_chan_free(chan);
    }
    vstr_free(why);
    myfree(path);
}

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
    atexit(sendmail_cleanup);
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

/* sendmail_main - queue the message on standard input */
int sendmail_main(int argc, char **argv)
{
    MAILDROP_ENV env;
    SENDMAIL_INPUT in;
    SENDMAIL_OUT out;
    SENDMAIL_HDR *hdrs;
    VSTR *headers;
    VSTR *pending;
    VSTR *piece;
    const char *config = NULL;
    const char *sender = NULL;
    const char *fullname = NULL;
    const char *notify = NULL;
    const char *ret = NULL;
    const char *envid = NULL;
    char *maildrop;
    size_t nhdr;
    const char *site = NULL;
    const char *base;
    int extract = 0;
    int mode = 'm';
    int dots = 1;
    int ended;
    int at_start;
    int ch;

    opterr = 0;
    while ((ch = getopt(argc, argv, "+B:b:C:c:F:f:Gh:IiL:mN:nO:o:q::R:r:tUV:vX:x")) != -1) {
        switch (ch) {
        case 'C':
        case 'c':
            config = optarg;
            break;
        case 'F':
            fullname = optarg;
            break;
        case 'f':
        case 'r': /* the old name of -f */
            sender = optarg;
            break;
        case 'i':
            dots = 0;
            break;
        case 'N':
            notify = optarg;
            break;
        case 'R':
            ret = optarg;
            break;
        case 't':
            extract = 1;
            break;
        case 'V':
            envid = optarg;
            break;
        case 'o':
            /* -oi is -i; -odi, -odb, -oem and the other sendmail options do not apply. */
            if (strcmp(optarg, "i") == 0)
                dots = 0;
            break;
        case 'b':
            if (strlen(optarg) != 1 || strchr("impqs", optarg[0]) == NULL)
                msg_fatal_status(EX_USAGE,
                                 "unsupported option -b%.20s: only -bm, -bs, -bp and -bi work",
                                 optarg);
            mode = optarg[0];
            break;
        case 'q':
            /* -q: deliver the queue; -qR SITE (or -qRSITE): the mail for one site. */
            mode = 'q';
            if (optarg != NULL && strcmp(optarg, "R") == 0 && optind < argc)
                site = argv[optind++];
            else if (optarg != NULL && optarg[0] == 'R' && optarg[1] != '\0')
                site = optarg + 1;
            else if (optarg != NULL)
                msg_fatal_status(EX_USAGE, "unsupported option -q%.20s: only -q and -qR SITE work",
                                 optarg);
            break;
        case 'B': /* body type: the message goes as it is */
        case 'G':
        case 'h':
        case 'I':
        case 'L': /* syslog label */
        case 'm':
        case 'n':
        case 'O':
        case 'U': /* initial user submission: that is all we take */
        case 'v':
        case 'X':
        case 'x':
            break;
        default:
            relayq_usage("sendmail", NULL);
        }
    }
    /* Run as newaliases, it is "sendmail -bi". */
    base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    if (strcmp(base, "newaliases") == 0)
        mode = 'i';
    if (mode == 'p')
        return sendmail_bp(config);
    if (mode == 'q')
        return sendmail_q(config, site);
    if (mode == 'i') {
        /* A null client delivers nothing locally: there is no alias database to build. */
        fprintf(stderr, "relayq: no aliases to rebuild: relayq relays all mail, local "
                        "delivery and aliases are the relay's\n");
        return 0;
    }
    relayq_load_config(config);
    if (mode == 's') {
        if (optind != argc || extract)
            msg_fatal_status(EX_USAGE, "-bs takes the recipients from RCPT TO: no recipients "
                                       "or -t on the command line");
        return sendmail_bs();
    }

    maildrop_env_init(&env);
    env.uid = (long long)getuid();
    env.posted = (long long)time(NULL);
    sendmail_set_sender(&env, sender);
    if (fullname != NULL)
        sendmail_set_fullname(&env, fullname);
    if (notify != NULL)
        sendmail_set_notify(&env, notify);
    if (ret != NULL)
        sendmail_set_ret(&env, ret);
    if (envid != NULL)
        sendmail_set_envid(&env, envid);
    for (int i = optind; i < argc; i++)
        sendmail_add_arg(&env, argv[i]);
    if (!extract && env.nrcpt == 0)
        msg_fatal_status(EX_USAGE, "no recipients specified");

    /* The header section decides the -t recipients before anything is written. */
    in.fd = 0;
    in.buf = mymalloc(SENDMAIL_PIECE_MAX);
    in.pos = in.len = 0;
    in.eof = 0;
    in.line_start = 1;
    headers = vstr_alloc(4096);
    pending = vstr_alloc(256);
    ended = sendmail_read_headers(&in, dots, headers, &hdrs, &nhdr, pending);
    if (sendmail_header_has_nul(headers, hdrs, nhdr))
        msg_fatal_status(EX_DATAERR, "a NUL byte in the message header: message not queued");
    if (extract) {
        sendmail_extract(&env, headers, hdrs, nhdr);
        if (env.nrcpt == 0)
            msg_fatal_status(EX_DATAERR, "no recipient addresses found in message header");
    }

    maildrop = qdir_path(var_str(queue_directory), QDIR_MAILDROP);
    sendmail_catch_signals();
    atexit(sendmail_cleanup);
    /* An oversized header section needs no file to be refused. */
    if (var_int(message_size_limit) > 0 &&
        (long long)(vstr_len(headers) + vstr_len(pending)) > var_int(message_size_limit))
        msg_fatal_status(EX_DATAERR, "message is larger than message_size_limit (%lld bytes)",
                         (long long)var_int(message_size_limit));
    if (sendmail_open(&out, &env, maildrop) < 0)
        sendmail_out_fatal(&out);
    for (size_t i = 0; i < nhdr; i++)
        if (!hdrs[i].drop &&
            sendmail_content(&out, vstr_str(headers) + hdrs[i].offset, hdrs[i].len) < 0)
            sendmail_out_fatal(&out);
    if (sendmail_content(&out, vstr_str(pending), vstr_len(pending)) < 0)
        sendmail_out_fatal(&out);
    if (!ended) {
        piece = vstr_alloc(256);
        while (sendmail_read_piece(&in, piece, &at_start)) {
            if (dots && sendmail_is_dot(piece, at_start, in.eof && in.pos == in.len))
                break;
            if (sendmail_content(&out, vstr_str(piece), vstr_len(piece)) < 0)
                sendmail_out_fatal(&out);
        }
        vstr_free(piece);
    }
    if (sendmail_commit(&out, maildrop) < 0)
        sendmail_out_fatal(&out);
    if (out.filed)
        sendmail_wakeup();

    sendmail_close(&out);
    vstr_free(headers);
    vstr_free(pending);
    myfree(hdrs);
    myfree(in.buf);
    myfree(maildrop);
    maildrop_env_free(&env);
    return 0;
}
