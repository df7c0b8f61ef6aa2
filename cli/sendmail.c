/*
 * sendmail - the sendmail-compatible mail submission command
 *
 * sendmail_args()
 *	the options of Postfix's sendmail: -t (recipients from To:, Cc:,
 *	Bcc:), -i / -oi (a lone "." line is data), -f, -F, -N, -R, -V; the
 *	common flags of other programs (-odi, -oem, -v, -B, -bm, -U, -L,
 *	-o*) are accepted and ignored; -bs, -bp, -bi and -q choose another
 *	mode (sendmail_modes.c). -1 for an option it does not know.
 * sendmail_queue()
 *	with the configuration loaded: read a message from standard input
 *	and hand it to pickup, or leave it in the queue's maildrop/
 *	directory. Exit 0 only when the message is durably queued:
 *	committed by pickup, or its file written, fsynced and renamed to
 *	its final name, and the rename fsynced. Every failure is one line
 *	on standard error and a sysexits code (EX_USAGE for bad options,
 *	EX_DATAERR for bad addresses and oversized mail, EX_CONFIG,
 *	EX_CANTCREAT, EX_TEMPFAIL), and leaves nothing in maildrop/. A
 *	recipient argument may be an address list as in a To: header
 *	("Name <a@b>", "a@x,b@y"), parsed as -t parses one.
 * sendmail_no_aliases()
 *	-bi, and the program run as "newaliases": say on standard error
 *	that a null client has no aliases, and succeed.
 * sendmail_open(), sendmail_content(), sendmail_commit(), sendmail_close()
 *	one message into the queue (SENDMAIL_OUT), from the command line or
 *	from a "sendmail -bs" session; after a failure (out->status,
 *	out->why) nothing is left in maildrop/.
 * sendmail_wakeup()
 *	tell pickup a file is waiting, best effort.
 * sendmail_catch_signals()
 *	remove an unfinished temporary file when a signal or an exit comes.
 *
 * No user database, no resolver: this file runs in the front (front.c),
 * a program linked without the dynamic loader, where glibc's NSS lookups
 * are not safe. A message without -f carries no sender, and pickup names
 * the submitting user (its login name at myorigin) from the uid it
 * trusts; bare local parts are left for pickup to qualify with
 * "@myorigin"; as root, the maildrop file goes to the owner of maildrop/.
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
#define SENDMAIL_ENVID_MAX 100            /* RFC 3461 */
#define SENDMAIL_WRITE_CHUNK (64 * 1024)  /* output buffered up to this */
#define SENDMAIL_WAKEUP_MS 1000           /* for pickup's greeting to a wake-up after a file */
#define SENDMAIL_HAND_OVER_MS (60 * 1000) /* for each step of handing a message over */

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

/* sendmail_unbracket - an address as stored: angle brackets off; pickup adds "@myorigin" to a
 * bare local part */
static char *sendmail_unbracket(const char *addr)
{
    size_t len = strlen(addr);

    if (len >= 2 && addr[0] == '<' && addr[len - 1] == '>')
        return mystrndup(addr + 1, len - 2);
    return mystrdup(addr);
}

