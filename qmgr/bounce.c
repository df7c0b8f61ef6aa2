/*
 * bounce - delivery status notifications to the sender
 *
 * bounce_notify()
 *	queue an RFC 3464 notice (common/mail/dsn.c) about some recipients
 *	of a message: a failure notice for recipients bounced or expired, a
 *	delay notice for recipients still being retried. The notice is a new
 *	message in the same write transaction as the state it reports (so it
 *	exists exactly when that state is committed), with the null sender,
 *	addressed to the original sender, due at once. A message with the
 *	null sender gets no notice: a notice about a notice is logged and
 *	dropped, never sent, so two mail systems cannot bounce mail back and
 *	forth. Returns 1 when a notice was queued. What it did is logged
 *	("QUEUEID: sender delay notification: NOTICE_ID") once the
 *	transaction has committed: it goes into message->commit_log, and
 *	the notice into message->notices[kind], which message.c adds to
 *	qmgr's counters after that commit only.
 * bounce_wants()
 *	whether a recipient's DSN NOTIFY asks for a notice of a kind
 *	(empty NOTIFY means FAILURE,DELAY, as RFC 3461 lets an MTA choose).
 *
 * A failure to read the original content or to store the notice leaves
 * the transaction's sticky error set; the caller's commit fails and the
 * whole pass is retried.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "dsn.h"
#include "iostuff.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "qmgr.h"

/* bounce_wants - does NOTIFY ask for this kind of notice */
int bounce_wants(const QRCPT *rcpt, DSN_KIND kind)
{
    const char *word = kind == DSN_FAILED ? "FAILURE" : kind == DSN_DELAYED ? "DELAY" : "SUCCESS";

    if (*rcpt->notify == '\0')
        return kind != DSN_RELAYED;
    return strcasestr(rcpt->notify, word) != NULL;
}

/* bounce_notify - queue a notice about the flagged recipients */
int bounce_notify(QSTORE_TXN *txn, QMGR_MESSAGE *message, DSN_KIND kind,
                  const unsigned char *include, int expired)
{
    static const char *const what[] = {"non-delivery", "delay", "success"};
    QMSG notice;
    QRCPT to = {0};
    DSN_INFO info = {0};
    DSN_RCPT *rcpts;
    VSTR *content, *text, *boundary;
    size_t count = 0;

    if (*message->env.sender == '\0') {
        vstr_sprintf_append(message->commit_log, "%s notification to the null sender: not sent\n",
                            what[kind]);
        return 0;
    }
    rcpts = mycalloc(message->nrcpt ? message->nrcpt : 1, sizeof(*rcpts));
    for (size_t i = 0; i < message->nrcpt; i++) {
        const QRCPT *rcpt = &message->rcpts[i];

        if (!include[i])
            continue;
        rcpts[count].addr = rcpt->addr;
        rcpts[count].orcpt = rcpt->orcpt;
        rcpts[count].status = *rcpt->dsn ? rcpt->dsn : kind == DSN_DELAYED ? "4.0.0" : "5.0.0";
        rcpts[count].reason = rcpt->reply;
        rcpts[count].last_attempt = rcpt->last_attempt;
        count++;
    }
    if (count == 0) {
        myfree(rcpts);
        return 0;
    }
    content = vstr_alloc(4096);
    if (qstore_body_get(txn, message->env.qid, content) < 0) {
        msg_warn("%s: cannot read the message for a %s notice: %s", message->env.qid, what[kind],
                 qstore_txn_reason(txn));
        vstr_free(content);
        myfree(rcpts);
        return 0;
    }

    qmsg_init(&notice);
    notice.sender = "";
    notice.envid = "";
    notice.ret = "";
    notice.nrcpt = 1;
    notice.arrival_ms = wall_ms();
    do {
        qid_create(notice.qid);
    } while (qstore_message_put(txn, &notice, 1) == QSTORE_EXISTS);

    info.kind = kind;
    info.hostname = var_str(myhostname);
    info.queue_id = message->env.qid;
    info.notice_id = notice.qid;
    info.sender = message->env.sender;
    info.envid = message->env.envid;
    info.return_headers = strcasecmp(message->env.ret, "HDRS") == 0;
    info.arrival = message->env.arrival_ms / 1000;
    info.now = (long long)time(NULL);
    info.expired = expired;
    info.content = vstr_str(content);
    info.content_len = vstr_len(content);
    info.size_limit = (size_t)var_int(bounce_size_limit);
    if (kind == DSN_DELAYED)
        info.retry_until = info.arrival + var_int(maximal_queue_lifetime);
    boundary = vstr_alloc(64);
    vstr_sprintf(boundary, "%s.%lld/%s", notice.qid, info.now, info.hostname);
    info.boundary = vstr_str(boundary);
    text = vstr_alloc(8192);
    dsn_build(&info, rcpts, count, text);

    notice.size = (long long)vstr_len(text);
    qstore_message_put(txn, &notice, 0);
    to.index = 0;
    to.status = QRCPT_PENDING;
    to.addr = message->env.sender;
    to.orcpt = "";
    to.notify = "NEVER";
    to.reply = "";
    qstore_rcpt_put(txn, notice.qid, &to);
    qstore_body_put(txn, notice.qid, vstr_str(text), vstr_len(text));
    qstore_message_reschedule(txn, &notice, info.now);
    vstr_sprintf_append(message->commit_log, "sender %s notification: %s\n", what[kind],
                        notice.qid);
    message->notices[kind]++;

    vstr_free(text);
    vstr_free(boundary);
    vstr_free(content);
    myfree(rcpts);
    return 1;
}
