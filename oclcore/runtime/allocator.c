/* A caching allocator: every block is a cl_mem of its own, kept for reuse.
 *
 * Requests are rounded up (to 512 bytes; past 1 MiB to a quarter of their
 * power of two, so sizes that vary a little share blocks) and a freed block
 * waits in the free list of its rounded size until a request of that size
 * takes it back: a training loop that allocates the same sizes each step
 * creates no cl_mem after its first step. In-order queues make reuse safe
 * while kernels that used the block are still queued.
 *
 * Blocks are not cut from larger buffers as sub-buffers: on NVIDIA's driver
 * creating sub-buffers, and launching kernels on buffers that have many, cost
 * more host time than whole buffers (bench/results/h200-round8.md), and whole
 * buffers need no alignment or overlap rules. The cache is bounded instead:
 * once free blocks hold more than the peak of live ones plus CACHE_SLACK, a
 * request that misses first releases the free blocks of sizes nobody asked
 * for lately: in the last IDLE_MIN allocations, or twice the longest reuse
 * distance seen (allocations between two requests of one size) if that is
 * longer, but at most IDLE_MAX (a size asked for once in a long while, as a
 * periodic evaluation's, must not keep every size cached for good). A
 * training loop asks for each of its sizes once a step, so it keeps all its
 * blocks; sizes of a shape no longer used go at the next such miss.
 * (Releasing every free block instead made a resnet18 step at batch 64
 * re-create 170-234 of its 556 blocks every step: its size classes' peaks add
 * up to 2.4 times its peak of live bytes.) A request past the memory limit
 * first releases free blocks of the sizes requested least recently, as many
 * as it needs; when the device refuses, every free block goes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oclcore/runtime.h"

#define MIN_BLOCK ((size_t)512)
#define SMALL_SIZE ((size_t)1 << 20)
#define CACHE_SLACK ((size_t)64 << 20)
#define IDLE_MIN ((uint64_t)4096)
#define IDLE_MAX ((uint64_t)1 << 20)

typedef struct {
  size_t size; /* 0: an empty slot */
  ocl_block *free;
  uint64_t last_request; /* the allocator's clock at the last request of this size */
} ocl_size_class;

struct ocl_allocator {
  ocl_size_class *classes; /* open-addressed by size; capacity a power of two */
  size_t nclasses, capacity;
  size_t cached; /* bytes in free blocks */
  uint64_t clock;        /* allocations so far */
  uint64_t reuse_span;   /* the longest reuse distance seen (allocations between requests of one size) */
  ocl_memory_stats stats;
  size_t limit;
};

static size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

static size_t rounded(size_t n) {
  if (n <= SMALL_SIZE) return round_up(n ? n : 1, MIN_BLOCK);
  size_t p = SMALL_SIZE;
  while (p <= n / 2) p *= 2; /* the power of two at or below n */
  return round_up(n, p / 4);
}

static ocl_allocator *allocator_of(ocl_device *dev) {
  if (!dev->allocator) dev->allocator = calloc(1, sizeof(ocl_allocator));
  return dev->allocator;
}

static ocl_size_class *class_slot(ocl_size_class *classes, size_t capacity, size_t size) {
  size_t i = (size / MIN_BLOCK) * 0x9E3779B97F4A7C15ull & (capacity - 1);
  while (classes[i].size && classes[i].size != size) i = (i + 1) & (capacity - 1);
  return &classes[i];
}

/* The free list of blocks of `size` bytes (NULL only when out of host memory). */
static ocl_size_class *size_class(ocl_allocator *a, size_t size) {
  if (a->capacity) {
    ocl_size_class *c = class_slot(a->classes, a->capacity, size);
    if (c->size) return c;
  }
  if (2 * (a->nclasses + 1) > a->capacity) {
    size_t capacity = a->capacity ? 2 * a->capacity : 64;
    ocl_size_class *grown = calloc(capacity, sizeof *grown);
    if (!grown) return NULL;
    for (size_t i = 0; i < a->capacity; i++)
      if (a->classes[i].size) *class_slot(grown, capacity, a->classes[i].size) = a->classes[i];
    free(a->classes);
    a->classes = grown;
    a->capacity = capacity;
  }
  ocl_size_class *c = class_slot(a->classes, a->capacity, size);
  c->size = size;
  a->nclasses++;
  return c;
}

