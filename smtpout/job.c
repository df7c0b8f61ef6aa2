/*
 * job - one delivery request from qmgr and its per-recipient result
 *
 * job_create()
 *	decode a type=deliver record strictly (doc/internals.md): every
 *	attribute present once, numbers in range, a valid queue id, a relay
 *	name without spaces, addresses that cannot smuggle SMTP syntax (no
 *	control characters, no angle brackets, at most ADDR_MAX_PATH bytes),
 *	and the optional DSN requests (RFC 3461): ret and envid once,
 *	notify and orcpt at most once per recipient of the job.
 *	Returns NULL with the reason in `why` when the record is bad.
 * job_free()
 *	release a job and everything it holds.
 * job_set_body()
 *	give the job its content (the job takes the buffer): a missing final
 *	CRLF is added, and the 8-bit flag that decides BODY=8BITMIME is set.
 * job_set()
 *	decide one recipient, unless it is decided already: the first
 *	outcome of a transaction is the one that counts. The text is kept
 *	to JOB_TEXT_MAX bytes ("..." marks a cut): a relay may answer with
 *	a reply of megabytes, and the text goes to the log, the queue, the
 *	result record and the sender's notice.
 * job_fail_pending()
 *	decide every recipient that is still pending (a MAIL FROM, DATA or
 *	connection failure applies to all of them).
 * job_pending()
 *	how many recipients are undecided.
 * job_log()
 *	one Postfix-style delivery line per recipient (msg_info):
 *	"QID: to=<a>, relay=R, conn_use=N, delay=T, delays=a/b/c/d,
 *	dsn=X.Y.Z, status=S (text)".
 * job_result()
 *	the type=result record for qmgr. It always fits qmgr's limit
 *	(IPC_RECORD_MAX): with many recipients each text is cut further, so
 *	that a long reply repeated for thousands of recipients cannot make
 *	qmgr refuse the result and run the delivery again. It carries the
 *	transaction's time (xfer_ms, delays d of the log) for qmgr's
 *	histogram.
 * job_status_name()
 *	"sent", "deferred", "bounced" (or "pending").
 * job_xtext()
 *	append text in RFC 3461 xtext ("+", "=" and bytes outside 33..126
 *	as "+XX").
 * job_mail_dsn()
 *	the DSN parameters of MAIL FROM (" RET=... ENVID=..."), for a relay
 *	that offered DSN; nothing when the sender asked for none.
 * job_rcpt_dsn()
 *	the DSN parameters of one RCPT TO (" NOTIFY=... ORCPT=...").
 *
 * Ownership: the job owns its strings, recipients and body. Allocation
 * failure is fatal (mymalloc); nothing else here exits.
 */
#include "config.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "iostuff.h"
#include "maildrop.h"
#include "msg.h"
#include "mymalloc.h"
#include "smtpout.h"

#define JOB_RELAY_MAX 255     /* a DNS name or an address literal */
#define JOB_ENVID_MAX 100     /* RFC 3461 section 4.4 */
#define JOB_ORCPT_TYPE_MAX 32 /* an addr-type atom: "rfc822", "utf-8", ... */
#define JOB_ORCPT_MAX 500     /* RFC 3461 section 4.2: the encoded value */
#define JOB_TEXT_MAX 1000     /* bytes of a recipient's reply or reason that are kept */
#define JOB_RESULT_SLACK 4096 /* a result record's bytes besides its rcpt attributes */
#define JOB_RCPT_FIXED 48     /* one rcpt attribute's bytes besides its text */

_Static_assert(((IPC_RECORD_MAX - JOB_RESULT_SLACK) / MAILDROP_RCPT_MAX - JOB_RCPT_FIXED) / 3 >=
                   100,
               "a result record with MAILDROP_RCPT_MAX recipients leaves room for their texts");

/* job_check_addr - refuse addresses that would break the SMTP command line */
static int job_check_addr(const char *what, const char *addr, int allow_empty, VSTR *why)
{
    size_t len = strlen(addr);

    if (len == 0 && !allow_empty) {
        vstr_sprintf(why, "empty %s address", what);
        return -1;
    }
    if (len > ADDR_MAX_PATH) {
        vstr_sprintf(why, "%s address longer than %d bytes", what, ADDR_MAX_PATH);
        return -1;
    }
    for (const unsigned char *cp = (const unsigned char *)addr; *cp; cp++) {
        if (*cp < 0x20 || *cp == 0x7f || *cp == '<' || *cp == '>') {
            vstr_sprintf(why, "%s address with a control character or angle bracket", what);
            return -1;
        }
    }
    return 0;
}

