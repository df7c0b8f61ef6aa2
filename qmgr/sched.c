/*
 * sched - qmgr's in-memory schedule: which messages are due, and when
 *
 * The queue's `schedule` database is the durable truth; this object is
 * qmgr's copy of it, kept so that finding the due messages costs
 * O(k log n) for k of them, not a walk over the messages in delivery.
 * It knows every scheduled message by queue id, with its durable
 * schedule time, whether it is in delivery (active), and how many
 * delivery processes died while delivering it. The messages that are not
 * active are in binary heaps ordered by the time they are due (then by
 * queue id, so that equal times come out in a fixed order): one for new
 * mail (announced by pickup, never scheduled by qmgr yet) and one for the
 * rest (retries, released or requeued mail, what qmgr found in the queue
 * at start). When both have mail due, sched_take() takes from each in
 * turn, as Postfix's qmgr alternates between its incoming and deferred
 * queues: a million messages released or retried at once cannot hold new
 * mail back until they are all delivered.
 *
 * sched_create(), sched_free()
 *	an empty schedule; release one.
 * sched_set(), sched_set_new()
 *	the durable schedule entry of a message is now `due` (seconds since
 *	the epoch; 0: it has none, i.e. it is held, set aside or gone). qmgr
 *	calls it only for changes that are committed: when it loads the
 *	queue, and from the queue's commit hook (qstore_set_schedule_hook).
 *	A message in delivery keeps its place until it is released; one
 *	that is not active is due at `due`, or forgotten when `due` is 0.
 *	sched_set_new() is for a message pickup just queued: it waits among
 *	the new mail until qmgr schedules it again (a retry, a release).
 * sched_retry_later()
 *	a message that could not be read now is tried again at `when`;
 *	its durable entry does not change.
 * sched_take()
 *	a message due at or before `now` becomes active, the earliest of new
 *	mail and of the rest in turn; its queue id is copied out. Returns 0
 *	when nothing is due.
 * sched_release()
 *	a message left the active set: it is due again at its durable time
 *	(a lost delivery leaves that time in the past: due at once), or
 *	forgotten when it has none.
 * sched_next_due()
 *	when the earliest message that is not active is due, or 0.
 * sched_is_active(), sched_known(), sched_is_new()
 *	whether a message is in delivery; whether it is known at all;
 *	whether it is new mail (its jobs take turns with the rest's in a
 *	destination's queue, jobq.c, for the same reason).
 * sched_note_lost(), sched_lost_count()
 *	count a delivery process that died during the message's delivery,
 *	and return the count (1 for a message the schedule does not know,
 *	which only a message in delivery can be: never); read it. The
 *	count lives as long as qmgr knows the message (a restarted qmgr
 *	starts from zero).
 * sched_waiting(), sched_count()
 *	messages in the heaps; messages known.
 * sched_check()
 *	panic unless the heaps and the index agree (tests, and msg_verbose).
 *
 * No clock, no I/O: tests/unit_sched drives it with tables of events.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "htable.h"
#include "msg.h"
#include "mymalloc.h"
#include "sched.h"

#define SCHED_NOT_IN_HEAP SIZE_MAX

/* One message the schedule knows. */
typedef struct SCHED_ENTRY {
    char qid[QID_LEN + 1];
    long long due; /* the durable schedule time, 0: none */
    long long at;  /* when it is due in the heap (due, or a retry of an unreadable one) */
    size_t pos;    /* index in its heap, or SCHED_NOT_IN_HEAP */
    int fresh;     /* new mail: in the heap of new mail when waiting */
    int active;    /* in delivery */
    unsigned lost; /* delivery processes that died delivering it */
} SCHED_ENTRY;

/* Waiting entries, earliest first. */
typedef struct SCHED_HEAP {
    SCHED_ENTRY **entries;
    size_t count, size;
} SCHED_HEAP;

struct SCHED {
    HTABLE *index;       /* queue id -> SCHED_ENTRY */
    SCHED_HEAP heaps[2]; /* [0]: retries and the rest, [1]: new mail */
    int turn_new;        /* both have mail due: new mail's turn next */
};

/* sched_create - an empty schedule */
SCHED *sched_create(void)
{
    SCHED *sched = mycalloc(1, sizeof(*sched));

    sched->index = htable_create(1024);
    return sched;
}

/* sched_free - release a schedule */
void sched_free(SCHED *sched)
{
    htable_free(sched->index, myfree);
    myfree(sched->heaps[0].entries);
    myfree(sched->heaps[1].entries);
    myfree(sched);
}