static void release_block(ocl_device *dev, ocl_allocator *a, ocl_block *b) {
  ocl_submit_drain(dev); /* (launches handed to the submitter may still name it) */
  CL(clReleaseMemObject)(b->mem);
  a->stats.reserved -= b->size;
  a->stats.segments_freed++;
  free(b);
}

/* Releases the free blocks of the sizes last requested before clock `before`. */
static void release_free_blocks(ocl_device *dev, ocl_allocator *a, uint64_t before) {
  for (size_t i = 0; i < a->capacity; i++) {
    ocl_size_class *c = &a->classes[i];
    if (!c->size || c->last_request >= before) continue;
    while (c->free) {
      ocl_block *b = c->free;
      c->free = b->next_free;
      a->cached -= b->size;
      release_block(dev, a, b);
    }
  }
}

void ocl_empty_cache(ocl_device *dev) {
  ocl_allocator *a = dev->allocator;
  if (a) release_free_blocks(dev, a, UINT64_MAX);
}

/* Releases the free blocks of the sizes requested least recently until `bytes` are released or
 * none is left. */
static void release_oldest(ocl_device *dev, ocl_allocator *a, size_t bytes) {
  size_t released = 0;
  while (released < bytes && a->cached) {
    ocl_size_class *oldest = NULL;
    for (size_t i = 0; i < a->capacity; i++) {
      ocl_size_class *c = &a->classes[i];
      if (c->free && (!oldest || c->last_request < oldest->last_request)) oldest = c;
    }
    while (oldest->free) {
      ocl_block *b = oldest->free;
      oldest->free = b->next_free;
      a->cached -= b->size;
      released += b->size;
      release_block(dev, a, b);
    }
  }
}

/* Allocations after which a size nobody requested counts as idle (see the top of this file). */
static uint64_t idle_after(const ocl_allocator *a) {
  uint64_t idle = 2 * a->reuse_span > IDLE_MIN ? 2 * a->reuse_span : IDLE_MIN;
  return idle > IDLE_MAX ? IDLE_MAX : idle;
}

/* Releases the free blocks of sizes not requested lately. */
static void release_idle_blocks(ocl_device *dev, ocl_allocator *a) {
  uint64_t idle = idle_after(a);
  if (a->clock > idle) release_free_blocks(dev, a, a->clock - idle);
}

static size_t effective_limit(ocl_device *dev, ocl_allocator *a) {
  return a->limit ? a->limit : (size_t)dev->global_mem;
}

/* A new block of `size` bytes; releases the cache and retries once when the limit or the
 * device refuses. */
static cl_int new_block(ocl_device *dev, ocl_allocator *a, size_t size, size_t requested, ocl_block **out) {
  if (size > dev->max_alloc) {
    a->stats.ooms++;
    return ocl_fail(OCL_E_OUT_OF_MEMORY,
                    "tried to allocate %zu bytes (%.2f MiB), more than the largest single allocation %s "
                    "allows (CL_DEVICE_MAX_MEM_ALLOC_SIZE = %llu bytes)",
                    requested, requested / 1048576.0, dev->name, (unsigned long long)dev->max_alloc);
  }
  if (a->cached > a->stats.max_allocated + CACHE_SLACK) release_idle_blocks(dev, a);
  size_t limit = effective_limit(dev, a);
  if (a->stats.reserved + size > limit) release_oldest(dev, a, a->stats.reserved + size - limit);
  for (int attempt = 0; attempt < 2; attempt++) {
    cl_int rc = CL_SUCCESS;
    cl_mem mem = NULL;
    if (a->stats.reserved + size <= limit) {
      mem = CL(clCreateBuffer)(dev->context, CL_MEM_READ_WRITE, size, NULL, &rc);
      if (rc != CL_SUCCESS) mem = NULL;
    }
    if (mem) {
      ocl_block *b = calloc(1, sizeof *b);
      if (!b) {
        CL(clReleaseMemObject)(mem);
        return ocl_fail(CL_OUT_OF_HOST_MEMORY, "allocating allocator bookkeeping");
      }
      b->mem = mem;
      b->size = size;
      a->stats.reserved += size;
      if (a->stats.reserved > a->stats.max_reserved) a->stats.max_reserved = a->stats.reserved;
      a->stats.segments_created++;
      *out = b;
      return CL_SUCCESS;
    }
    if (attempt == 0) ocl_empty_cache(dev);
  }
  a->stats.ooms++;
  return ocl_fail(OCL_E_OUT_OF_MEMORY,
                  "tried to allocate %zu bytes (%.2f MiB) on %s; %.2f MiB of %.2f MiB "
                  "are reserved, %.2f MiB allocated",
                  requested, requested / 1048576.0, dev->name, a->stats.reserved / 1048576.0,
                  limit / 1048576.0, a->stats.allocated / 1048576.0);
}

