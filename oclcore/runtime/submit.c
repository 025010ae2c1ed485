/* Kernel launches (and device copies and fills) handed to a thread of their
 * own, one per device.
 *
 * A driver can spend several microseconds of the calling thread's time in
 * clEnqueueNDRangeKernel (NVIDIA's: 5-10 us), which a host-bound training
 * step pays for every kernel. With a submitter, the Python thread records a
 * launch (the arguments that changed since the kernel's last launch, the
 * sizes) and returns; the submitter sets the arguments and enqueues, in the
 * order recorded. Every other use of the queue (copies, fills, reads,
 * finish, profiled launches, graph replays, releasing memory or a kernel)
 * first waits until the submitter has enqueued everything handed to it, so
 * the queue sees commands in program order. An error of a handed-over launch
 * is kept and reported by the next wait. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "oclcore/runtime.h"

#define CL(fn) (ocl_api.fn)
/* Commands waiting at most: a thread that gets this far ahead waits until the submitter takes
 * them, as a driver's full queue would make it wait (their records would otherwise pile up in
 * memory). */
#define MAX_WAITING 4096
/* An idle submitter may poll for work a while before it sleeps (OCLCORE_SUBMIT_POLL=<us>, or
 * ocl_submit_poll_us). Waking a sleeping thread costs the thread that hands over a command a
 * system call (in a virtual machine, 5-15 us of its own time), which polling saves; but on the
 * H200 host with two cores, training steps interleaved with and without polling
 * (bench/probes/interleaved.py, round 17) ran 2-12% slower with it on six of the 14 seed
 * networks and faster on one (densenet161, 17%), although the Python thread spent less CPU
 * time: the polling thread takes CPU time the step's other threads want. So it
 * sleeps at once by default. Polling yields the core to any other thread that wants it, and only
 * happens where the process may run on two or more cores. */

/* A sleeping submitter may be woken once per few commands instead of once per command
 * (OCLCORE_SUBMIT_BATCH=<n>, or ocl_submit_batch): the handing-over thread then pays the wake-up
 * system call once per n launches. Meanwhile the submitter, active within the last ACTIVE_NS,
 * naps at most NAP_NS at a time, so no command waits longer than that to be enqueued; the first
 * command after a wait for the submitter (a synchronisation, a read) wakes it at once, so that
 * the device starts without delay. */
#define NAP_NS 200000
#define ACTIVE_NS 100000000

struct ocl_submitter {
  pthread_mutex_t mu;
  pthread_cond_t work, idle, room;
  ocl_command *head, *tail;
  int waiting; /* commands in the list */
  int busy;
  uint64_t poll_ns; /* how long the idle submitter polls before sleeping (0: it sleeps at once) */
  int batch;        /* commands handed over before a sleeping submitter is woken */
  int sleeping;     /* the submitter waits on `work` */
  int deep;         /* ... without a time limit: wake it for any command */
  int flush;        /* a thread waited for the submitter: wake it for the next command */
  uint64_t active_until; /* the submitter naps (timed waits) until then */
  cl_int error;
  char error_text[512];
};

ocl_command *ocl_command_new(cl_uint max_args) {
  return calloc(1, sizeof(ocl_command) + (max_args ? max_args : 1) * sizeof(ocl_arg));
}

