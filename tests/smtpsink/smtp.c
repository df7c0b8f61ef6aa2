/*
 * smtp - the SMTP dialogue of smtpsink: commands, DATA, AUTH and faults
 *
 * smtp_start(), smtp_tls_done(), smtp_free()
 *	per-connection session set-up, the RFC 3207 reset after a TLS
 *	handshake, and teardown.
 * smtp_process()
 *	consume as much buffered input as possible: every complete command
 *	line in order (so pipelined commands arriving in one read are all
 *	answered, replies batched in the output buffer), DATA bytes with
 *	un-dot-stuffing, BDAT chunks (raw), AUTH continuation lines. It stops at a --stall
 *	timer, at STARTTLS, when the output backs up, or when input runs out.
 *	The replies of each step (greeting, command line, end of message)
 *	go to conn_hold(), which keeps them back for --delay.
 * smtp_reply()
 *	queue a reply; 4xx/5xx replies are logged as "reject", a 421 closes
 *	the connection after it is sent.
 * smtp_load_users(), smtp_rate_init()
 *	--auth-file and --rate-limit set-up.
 *
 * sink_fault_take(), sink_stall_starts()
 *	whether a fault limited with "@TIMES" acts once more (counting it),
 *	and whether a --stall of a command begins now (then "stall" is
 *	logged and c->stall_until set); conn.c uses the two for the TLS
 *	handshake.
 *
 * With --chunking, EHLO offers CHUNKING and BDAT (RFC 3030) is served:
 * "BDAT SIZE [LAST]" is followed by SIZE octets of raw content (no
 * dot-unstuffing), which may share a packet with the line and with the
 * MAIL and RCPT before it; each chunk is answered once its octets are
 * read ("250 2.0.0 Ok: N octets"), and LAST ends the message as the final
 * dot does: the same storing, "message" line (with " bdat_chunks=N"
 * before reads_in_transaction) and reply, the same faults (--reply BDAT
 * answers any chunk, LAST included; --drop-in-data and --drop-every act
 * at BDAT LAST, logged as where=before-bdat-last or after-bdat-last;
 * --stall BODY stops reading after the transaction's first BDAT line).
 * A chunk without an accepted MAIL and RCPT gets 503, one that would take
 * the message over --size (or SINK_HARD_MAX_MSG) 552, which also ends the
 * transaction; in both cases the octets are read and dropped, never held.
 * A SIZE that is no number of at most 20 digits gets 501 at once (its
 * octets cannot be skipped), DATA after BDAT in a transaction 503.
 *
 * Fault injection (--reply, --bad-reply, --rcpt-reply, --421-after,
 * --drop-in-data, --stall, --rate-limit, --max-rcpts) lives here. An --reply override
 * replaces the answer to an otherwise valid command; syntax and sequence
 * errors are still reported normally so a misbehaving client is noticed.
 * A --reply AUTH:334 keeps challenging: every later line of the
 * exchange, "*" included, gets the same 334. A --bad-reply rewrites the
 * reply a command produced (greeting, command line, final dot): garbage
 * or a long line instead of it, a flood, a "big" valid reply of 4 MB or a
 * line of another code before it; the command itself takes effect (after
 * the dot the message is stored). --stall BODY stops reading the content
 * after the 354. With "@TIMES" a fault acts the first TIMES times only,
 * counted over all connections, so a test sees it once and then a
 * healthy server. Faults log a "fault" or "stall" line.
 *
 * The "message" log line has " reads_in_transaction=N" after the msgid: the
 * reads that returned data (conn.c counts them) from the one that carried
 * the first octet of the accepted MAIL command to the one that carried the
 * message's last octet (the final dot's line end), both included; a client
 * that writes MAIL, RCPT and DATA at once and then the content and dot
 * gives 2 when the server's reads see the two writes apart. The line ends
 * in " mail_params=<...> rcpt_params=<...>,<...>":
 * the raw parameter text after MAIL FROM's address and after each accepted
 * RCPT TO's (one per recipient, in order), "-" where there was none, so
 * tests can check what a client sent (SIZE, BODY, RET, ENVID, NOTIFY ...).
 *
 * Failure policy: protocol errors get SMTP replies; a message that cannot
 * be stored in --maildir gets 451 and a note on stderr; an unreadable
 * --auth-file is fatal at start-up.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "smtpsink.h"

static const char *const cmd_names[CMD_COUNT] = {
    "GREETING", "EHLO",     "HELO", "MAIL", "RCPT", "DATA",    "DOT", "NOOP", "RSET",  "QUIT",
    "AUTH",     "STARTTLS", "VRFY", "HELP", "BDAT", "CONNECT", "TLS", "BODY", "OTHER",
};

struct auth_user {
    char *user;
    char *pass;
};

static struct auth_user *users;
static size_t n_users;

static long long *rate_ring;
static unsigned long rate_size, rate_head, rate_count;

static sbuf line_buf;                         /* log line assembly */
static unsigned char auth_buf[SINK_MAX_LINE]; /* decoded AUTH responses */

/* sink_cmd_lookup - command enum for a name (case-insensitive), -1 when unknown */
int sink_cmd_lookup(const char *name, size_t len)
{
    int i;

    for (i = 0; i < CMD_COUNT; i++)
        if (strlen(cmd_names[i]) == len && strncasecmp(cmd_names[i], name, len) == 0)
            return i;
    return -1;
}

/* sink_cmd_name - the name of a command enum */
const char *sink_cmd_name(int cmd)
{
    return (cmd >= 0 && cmd < CMD_COUNT) ? cmd_names[cmd] : "OTHER";
}

/* verb_cmd - classify a command line by its verb (GREETING, DOT, CONNECT, TLS, BODY are none) */
static int verb_cmd(const char *line, size_t len)
{
    size_t v = 0;
    int cmd;

    while (v < len && line[v] != ' ')
        v++;
    cmd = sink_cmd_lookup(line, v);
    if (cmd < 0 || cmd == CMD_GREETING || cmd == CMD_DOT || cmd == CMD_CONNECT || cmd == CMD_TLS ||
        cmd == CMD_BODY)
        return CMD_OTHER;
    return cmd;
}

/* sink_fault_take - whether a counted fault acts once more (and count it) */
int sink_fault_take(struct fault_limit *limit)
{
    if (limit->times > 0 && limit->used >= limit->times)
        return 0;
    limit->used++;
    return 1;
}

/* sink_stall_starts - whether a --stall of cmd begins now; sets the timer */
int sink_stall_starts(struct conn *c, int cmd)
{
    if (cfg.stall_ms[cmd] == 0 || c->stall_done || !sink_fault_take(&cfg.stall_limit[cmd]))
        return 0;
    c->stall_until = sink_now + cfg.stall_ms[cmd];
    sink_log("stall conn=%lu cmd=%s ms=%lld", c->id, cmd_names[cmd], cfg.stall_ms[cmd]);
    return 1;
}