cl_int ocl_malloc(ocl_device *dev, size_t nbytes, ocl_block **out) {
  cl_int rc = ocl_device_open(dev);
  if (rc != CL_SUCCESS) return rc;
  ocl_allocator *a = allocator_of(dev);
  if (!a) return ocl_fail(CL_OUT_OF_HOST_MEMORY, "allocating the allocator");
  if (nbytes > ((size_t)1 << 62)) return ocl_fail(OCL_E_OUT_OF_MEMORY, "tried to allocate %zu bytes on %s", nbytes, dev->name);
  size_t size = rounded(nbytes);
  if (size > dev->max_alloc) size = round_up(nbytes, MIN_BLOCK); /* the rounding must not break the object limit */
  ocl_size_class *c = size_class(a, size);
  if (!c) return ocl_fail(CL_OUT_OF_HOST_MEMORY, "allocating allocator bookkeeping");
  if (c->last_request && a->clock - c->last_request > a->reuse_span) a->reuse_span = a->clock - c->last_request;
  c->last_request = ++a->clock;
  ocl_block *b = c->free;
  if (b) {
    c->free = b->next_free;
    a->cached -= size;
    a->stats.cache_hits++;
  } else {
    rc = new_block(dev, a, size, nbytes, &b);
    if (rc != CL_SUCCESS) return rc;
  }
  b->next_free = NULL;
  b->free = 0;
  b->requested = nbytes;
  a->stats.allocated += b->size;
  a->stats.requested += nbytes;
  if (a->stats.allocated > a->stats.max_allocated) a->stats.max_allocated = a->stats.allocated;
  a->stats.allocations++;
  *out = b;
  return CL_SUCCESS;
}

void ocl_free(ocl_device *dev, ocl_block *b) {
  ocl_allocator *a = dev->allocator;
  if (!a || !b || b->free) return;
  a->stats.allocated -= b->size;
  a->stats.requested -= b->requested;
  a->stats.frees++;
  b->free = 1;
  ocl_size_class *c = size_class(a, b->size); /* (exists: the block was allocated through it) */
  b->next_free = c->free;
  c->free = b;
  a->cached += b->size;
}

void ocl_memory_stats_get(ocl_device *dev, ocl_memory_stats *out) {
  ocl_allocator *a = allocator_of(dev);
  if (a) {
    *out = a->stats;
    out->idle_after = idle_after(a);
  } else {
    memset(out, 0, sizeof *out);
    out->idle_after = IDLE_MIN;
  }
}

void ocl_reset_peak_stats(ocl_device *dev) {
  ocl_allocator *a = allocator_of(dev);
  if (!a) return;
  a->stats.max_allocated = a->stats.allocated;
  a->stats.max_reserved = a->stats.reserved;
}

void ocl_set_memory_limit(ocl_device *dev, size_t limit) {
  ocl_allocator *a = allocator_of(dev);
  if (a) a->limit = limit;
}

size_t ocl_memory_limit(ocl_device *dev) {
  ocl_allocator *a = allocator_of(dev);
  return a ? effective_limit(dev, a) : (size_t)dev->global_mem;
}
