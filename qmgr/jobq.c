/*
 * jobq - a destination's queue of jobs: new mail and the rest in turn
 *
 * The jobs of a destination wait here for a worker. The queue is two
 * FIFOs, one for the jobs of new mail (messages pickup queued and qmgr
 * has not scheduled again) and one for the rest (retries, released or
 * requeued mail). When both hold jobs they are taken in turn, as
 * sched.c takes due messages: the active set may be full of released
 * mail (release ALL of a million messages fills it with 20,000 of them,
 * all for the one relay), and a job of new mail activated behind them
 * still goes out with the next free worker but one, not after all of
 * them.
 *
 * jobq_push()
 *	add a job at the tail of its FIFO (`fresh`: new mail).
 * jobq_peek()
 *	the job jobq_pop() would take, or NULL when the queue is empty.
 * jobq_pop()
 *	take that job: the head of the FIFO whose turn it is (the other
 *	one's when that is empty).
 *
 * The queue is a plain structure: a zeroed JOBQ is empty. It holds
 * links, not jobs, and allocates nothing; tests/unit_jobq drives it with
 * a table of cases.
 */
#include "config.h"

#include "jobq.h"

/* jobq_side - which FIFO the next job comes from */
static int jobq_side(const JOBQ *queue)
{
    if (queue->head[0] && queue->head[1])
        return queue->turn_new;
    return queue->head[1] != NULL;
}

/* jobq_push - add a job at the tail of its FIFO */
void jobq_push(JOBQ *queue, JOBQ_LINK *link, int fresh)
{
    int side = fresh ? 1 : 0;

    link->next = NULL;
    if (queue->tail[side])
        queue->tail[side]->next = link;
    else
        queue->head[side] = link;
    queue->tail[side] = link;
    queue->count++;
}

/* jobq_peek - the job jobq_pop() would take */
JOBQ_LINK *jobq_peek(const JOBQ *queue)
{
    return queue->head[jobq_side(queue)];
}

/* jobq_pop - take the next job, new mail and the rest in turn */
JOBQ_LINK *jobq_pop(JOBQ *queue)
{
    int side = jobq_side(queue);
    JOBQ_LINK *link = queue->head[side];

    if (link == NULL)
        return NULL;
    if (queue->head[0] && queue->head[1])
        queue->turn_new = !side;
    queue->head[side] = link->next;
    if (queue->head[side] == NULL)
        queue->tail[side] = NULL;
    link->next = NULL;
    queue->count--;
    return link;
}