/* sendmail_add_rcpt - validate and add a recipient, once */
static void sendmail_add_rcpt(MAILDROP_ENV *env, const char *addr)
{
    VSTR *why = vstr_alloc(100);
    char *rcpt;

    /* Check the raw text first: a line break must be reported as such, not mangled. */
    if (memchr(addr, '\r', strlen(addr)) || memchr(addr, '\n', strlen(addr)))
        sendmail_fatal_addr(EX_DATAERR, "recipient", addr, "contains a line break (CR or LF)");
    rcpt = sendmail_unbracket(addr);
    if (addr_check(rcpt, strlen(rcpt), ADDR_ALLOW_UTF8 | ADDR_ALLOW_BARE, why) < 0)
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
    rcpt = sendmail_unbracket(arg);
    plain = arg[0] != '<' &&
            addr_check(rcpt, strlen(rcpt), ADDR_ALLOW_UTF8 | ADDR_ALLOW_BARE, why) == 0;
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

/* sendmail_set_sender - -f; without it pickup names the submitting user (own_sender) */
static void sendmail_set_sender(MAILDROP_ENV *env, const char *sender)
{
    VSTR *why;
    char *addr;

    if (sender == NULL) {
        env->own_sender = 1;
        return;
    }
    why = vstr_alloc(100);
    if (strcmp(sender, "") == 0 || strcmp(sender, "<>") == 0) {
        addr = mystrdup("");
    } else {
        if (strchr(sender, '\r') || strchr(sender, '\n'))
            sendmail_fatal_addr(EX_DATAERR, "sender", sender, "contains a line break (CR or LF)");
        addr = sendmail_unbracket(sender);
    }
    if (addr_check(addr, strlen(addr), ADDR_ALLOW_EMPTY | ADDR_ALLOW_UTF8 | ADDR_ALLOW_BARE, why) <
        0)
        sendmail_fatal_addr(EX_DATAERR, "sender", sender, vstr_str(why));
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
int sendmail_content(SENDMAIL_OUT *out, const char *data, size_t len)
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

/* sendmail_catch_signals - remove the temporary file when interrupted or at exit */
void sendmail_catch_signals(void)
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
    atexit(sendmail_cleanup);
}

/* sendmail_create - the temporary file, with its mode and owner */
static int sendmail_create(SENDMAIL_OUT *out, const char *maildrop)
{
    struct stat dir;
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
     * Pickup runs as mail_owner, who owns maildrop/: as root, give the file
     * to it and keep it private; otherwise make it readable whatever our
     * umask is.
     */
    if (geteuid() == 0) {
        if (stat(maildrop, &dir) < 0 || fchown(out->fd, dir.st_uid, (gid_t)-1) < 0)
            return sendmail_fail(out, EX_TEMPFAIL,
                                 "cannot queue the message: give %s to the "
                                 "owner of %s: %s",
                                 sendmail_tmp, maildrop, strerror(errno));
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
int sendmail_open(SENDMAIL_OUT *out, const MAILDROP_ENV *env, const char *maildrop)
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
int sendmail_commit(SENDMAIL_OUT *out, const char *maildrop)
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
void sendmail_close(SENDMAIL_OUT *out)
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
void sendmail_wakeup(void)
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

/* sendmail_args - the options of "sendmail"; -1 for one it does not know */
int sendmail_args(int argc, char **argv, SENDMAIL_ARGS *args)
{
    const char *base;
    int ch;

    memset(args, 0, sizeof(*args));
    args->mode = 'm';
    args->dots = 1;
    opterr = 0;
    optind = 1;
    while ((ch = getopt(argc, argv, "+B:b:C:c:F:f:Gh:IiL:mN:nO:o:q::R:r:tUV:vX:x")) != -1) {
        switch (ch) {
        case 'C':
        case 'c':
            args->config = optarg;
            break;
        case 'F':
            args->fullname = optarg;
            break;
        case 'f':
        case 'r': /* the old name of -f */
            args->sender = optarg;
            break;
        case 'i':
            args->dots = 0;
            break;
        case 'N':
            args->notify = optarg;
            break;
        case 'R':
            args->ret = optarg;
            break;
        case 't':
            args->extract = 1;
            break;
        case 'V':
            args->envid = optarg;
            break;
        case 'o':
            /* -oi is -i; -odi, -odb, -oem and the other sendmail options do not apply. */
            if (strcmp(optarg, "i") == 0)
                args->dots = 0;
            break;
        case 'b':
            if (strlen(optarg) != 1 || strchr("impqs", optarg[0]) == NULL)
                msg_fatal_status(EX_USAGE,
                                 "unsupported option -b%.20s: only -bm, -bs, -bp and -bi work",
                                 optarg);
            args->mode = optarg[0];
            break;
        case 'q':
            /* -q: deliver the queue; -qR SITE (or -qRSITE): the mail for one site. */
            args->mode = 'q';
            if (optarg != NULL && strcmp(optarg, "R") == 0 && optind < argc)
                args->site = argv[optind++];
            else if (optarg != NULL && optarg[0] == 'R' && optarg[1] != '\0')
                args->site = optarg + 1;
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
            return -1;
        }
    }
    /* Run as newaliases, it is "sendmail -bi". */
    base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    if (strcmp(base, "newaliases") == 0)
        args->mode = 'i';
    args->first_rcpt = optind;
    return 0;
}

/* sendmail_no_aliases - -bi, newaliases: nothing to do */
int sendmail_no_aliases(void)
{
    /* A null client delivers nothing locally: there is no alias database to build. */
    fprintf(stderr, "relayq: no aliases to rebuild: relayq relays all mail, local "
                    "delivery and aliases are the relay's\n");
    return 0;
}

/* sendmail_queue - queue the message on standard input (the configuration is loaded) */
int sendmail_queue(const SENDMAIL_ARGS *args, int argc, char **argv)
{
    MAILDROP_ENV env;
    SENDMAIL_INPUT in;
    SENDMAIL_OUT out;
    SENDMAIL_HDR *hdrs;
    VSTR *headers;
    VSTR *pending;
    VSTR *piece;
    char *maildrop;
    size_t nhdr;
    int ended;
    int at_start;

    maildrop_env_init(&env);
    env.uid = (long long)getuid();
    env.posted = (long long)time(NULL);
    sendmail_set_sender(&env, args->sender);
    if (args->fullname != NULL)
        sendmail_set_fullname(&env, args->fullname);
    if (args->notify != NULL)
        sendmail_set_notify(&env, args->notify);
    if (args->ret != NULL)
        sendmail_set_ret(&env, args->ret);
    if (args->envid != NULL)
        sendmail_set_envid(&env, args->envid);
    for (int i = args->first_rcpt; i < argc; i++)
        sendmail_add_arg(&env, argv[i]);
    if (!args->extract && env.nrcpt == 0)
        msg_fatal_status(EX_USAGE, "no recipients specified");

    /* The header section decides the -t recipients before anything is written. */
    in.fd = 0;
    in.buf = mymalloc(SENDMAIL_PIECE_MAX);
    in.pos = in.len = 0;
    in.eof = 0;
    in.line_start = 1;
    headers = vstr_alloc(4096);
    pending = vstr_alloc(256);
    ended = sendmail_read_headers(&in, args->dots, headers, &hdrs, &nhdr, pending);
    if (sendmail_header_has_nul(headers, hdrs, nhdr))
        msg_fatal_status(EX_DATAERR, "a NUL byte in the message header: message not queued");
    if (args->extract) {
        sendmail_extract(&env, headers, hdrs, nhdr);
        if (env.nrcpt == 0)
            msg_fatal_status(EX_DATAERR, "no recipient addresses found in message header");
    }

    maildrop = qdir_path(var_str(queue_directory), QDIR_MAILDROP);
    sendmail_catch_signals();
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
            if (args->dots && sendmail_is_dot(piece, at_start, in.eof && in.pos == in.len))
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