/* sched_before - heap order: earlier time first, then queue id */
static int sched_before(const SCHED_ENTRY *a, const SCHED_ENTRY *b)
{
    if (a->at != b->at)
        return a->at < b->at;
    return strcmp(a->qid, b->qid) < 0;
}

/* sched_place - put an entry at a heap position */
static void sched_place(SCHED_HEAP *heap, SCHED_ENTRY *entry, size_t pos)
{
    heap->entries[pos] = entry;
    entry->pos = pos;
}

/* sched_up - move an entry towards the root while it is earlier than its parent */
static void sched_up(SCHED_HEAP *heap, size_t pos)
{
    SCHED_ENTRY *entry = heap->entries[pos];

    while (pos > 0 && sched_before(entry, heap->entries[(pos - 1) / 2])) {
        sched_place(heap, heap->entries[(pos - 1) / 2], pos);
        pos = (pos - 1) / 2;
    }
    sched_place(heap, entry, pos);
}

/* sched_down - move an entry towards the leaves while a child is earlier */
static void sched_down(SCHED_HEAP *heap, size_t pos)
{
    SCHED_ENTRY *entry = heap->entries[pos];

    for (;;) {
        size_t child = 2 * pos + 1;

        if (child >= heap->count)
            break;
        if (child + 1 < heap->count && sched_before(heap->entries[child + 1], heap->entries[child]))
            child++;
        if (!sched_before(heap->entries[child], entry))
            break;
        sched_place(heap, heap->entries[child], pos);
        pos = child;
    }
    sched_place(heap, entry, pos);
}

/* sched_heap_of - the heap an entry waits in */
static SCHED_HEAP *sched_heap_of(SCHED *sched, const SCHED_ENTRY *entry)
{
    return sched->heaps + (entry->fresh ? 1 : 0);
}

/* sched_heap_add - add an entry that is not in a heap to its own */
static void sched_heap_add(SCHED *sched, SCHED_ENTRY *entry)
{
    SCHED_HEAP *heap = sched_heap_of(sched, entry);

    if (heap->count == heap->size) {
        heap->size = heap->size ? 2 * heap->size : 1024;
        heap->entries = myrealloc(heap->entries, sizeof(*heap->entries) * heap->size);
    }
    sched_place(heap, entry, heap->count++);
    sched_up(heap, entry->pos);
}

/* sched_heap_remove - take an entry out of its heap */
static void sched_heap_remove(SCHED *sched, SCHED_ENTRY *entry)
{
    SCHED_HEAP *heap = sched_heap_of(sched, entry);
    size_t pos = entry->pos;
    SCHED_ENTRY *last;

    if (pos == SCHED_NOT_IN_HEAP)
        return;
    entry->pos = SCHED_NOT_IN_HEAP;
    last = heap->entries[--heap->count];
    if (last == entry)
        return;
    sched_place(heap, last, pos);
    sched_up(heap, pos);
    sched_down(heap, last->pos);
}

/* sched_heap_move - an entry has a new time (and perhaps a new heap: remove it first) */
static void sched_heap_move(SCHED *sched, SCHED_ENTRY *entry, long long at)
{
    entry->at = at;
    if (entry->pos == SCHED_NOT_IN_HEAP) {
        sched_heap_add(sched, entry);
    } else {
        sched_up(sched_heap_of(sched, entry), entry->pos);
        sched_down(sched_heap_of(sched, entry), entry->pos);
    }
}

/* sched_forget - drop an entry that is neither active nor scheduled */
static void sched_forget(SCHED *sched, SCHED_ENTRY *entry)
{
    sched_heap_remove(sched, entry);
    myfree(htable_remove(sched->index, entry->qid));
}

/* sched_update - a message's durable entry is now `due`, among new mail or not */
static void sched_update(SCHED *sched, const char *qid, long long due, int fresh)
{
    SCHED_ENTRY *entry = htable_get(sched->index, qid);

    if (entry == NULL) {
        if (due <= 0)
            return;
        entry = mycalloc(1, sizeof(*entry));
        if (strlen(qid) > QID_LEN)
            msg_panic("sched_set: queue id \"%.40s\" too long", qid);
        strcpy(entry->qid, qid);
        entry->pos = SCHED_NOT_IN_HEAP;
        htable_put(sched->index, entry->qid, entry);
    }
    if (entry->fresh != fresh) {
        sched_heap_remove(sched, entry); /* from the heap of its old kind */
        entry->fresh = fresh;
    }
    entry->due = due > 0 ? due : 0;
    if (entry->active)
        return;
    if (entry->due == 0)
        sched_forget(sched, entry);
    else
        sched_heap_move(sched, entry, entry->due);
}