/* job_check_relay - a host name or address literal, nothing that needs quoting */
static int job_check_relay(const char *relay, VSTR *why)
{
    size_t len = strlen(relay);

    if (len == 0 || len > JOB_RELAY_MAX) {
        vstr_sprintf(why, "relay name empty or longer than %d bytes", JOB_RELAY_MAX);
        return -1;
    }
    for (const char *cp = relay; *cp; cp++) {
        if (!((*cp >= 'a' && *cp <= 'z') || (*cp >= 'A' && *cp <= 'Z') ||
              (*cp >= '0' && *cp <= '9') || *cp == '.' || *cp == '-' || *cp == ':' || *cp == '_')) {
            vstr_sprintf(why, "relay name with a bad character: \"%.40s\"", relay);
            return -1;
        }
    }
    return 0;
}

/* job_add_rcpt - decode one "INDEX ADDRESS" attribute */
static int job_add_rcpt(JOB *job, const char *value, VSTR *why)
{
    char *end;
    unsigned long index;
    JOB_RCPT *rcpt;

    if (*value < '0' || *value > '9') {
        vstr_sprintf(why, "rcpt \"%.40s\": no index", value);
        return -1;
    }
    index = strtoul(value, &end, 10);
    if (*end != ' ' || index >= MAILDROP_RCPT_MAX) {
        vstr_sprintf(why, "rcpt \"%.40s\": bad index", value);
        return -1;
    }
    if (job_check_addr("recipient", end + 1, 0, why) < 0)
        return -1;
    for (size_t i = 0; i < job->nrcpt; i++) {
        if (job->rcpts[i].index == index) {
            vstr_sprintf(why, "rcpt index %lu repeated", index);
            return -1;
        }
    }
    rcpt = job->rcpts + job->nrcpt++;
    rcpt->index = (unsigned)index;
    rcpt->addr = mystrdup(end + 1);
    rcpt->accepted = 0;
    rcpt->status = JOB_PENDING;
    rcpt->dsn[0] = '\0';
    rcpt->text = vstr_alloc(64);
    if (addr_needs_utf8(rcpt->addr))
        job->utf8 = 1;
    return 0;
}

/* job_dsn_rcpt - the recipient named by a notify/orcpt "INDEX VALUE"; NULL with why */
static JOB_RCPT *job_dsn_rcpt(JOB *job, const char *name, const char *value, const char **rest,
                              VSTR *why)
{
    char *end;
    unsigned long index;

    if (*value < '0' || *value > '9') {
        vstr_sprintf(why, "%s \"%.40s\": no index", name, value);
        return NULL;
    }
    index = strtoul(value, &end, 10);
    if (*end != ' ' || end[1] == '\0') {
        vstr_sprintf(why, "%s \"%.40s\": bad index or no value", name, value);
        return NULL;
    }
    *rest = end + 1;
    for (size_t i = 0; i < job->nrcpt; i++)
        if (job->rcpts[i].index == index)
            return job->rcpts + i;
    /* DSN requests travel with the recipients they belong to. */
    vstr_sprintf(why, "%s for index %lu, which is not a recipient of the job", name, index);
    return NULL;
}

/* job_add_notify - decode "INDEX never" or "INDEX success,failure,delay" (any subset) */
static int job_add_notify(JOB *job, const char *value, VSTR *why)
{
    static const struct {
        const char *word;
        unsigned bit;
    } words[] = {{"never", JOB_NOTIFY_NEVER},
                 {"success", JOB_NOTIFY_SUCCESS},
                 {"failure", JOB_NOTIFY_FAILURE},
                 {"delay", JOB_NOTIFY_DELAY}};
    const char *cp;
    JOB_RCPT *rcpt;
    unsigned mask = 0;

    if ((rcpt = job_dsn_rcpt(job, "notify", value, &cp, why)) == NULL)
        return -1;
    if (rcpt->notify != 0) {
        vstr_sprintf(why, "notify for index %u repeated", rcpt->index);
        return -1;
    }
    for (;;) {
        size_t len = strcspn(cp, ","), i;

        for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
            if (len == strlen(words[i].word) && strncasecmp(cp, words[i].word, len) == 0)
                break;
        /* RFC 3461 section 4.1: NEVER stands alone; no keyword twice. */
        if (i == sizeof(words) / sizeof(words[0]) || (mask & words[i].bit) ||
            (mask != 0 && (words[i].bit == JOB_NOTIFY_NEVER || (mask & JOB_NOTIFY_NEVER)))) {
            vstr_sprintf(why, "notify \"%.60s\": bad keyword list", value);
            return -1;
        }
        mask |= words[i].bit;
        cp += len;
        if (*cp == '\0')
            break;
        cp++;
    }
    rcpt->notify = mask;
    return 0;
}