/* reply_override - the --reply text for cmd while it still acts (counted), else NULL */
static const char *reply_override(int cmd)
{
    if (cfg.reply[cmd] == NULL || !sink_fault_take(&cfg.reply_limit[cmd]))
        return NULL;
    return cfg.reply[cmd];
}

/*
 * bad_reply - apply a --bad-reply of cmd to the reply just queued: the
 * bytes from `mark` (an offset from the unsent start of c->out, stable
 * because nothing is sent while a command is handled) to the end.
 */
static void bad_reply(struct conn *c, int cmd, size_t mark)
{
    enum bad_reply kind = cfg.bad_reply[cmd];
    size_t start = c->out.pos + mark, tail_len;
    char *tail;
    int i;

    if (kind == BAD_NONE || sbuf_avail(&c->out) <= mark || !sink_fault_take(&cfg.bad_limit[cmd]))
        return;
    tail_len = c->out.len - start;
    tail = sink_strndup(c->out.data + start, tail_len);
    c->out.len = start;
    switch (kind) {
    case BAD_GARBAGE:
        sbuf_append(&c->out, SINK_GARBAGE, sizeof(SINK_GARBAGE) - 1);
        break;
    case BAD_LONG:
        sbuf_append(&c->out, tail, 4 < tail_len ? 4 : tail_len);
        sbuf_reserve(&c->out, SINK_LONG_REPLY);
        memset(c->out.data + c->out.len, 'x', SINK_LONG_REPLY - 4);
        c->out.len += SINK_LONG_REPLY - 4;
        break;
    case BAD_FLOOD:
        for (i = 1; i <= SINK_FLOOD_LINES; i++)
            sbuf_appendf(&c->out, "%.3s-flood line %d of %d\r\n", tail, i, SINK_FLOOD_LINES);
        sbuf_append(&c->out, tail, tail_len);
        break;
    case BAD_BIG:
        for (i = 1; i <= SINK_BIG_LINES; i++) {
            sbuf_appendf(&c->out, "%.3s-big line %d of %d ", tail, i, SINK_BIG_LINES);
            sbuf_reserve(&c->out, SINK_BIG_WIDTH + 2);
            memset(c->out.data + c->out.len, 'b', SINK_BIG_WIDTH);
            c->out.len += SINK_BIG_WIDTH;
            sbuf_append(&c->out, "\r\n", 2);
        }
        sbuf_append(&c->out, tail, tail_len);
        break;
    case BAD_MIXED:
        sbuf_appendf(&c->out, "%c%.2s-a line with another reply code\r\n",
                     tail[0] == '5' ? '4' : '5', tail + 1);
        sbuf_append(&c->out, tail, tail_len);
        break;
    case BAD_NONE:
        break;
    }
    free(tail);
    sink_log("fault conn=%lu cmd=%s bad-reply=%s", c->id, cmd_names[cmd],
             kind == BAD_GARBAGE ? "garbage"
             : kind == BAD_LONG  ? "long"
             : kind == BAD_FLOOD ? "flood"
             : kind == BAD_BIG   ? "big"
                                 : "mixed");
}

/* smtp_load_users - read "user:password" lines for AUTH */
void smtp_load_users(const char *path)
{
    FILE *fp = fopen(path, "r");
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n;

    if (fp == NULL)
        sink_die("open %s: %s", path, strerror(errno));
    while ((n = getline(&buf, &cap, fp)) >= 0) {
        char *colon;

        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
            buf[--n] = 0;
        if (n == 0 || buf[0] == '#')
            continue;
        if ((colon = strchr(buf, ':')) == NULL)
            sink_die("%s: line without ':'", path);
        users = realloc(users, (n_users + 1) * sizeof(*users));
        if (users == NULL)
            sink_die("out of memory");
        users[n_users].user = sink_strndup(buf, (size_t)(colon - buf));
        users[n_users].pass = sink_strndup(colon + 1, strlen(colon + 1));
        n_users++;
    }
    free(buf);
    fclose(fp);
}

/* smtp_rate_init - allocate the sliding window of --rate-limit */
void smtp_rate_init(unsigned long limit)
{
    rate_ring = sink_alloc(limit * sizeof(*rate_ring));
    rate_size = limit;
}

/* rate_note - remember the time of an accepted message */
static void rate_note(void)
{
    if (rate_size == 0)
        return;
    rate_ring[rate_head] = sink_now;
    rate_head = (rate_head + 1) % rate_size;
    if (rate_count < rate_size)
        rate_count++;
}

/* rate_exceeded - whether N messages were already accepted within the last second */
static int rate_exceeded(void)
{
    if (rate_size == 0 || rate_count < rate_size)
        return 0;
    /* With the ring full, rate_head indexes the oldest of the last N. */
    return sink_now - rate_ring[rate_head] < 1000;
}

/* reply_code - the three-digit code at the start of a reply text */
static int reply_code(const char *text)
{
    if (text[0] < '0' || text[0] > '9' || text[1] < '0' || text[1] > '9' || text[2] < '0' ||
        text[2] > '9')
        return 0;
    return (text[0] - '0') * 100 + (text[1] - '0') * 10 + (text[2] - '0');
}

/* smtp_reply - queue one reply line; log rejects, close after a 421 */
void smtp_reply(struct conn *c, const char *cmdname, const char *text)
{
    sbuf_append(&c->out, text, strlen(text));
    sbuf_append(&c->out, "\r\n", 2);
    if (text[0] == '4' || text[0] == '5')
        sink_log("reject conn=%lu cmd=%s reply=%.3s", c->id, cmdname, text);
    if (strncmp(text, "421", 3) == 0)
        conn_begin_close(c, "421");
}

/* say - reply to a command given by enum */
static void say(struct conn *c, int cmd, const char *text)
{
    smtp_reply(c, cmd_names[cmd], text);
}

/* smtp_answer - reply with the --reply override for cmd or the normal text; returns the code */
static int smtp_answer(struct conn *c, int cmd, const char *normal)
{
    const char *text = reply_override(cmd);

    if (text == NULL)
        text = normal;

    say(c, cmd, text);
    return reply_code(text);
}

/* smtp_reset_tx - forget the current mail transaction */
static void smtp_reset_tx(struct conn *c)
{
    size_t i;

    free(c->from);
    c->from = NULL;
    for (i = 0; i < c->nrcpt; i++)
        free(c->rcpts[i]);
    c->nrcpt = 0;
    c->in_tx = 0;
    c->bdat_chunks = 0;
    sbuf_reset(&c->msg);
}

/* smtp_start - a new session: the greeting is due */
void smtp_start(struct conn *c)
{
    c->phase = PH_CMD;
    c->greet_pending = 1;
}