static void run(ocl_device *d, ocl_submitter *s, ocl_command *c) {
  cl_int rc = CL_SUCCESS;
  const char *what;
  if (c->kind == OCL_COPY) {
    what = "clEnqueueCopyBuffer";
    rc = CL(clEnqueueCopyBuffer)(d->queue, c->src, c->dst, c->src_offset, c->dst_offset, c->nbytes, 0, NULL,
                                 NULL);
  } else if (c->kind == OCL_FILL) {
    what = "clEnqueueFillBuffer";
    rc = CL(clEnqueueFillBuffer)(d->queue, c->dst, c->pattern, c->pattern_size, c->dst_offset, c->nbytes, 0,
                                 NULL, NULL);
  } else {
    what = "clSetKernelArg";
    for (cl_uint i = 0; i < c->nargs && rc == CL_SUCCESS; i++) {
      ocl_arg *a = &c->args[i];
      rc = CL(clSetKernelArg)(c->kernel, a->index, a->size, a->local ? NULL : a->value);
    }
    if (rc == CL_SUCCESS && c->nd) {
      what = "clEnqueueNDRangeKernel";
      rc = CL(clEnqueueNDRangeKernel)(d->queue, c->kernel, c->nd, NULL, c->g, c->has_local ? c->l : NULL,
                                      0, NULL, NULL);
    }
  }
  if (rc != CL_SUCCESS) {
    pthread_mutex_lock(&s->mu);
    if (s->error == CL_SUCCESS) {
      s->error = rc;
      snprintf(s->error_text, sizeof s->error_text, "%s%s%s failed: %s", what, c->name ? " of kernel " : "",
               c->name ? c->name : "", ocl_error_name(rc));
    }
    pthread_mutex_unlock(&s->mu);
  }
}

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Called and returns with s->mu held, and with a command waiting. */
static void wait_for_work(ocl_submitter *s) {
  if (!s->head && s->poll_ns) {
    uint64_t until = now_ns() + s->poll_ns;
    pthread_mutex_unlock(&s->mu);
    while (!__atomic_load_n(&s->head, __ATOMIC_ACQUIRE) && now_ns() < until) sched_yield();
    pthread_mutex_lock(&s->mu);
  }
  while (!s->head) {
    s->sleeping = 1;
    uint64_t now = s->batch > 1 ? now_ns() : 0;
    s->deep = s->batch <= 1 || now >= s->active_until;
    if (s->deep) {
      pthread_cond_wait(&s->work, &s->mu);
    } else {
      uint64_t until = now + NAP_NS;
      struct timespec t = {(time_t)(until / 1000000000u), (long)(until % 1000000000u)};
      pthread_cond_timedwait(&s->work, &s->mu, &t);
    }
    s->sleeping = 0;
  }
}

static void *submitter_main(void *arg) {
  ocl_device *d = arg;
  ocl_submitter *s = d->submitter;
  pthread_mutex_lock(&s->mu);
  for (;;) {
    wait_for_work(s);
    ocl_command *c = s->head; /* all waiting commands at once: one lock per batch, not per command */
    __atomic_store_n(&s->head, NULL, __ATOMIC_RELEASE);
    s->tail = NULL;
    if (s->waiting >= MAX_WAITING) pthread_cond_broadcast(&s->room);
    s->waiting = 0;
    s->busy = 1;
    if (s->batch > 1) s->active_until = now_ns() + ACTIVE_NS;
    pthread_mutex_unlock(&s->mu);
    while (c) {
      ocl_command *next = c->next;
      run(d, s, c);
      free(c);
      c = next;
    }
    pthread_mutex_lock(&s->mu);
    s->busy = 0;
    if (!s->head) pthread_cond_broadcast(&s->idle);
  }
  return NULL;
}

static int usable_cores(void) {
  cpu_set_t set;
  return sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
}

static void forget_submitters(void) {
  /* a forked child has no submitter thread (and cannot use its parent's OpenCL context) */
  for (int i = 0; i < ocl_device_count(); i++) ocl_device_at(i)->submitter = NULL;
}

static void drain_submitters(void) {
  /* at exit, before the driver's own exit handlers (registered earlier, so run later) */
  for (int i = 0; i < ocl_device_count(); i++) ocl_submit_drain(ocl_device_at(i));
}