/* job_add_orcpt - decode "INDEX TYPE;ADDRESS" (the address not yet in xtext) */
static int job_add_orcpt(JOB *job, const char *value, VSTR *why)
{
    const char *cp;
    JOB_RCPT *rcpt;
    size_t type_len;

    if ((rcpt = job_dsn_rcpt(job, "orcpt", value, &cp, why)) == NULL)
        return -1;
    if (rcpt->orcpt != NULL) {
        vstr_sprintf(why, "orcpt for index %u repeated", rcpt->index);
        return -1;
    }
    type_len = strcspn(cp, ";");
    if (type_len == 0 || type_len > JOB_ORCPT_TYPE_MAX || cp[type_len] != ';' ||
        cp[type_len + 1] == '\0') {
        vstr_sprintf(why, "orcpt \"%.60s\": not TYPE;ADDRESS", value);
        return -1;
    }
    for (size_t i = 0; i < type_len; i++) {
        if (!isalnum((unsigned char)cp[i]) && cp[i] != '-') {
            vstr_sprintf(why, "orcpt \"%.60s\": bad address type", value);
            return -1;
        }
    }
    /* The same rules as the recipient itself, so the value cannot grow without bound. */
    if (job_check_addr("orcpt", cp + type_len + 1, 0, why) < 0)
        return -1;
    rcpt->orcpt = mystrdup(cp);
    return 0;
}

/* job_set_envid - decode the ENVID: printable ASCII, 1 to JOB_ENVID_MAX characters */
static int job_set_envid(JOB *job, const char *value, VSTR *why)
{
    size_t len = strlen(value);

    if (len == 0 || len > JOB_ENVID_MAX) {
        vstr_sprintf(why, "envid empty or longer than %d characters", JOB_ENVID_MAX);
        return -1;
    }
    for (const unsigned char *cp = (const unsigned char *)value; *cp; cp++) {
        if (*cp < 0x20 || *cp > 0x7e) {
            vstr_sprintf(why, "envid with a character that is not printable ASCII");
            return -1;
        }
    }
    job->envid = mystrdup(value);
    return 0;
}

