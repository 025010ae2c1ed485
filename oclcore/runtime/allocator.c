/* A caching allocator in the manner of PyTorch's CUDA one.
 *
 * Memory is reserved from OpenCL in segments (one cl_mem each) and handed out
 * as blocks. A block that does not start its segment is a sub-buffer, so
 * kernels and copies see every block as a whole cl_mem; the sub-buffer lives
 * as long as the block keeps its offset and size, so a training loop that
 * allocates the same sizes each step creates none after the first.
 * Requests of up to 1 MiB come from 2 MiB segments, larger ones from 20 MiB
 * segments or a segment of their own size rounded to 2 MiB. Freed blocks go
 * back to a free list and merge with free neighbours; in-order queues make
 * reuse safe while kernels that used the block are still queued. */
#include <stdlib.h>
#include <string.h>

#include "oclcore/runtime.h"

#define MIN_BLOCK ((size_t)512) /* also the sub-buffer alignment we need */
#define SMALL_SIZE ((size_t)1 << 20)
#define SMALL_SEGMENT ((size_t)2 << 20)
#define LARGE_SEGMENT ((size_t)20 << 20)
#define MIN_LARGE_ALLOC ((size_t)10 << 20)
#define ROUND_LARGE ((size_t)2 << 20)

struct ocl_segment {
  cl_mem mem;
  size_t size;
  int small;
  ocl_block *first;
  struct ocl_segment *prev, *next;
};

struct ocl_allocator {
  ocl_segment *segments;
  ocl_block *free_small, *free_large;
  ocl_memory_stats stats;
  size_t limit;
};

static size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

static ocl_allocator *allocator_of(ocl_device *dev) {
  if (!dev->allocator) dev->allocator = calloc(1, sizeof(ocl_allocator));
  return dev->allocator;
}

static ocl_block **pool_of(ocl_allocator *a, int small) {
  return small ? &a->free_small : &a->free_large;
}

static void free_list_push(ocl_block **head, ocl_block *b) {
  b->free_prev = NULL;
  b->free_next = *head;
  if (*head) (*head)->free_prev = b;
  *head = b;
}

static void free_list_remove(ocl_block **head, ocl_block *b) {
  if (b->free_prev) b->free_prev->free_next = b->free_next;
  else *head = b->free_next;
  if (b->free_next) b->free_next->free_prev = b->free_prev;
  b->free_prev = b->free_next = NULL;
}

static ocl_block *best_fit(ocl_block *head, size_t size) {
  ocl_block *best = NULL;
  for (ocl_block *b = head; b; b = b->free_next)
    if (b->size >= size && (!best || b->size < best->size)) {
      best = b;
      if (b->size == size) break;
    }
  return best;
}

static void drop_view(ocl_block *b) {
  if (b->mem && b->mem != b->segment->mem) CL(clReleaseMemObject)(b->mem);
  b->mem = NULL;
}

static cl_int make_view(ocl_device *dev, ocl_block *b) {
  if (b->mem) return CL_SUCCESS;
  if (b->offset == 0) {
    b->mem = b->segment->mem;
    return CL_SUCCESS;
  }
  size_t region[2] = {b->offset, b->size};
  cl_int rc;
  b->mem = CL(clCreateSubBuffer)(b->segment->mem, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION,
                                 region, &rc);
  if (rc != CL_SUCCESS) {
    b->mem = NULL;
    return ocl_fail(rc, "clCreateSubBuffer failed on %s", dev->name);
  }
  return CL_SUCCESS;
}

static void release_segment(ocl_allocator *a, ocl_segment *s) {
  ocl_block *b = s->first;
  free_list_remove(pool_of(a, s->small), b);
  drop_view(b);
  free(b);
  if (s->prev) s->prev->next = s->next;
  else a->segments = s->next;
  if (s->next) s->next->prev = s->prev;
  CL(clReleaseMemObject)(s->mem);
  a->stats.reserved -= s->size;
  a->stats.segments_freed++;
  free(s);
}

void ocl_empty_cache(ocl_device *dev) {
  ocl_allocator *a = allocator_of(dev);
  if (!a) return;
  ocl_segment *s = a->segments;
  while (s) {
    ocl_segment *next = s->next;
    if (s->first->free && s->first->next == NULL) release_segment(a, s);
    s = next;
  }
}

static size_t effective_limit(ocl_device *dev, ocl_allocator *a) {
  return a->limit ? a->limit : (size_t)dev->global_mem;
}

