/*
 * retry - what becomes of a message when its deliveries of one pass end
 *
 * retry_decide()
 *	from the message's state and what its jobs learned, the new durable
 *	state qmgr writes in the pass's transaction, in this order:
 *	- deleted by the operator, or every recipient final: removed;
 *	- older than maximal_queue_lifetime (bounce_queue_lifetime for the
 *	  null sender) with recipients not final: expired (they bounce),
 *	  unless the operator requeued or held it, or its only loss is the
 *	  free one below;
 *	- requeued by the operator: attempts start over, due now;
 *	- held by the operator: off the schedule;
 *	- its delivery process died, the first time (RETRY_LOST_FREE): due
 *	  again now, no attempt counted (a qmgr restart loses every job in
 *	  flight, and the mail is not to blame);
 *	- a delivery process died again with it (a poison message): counted
 *	  as a deferral, with the backoff and the expiry of one, and marked
 *	  to be logged;
 *	- the relay asked to slow down, or its relay was down and the route
 *	  has another: due in one second, no attempt counted (the
 *	  destination's rate, not the message, bounds the retries);
 *	- it waits for its suspended destination's probe and no relay
 *	  deferred it: due at the probe, no attempt counted;
 *	- otherwise an attempt is counted and it is due after the backoff.
 *	The delay notice is due once per message, the first time the message
 *	is older than delay_warning_time.
 * retry_backoff()
 *	seconds until the next attempt after `attempts` of them:
 *	minimal_backoff_time doubled per attempt after the first, at most
 *	maximal_backoff_time, less up to 10% (policy->jitter) so that mail
 *	deferred at one moment spreads out; at least one second.
 *
 * Pure arithmetic over the inputs: no clock, no I/O, so that
 * tests/unit_retry can check every branch with a table.
 */
#include "config.h"

#include "retry.h"

/* retry_backoff - seconds until the next attempt */
long long retry_backoff(const RETRY_POLICY *policy, unsigned attempts)
{
    long long delay = policy->min_backoff;

    for (unsigned i = 1; i < attempts && delay < policy->max_backoff; i++)
        delay *= 2;
    if (delay > policy->max_backoff)
        delay = policy->max_backoff;
    if (delay >= 10)
        delay -= (long long)policy->jitter((uint32_t)(delay / 10 + 1));
    return delay < 1 ? 1 : delay;
}

/* retry_decide - the new durable state of a message */
void retry_decide(const RETRY_POLICY *policy, const RETRY_OUTCOME *outcome, long long now,
                  RETRY_DECISION *decision)
{
    long long age = now - outcome->arrival;
    long long lifetime = outcome->null_sender ? policy->bounce_lifetime : policy->lifetime;
    int lost_free = outcome->lost > 0 && outcome->lost <= RETRY_LOST_FREE;

    decision->action = RETRY_AGAIN;
    decision->due = now;
    decision->attempts = outcome->attempts;
    decision->warn = policy->delay_warning > 0 && age >= policy->delay_warning && !outcome->warned;
    decision->requeued = 0;
    decision->poison = outcome->lost > RETRY_LOST_FREE;
    if (outcome->deleted || !outcome->pending) {
        decision->action = RETRY_REMOVE;
    } else if (!lost_free && !outcome->requeue && !outcome->held && age >= lifetime) {
        decision->action = RETRY_EXPIRE;
    } else if (outcome->requeue) {
        decision->attempts = 0;
        decision->requeued = 1;
    } else if (outcome->held) {
        decision->action = RETRY_HOLD;
        decision->due = 0;
    } else if (lost_free) {
        /* Due now, as it was. */
    } else if (!decision->poison && (outcome->throttled || outcome->reroute)) {
        decision->due = now + 1;
    } else if (!decision->poison && outcome->probe_at > 0 && !outcome->backoff) {
        decision->due = outcome->probe_at;
    } else {
        decision->attempts = outcome->attempts + 1;
        decision->due = now + retry_backoff(policy, decision->attempts);
    }
}