/* job_create - decode a type=deliver record */
JOB *job_create(const IPC_REC *rec, VSTR *why)
{
    JOB *job;
    long long id, port, size, arrival, active;
    size_t nrcpt = 0;
    const char *qid, *relay, *sender, *ret, *envid;
    int ret_code = JOB_RET_NONE;

    if (ipc_rec_check(rec, "id,queue_id,relay,port,sender,size,arrival_ms,active_ms",
                      "rcpt*,ret,envid,notify*,orcpt*", why) < 0 ||
        ipc_rec_get_long(rec, "id", 0, LLONG_MAX, &id, why) < 0 ||
        ipc_rec_get_long(rec, "port", 1, 65535, &port, why) < 0 ||
        ipc_rec_get_long(rec, "size", 0, LLONG_MAX, &size, why) < 0 ||
        ipc_rec_get_long(rec, "arrival_ms", 0, LLONG_MAX, &arrival, why) < 0 ||
        ipc_rec_get_long(rec, "active_ms", 0, LLONG_MAX, &active, why) < 0)
        return NULL;
    qid = ipc_rec_get(rec, "queue_id");
    relay = ipc_rec_get(rec, "relay");
    sender = ipc_rec_get(rec, "sender");
    if (!qid_valid(qid)) {
        vstr_sprintf(why, "bad queue_id \"%.40s\"", qid);
        return NULL;
    }
    if (job_check_relay(relay, why) < 0 || job_check_addr("sender", sender, 1, why) < 0)
        return NULL;
    if ((ret = ipc_rec_get(rec, "ret")) != NULL) {
        if (strcasecmp(ret, "full") == 0) {
            ret_code = JOB_RET_FULL;
        } else if (strcasecmp(ret, "hdrs") == 0) {
            ret_code = JOB_RET_HDRS;
        } else {
            vstr_sprintf(why, "bad ret \"%.40s\" (full or hdrs)", ret);
            return NULL;
        }
    }
    for (size_t i = 0; i < rec->count; i++)
        if (strcmp(rec->attrs[i].name, "rcpt") == 0)
            nrcpt++;
    if (nrcpt == 0 || nrcpt > MAILDROP_RCPT_MAX) {
        vstr_sprintf(why, "job with %zu recipients (1 to %d allowed)", nrcpt, MAILDROP_RCPT_MAX);
        return NULL;
    }

    job = mycalloc(1, sizeof(*job));
    job->id = id;
    snprintf(job->queue_id, sizeof(job->queue_id), "%s", qid);
    job->relay = mystrdup(relay);
    job->port = (unsigned)port;
    job->sender = mystrdup(sender);
    job->size = size;
    job->ret = ret_code;
    job->arrival_ms = arrival;
    job->active_ms = active;
    job->received_ms = wall_ms();
    job->rcpts = mycalloc(nrcpt, sizeof(*job->rcpts));
    job->utf8 = addr_needs_utf8(sender);
    job->relay_text = vstr_alloc(64);
    vstr_strcpy(job->relay_text, "none");
    for (size_t i = 0; i < rec->count; i++) {
        if (strcmp(rec->attrs[i].name, "rcpt") == 0 &&
            job_add_rcpt(job, rec->attrs[i].value, why) < 0) {
            job_free(job);
            return NULL;
        }
    }
    /* After the recipients, so a DSN request may name any of them. */
    for (size_t i = 0; i < rec->count; i++) {
        const char *name = rec->attrs[i].name, *value = rec->attrs[i].value;

        if ((strcmp(name, "notify") == 0 && job_add_notify(job, value, why) < 0) ||
            (strcmp(name, "orcpt") == 0 && job_add_orcpt(job, value, why) < 0)) {
            job_free(job);
            return NULL;
        }
    }
    if ((envid = ipc_rec_get(rec, "envid")) != NULL && job_set_envid(job, envid, why) < 0) {
        job_free(job);
        return NULL;
    }
    return job;
}

/* job_free - destroy a job */
void job_free(JOB *job)
{
    if (job == NULL)
        return;
    for (size_t i = 0; i < job->nrcpt; i++) {
        myfree(job->rcpts[i].addr);
        if (job->rcpts[i].orcpt)
            myfree(job->rcpts[i].orcpt);
        vstr_free(job->rcpts[i].text);
    }
    myfree(job->rcpts);
    myfree(job->relay);
    myfree(job->sender);
    if (job->envid)
        myfree(job->envid);
    if (job->body)
        vstr_free(job->body);
    vstr_free(job->relay_text);
    myfree(job);
}

/* job_set_body - attach the content read from the queue */
void job_set_body(JOB *job, VSTR *body)
{
    size_t len = vstr_len(body);
    const char *data = vstr_str(body);

    /* SMTP content is a sequence of CRLF-terminated lines; the final dot needs one before it. */
    if (len > 0 && data[len - 1] == '\r')
        vstr_addch(body, '\n');
    else if (len > 0 && data[len - 1] != '\n')
        vstr_strcat(body, "\r\n");
    job->eightbit = 0;
    for (size_t i = 0; i < vstr_len(body); i++) {
        if ((unsigned char)vstr_str(body)[i] >= 0x80) {
            job->eightbit = 1;
            break;
        }
    }
    if (job->body)
        vstr_free(job->body);
    job->body = body;
}

/* job_text_cut - text, or its first max - 3 bytes and "..." when it is longer */
static void job_text_cut(VSTR *out, const char *text, size_t len, size_t max)
{
    if (len <= max) {
        vstr_append(out, text, len);
        return;
    }
    vstr_append(out, text, max - 3);
    vstr_strcat(out, "...");
}

