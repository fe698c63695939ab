#include "infra/workpool.h"
#include "core/log.h"
#include "core/mem.h"

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NICE 19

typedef struct job {
    workpool_fn fn;
    void *arg;
    struct job *next;
} job;

struct workpool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job *head, *tail;
    int reserved;  /* places taken: queued, running, or about to be submitted */
    int queue_max;
    bool stopping;
    int nthreads;
    pthread_t *threads;
};

static void *worker(void *arg)
{
    workpool *p = arg;
    /* Linux schedules each thread on its own (a thread is a task): batch
     * scheduling (no wake-up preemption of request threads) at the lowest
     * priority. The work still runs at full speed on an idle CPU. */
    struct sched_param sp = {0};
    if (sched_setscheduler((pid_t)syscall(SYS_gettid), SCHED_BATCH, &sp) != 0 ||
        setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), NICE) != 0)
        log_debug("cannot lower the priority of a slow-work thread");
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->head && !p->stopping)
            pthread_cond_wait(&p->cv, &p->mu);
        job *j = p->head;
        if (!j)
            break; /* stopping and drained */
        p->head = j->next;
        if (!p->head)
            p->tail = NULL;
        pthread_mutex_unlock(&p->mu);
        j->fn(j->arg);
        free(j);
        pthread_mutex_lock(&p->mu);
        p->reserved--;
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

workpool *workpool_new(int threads, int queue_max)
{
    workpool *p = xcalloc(1, sizeof(*p));
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->queue_max = queue_max;
    p->threads = xcalloc((size_t)threads, sizeof(pthread_t));
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&p->threads[i], NULL, worker, p) != 0) {
            log_error("cannot start a slow-work thread");
            workpool_free(p);
            return NULL;
        }
        p->nthreads++;
    }
    return p;
}

int workpool_reserve(workpool *p)
{
    pthread_mutex_lock(&p->mu);
    int ok = !p->stopping && p->reserved < p->queue_max;
    if (ok)
        p->reserved++;
    pthread_mutex_unlock(&p->mu);
    return ok;
}

void workpool_unreserve(workpool *p)
{
    pthread_mutex_lock(&p->mu);
    p->reserved--;
    pthread_mutex_unlock(&p->mu);
}

void workpool_submit(workpool *p, workpool_fn fn, void *arg)
{
    job *j = xcalloc(1, sizeof(*j));
    j->fn = fn;
    j->arg = arg;
    pthread_mutex_lock(&p->mu);
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void workpool_free(workpool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    free(p->threads);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
