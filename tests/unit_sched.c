/*
 * unit_sched - qmgr's in-memory schedule
 *
 * A table of events over qmgr/sched.c, each with the answer it must
 * give: messages set on the schedule (as a commit or the load at start
 * reports them), taken when due (earliest first, equal times by queue
 * id), released after delivery (back at their new durable time, at once
 * after a lost delivery, forgotten when gone), changed while in delivery
 * (the change waits for the release), retried later when unreadable, and
 * the count of lost deliveries. New mail and the rest (retries, a
 * release of many at once) are taken in turn when both are due, and new
 * mail that is deferred waits among the rest.
 * Then a model check: 20,000 random events against a plain array that
 * is searched the slow way; after every event the heap must be in order
 * (sched_check) and agree with the model.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched.h"
#include "tap.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* One event: what to do and what it must answer. */
struct event {
    char op; /* s: set, N: set new mail, t: take, r: release, l: retry later, x: note lost, n: next
                due, f: is it new mail */
    const char *qid; /* s, r, l, x; t: the queue id it must take, "" for none */
    long long time;  /* s, N: due; t: now; l: when; n: the answer */
    long long want;  /* x: the count; f: 1 for new mail; s, N, r, l: messages known afterwards */
    const char *why;
};

static const struct event events[] = {
    {'n', "", 0, 0, "an empty schedule has nothing due"},
    {'t', "", 100, 0, "and nothing to take"},
    {'s', "BBBBBBBBBB01", 200, 1, "a message due at 200"},
    {'s', "AAAAAAAAAA01", 150, 2, "one due at 150"},
    {'s', "CCCCCCCCCC01", 200, 3, "one due at 200, after B by id"},
    {'n', "", 150, 0, "the earliest is due at 150"},
    {'t', "", 149, 0, "nothing is due at 149"},
    {'t', "AAAAAAAAAA01", 150, 0, "A is due at 150"},
    {'n', "", 200, 0, "then the next is at 200"},
    {'t', "BBBBBBBBBB01", 500, 0, "equal times come out by queue id: B"},
    {'t', "CCCCCCCCCC01", 500, 0, "then C"},
    {'t', "", 500, 0, "active messages are not taken twice"},
    {'s', "AAAAAAAAAA01", 900, 3, "A's delivery was deferred to 900 (committed while active)"},
    {'t', "", 1000, 0, "A still waits for its release"},
    {'r', "AAAAAAAAAA01", 0, 3, "A is released"},
    {'n', "", 900, 0, "and due at 900"},
    {'r', "BBBBBBBBBB01", 0, 3, "B's delivery was lost: its entry did not change"},
    {'x', "BBBBBBBBBB01", 0, 1, "B's first lost delivery"},
    {'t', "BBBBBBBBBB01", 500, 0, "B is due again at once"},
    {'x', "BBBBBBBBBB01", 0, 2, "B's second lost delivery"},
    {'s', "BBBBBBBBBB01", 0, 3, "B is removed while active: known until released"},
    {'r', "BBBBBBBBBB01", 0, 2, "B is released and forgotten"},
    {'s', "BBBBBBBBBB01", 5000, 3, "B is queued again (a resync found it)"},
    {'x', "BBBBBBBBBB01", 0, 1, "a forgotten message starts its count over"},
    {'s', "CCCCCCCCCC01", 0, 3, "C was delivered and removed, still active"},
    {'r', "CCCCCCCCCC01", 0, 2, "C is forgotten at its release"},
    {'s', "DDDDDDDDDD01", 300, 3, "D is due at 300"},
    {'s', "DDDDDDDDDD01", 950, 3, "then held and released by the operator: 950"},
    {'n', "", 900, 0, "A at 900 comes first"},
    {'s', "AAAAAAAAAA01", 0, 2, "A is held: forgotten at once, it is not active"},
    {'n', "", 950, 0, "D is next"},
    {'t', "DDDDDDDDDD01", 960, 0, "D is taken"},
    {'l', "DDDDDDDDDD01", 1020, 2, "D could not be read: again at 1020"},
    {'t', "", 1019, 0, "not before"},
    {'t', "DDDDDDDDDD01", 1020, 0, "then D"},
    {'l', "DDDDDDDDDD01", 1080, 2, "still unreadable"},
    {'s', "DDDDDDDDDD01", 2000, 2, "its durable entry moves: the retry time goes with it"},
    {'n', "", 2000, 0, "D at 2000, before B"},
    {'l', "EEEEEEEEEE01", 1080, 2, "a retry of an unknown message is ignored"},
    {'s', "EEEEEEEEEE01", 0, 2, "removing an unknown message is ignored"},
    {'r', "EEEEEEEEEE01", 0, 2, "so is releasing one"},
    {'s', "RRRRRRRRRR01", 3000, 3, "a retry due at 3000"},
    {'s', "RRRRRRRRRR02", 3000, 4, "another"},
    {'s', "RRRRRRRRRR03", 3000, 5, "a third: as a release of many, all due at once"},
    {'N', "NNNNNNNNNN01", 3100, 6, "new mail from pickup, due at 3100"},
    {'N', "NNNNNNNNNN02", 3100, 7, "more new mail"},
    {'f', "NNNNNNNNNN01", 0, 1, "N1 is new mail"},
    {'f', "RRRRRRRRRR01", 0, 0, "R1 is not"},
    {'f', "EEEEEEEEEE01", 0, 0, "nor is a message the schedule does not know"},
    {'t', "DDDDDDDDDD01", 4000, 0, "both kinds are due: the rest first (D, 2000)"},
    {'t', "NNNNNNNNNN01", 4000, 0, "then new mail, though the retries are earlier"},
    {'f', "NNNNNNNNNN01", 0, 1, "N1 in delivery is still new mail (its jobs say so)"},
    {'t', "RRRRRRRRRR01", 4000, 0, "then the rest again"},
    {'t', "NNNNNNNNNN02", 4000, 0, "new mail again"},
    {'t', "RRRRRRRRRR02", 4000, 0, "no new mail is left: the rest"},
    {'t', "RRRRRRRRRR03", 4000, 0, "in time order"},
    {'s', "NNNNNNNNNN01", 4500, 7, "N1 deferred to 4500 (committed while active)"},
    {'r', "NNNNNNNNNN01", 0, 7, "N1 released: it waits among the rest now"},
    {'f', "NNNNNNNNNN01", 0, 0, "and is new mail no longer"},
    {'N', "NNNNNNNNNN03", 4600, 8, "new mail due at 4600"},
    {'t', "NNNNNNNNNN01", 5000, 0, "the rest's turn: N1 at 4500, not B at 5000"},
    {'t', "NNNNNNNNNN03", 5000, 0, "then the new one"},
    {'t', "BBBBBBBBBB01", 5000, 0, "then B"},
};