/* job_set - decide one recipient unless already decided */
void job_set(JOB *job, size_t i, int status, const char *dsn, const char *text)
{
    JOB_RCPT *rcpt;

    if (i >= job->nrcpt)
        msg_panic("job_set: recipient %zu of %zu", i, job->nrcpt);
    rcpt = job->rcpts + i;
    if (rcpt->status != JOB_PENDING)
        return;
    rcpt->status = status;
    snprintf(rcpt->dsn, sizeof(rcpt->dsn), "%s", dsn);
    vstr_reset(rcpt->text);
    job_text_cut(rcpt->text, text, strlen(text), JOB_TEXT_MAX);
}

/* job_fail_pending - decide every undecided recipient the same way */
void job_fail_pending(JOB *job, int status, const char *dsn, const char *text)
{
    for (size_t i = 0; i < job->nrcpt; i++)
        job_set(job, i, status, dsn, text);
}

/* job_pending - number of undecided recipients */
size_t job_pending(const JOB *job)
{
    size_t count = 0;

    for (size_t i = 0; i < job->nrcpt; i++)
        if (job->rcpts[i].status == JOB_PENDING)
            count++;
    return count;
}

/* job_status_name - the word for a recipient status */
const char *job_status_name(int status)
{
    switch (status) {
    case JOB_SENT:
        return "sent";
    case JOB_DEFERRED:
        return "deferred";
    case JOB_BOUNCED:
        return "bounced";
    default:
        return "pending";
    }
}

/*
 * job_delay - Postfix's rendering of a delay: whole seconds from 10 s up,
 * otherwise two significant digits at 10 ms resolution, trailing zeros dropped.
 */
static void job_delay(VSTR *buf, long long ms)
{
    char text[32];
    size_t len;

    if (ms < 0)
        ms = 0;
    if (ms >= 10000) {
        vstr_sprintf_append(buf, "%lld", ms / 1000);
        return;
    }
    if (ms >= 1000)
        snprintf(text, sizeof(text), "%lld.%lld", ms / 1000, (ms % 1000) / 100);
    else
        snprintf(text, sizeof(text), "0.%02lld", ms / 10);
    len = strlen(text);
    while (len > 0 && text[len - 1] == '0')
        text[--len] = '\0';
    if (len > 0 && text[len - 1] == '.')
        text[--len] = '\0';
    vstr_strcat(buf, len > 0 ? text : "0");
}

/* job_xfer_ms - the transaction's time until now (delays d) */
static long long job_xfer_ms(const JOB *job, long long now)
{
    return now - (job->xfer_start ? job->xfer_start : job->received_ms + job->setup_ms);
}

/* job_log - the delivery log line of every recipient */
void job_log(const JOB *job)
{
    VSTR *buf = vstr_alloc(256);
    long long now = wall_ms();

    for (size_t i = 0; i < job->nrcpt; i++) {
        const JOB_RCPT *rcpt = job->rcpts + i;

        vstr_sprintf(buf, "%s: to=<%s>, relay=%s", job->queue_id, rcpt->addr,
                     vstr_str(job->relay_text));
        if (job->conn_use > 0)
            vstr_sprintf_append(buf, ", conn_use=%u", job->conn_use);
        vstr_strcat(buf, ", delay=");
        job_delay(buf, now - job->arrival_ms);
        vstr_strcat(buf, ", delays=");
        job_delay(buf, job->active_ms - job->arrival_ms);
        vstr_strcat(buf, "/");
        job_delay(buf, job->received_ms - job->active_ms);
        vstr_strcat(buf, "/");
        job_delay(buf, job->setup_ms);
        vstr_strcat(buf, "/");
        job_delay(buf, job_xfer_ms(job, now));
        vstr_sprintf_append(buf, ", dsn=%s, status=%s (%s)", rcpt->dsn[0] ? rcpt->dsn : "4.0.0",
                            job_status_name(rcpt->status), vstr_str(rcpt->text));
        msg_info("%s", vstr_str(buf));
    }
    vstr_free(buf);
}

