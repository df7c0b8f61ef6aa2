/*
 * sched - qmgr's in-memory schedule: which messages are due, and when
 *
 * The queue's `schedule` database is the durable truth; this object is
 * qmgr's copy of it, kept so that finding the due messages costs
 * O(k log n) for k of them, not a walk over the messages in delivery.
 * It knows every scheduled message by queue id, with its durable
 * schedule time, whether it is in delivery (active), and how many
 * delivery processes died while delivering it. The messages that are not
 * active are in a binary heap ordered by the time they are due (then by
 * queue id, so that equal times come out in a fixed order).
 *
 * sched_create(), sched_free()
 *	an empty schedule; release one.
 * sched_set()
 *	the durable schedule entry of a message is now `due` (seconds since
 *	the epoch; 0: it has none, i.e. it is held, set aside or gone). qmgr
 *	calls it only for changes that are committed: when it loads the
 *	queue, and from the queue's commit hook (qstore_set_schedule_hook).
 *	A message in delivery keeps its place until it is released; one
 *	that is not active is due at `due`, or forgotten when `due` is 0.
 * sched_retry_later()
 *	a message that could not be read now is tried again at `when`;
 *	its durable entry does not change.
 * sched_take()
 *	the earliest message due at or before `now` becomes active; its
 *	queue id is copied out. Returns 0 when nothing is due.
 * sched_release()
 *	a message left the active set: it is due again at its durable time
 *	(a lost delivery leaves that time in the past: due at once), or
 *	forgotten when it has none.
 * sched_next_due()
 *	when the earliest message that is not active is due, or 0.
 * sched_is_active(), sched_known()
 *	whether a message is in delivery; whether it is known at all.
 * sched_note_lost(), sched_lost_count()
 *	count a delivery process that died during the message's delivery,
 *	and return the count (1 for a message the schedule does not know,
 *	which only a message in delivery can be: never); read it. The count lives as long as qmgr
 *knows the message (a restarted qmgr starts from zero). sched_waiting(), sched_count() messages in
 *the heap; messages known. sched_check() panic unless the heap and the index agree (tests, and
 *msg_verbose).
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
    size_t pos;    /* index in the heap, or SCHED_NOT_IN_HEAP */
    int active;    /* in delivery */
    unsigned lost; /* delivery processes that died delivering it */
} SCHED_ENTRY;

struct SCHED {
    HTABLE *index;      /* queue id -> SCHED_ENTRY */
    SCHED_ENTRY **heap; /* the entries that are not active, earliest first */
    size_t nheap, heap_size;
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
    myfree(sched->heap);
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
static void sched_place(SCHED *sched, SCHED_ENTRY *entry, size_t pos)
{
    sched->heap[pos] = entry;
    entry->pos = pos;
}

/* sched_up - move an entry towards the root while it is earlier than its parent */
static void sched_up(SCHED *sched, size_t pos)
{
    SCHED_ENTRY *entry = sched->heap[pos];

    while (pos > 0 && sched_before(entry, sched->heap[(pos - 1) / 2])) {
        sched_place(sched, sched->heap[(pos - 1) / 2], pos);
        pos = (pos - 1) / 2;
    }
    sched_place(sched, entry, pos);
}

/* sched_down - move an entry towards the leaves while a child is earlier */
static void sched_down(SCHED *sched, size_t pos)
{
    SCHED_ENTRY *entry = sched->heap[pos];

    for (;;) {
        size_t child = 2 * pos + 1;

        if (child >= sched->nheap)
            break;
        if (child + 1 < sched->nheap && sched_before(sched->heap[child + 1], sched->heap[child]))
            child++;
        if (!sched_before(sched->heap[child], entry))
            break;
        sched_place(sched, sched->heap[child], pos);
        pos = child;
    }
    sched_place(sched, entry, pos);
}

/* sched_heap_add - add an entry that is not in the heap */
static void sched_heap_add(SCHED *sched, SCHED_ENTRY *entry)
{
    if (sched->nheap == sched->heap_size) {
        sched->heap_size = sched->heap_size ? 2 * sched->heap_size : 1024;
        sched->heap = myrealloc(sched->heap, sizeof(*sched->heap) * sched->heap_size);
    }
    sched_place(sched, entry, sched->nheap++);
    sched_up(sched, entry->pos);
}

/* sched_heap_remove - take an entry out of the heap */
static void sched_heap_remove(SCHED *sched, SCHED_ENTRY *entry)
{
    size_t pos = entry->pos;
    SCHED_ENTRY *last;

    if (pos == SCHED_NOT_IN_HEAP)
        return;
    entry->pos = SCHED_NOT_IN_HEAP;
    last = sched->heap[--sched->nheap];
    if (last == entry)
        return;
    sched_place(sched, last, pos);
    sched_up(sched, pos);
    sched_down(sched, last->pos);
}

/* sched_heap_move - an entry in the heap has a new time */
static void sched_heap_move(SCHED *sched, SCHED_ENTRY *entry, long long at)
{
    entry->at = at;
    if (entry->pos == SCHED_NOT_IN_HEAP) {
        sched_heap_add(sched, entry);
    } else {
        sched_up(sched, entry->pos);
        sched_down(sched, entry->pos);
    }
}

/* sched_forget - drop an entry that is neither active nor scheduled */
static void sched_forget(SCHED *sched, SCHED_ENTRY *entry)
{
    sched_heap_remove(sched, entry);
    myfree(htable_remove(sched->index, entry->qid));
}

/* sched_set - the durable schedule entry of a message is now `due` */
void sched_set(SCHED *sched, const char *qid, long long due)
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
    entry->due = due > 0 ? due : 0;
    if (entry->active)
        return;
    if (entry->due == 0)
        sched_forget(sched, entry);
    else
        sched_heap_move(sched, entry, entry->due);
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

/* sched_take - the earliest due message becomes active */
int sched_take(SCHED *sched, long long now, char qid[QID_LEN + 1])
{
    SCHED_ENTRY *entry;

    if (sched->nheap == 0 || sched->heap[0]->at > now)
        return 0;
    entry = sched->heap[0];
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
    return sched->nheap ? sched->heap[0]->at : 0;
}

/* sched_is_active - is a message in delivery */
int sched_is_active(const SCHED *sched, const char *qid)
{
    const SCHED_ENTRY *entry = htable_get(sched->index, qid);

    return entry != NULL && entry->active;
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

/* sched_waiting - messages waiting in the heap */
size_t sched_waiting(const SCHED *sched)
{
    return sched->nheap;
}

/* sched_count - messages the schedule knows */
size_t sched_count(const SCHED *sched)
{
    return htable_count(sched->index);
}

/* sched_check - panic unless the heap is ordered and agrees with the index */
void sched_check(const SCHED *sched)
{
    for (size_t pos = 0; pos < sched->nheap; pos++) {
        const SCHED_ENTRY *entry = sched->heap[pos];

        if (entry->pos != pos || entry->active || htable_get(sched->index, entry->qid) != entry)
            msg_panic("sched_check: %s at heap position %zu is out of place", entry->qid, pos);
        if (pos > 0 && sched_before(entry, sched->heap[(pos - 1) / 2]))
            msg_panic("sched_check: %s is earlier than its parent", entry->qid);
    }
}