/* smtp_tls_done - after a handshake the session starts over (RFC 3207 section 4.2) */
void smtp_tls_done(struct conn *c)
{
    smtp_reset_tx(c);
    c->helo = 0;
    c->authed = 0;
    c->phase = PH_CMD;
    free(c->login_user);
    c->login_user = NULL;
}

/* smtp_free - release the session state of a connection */
void smtp_free(struct conn *c)
{
    smtp_reset_tx(c);
    free(c->rcpts);
    c->rcpts = NULL;
    sbuf_free(&c->msg);
    free(c->login_user);
    c->login_user = NULL;
}

/* smtp_greet - send the greeting, or wait for a --stall GREETING */
static void smtp_greet(struct conn *c)
{
    size_t mark = sbuf_avail(&c->out);
    const char *text;

    if (sink_stall_starts(c, CMD_GREETING))
        return;
    c->stall_done = 0;
    c->greet_pending = 0;
    if ((text = reply_override(CMD_GREETING)) == NULL) {
        sbuf_appendf(&c->out, "220 %s ESMTP smtpsink\r\n", cfg.hostname);
    } else {
        say(c, CMD_GREETING, text);
        /* RFC 5321 3.1: after a 554 greeting only QUIT is served. */
        if (text[0] == '4' || text[0] == '5')
            c->greet_rejected = 1;
    }
    bad_reply(c, CMD_GREETING, mark);
}

/* parse_path - split "KW<addr> params" (KW like "FROM:"); -1 on bad syntax */
static int parse_path(const char *arg, const char *kw, const char **addr, size_t *alen,
                      const char **rest)
{
    size_t kl = strlen(kw);
    const char *end;

    if (strncasecmp(arg, kw, kl) != 0)
        return -1;
    arg += kl;
    while (*arg == ' ')
        arg++;
    if (*arg == '<') {
        if ((end = strchr(arg + 1, '>')) == NULL)
            return -1;
        *addr = arg + 1;
        *alen = (size_t)(end - arg - 1);
        *rest = end + 1;
    } else {
        end = arg + strcspn(arg, " ");
        if (end == arg)
            return -1;
        *addr = arg;
        *alen = (size_t)(end - arg);
        *rest = end;
    }
    if (**rest != 0 && **rest != ' ')
        return -1;
    return 0;
}

/*
 * path_dup - copy an address and the raw parameter text after it into one
 * allocation, "ADDRESS\0PARAMS\0": c->from and c->rcpts stay plain address
 * strings for everyone else, and the parameters, which only the log line
 * wants, are freed with them without a new field in struct conn.
 */
static char *path_dup(const char *addr, size_t alen, const char *params)
{
    size_t plen;
    char *p;

    alen = strnlen(addr, alen); /* path_params() finds the parameters after the first NUL */
    while (*params == ' ')
        params++;
    plen = strlen(params);
    while (plen > 0 && params[plen - 1] == ' ')
        plen--;
    p = sink_alloc(alen + plen + 2);
    memcpy(p, addr, alen);
    p[alen] = 0;
    memcpy(p + alen + 1, params, plen);
    p[alen + 1 + plen] = 0;
    return p;
}

/* path_params - the parameter text that path_dup() stored after the address */
static const char *path_params(const char *path)
{
    return path + strlen(path) + 1;
}

/* next_param - split the next "KEY[=VALUE]" off a parameter list; 0 at the end */
static int next_param(const char **p, const char **key, size_t *klen, const char **val,
                      size_t *vlen)
{
    const char *s = *p, *e, *eq;

    while (*s == ' ')
        s++;
    if (*s == 0)
        return 0;
    e = s + strcspn(s, " ");
    eq = memchr(s, '=', (size_t)(e - s));
    *key = s;
    *klen = (size_t)((eq ? eq : e) - s);
    *val = eq ? eq + 1 : e;
    *vlen = eq ? (size_t)(e - eq - 1) : 0;
    *p = e;
    return 1;
}

/* keyis - case-insensitive comparison of a counted key with a name */
static int keyis(const char *key, size_t klen, const char *name)
{
    return strlen(name) == klen && strncasecmp(key, name, klen) == 0;
}

/* reject_param - 555 for a parameter the server did not advertise */
static void reject_param(struct conn *c, int cmd, const char *key, size_t klen)
{
    sbuf *b = &line_buf;

    b->pos = b->len = 0;
    sbuf_appendf(b, "555 5.5.4 Unsupported option: %.*s", (int)(klen > 64 ? 64 : klen), key);
    sbuf_append(b, "", 1);
    say(c, cmd, b->data);
}

/* cmd_ehlo - EHLO and HELO; EHLO lists the configured extensions */
static void cmd_ehlo(struct conn *c, const char *arg, int esmtp)
{
    int cmd = esmtp ? CMD_EHLO : CMD_HELO;
    const char *ext[16], *text;
    char sizebuf[48];
    size_t n = 0, i;

    if (*arg == 0) {
        say(c, cmd, esmtp ? "501 5.5.4 Syntax: EHLO hostname" : "501 5.5.4 Syntax: HELO hostname");
        return;
    }
    if ((text = reply_override(cmd)) != NULL) {
        say(c, cmd, text);
        if (reply_code(text) / 100 == 2) {
            smtp_reset_tx(c);
            c->helo = 1;
        }
        return;
    }
    smtp_reset_tx(c);
    c->helo = 1;
    if (!esmtp) {
        sbuf_appendf(&c->out, "250 %s\r\n", cfg.hostname);
        return;
    }
    if (cfg.pipelining)
        ext[n++] = "PIPELINING";
    if (cfg.size_limit) {
        snprintf(sizebuf, sizeof(sizebuf), "SIZE %llu", cfg.size_limit);
        ext[n++] = sizebuf;
    }
    if (cfg.eightbitmime)
        ext[n++] = "8BITMIME";
    ext[n++] = "ENHANCEDSTATUSCODES";
    if (cfg.smtputf8)
        ext[n++] = "SMTPUTF8";
    if (cfg.dsn)
        ext[n++] = "DSN";
    if (cfg.chunking)
        ext[n++] = "CHUNKING";
    if (sink_tls_enabled && !c->tls_active)
        ext[n++] = "STARTTLS";
    /* AUTH only where credentials are protected, unless TLS is not configured at all. */
    if (cfg.auth_file && (!sink_tls_enabled || c->tls_active))
        ext[n++] = "AUTH PLAIN LOGIN XOAUTH2";
    sbuf_appendf(&c->out, "250-%s\r\n", cfg.hostname);
    for (i = 0; i < n; i++)
        sbuf_appendf(&c->out, "250%c%s\r\n", i + 1 < n ? '-' : ' ', ext[i]);
}