/* sched_set - the durable schedule entry of a message is now `due` */
void sched_set(SCHED *sched, const char *qid, long long due)
{
    sched_update(sched, qid, due, 0);
}

/* sched_set_new - pickup queued a message, due at `due` */
void sched_set_new(SCHED *sched, const char *qid, long long due)
{
    sched_update(sched, qid, due, 1);
}

/* sched_retry_later - try a message that could not be read again at `when` */
void sched_retry_later(SCHED *sched, const char *qid, long long when)
{
    SCHED_ENTRY *entry = htable_get(sched->index, qid);

    if (entry == NULL || entry->due == 0)
        return;
    entry->active = 0;
    sched_heap_move(sched, entry, when);
}

/* sched_take - a due message becomes active: new mail and the rest in turn */
int sched_take(SCHED *sched, long long now, char qid[QID_LEN + 1])
{
    const SCHED_HEAP *rest = sched->heaps, *fresh = sched->heaps + 1;
    int rest_due = rest->count > 0 && rest->entries[0]->at <= now;
    int fresh_due = fresh->count > 0 && fresh->entries[0]->at <= now;
    SCHED_ENTRY *entry;

    if (!rest_due && !fresh_due)
        return 0;
    if (rest_due && fresh_due) {
        entry = sched->turn_new ? fresh->entries[0] : rest->entries[0];
        sched->turn_new = !sched->turn_new;
    } else {
        entry = fresh_due ? fresh->entries[0] : rest->entries[0];
    }
    sched_heap_remove(sched, entry);
    entry->active = 1;
    memcpy(qid, entry->qid, QID_LEN + 1);
    return 1;
}

/* sched_release - a message left the active set */
void sched_release(SCHED *sched, const char *qid)
{
    SCHED_ENTRY *entry = htable_get(sched->index, qid);

    if (entry == NULL)
        return;
    entry->active = 0;
    if (entry->due == 0)
        sched_forget(sched, entry);
    else
        sched_heap_move(sched, entry, entry->due);
}

/* sched_next_due - when the earliest waiting message is due, 0: none */
long long sched_next_due(const SCHED *sched)
{
    long long rest = sched->heaps[0].count ? sched->heaps[0].entries[0]->at : 0;
    long long fresh = sched->heaps[1].count ? sched->heaps[1].entries[0]->at : 0;

    if (rest == 0 || (fresh != 0 && fresh < rest))
        return fresh;
    return rest;
}

/* sched_is_active - is a message in delivery */
int sched_is_active(const SCHED *sched, const char *qid)
{
    const SCHED_ENTRY *entry = htable_get(sched->index, qid);

    return entry != NULL && entry->active;
}

/* sched_is_new - is a message new mail, set by sched_set_new() and not scheduled since */
int sched_is_new(const SCHED *sched, const char *qid)
{
    const SCHED_ENTRY *entry = htable_get(sched->index, qid);

    return entry != NULL && entry->fresh;
}

/* sched_known - does the schedule know a message */
int sched_known(const SCHED *sched, const char *qid)
{
    return htable_get(sched->index, qid) != NULL;
}

/* sched_note_lost - a delivery process died delivering the message: the new count */
unsigned sched_note_lost(SCHED *sched, const char *qid)
{
    SCHED_ENTRY *entry = htable_get(sched->index, qid);

    return entry ? ++entry->lost : 1;
}

/* sched_lost_count - how many delivery processes died delivering the message */
unsigned sched_lost_count(const SCHED *sched, const char *qid)
{
    const SCHED_ENTRY *entry = htable_get(sched->index, qid);

    return entry ? entry->lost : 0;
}

/* sched_waiting - messages waiting in the heaps */
size_t sched_waiting(const SCHED *sched)
{
    return sched->heaps[0].count + sched->heaps[1].count;
}

/* sched_count - messages the schedule knows */
size_t sched_count(const SCHED *sched)
{
    return htable_count(sched->index);
}

/* sched_check - panic unless the heaps are ordered and agree with the index */
void sched_check(const SCHED *sched)
{
    for (int h = 0; h < 2; h++) {
        const SCHED_HEAP *heap = sched->heaps + h;

        for (size_t pos = 0; pos < heap->count; pos++) {
            const SCHED_ENTRY *entry = heap->entries[pos];

            if (entry->pos != pos || entry->active || entry->fresh != h ||
                htable_get(sched->index, entry->qid) != entry)
                msg_panic("sched_check: %s at heap position %zu is out of place", entry->qid, pos);
            if (pos > 0 && sched_before(entry, heap->entries[(pos - 1) / 2]))
                msg_panic("sched_check: %s is earlier than its parent", entry->qid);
        }
    }
}