/* Reserves a new segment for a block of `size` bytes in the given pool. */
static cl_int new_segment(ocl_device *dev, ocl_allocator *a, size_t size, size_t requested, int small,
                          ocl_segment **out) {
  size_t seg = small ? SMALL_SEGMENT : (size < MIN_LARGE_ALLOC ? LARGE_SEGMENT : round_up(size, ROUND_LARGE));
  if (seg > dev->max_alloc) seg = size; /* the rounding must not break the object limit */
  if (size > dev->max_alloc) {
    a->stats.ooms++;
    return ocl_fail(OCL_E_OUT_OF_MEMORY,
                    "tried to allocate %zu bytes (%.2f MiB), more than the largest single allocation %s "
                    "allows (CL_DEVICE_MAX_MEM_ALLOC_SIZE = %llu bytes)",
                    requested, requested / 1048576.0, dev->name, (unsigned long long)dev->max_alloc);
  }
  for (int attempt = 0; attempt < 2; attempt++) {
    cl_int rc = CL_SUCCESS;
    cl_mem mem = NULL;
    if (a->stats.reserved + seg <= effective_limit(dev, a)) {
      mem = CL(clCreateBuffer)(dev->context, CL_MEM_READ_WRITE, seg, NULL, &rc);
      if (rc != CL_SUCCESS) mem = NULL;
    }
    if (mem) {
      ocl_segment *s = calloc(1, sizeof *s);
      ocl_block *b = calloc(1, sizeof *b);
      if (!s || !b) {
        free(s);
        free(b);
        CL(clReleaseMemObject)(mem);
        return ocl_fail(CL_OUT_OF_HOST_MEMORY, "allocating allocator bookkeeping");
      }
      s->mem = mem;
      s->size = seg;
      s->small = small;
      s->first = b;
      s->next = a->segments;
      if (a->segments) a->segments->prev = s;
      a->segments = s;
      b->segment = s;
      b->size = seg;
      b->free = 1;
      free_list_push(pool_of(a, small), b);
      a->stats.reserved += seg;
      if (a->stats.reserved > a->stats.max_reserved) a->stats.max_reserved = a->stats.reserved;
      a->stats.segments_created++;
      *out = s;
      return CL_SUCCESS;
    }
    if (attempt == 0) ocl_empty_cache(dev);
  }
  a->stats.ooms++;
  size_t limit = effective_limit(dev, a);
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
  size_t align = dev->mem_base_addr_align_bits / 8 > MIN_BLOCK ? dev->mem_base_addr_align_bits / 8 : MIN_BLOCK;
  size_t size = round_up(nbytes ? nbytes : 1, align);
  int small = size <= SMALL_SIZE;
  ocl_block **pool = pool_of(a, small);
  ocl_block *b = best_fit(*pool, size);
  if (b) {
    a->stats.cache_hits++;
  } else {
    ocl_segment *s;
    rc = new_segment(dev, a, size, nbytes, small, &s);
    if (rc != CL_SUCCESS) return rc;
    b = s->first;
  }
  free_list_remove(pool, b);
  size_t rest = b->size - size;
  if (rest >= (small ? align : SMALL_SIZE + 1)) {
    ocl_block *r = calloc(1, sizeof *r);
    if (r) {
      drop_view(b);
      r->segment = b->segment;
      r->offset = b->offset + size;
      r->size = rest;
      r->free = 1;
      r->prev = b;
      r->next = b->next;
      if (b->next) b->next->prev = r;
      b->next = r;
      b->size = size;
      free_list_push(pool, r);
    }
  }
  rc = make_view(dev, b);
  if (rc != CL_SUCCESS) {
    free_list_push(pool, b);
    return rc;
  }
  b->free = 0;
  b->requested = nbytes;
  a->stats.allocated += b->size;
  a->stats.requested += nbytes;
  if (a->stats.allocated > a->stats.max_allocated) a->stats.max_allocated = a->stats.allocated;
  a->stats.allocations++;
  *out = b;
  return CL_SUCCESS;
}

static void merge_into_prev(ocl_block *prev, ocl_block *b) {
  drop_view(prev);
  drop_view(b);
  prev->size += b->size;
  prev->next = b->next;
  if (b->next) b->next->prev = prev;
  free(b);
}

void ocl_free(ocl_device *dev, ocl_block *b) {
  ocl_allocator *a = dev->allocator;
  if (!a || !b || b->free) return;
  int small = b->segment->small;
  ocl_block **pool = pool_of(a, small);
  a->stats.allocated -= b->size;
  a->stats.requested -= b->requested;
  a->stats.frees++;
  b->free = 1;
  if (b->next && b->next->free) {
    free_list_remove(pool, b->next);
    merge_into_prev(b, b->next);
  }
  if (b->prev && b->prev->free) {
    ocl_block *prev = b->prev;
    free_list_remove(pool, prev);
    merge_into_prev(prev, b);
    b = prev;
  }
  free_list_push(pool, b);
}

void ocl_memory_stats_get(ocl_device *dev, ocl_memory_stats *out) {
  ocl_allocator *a = allocator_of(dev);
  if (a) *out = a->stats;
  else memset(out, 0, sizeof *out);
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