cl_int ocl_submit_start(ocl_device *d) {
  static int registered;
  if (d->submitter) return CL_SUCCESS;
  if (!registered) {
    pthread_atfork(NULL, NULL, forget_submitters);
    atexit(drain_submitters);
    registered = 1;
  }
  ocl_submitter *s = calloc(1, sizeof *s);
  if (!s) return ocl_fail(CL_OUT_OF_HOST_MEMORY, "allocating the launch submitter of %s", d->name);
  pthread_mutex_init(&s->mu, NULL);
  pthread_condattr_t monotonic; /* (the naps' deadlines are CLOCK_MONOTONIC times) */
  pthread_condattr_init(&monotonic);
  pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC);
  pthread_cond_init(&s->work, &monotonic);
  pthread_condattr_destroy(&monotonic);
  pthread_cond_init(&s->idle, NULL);
  pthread_cond_init(&s->room, NULL);
  const char *poll = getenv("OCLCORE_SUBMIT_POLL"); /* microseconds to poll before sleeping */
  long us = poll ? strtol(poll, NULL, 10) : 0;
  s->poll_ns = usable_cores() >= 2 && us > 0 ? (uint64_t)us * 1000u : 0;
  const char *batch = getenv("OCLCORE_SUBMIT_BATCH"); /* commands per wake-up of a sleeping submitter */
  long n = batch ? strtol(batch, NULL, 10) : 1;
  s->batch = n < 1 ? 1 : n > MAX_WAITING ? MAX_WAITING : (int)n;
  d->submitter = s;
  pthread_t thread;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  int failed = pthread_create(&thread, &attr, submitter_main, d);
  pthread_attr_destroy(&attr);
  if (!failed) pthread_setname_np(thread, "ocl-submit"); /* (what top -H and profilers show) */
  if (failed) {
    d->submitter = NULL;
    free(s);
    return ocl_fail(CL_OUT_OF_HOST_MEMORY, "starting the launch submitter thread of %s", d->name);
  }
  return CL_SUCCESS;
}

int64_t ocl_submit_poll_us(ocl_device *d, int64_t us) {
  ocl_submitter *s = d->submitter;
  if (!s) return -1;
  pthread_mutex_lock(&s->mu);
  if (us >= 0) s->poll_ns = (uint64_t)us * 1000u;
  int64_t now = (int64_t)(s->poll_ns / 1000u);
  pthread_mutex_unlock(&s->mu);
  return now;
}

int64_t ocl_submit_batch(ocl_device *d, int64_t n) {
  ocl_submitter *s = d->submitter;
  if (!s) return -1;
  pthread_mutex_lock(&s->mu);
  if (n >= 1) {
    s->batch = n > MAX_WAITING ? MAX_WAITING : (int)n;
    if (s->sleeping) pthread_cond_signal(&s->work); /* (it may sleep without a time limit now) */
  }
  int64_t now = s->batch;
  pthread_mutex_unlock(&s->mu);
  return now;
}

/* Wakes the submitter for commands handed over but not yet taken; called with s->mu held by a
 * thread about to wait for it. */
static void hurry(ocl_submitter *s) {
  if (s->head && s->sleeping) pthread_cond_signal(&s->work);
  s->flush = 1;
}

void ocl_submit(ocl_device *d, ocl_command *c) {
  ocl_submitter *s = d->submitter;
  pthread_mutex_lock(&s->mu);
  while (s->waiting >= MAX_WAITING) pthread_cond_wait(&s->room, &s->mu);
  s->waiting++;
  if (s->tail) s->tail->next = c;
  else __atomic_store_n(&s->head, c, __ATOMIC_RELEASE);
  s->tail = c;
  if (s->sleeping && (s->deep || s->flush || s->waiting >= s->batch)) {
    pthread_cond_signal(&s->work);
    s->flush = 0;
  }
  pthread_mutex_unlock(&s->mu);
}

void ocl_submit_drain(ocl_device *d) {
  ocl_submitter *s = d->submitter;
  if (!s) return;
  pthread_mutex_lock(&s->mu);
  hurry(s);
  while (s->head || s->busy) pthread_cond_wait(&s->idle, &s->mu);
  pthread_mutex_unlock(&s->mu);
}

cl_int ocl_submit_wait(ocl_device *d) {
  ocl_submitter *s = d->submitter;
  if (!s) return CL_SUCCESS;
  pthread_mutex_lock(&s->mu);
  hurry(s);
  while (s->head || s->busy) pthread_cond_wait(&s->idle, &s->mu);
  cl_int rc = s->error;
  char text[sizeof s->error_text];
  memcpy(text, s->error_text, sizeof text);
  s->error = CL_SUCCESS;
  pthread_mutex_unlock(&s->mu);
  return rc == CL_SUCCESS ? rc : ocl_fail(rc, "an earlier launch on %s: %s", d->name, text);
}