/* cmd_mail - MAIL FROM, with the session and rate checks that come first */
static void cmd_mail(struct conn *c, const char *arg)
{
    const char *addr, *rest, *key, *val, *params;
    size_t alen, klen, vlen;

    if (!c->helo) {
        say(c, CMD_MAIL, "503 5.5.1 Error: send HELO/EHLO first");
        return;
    }
    if (c->in_tx) {
        say(c, CMD_MAIL, "503 5.5.1 Error: nested MAIL command");
        return;
    }
    if (cfg.after421 > 0 && c->msgs >= cfg.after421) {
        say(c, CMD_MAIL, "421 4.7.0 too many messages in this session");
        return;
    }
    if (rate_exceeded()) {
        say(c, CMD_MAIL, "421 4.7.0 too many messages, slow down");
        return;
    }
    if (cfg.require_tls && !c->tls_active) {
        say(c, CMD_MAIL, "530 5.7.0 Must issue a STARTTLS command first");
        return;
    }
    if (cfg.require_auth && !c->authed) {
        say(c, CMD_MAIL, "530 5.7.0 Authentication required");
        return;
    }
    if (parse_path(arg, "FROM:", &addr, &alen, &rest) < 0) {
        say(c, CMD_MAIL, "501 5.5.4 Syntax: MAIL FROM:<address>");
        return;
    }
    params = rest;
    while (next_param(&rest, &key, &klen, &val, &vlen)) {
        if (keyis(key, klen, "SIZE") && cfg.size_limit) {
            char *end;
            unsigned long long sz;

            if (vlen == 0 || vlen > 20 || val[0] < '0' || val[0] > '9') {
                say(c, CMD_MAIL, "501 5.5.4 Bad SIZE syntax");
                return;
            }
            sz = strtoull(val, &end, 10);
            if (end != val + vlen) {
                say(c, CMD_MAIL, "501 5.5.4 Bad SIZE syntax");
                return;
            }
            if (sz > cfg.size_limit) {
                say(c, CMD_MAIL, "552 5.3.4 Message size exceeds fixed limit");
                return;
            }
        } else if (keyis(key, klen, "BODY") &&
                   (keyis(val, vlen, "7BIT") ||
                    (cfg.eightbitmime && keyis(val, vlen, "8BITMIME")))) {
            continue;
        } else if (keyis(key, klen, "SMTPUTF8") && cfg.smtputf8 && vlen == 0) {
            continue;
        } else if ((keyis(key, klen, "RET") || keyis(key, klen, "ENVID")) && cfg.dsn) {
            continue;
        } else if (keyis(key, klen, "AUTH") && cfg.auth_file) {
            continue;
        } else {
            reject_param(c, CMD_MAIL, key, klen);
            return;
        }
    }
    if (smtp_answer(c, CMD_MAIL, "250 2.1.0 Ok") / 100 == 2) {
        c->in_tx = 1;
        c->tx_read = c->line_read;
        c->from = path_dup(addr, alen, params);
    }
}

/* cmd_rcpt - RCPT TO, answered by --rcpt-reply, --reply RCPT or 250 */
static void cmd_rcpt(struct conn *c, const char *arg)
{
    const char *addr, *rest, *key, *val, *params, *text = NULL;
    size_t alen, klen, vlen, i;
    int code;

    if (!c->in_tx) {
        say(c, CMD_RCPT, "503 5.5.1 Error: need MAIL command");
        return;
    }
    if (parse_path(arg, "TO:", &addr, &alen, &rest) < 0) {
        say(c, CMD_RCPT, "501 5.5.4 Syntax: RCPT TO:<address>");
        return;
    }
    if (alen == 0) {
        say(c, CMD_RCPT, "501 5.1.3 Bad recipient address syntax");
        return;
    }
    if (c->nrcpt >= (cfg.max_rcpts ? cfg.max_rcpts : SINK_MAX_RCPT)) {
        say(c, CMD_RCPT, "452 4.5.3 Error: too many recipients");
        return;
    }
    params = rest;
    while (next_param(&rest, &key, &klen, &val, &vlen)) {
        if ((keyis(key, klen, "NOTIFY") || keyis(key, klen, "ORCPT")) && cfg.dsn)
            continue;
        reject_param(c, CMD_RCPT, key, klen);
        return;
    }
    for (i = 0; i < cfg.n_rcpt_replies; i++) {
        struct rcpt_reply *rr = &cfg.rcpt_replies[i];

        if (strlen(rr->addr) == alen && strncasecmp(rr->addr, addr, alen) == 0 &&
            (rr->times == 0 || rr->used < rr->times)) {
            rr->used++;
            text = rr->reply;
            break;
        }
    }
    if (text) {
        say(c, CMD_RCPT, text);
        code = reply_code(text);
    } else {
        code = smtp_answer(c, CMD_RCPT, "250 2.1.5 Ok");
    }
    if (code / 100 == 2) {
        if (c->rcpts == NULL)
            c->rcpts = sink_alloc(SINK_MAX_RCPT * sizeof(*c->rcpts));
        c->rcpts[c->nrcpt++] = path_dup(addr, alen, params);
    }
}

/* msg_begin - a message's content starts (354 or first BDAT): empty it, play --stall BODY */
static void msg_begin(struct conn *c)
{
    c->msg_size = 0;
    c->msg_too_big = 0;
    sbuf_reset(&c->msg);
    /* The client's writes must block: stop reading, not only answering. */
    if (sink_stall_starts(c, CMD_BODY))
        c->stall_noread = 1;
}

/* cmd_data - DATA: enter the message phase when there are recipients */
static void cmd_data(struct conn *c, const char *arg)
{
    if (!c->in_tx) {
        say(c, CMD_DATA, "503 5.5.1 Error: need MAIL command");
        return;
    }
    if (*arg) {
        say(c, CMD_DATA, "501 5.5.4 Syntax: DATA");
        return;
    }
    if (c->nrcpt == 0) {
        say(c, CMD_DATA, "554 5.5.1 Error: no valid recipients");
        return;
    }
    if (c->bdat_chunks > 0) {
        say(c, CMD_DATA, "503 5.5.1 Error: DATA after BDAT in one transaction");
        return;
    }
    if (smtp_answer(c, CMD_DATA, "354 End data with <CR><LF>.<CR><LF>") == 354) {
        c->phase = PH_DATA;
        c->data_bol = 1;
        msg_begin(c);
    }
}

/*
 * cmd_bdat - BDAT SIZE [LAST]: the chunk's octets follow the line; the
 * reply waits for them (smtp_bdat), errors included, so that octets
 * pipelined after a refused chunk are never taken for commands
 */