/* The model: every known message the slow way. */
struct model {
    char qid[QID_LEN + 1];
    long long due;
    int active;
};

#define MODEL_SIZE 64

/* model_find - a message of the model, or NULL */
static struct model *model_find(struct model *m, const char *qid)
{
    for (size_t i = 0; i < MODEL_SIZE; i++)
        if (m[i].qid[0] && strcmp(m[i].qid, qid) == 0)
            return m + i;
    return NULL;
}

/* model_earliest - the message the schedule must take next, or NULL */
static struct model *model_earliest(struct model *m)
{
    struct model *best = NULL;

    for (size_t i = 0; i < MODEL_SIZE; i++)
        if (m[i].qid[0] && !m[i].active &&
            (best == NULL || m[i].due < best->due ||
             (m[i].due == best->due && strcmp(m[i].qid, best->qid) < 0)))
            best = m + i;
    return best;
}

/* model_check - 20,000 random events against the model; 1 when they agree */
static int model_check(void)
{
    static struct model m[MODEL_SIZE];
    SCHED *sched = sched_create();
    char qid[QID_LEN + 1], got[QID_LEN + 1];
    int ok = 1;

    srand(7);
    for (int step = 0; step < 20000 && ok; step++) {
        struct model *e, *want;
        long long now = 1000 + step / 10;
        size_t known = 0;

        snprintf(qid, sizeof(qid), "Q%011d", rand() % MODEL_SIZE);
        e = model_find(m, qid);
        switch (rand() % 4) {
        case 0: /* a commit sets or removes the entry */
        case 1: {
            long long due = rand() % 5 ? now - 20 + rand() % 60 : 0;

            sched_set(sched, qid, due);
            if (e == NULL && due > 0) {
                e = model_find(m, "");
                for (size_t i = 0; e == NULL && i < MODEL_SIZE; i++)
                    if (!m[i].qid[0])
                        e = m + i;
                strcpy(e->qid, qid);
                e->active = 0;
            }
            if (e) {
                e->due = due;
                if (due == 0 && !e->active)
                    e->qid[0] = '\0';
            }
            break;
        }
        case 2: /* take what is due */
            want = model_earliest(m);
            if (want && want->due > now)
                want = NULL;
            if (sched_take(sched, now, got) != (want != NULL) ||
                (want && strcmp(got, want->qid) != 0)) {
                tap_diag("step %d: took %s, the model says %s", step, got,
                         want ? want->qid : "nothing");
                ok = 0;
            }
            if (want)
                want->active = 1;
            break;
        default: /* release an active message */
            sched_release(sched, qid);
            if (e && e->active) {
                e->active = 0;
                if (e->due == 0)
                    e->qid[0] = '\0';
            }
            break;
        }
        sched_check(sched);
        for (size_t i = 0; i < MODEL_SIZE; i++)
            known += m[i].qid[0] != '\0';
        want = model_earliest(m);
        if (known != sched_count(sched) || sched_next_due(sched) != (want ? want->due : 0)) {
            tap_diag("step %d: %zu known, next due %lld; the model says %zu, %lld", step,
                     sched_count(sched), sched_next_due(sched), known, want ? want->due : 0);
            ok = 0;
        }
    }
    sched_free(sched);
    return ok;
}

