/*
 * job - one delivery request from qmgr and its per-recipient result
 *
 * job_create()
 *	decode a type=deliver record strictly (doc/internals.md): every
 *	attribute present once, numbers in range, a valid queue id, a relay
 *	name without spaces, addresses that cannot smuggle SMTP syntax (no
 *	control characters, no angle brackets, at most ADDR_MAX_PATH bytes).
 *	Returns NULL with the reason in `why` when the record is bad.
 * job_free()
 *	release a job and everything it holds.
 * job_set_body()
 *	give the job its content (the job takes the buffer): a missing final
 *	CRLF is added, and the 8-bit flag that decides BODY=8BITMIME is set.
 * job_set()
 *	decide one recipient, unless it is decided already: the first
 *	outcome of a transaction is the one that counts.
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
 *	the type=result record for qmgr.
 * job_status_name()
 *	"sent", "deferred", "bounced" (or "pending").
 *
 * Ownership: the job owns its strings, recipients and body. Allocation
 * failure is fatal (mymalloc); nothing else here exits.
 */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "iostuff.h"
#include "maildrop.h"
#include "msg.h"
#include "mymalloc.h"
#include "smtpout.h"

#define JOB_RELAY_MAX 255 /* a DNS name or an address literal */

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

/* job_create - decode a type=deliver record */
JOB *job_create(const IPC_REC *rec, VSTR *why)
{
    JOB *job;
    long long id, port, size, arrival, active;
    size_t nrcpt = 0;
    const char *qid, *relay, *sender;

    if (ipc_rec_check(rec, "id,queue_id,relay,port,sender,size,arrival_ms,active_ms", "rcpt*",
                      why) < 0 ||
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
    return job;
}

/* job_free - destroy a job */
void job_free(JOB *job)
{
    if (job == NULL)
        return;
    for (size_t i = 0; i < job->nrcpt; i++) {
        myfree(job->rcpts[i].addr);
        vstr_free(job->rcpts[i].text);
    }
    myfree(job->rcpts);
    myfree(job->relay);
    myfree(job->sender);
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
    vstr_strcpy(rcpt->text, text);
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

/* job_log - the delivery log line of every recipient */
void job_log(const JOB *job)
{
    VSTR *buf = vstr_alloc(256);
    long long now = wall_ms();
    long long xfer_start = job->xfer_start ? job->xfer_start : job->received_ms + job->setup_ms;

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
        job_delay(buf, now - xfer_start);
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

    ipc_rec_add_long(rec, "id", job->id);
    ipc_rec_add(rec, "queue_id", job->queue_id);
    ipc_rec_add(rec, "relay", vstr_str(job->relay_text));
    ipc_rec_add(rec, "conn", conn_open ? "open" : "closed");
    for (size_t i = 0; i < job->nrcpt; i++) {
        const JOB_RCPT *rcpt = job->rcpts + i;

        if (rcpt->status == JOB_PENDING)
            msg_panic("job_result: %s: recipient %u undecided", job->queue_id, rcpt->index);
        ipc_rec_addf(rec, "rcpt", "%u %s %s %s", rcpt->index, job_status_name(rcpt->status),
                     rcpt->dsn, vstr_str(rcpt->text));
    }
    return rec;
}