static void cmd_bdat(struct conn *c, const char *arg)
{
    unsigned long long limit = cfg.size_limit ? cfg.size_limit : SINK_HARD_MAX_MSG, size = 0;
    size_t digits = strspn(arg, "0123456789"), i;
    const char *rest = arg + digits;

    if (!cfg.chunking) {
        smtp_reply(c, "BDAT", "502 5.5.2 Error: command not recognized");
        return;
    }
    while (*rest == ' ')
        rest++;
    if (digits == 0 || digits > 20 || (*rest && strcasecmp(rest, "LAST") != 0) ||
        (arg[digits] != 0 && arg[digits] != ' ')) {
        say(c, CMD_BDAT, "501 5.5.4 Syntax: BDAT size [LAST]");
        return;
    }
    for (i = 0; i < digits; i++) {
        if (size > (~0ULL - 9) / 10) {
            say(c, CMD_BDAT, "501 5.5.4 Syntax: BDAT size [LAST]");
            return;
        }
        size = size * 10 + (unsigned long long)(arg[i] - '0');
    }
    c->phase = PH_BDAT;
    c->bdat_size = c->bdat_left = size;
    c->bdat_last = *rest != 0;
    c->bdat_error = NULL;
    c->msg_end_read = c->line_end_read; /* for an empty chunk */
    if (!c->in_tx || c->nrcpt == 0) {
        c->bdat_error = "503 5.5.1 Error: need MAIL and RCPT commands";
        return;
    }
    if (c->bdat_chunks++ == 0)
        msg_begin(c);
    if (size > limit || c->msg_size > limit - size)
        c->bdat_error = "552 5.3.4 Message size exceeds fixed limit";
}

/* cmd_starttls - STARTTLS: answer, then hand the socket to the handshake */
static void cmd_starttls(struct conn *c, const char *arg)
{
    if (c->tls_active) {
        say(c, CMD_STARTTLS, "503 5.5.1 Error: TLS already active");
        return;
    }
    if (!sink_tls_enabled) {
        say(c, CMD_STARTTLS, "502 5.5.1 Error: command not implemented");
        return;
    }
    if (*arg) {
        say(c, CMD_STARTTLS, "501 5.5.4 Syntax: STARTTLS");
        return;
    }
    if (c->in_tx) {
        say(c, CMD_STARTTLS, "503 5.5.1 Error: MAIL transaction in progress");
        return;
    }
    if (smtp_answer(c, CMD_STARTTLS, "220 2.0.0 Ready to start TLS") != 220)
        return;
    /* Plaintext pipelined after STARTTLS must not survive into the TLS session. */
    sbuf_consume(&c->in, sbuf_avail(&c->in));
    c->starttls_pending = 1;
}

/* auth_check - whether user/password match a line of --auth-file */
static int auth_check(const char *user, size_t ulen, const char *pass, size_t plen)
{
    size_t i;

    for (i = 0; i < n_users; i++)
        if (strlen(users[i].user) == ulen && memcmp(users[i].user, user, ulen) == 0 &&
            strlen(users[i].pass) == plen && memcmp(users[i].pass, pass, plen) == 0)
            return 1;
    return 0;
}

/* auth_done - log and answer the outcome of an AUTH exchange */
static void auth_done(struct conn *c, const char *mech, const char *user, size_t ulen, int ok)
{
    sbuf *b = &line_buf;
    size_t i;

    b->pos = b->len = 0;
    sbuf_appendf(b, "auth conn=%lu mech=%s user=", c->id, mech);
    if (ulen == 0)
        sbuf_append(b, "-", 1);
    for (i = 0; i < ulen && i < 256; i++) {
        unsigned char ch = (unsigned char)user[i];
        sbuf_append(b, (ch <= 0x20 || ch == 0x7f) ? "?" : &user[i], 1);
    }
    sbuf_appendf(b, " result=%s", ok ? "ok" : "fail");
    sink_log_raw(b->data, b->len);
    c->phase = PH_CMD;
    free(c->login_user);
    c->login_user = NULL;
    if (ok) {
        stats.auth_ok++;
        c->authed = 1;
        say(c, CMD_AUTH, "235 2.7.0 Authentication successful");
    } else {
        stats.auth_fail++;
        say(c, CMD_AUTH, "535 5.7.8 Error: authentication failed");
    }
}

/* auth_decode - base64-decode a client response into auth_buf; -1 when malformed */
static ssize_t auth_decode(struct conn *c, const char *resp)
{
    ssize_t n = strcmp(resp, "=") == 0
                    ? 0
                    : sink_b64_decode(resp, strlen(resp), auth_buf, sizeof(auth_buf));

    if (n < 0) {
        c->phase = PH_CMD;
        free(c->login_user);
        c->login_user = NULL;
        say(c, CMD_AUTH, "501 5.5.2 Error: cannot decode response");
    }
    return n;
}

/* auth_plain - check an AUTH PLAIN response: authzid NUL authcid NUL password */
static void auth_plain(struct conn *c, const char *resp)
{
    ssize_t n = auth_decode(c, resp);
    unsigned char *p1, *p2;

    if (n < 0)
        return;
    p1 = memchr(auth_buf, 0, (size_t)n);
    p2 = p1 ? memchr(p1 + 1, 0, (size_t)(auth_buf + n - (p1 + 1))) : NULL;
    if (p2 == NULL) {
        auth_done(c, "PLAIN", "", 0, 0);
        return;
    }
    auth_done(c, "PLAIN", (char *)p1 + 1, (size_t)(p2 - p1 - 1),
              auth_check((char *)p1 + 1, (size_t)(p2 - p1 - 1), (char *)p2 + 1,
                         (size_t)(auth_buf + n - (p2 + 1))));
}

/* auth_login_user - AUTH LOGIN user name received: ask for the password */
static void auth_login_user(struct conn *c, const char *resp)
{
    ssize_t n = auth_decode(c, resp);

    if (n < 0)
        return;
    free(c->login_user);
    c->login_user = sink_strndup((char *)auth_buf, (size_t)n);
    c->phase = PH_AUTH_LOGIN_PASS;
    sbuf_append(&c->out, "334 UGFzc3dvcmQ6\r\n", 18);
}

/* auth_login_pass - AUTH LOGIN password received: check it */
static void auth_login_pass(struct conn *c, const char *resp)
{
    ssize_t n = auth_decode(c, resp);
    const char *user = c->login_user ? c->login_user : "";

    if (n < 0)
        return;
    auth_done(c, "LOGIN", user, strlen(user),
              auth_check(user, strlen(user), (char *)auth_buf, (size_t)n));
}