/* job_result - the type=result record for qmgr */
IPC_REC *job_result(const JOB *job, int conn_open)
{
    IPC_REC *rec = ipc_rec_create("result");
    /* Each text byte may be encoded as three ("%25"); job_create() bounds nrcpt. */
    size_t budget = ((IPC_RECORD_MAX - JOB_RESULT_SLACK) / job->nrcpt - JOB_RCPT_FIXED) / 3;
    VSTR *text = vstr_alloc(128);
    long long xfer_ms;

    ipc_rec_add_long(rec, "id", job->id);
    ipc_rec_add(rec, "queue_id", job->queue_id);
    ipc_rec_add(rec, "relay", vstr_str(job->relay_text));
    ipc_rec_add(rec, "conn", conn_open ? "open" : "closed");
    if (job->upstream_dsn)
        ipc_rec_add(rec, "upstream_dsn", "1");
    /* As logged in delays=a/b/c/d: qmgr's transaction-time histogram. */
    xfer_ms = job_xfer_ms(job, wall_ms());
    ipc_rec_add_long(rec, "xfer_ms", xfer_ms < 0 ? 0 : xfer_ms);
    for (size_t i = 0; i < job->nrcpt; i++) {
        const JOB_RCPT *rcpt = job->rcpts + i;

        if (rcpt->status == JOB_PENDING)
            msg_panic("job_result: %s: recipient %u undecided", job->queue_id, rcpt->index);
        vstr_reset(text);
        job_text_cut(text, vstr_str(rcpt->text), vstr_len(rcpt->text), budget);
        ipc_rec_addf(rec, "rcpt", "%u %s %s %s", rcpt->index, job_status_name(rcpt->status),
                     rcpt->dsn, vstr_str(text));
    }
    vstr_free(text);
    return rec;
}

/* job_xtext - append RFC 3461 xtext (section 4): "+", "=" and non-graphic bytes as +XX */
void job_xtext(VSTR *out, const char *text)
{
    for (const unsigned char *cp = (const unsigned char *)text; *cp; cp++) {
        if (*cp < 33 || *cp > 126 || *cp == '+' || *cp == '=')
            vstr_sprintf_append(out, "+%02X", *cp);
        else
            vstr_addch(out, (char)*cp);
    }
}

/* job_mail_dsn - append " RET=..." and " ENVID=..." for MAIL FROM */
void job_mail_dsn(const JOB *job, VSTR *out)
{
    /* RFC 3461 section 5.2.1: pass RET on only when the sender chose it. */
    if (job->ret == JOB_RET_FULL)
        vstr_strcat(out, " RET=FULL");
    else if (job->ret == JOB_RET_HDRS)
        vstr_strcat(out, " RET=HDRS");
    if (job->envid != NULL) {
        vstr_strcat(out, " ENVID=");
        job_xtext(out, job->envid);
    }
}

/* job_rcpt_dsn - append " NOTIFY=..." and " ORCPT=..." for one RCPT TO */
void job_rcpt_dsn(const JOB *job, size_t i, VSTR *out)
{
    const JOB_RCPT *rcpt;

    if (i >= job->nrcpt)
        msg_panic("job_rcpt_dsn: recipient %zu of %zu", i, job->nrcpt);
    rcpt = job->rcpts + i;
    if (rcpt->notify & JOB_NOTIFY_NEVER) {
        vstr_strcat(out, " NOTIFY=NEVER");
    } else if (rcpt->notify != 0) {
        const char *sep = " NOTIFY=";

        if (rcpt->notify & JOB_NOTIFY_SUCCESS) {
            vstr_sprintf_append(out, "%sSUCCESS", sep);
            sep = ",";
        }
        if (rcpt->notify & JOB_NOTIFY_FAILURE) {
            vstr_sprintf_append(out, "%sFAILURE", sep);
            sep = ",";
        }
        if (rcpt->notify & JOB_NOTIFY_DELAY)
            vstr_sprintf_append(out, "%sDELAY", sep);
    }
    if (rcpt->orcpt != NULL) {
        size_t type_len = strcspn(rcpt->orcpt, ";");
        size_t start = vstr_len(out);

        vstr_sprintf_append(out, " ORCPT=%.*s;", (int)type_len, rcpt->orcpt);
        job_xtext(out, rcpt->orcpt + type_len + 1);
        /* An over-long ORCPT would be refused; the relay can do without it. */
        if (vstr_len(out) - start - 7 > JOB_ORCPT_MAX) {
            msg_warn("%s: ORCPT of recipient %u longer than %d characters encoded: not sent",
                     job->queue_id, rcpt->index, JOB_ORCPT_MAX);
            vstr_truncate(out, start);
        }
    }
}
