/*
 * scheduler.h - runs the due times of enabled schedules (docs/schedules.md).
 *
 * One thread per instance keeps every enabled schedule in a min-heap keyed
 * by its next due time and sleeps until the earliest one: an idle server
 * with thousands of schedules does nothing until one is due. A due time is
 * started through schedules_fire, whose run record makes it run once
 * across every instance; each instance's heap holds every schedule, so
 * whichever is first runs it and the others find it taken.
 *
 * A change to a schedule (create, change, delete) reaches the scheduler of
 * this instance through scheduler_changed and those of the others through
 * the store's events (scheduler_publish; PostgreSQL NOTIFY), and applies
 * at once. When the events connection was lost every schedule is read
 * again.
 *
 * Missed due times are not run later, except the latest one when it is
 * less than SCHEDULES_LATE_MS late (at start, or after a stall).
 *
 * Once an hour the thread also deletes old run records and expired
 * webhook Idempotency-Key answers.
 */
#ifndef AOP_SCHEDULES_SCHEDULER_H
#define AOP_SCHEDULES_SCHEDULER_H

#include "app.h"

typedef struct scheduler scheduler;

/* The largest number of schedules one instance keeps (more are not run;
 * it logs an error). */
#define SCHEDULER_MAX 1000000
/* How often a held buffer_one start checks whether it may go. */
#define SCHEDULER_PENDING_MS 250

/* Reads the enabled schedules and starts the thread(s). NULL on failure. */
scheduler *scheduler_start(const app_ctx *app);
/* Stops and frees; NULL is fine. */
void scheduler_stop(scheduler *s);
/* Schedule id was created, changed or deleted (s NULL: nothing). */
void scheduler_changed(scheduler *s, const char *id);
/* Tells the schedulers of the other processes sharing st. */
aop_err scheduler_publish(store *st, const char *id);

#endif