/* auth_xoauth2 - check "user=NAME^Aauth=Bearer TOKEN^A^A" */
static void auth_xoauth2(struct conn *c, const char *resp)
{
    ssize_t n = auth_decode(c, resp);
    const char *user = NULL, *token = NULL;
    size_t ulen = 0, tlen = 0, i = 0;

    if (n < 0)
        return;
    while (i < (size_t)n) {
        const char *f = (char *)auth_buf + i;
        const unsigned char *e = memchr(auth_buf + i, 1, (size_t)n - i);
        size_t flen = e ? (size_t)(e - auth_buf) - i : (size_t)n - i;

        if (flen > 5 && strncmp(f, "user=", 5) == 0) {
            user = f + 5;
            ulen = flen - 5;
        } else if (flen > 12 && strncasecmp(f, "auth=Bearer ", 12) == 0) {
            token = f + 12;
            tlen = flen - 12;
        }
        i += flen + 1;
    }
    auth_done(c, "XOAUTH2", user ? user : "", ulen,
              user && token && auth_check(user, ulen, token, tlen));
}

/* cmd_auth - AUTH PLAIN / LOGIN / XOAUTH2, with or without initial response */
static void cmd_auth(struct conn *c, const char *arg)
{
    size_t mlen = strcspn(arg, " ");
    const char *initial = arg + mlen, *text;

    if (!cfg.auth_file) {
        say(c, CMD_AUTH, "502 5.5.1 Error: authentication not enabled");
        return;
    }
    if (!c->helo) {
        say(c, CMD_AUTH, "503 5.5.1 Error: send EHLO first");
        return;
    }
    if (c->authed) {
        say(c, CMD_AUTH, "503 5.5.1 Error: already authenticated");
        return;
    }
    if (c->in_tx) {
        say(c, CMD_AUTH, "503 5.5.1 Error: MAIL transaction in progress");
        return;
    }
    if (sink_tls_enabled && !c->tls_active) {
        say(c, CMD_AUTH, "538 5.7.11 Encryption required for requested authentication mechanism");
        return;
    }
    if (mlen == 0) {
        say(c, CMD_AUTH, "501 5.5.4 Syntax: AUTH mechanism");
        return;
    }
    if ((text = reply_override(CMD_AUTH)) != NULL) {
        say(c, CMD_AUTH, text);
        if (reply_code(text) / 100 == 2)
            c->authed = 1;
        else if (reply_code(text) == 334)
            c->phase = PH_AUTH_ENDLESS;
        return;
    }
    while (*initial == ' ')
        initial++;
    if (keyis(arg, mlen, "PLAIN")) {
        if (*initial) {
            auth_plain(c, initial);
        } else {
            c->phase = PH_AUTH_PLAIN;
            sbuf_append(&c->out, "334 \r\n", 6);
        }
    } else if (keyis(arg, mlen, "LOGIN")) {
        if (*initial) {
            auth_login_user(c, initial);
        } else {
            c->phase = PH_AUTH_LOGIN_USER;
            sbuf_append(&c->out, "334 VXNlcm5hbWU6\r\n", 18);
        }
    } else if (keyis(arg, mlen, "XOAUTH2")) {
        if (*initial) {
            auth_xoauth2(c, initial);
        } else {
            c->phase = PH_AUTH_XOAUTH2;
            sbuf_append(&c->out, "334 \r\n", 6);
        }
    } else {
        say(c, CMD_AUTH, "504 5.5.4 Error: unsupported authentication mechanism");
    }
}

/* auth_continue - a response line inside an AUTH exchange */
static void auth_continue(struct conn *c, const char *line)
{
    if (c->phase == PH_AUTH_ENDLESS) {
        say(c, CMD_AUTH, cfg.reply[CMD_AUTH]);
        return;
    }
    if (strcmp(line, "*") == 0) {
        c->phase = PH_CMD;
        free(c->login_user);
        c->login_user = NULL;
        say(c, CMD_AUTH, "501 5.7.0 Authentication aborted");
        return;
    }
    switch (c->phase) {
    case PH_AUTH_PLAIN:
        auth_plain(c, line);
        break;
    case PH_AUTH_LOGIN_USER:
        auth_login_user(c, line);
        break;
    case PH_AUTH_LOGIN_PASS:
        auth_login_pass(c, line);
        break;
    case PH_AUTH_XOAUTH2:
        auth_xoauth2(c, line);
        break;
    case PH_CMD:
    case PH_DATA:
    case PH_BDAT:
    case PH_AUTH_ENDLESS:
        break;
    }
}