int main(void)
{
    SCHED *sched = sched_create();
    char got[QID_LEN + 1];

    tap_plan((int)NELEM(events) + 1);
    for (size_t i = 0; i < NELEM(events); i++) {
        const struct event *ev = &events[i];
        long long have = 0;
        int ok;

        switch (ev->op) {
        case 'n':
            have = sched_next_due(sched);
            ok = have == ev->time;
            break;
        case 't':
            got[0] = '\0';
            ok = sched_take(sched, ev->time, got) == (*ev->qid != '\0') &&
                 strcmp(got, ev->qid) == 0 && (*got == '\0' || sched_is_active(sched, got));
            break;
        case 'f':
            have = sched_is_new(sched, ev->qid);
            ok = have == ev->want;
            break;
        case 'x':
            have = sched_note_lost(sched, ev->qid);
            ok = have == ev->want && (unsigned)have == sched_lost_count(sched, ev->qid);
            break;
        default:
            if (ev->op == 's')
                sched_set(sched, ev->qid, ev->time);
            else if (ev->op == 'N')
                sched_set_new(sched, ev->qid, ev->time);
            else if (ev->op == 'r')
                sched_release(sched, ev->qid);
            else
                sched_retry_later(sched, ev->qid, ev->time);
            have = (long long)sched_count(sched);
            ok = have == ev->want;
            break;
        }
        sched_check(sched);
        if (!tap_ok(ok, "%c %s: %s", ev->op, *ev->qid ? ev->qid : "-", ev->why))
            tap_diag("got \"%s\" / %lld", got, have);
    }
    sched_free(sched);
    tap_ok(model_check(), "20,000 random events agree with a plain array searched in full");
    return tap_done();
}
