/*
 * workpool.h - a small bounded pool of threads for slow CPU work (bcrypt).
 *
 * Jobs run in submission order on `threads` threads. The queue holds at most
 * `queue_max` jobs waiting or running; a caller first reserves a place
 * (workpool_reserve), so that it can refuse at once (503) when the pool is
 * saturated instead of queueing without bound. The pool's threads run as
 * SCHED_BATCH at nice 19, so a flood of slow jobs leaves the HTTP threads
 * the CPU they need (and gets all of it when they are idle).
 */
#ifndef AOP_INFRA_WORKPOOL_H
#define AOP_INFRA_WORKPOOL_H

#include <stddef.h>

typedef struct workpool workpool;
typedef void (*workpool_fn)(void *arg);

/* Starts the threads; NULL when a thread cannot be created. */
workpool *workpool_new(int threads, int queue_max);
/* 1 when a place was reserved (hand it to workpool_submit or
 * workpool_unreserve), 0 when the pool is full. */
int workpool_reserve(workpool *p);
void workpool_unreserve(workpool *p);
/* Queues fn(arg) on a reserved place. */
void workpool_submit(workpool *p, workpool_fn fn, void *arg);
/* Runs the jobs already queued, then joins the threads. NULL-safe. */
void workpool_free(workpool *p);

#endif