/* smtp_command - dispatch one complete command line */
static void smtp_command(struct conn *c, char *line, size_t len)
{
    size_t v;
    const char *arg;
    int cmd;

    while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
        line[--len] = 0;
    if (c->phase != PH_CMD) {
        auth_continue(c, line);
        return;
    }
    v = strcspn(line, " ");
    arg = line + v;
    while (*arg == ' ')
        arg++;
    cmd = verb_cmd(line, v);
    if (c->greet_rejected && cmd != CMD_QUIT) {
        say(c, cmd, "503 5.5.1 Error: no SMTP service here");
        return;
    }
    switch (cmd) {
    case CMD_EHLO:
        cmd_ehlo(c, arg, 1);
        break;
    case CMD_HELO:
        cmd_ehlo(c, arg, 0);
        break;
    case CMD_MAIL:
        cmd_mail(c, arg);
        break;
    case CMD_RCPT:
        cmd_rcpt(c, arg);
        break;
    case CMD_DATA:
        cmd_data(c, arg);
        break;
    case CMD_BDAT:
        cmd_bdat(c, arg);
        break;
    case CMD_STARTTLS:
        cmd_starttls(c, arg);
        break;
    case CMD_AUTH:
        cmd_auth(c, arg);
        break;
    case CMD_RSET:
        if (smtp_answer(c, CMD_RSET, "250 2.0.0 Ok") / 100 == 2)
            smtp_reset_tx(c);
        break;
    case CMD_NOOP:
        smtp_answer(c, CMD_NOOP, "250 2.0.0 Ok");
        break;
    case CMD_VRFY:
        smtp_answer(c, CMD_VRFY, "252 2.0.0 Cannot VRFY user, but will accept message");
        break;
    case CMD_HELP:
        smtp_answer(c, CMD_HELP, "214 2.0.0 smtpsink: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT");
        break;
    case CMD_QUIT:
        smtp_answer(c, CMD_QUIT, "221 2.0.0 Bye");
        conn_begin_close(c, "quit");
        break;
    default: {
        char name[17];
        size_t i, n = 0;

        /* The verb goes into a log field: keep it short and printable. */
        for (i = 0; i < v && n < sizeof(name) - 1; i++) {
            unsigned char ch = (unsigned char)line[i];
            if ((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
                name[n++] = (char)ch;
            else if (ch >= 'a' && ch <= 'z')
                name[n++] = (char)(ch - 'a' + 'A');
        }
        if (n == 0)
            name[n++] = '-';
        name[n] = 0;
        smtp_reply(c, name, "502 5.5.2 Error: command not recognized");
        break;
    }
    }
}

/* append_msgid - append the unfolded, trimmed Message-ID header value, or "-" */
static void append_msgid(sbuf *out, const char *m, size_t len)
{
    size_t i = 0;

    while (i < len) {
        const char *nl = memchr(m + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - m) : len, lend = end;

        if (lend > i && m[lend - 1] == '\r')
            lend--;
        if (lend == i)
            break; /* the empty line ending the header */
        if (lend - i >= 11 && strncasecmp(m + i, "Message-ID:", 11) == 0) {
            size_t start = out->len, j = i + 11;

            for (;;) {
                for (; j < lend && out->len - start < 1000; j++)
                    sbuf_append_clean(out, m[j] == '\t' ? " " : &m[j], 1);
                /* Continuation lines start with white space. */
                j = end + 1;
                if (j >= len || (m[j] != ' ' && m[j] != '\t'))
                    break;
                nl = memchr(m + j, '\n', len - j);
                end = nl ? (size_t)(nl - m) : len;
                lend = end;
                if (lend > j && m[lend - 1] == '\r')
                    lend--;
            }
            /* Trim: drop leading blanks by shifting, trailing by shortening. */
            while (out->len > start && out->data[out->len - 1] == ' ')
                out->len--;
            j = start;
            while (j < out->len && out->data[j] == ' ')
                j++;
            memmove(out->data + start, out->data + j, out->len - j);
            out->len -= j - start;
            if (out->len == start)
                sbuf_append(out, "-", 1);
            return;
        }
        if (nl == NULL)
            break;
        i = end + 1;
    }
    sbuf_append(out, "-", 1);
}

/* store_message - write the message to --maildir as <conn>-<n>.eml via a temporary name */
static int store_message(struct conn *c, unsigned long n)
{
    char *tmp = NULL, *path = NULL;
    const char *p = c->msg.data + c->msg.pos;
    size_t left = sbuf_avail(&c->msg);
    int fd = -1, ok = 0;

    if (asprintf(&tmp, "%s/.%lu-%lu.eml.tmp", cfg.maildir, c->id, n) < 0 ||
        asprintf(&path, "%s/%lu-%lu.eml", cfg.maildir, c->id, n) < 0)
        sink_die("out of memory");
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        while (left > 0) {
            ssize_t w = write(fd, p, left);

            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                break;
            p += w;
            left -= (size_t)w;
        }
        ok = left == 0;
        if (close(fd) < 0)
            ok = 0;
        if (ok && rename(tmp, path) < 0)
            ok = 0;
    }
    if (!ok) {
        fprintf(stderr, "smtpsink: store %s: %s\n", path, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    free(path);
    return ok ? 0 : -1;
}

/* append_params - " NAME=<text>", or " NAME=-" for no parameters; see path_dup() */
static void append_params(sbuf *b, const char *path)
{
    const char *params = path ? path_params(path) : "";

    if (*params == 0) {
        sbuf_append(b, "-", 1);
        return;
    }
    sbuf_append(b, "<", 1);
    sbuf_append_clean(b, params, strlen(params));
    sbuf_append(b, ">", 1);
}

/* log_message - the "message" event of an accepted message */
static void log_message(struct conn *c)
{
    sbuf *b = &line_buf;
    size_t i;

    b->pos = b->len = 0;
    sbuf_appendf(b, "message conn=%lu seq=%lu from=<", c->id, stats.messages);
    if (c->from)
        sbuf_append_clean(b, c->from, strlen(c->from));
    sbuf_append(b, "> rcpts=", 8);
    for (i = 0; i < c->nrcpt; i++) {
        sbuf_append(b, i ? ",<" : "<", i ? 2 : 1);
        sbuf_append_clean(b, c->rcpts[i], strlen(c->rcpts[i]));
        sbuf_append(b, ">", 1);
    }
    sbuf_appendf(b, " size=%zu msgid=", c->msg_size);
    append_msgid(b, c->msg.data + c->msg.pos, sbuf_avail(&c->msg));
    if (c->bdat_chunks > 0)
        sbuf_appendf(b, " bdat_chunks=%lu", c->bdat_chunks);
    sbuf_appendf(b, " reads_in_transaction=%lu", c->msg_end_read - c->tx_read + 1);
    /* After msgid, so the fields other tests match keep their places. */
    sbuf_append(b, " mail_params=", 13);
    append_params(b, c->from);
    sbuf_append(b, " rcpt_params=", 13);
    for (i = 0; i < c->nrcpt; i++) {
        if (i)
            sbuf_append(b, ",", 1);
        append_params(b, c->rcpts[i]);
    }
    if (c->nrcpt == 0)
        sbuf_append(b, "-", 1);
    if (cfg.timestamps) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        sbuf_appendf(b, " t=%lld", (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    }
    sink_log_raw(b->data, b->len);
}

/*
 * smtp_end - the end of a message, cmd CMD_DOT (the final dot) or CMD_BDAT
 * (BDAT LAST): drop, reject or accept (store, log, then 250)
 */
static void smtp_end(struct conn *c, int cmd)
{
    const char *text, *what = cmd == CMD_DOT ? "dot" : "bdat-last";
    int drop;
    char buf[80];

    c->phase = PH_CMD;
    stats.dots++;
    drop = cfg.drop != DROP_NONE && stats.dots % cfg.drop_every == 0 &&
           sink_fault_take(&cfg.drop_limit);
    if (drop && cfg.drop == DROP_BEFORE) {
        sink_log("drop conn=%lu where=before-%s", c->id, what);
        smtp_reset_tx(c);
        conn_abort(c, "drop", 1);
        return;
    }
    if (c->msg_too_big) {
        say(c, cmd, "552 5.3.4 Message size exceeds fixed limit");
        smtp_reset_tx(c);
        return;
    }
    text = reply_override(cmd); /* counted only when it is the answer */
    if (text && reply_code(text) / 100 != 2) {
        say(c, cmd, text);
        smtp_reset_tx(c);
        return;
    }
    if (cfg.maildir && store_message(c, c->msgs + 1) < 0) {
        say(c, cmd, "451 4.3.0 Error: cannot store message");
        smtp_reset_tx(c);
        return;
    }
    stats.messages++;
    c->msgs++;
    log_message(c);
    rate_note();
    if (drop) {
        sink_log("drop conn=%lu where=after-%s", c->id, what);
        smtp_reset_tx(c);
        conn_abort(c, "drop", 1);
        return;
    }
    if (text == NULL) {
        snprintf(buf, sizeof(buf), "250 2.0.0 Ok: queued as S%lu", stats.messages);
        text = buf;
    }
    say(c, cmd, text);
    smtp_reset_tx(c);
}

/* msg_append - add un-stuffed DATA bytes, enforcing the size limit */
static void msg_append(struct conn *c, const char *p, size_t n)
{
    unsigned long long limit = cfg.size_limit ? cfg.size_limit : SINK_HARD_MAX_MSG;

    c->msg_size += n;
    if (c->msg_too_big)
        return;
    if (c->msg_size > limit) {
        /* Keep counting to the dot, but stop holding the bytes. */
        c->msg_too_big = 1;
        sbuf_free(&c->msg);
        return;
    }
    sbuf_append(&c->msg, p, n);
}

/*
 * smtp_data - move DATA input into the message, removing dot-stuffing.
 * Returns 1 after the final dot, 0 when more input is needed or a stall
 * began. Bytes between "\n." occurrences are copied in bulk.
 */
static int smtp_data(struct conn *c)
{
    const char *buf = c->in.data + c->in.pos;
    size_t len = sbuf_avail(&c->in), pos = 0;

    while (pos < len) {
        const char *q;

        if (c->data_bol && buf[pos] == '.') {
            size_t rem = len - pos, tlen = 0;

            if (rem >= 2 && buf[pos + 1] == '\n')
                tlen = 2;
            else if (rem >= 3 && buf[pos + 1] == '\r' && buf[pos + 2] == '\n')
                tlen = 3;
            else if (rem == 1 || (rem == 2 && buf[pos + 1] == '\r'))
                break; /* might still become the final dot */
            if (tlen) {
                size_t mark = sbuf_avail(&c->out);

                sbuf_consume(&c->in, pos);
                if (sink_stall_starts(c, CMD_DOT))
                    return 0;
                c->stall_done = 0;
                c->msg_end_read = conn_read_index(c, tlen - 1);
                sbuf_consume(&c->in, tlen);
                smtp_end(c, CMD_DOT);
                if (c->state == CS_SMTP)
                    bad_reply(c, CMD_DOT, mark);
                return 1;
            }
            pos++; /* drop the stuffing dot */
            c->data_bol = 0;
            continue;
        }
        q = memmem(buf + pos, len - pos, "\n.", 2);
        if (q) {
            size_t end = (size_t)(q - buf) + 1;

            msg_append(c, buf + pos, end - pos);
            pos = end;
            c->data_bol = 1;
        } else {
            msg_append(c, buf + pos, len - pos);
            c->data_bol = buf[len - 1] == '\n';
            pos = len;
        }
    }
    sbuf_consume(&c->in, pos);
    return 0;
}

/*
 * smtp_bdat - take the current BDAT chunk's octets from the input, raw;
 * returns 1 once the chunk is complete and answered, 0 when more is needed
 */
static int smtp_bdat(struct conn *c)
{
    size_t take = sbuf_avail(&c->in), mark;
    const char *text;
    char buf[80];

    if (take > c->bdat_left)
        take = (size_t)c->bdat_left;
    if (take > 0) {
        c->msg_end_read = conn_read_index(c, take - 1);
        if (c->bdat_error == NULL)
            msg_append(c, c->in.data + c->in.pos, take);
        sbuf_consume(&c->in, take);
        c->bdat_left -= take;
        c->last_activity = sink_now;
    }
    if (c->bdat_left > 0)
        return 0;
    mark = sbuf_avail(&c->out);
    c->phase = PH_CMD;
    if (c->bdat_error) {
        say(c, CMD_BDAT, c->bdat_error);
        /* RFC 3030: content refused ends the transaction; what follows gets 503. */
        if (reply_code(c->bdat_error) == 552)
            smtp_reset_tx(c);
    } else if (c->bdat_last) {
        smtp_end(c, CMD_BDAT);
    } else if ((text = reply_override(CMD_BDAT)) != NULL) {
        say(c, CMD_BDAT, text);
        if (reply_code(text) / 100 != 2)
            smtp_reset_tx(c);
    } else {
        snprintf(buf, sizeof(buf), "250 2.0.0 Ok: %llu octets", c->bdat_size);
        say(c, CMD_BDAT, buf);
    }
    if (c->state == CS_SMTP)
        bad_reply(c, CMD_BDAT, mark);
    return 1;
}

/* smtp_line - take the next complete command line from the input; 0 when none/stalled */
static int smtp_line(struct conn *c)
{
    const char *buf = c->in.data + c->in.pos;
    size_t avail = sbuf_avail(&c->in), len, i, mark;
    const char *nl;
    int cmd;

    if (avail == 0)
        return 0;
    nl = memchr(buf, '\n', avail);
    if (c->discard_line) {
        /* Skipping the rest of an overlong line already answered with 500. */
        if (nl == NULL) {
            sbuf_consume(&c->in, avail);
            return 0;
        }
        sbuf_consume(&c->in, (size_t)(nl - buf) + 1);
        c->discard_line = 0;
        return 1;
    }
    if (nl == NULL) {
        if (avail > SINK_MAX_LINE + 1) {
            smtp_reply(c, "-", "500 5.5.2 Error: line too long");
            sbuf_consume(&c->in, avail);
            c->discard_line = 1;
        }
        return 0;
    }
    len = (size_t)(nl - buf);
    if (len > 0 && buf[len - 1] == '\r')
        len--;
    if (len > SINK_MAX_LINE) {
        sbuf_consume(&c->in, (size_t)(nl - buf) + 1);
        smtp_reply(c, "-", "500 5.5.2 Error: line too long");
        return 1;
    }
    cmd = c->phase == PH_CMD ? verb_cmd(buf, len) : CMD_AUTH;
    if (sink_stall_starts(c, cmd))
        return 0;
    c->stall_done = 0;
    memcpy(c->line, buf, len);
    c->line[len] = 0;
    for (i = 0; i < len; i++)
        if (c->line[i] == 0)
            c->line[i] = ' ';
    c->line_read = conn_read_index(c, 0);
    c->line_end_read = conn_read_index(c, (size_t)(nl - buf));
    sbuf_consume(&c->in, (size_t)(nl - buf) + 1);
    c->last_activity = sink_now;
    mark = sbuf_avail(&c->out);
    smtp_command(c, c->line, len);
    bad_reply(c, cmd, mark);
    return 1;
}

/*
 * smtp_process - handle all buffered input that can be handled now; each
 * step's replies are handed to conn_hold() for --delay
 */
void smtp_process(struct conn *c)
{
    while (c->state == CS_SMTP && !c->stall_until && !c->starttls_pending) {
        size_t mark = sbuf_avail(&c->out);
        int more;

        if (c->greet_pending) {
            smtp_greet(c);
            conn_hold(c, mark);
            continue;
        }
        /* A peer that does not read its replies gets no more of them. */
        if (conn_backlog(c) > SINK_OUT_HIGH)
            break;
        if (c->phase == PH_DATA)
            more = smtp_data(c);
        else if (c->phase == PH_BDAT)
            more = smtp_bdat(c);
        else
            more = smtp_line(c);
        conn_hold(c, mark);
        if (!more)
            break;
    }
}
