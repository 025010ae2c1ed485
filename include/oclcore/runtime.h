/* oclcore's C runtime: loading libOpenCL, devices and their queues, the
 * caching allocator, the program cache and error text.
 *
 * Every function that can fail returns a cl_int (CL_SUCCESS or an OpenCL or
 * OCL_E_* code) and leaves a message naming the failed call in
 * ocl_last_error(). The runtime is not thread-safe by itself: the Python
 * layer calls it with the GIL held (a device's launch submitter, submit.c,
 * is the one other thread, and owns only what is handed to it). */
#ifndef OCLCORE_RUNTIME_H
#define OCLCORE_RUNTIME_H

#include "oclcore/cl_api.h"

/* oclcore's own error codes, outside OpenCL's range. */
#define OCL_E_NOT_LOADED (-9001)
#define OCL_E_OUT_OF_MEMORY (-9002)
#define OCL_E_BAD_ARGUMENT (-9003)
#define OCL_E_BUILD_FAILED (-9004)
#define OCL_E_LOAD_FAILED (-9005)

/* ---- errors.c ---- */
const char *ocl_error_name(cl_int code);
const char *ocl_last_error(void);
cl_int ocl_fail(cl_int code, const char *fmt, ...);

/* ---- loader.c ---- */
/* Loads libOpenCL from `path`, or from the system (libOpenCL.so.1) when NULL. */
cl_int ocl_load(const char *path);
/* Forgets the library (only before any device was opened). */
void ocl_unload(void);
int ocl_is_loaded(void);
const char *ocl_loaded_path(void);

/* ---- device.c ---- */
typedef struct ocl_allocator ocl_allocator;
typedef struct ocl_program_cache ocl_program_cache;
typedef struct ocl_submitter ocl_submitter;

typedef struct {
  cl_platform_id platform_id;
  cl_device_id id;
  cl_context context;
  cl_command_queue queue;
  int profiling;
  char name[256];
  char vendor[256];
  char platform[256];
  char version[256];
  char driver_version[256];
  char *extensions;
  cl_device_type type;
  cl_uint compute_units;
  cl_uint clock_mhz;
  cl_uint preferred_vector_width_float;
  cl_ulong global_mem;
  cl_ulong local_mem;
  cl_ulong max_alloc;
  size_t max_work_group_size;
  size_t max_parameter_size; /* bytes of kernel arguments a launch may pass */
  int fp16;
  int fp64;
  ocl_allocator *allocator;
  ocl_program_cache *programs;
  ocl_submitter *submitter; /* NULL: launches are enqueued by the calling thread */
} ocl_device;

/* Lists every device of every platform, GPUs and accelerators first. */
cl_int ocl_discover(void);
int ocl_device_count(void);
ocl_device *ocl_device_at(int index);
/* Creates the device's context and in-order queue on first use, and the launch
 * submitter where OCLCORE_SUBMIT_THREAD asks for one (1: always, 0: never,
 * unset: on GPUs and accelerators). */
cl_int ocl_device_open(ocl_device *dev);
/* Recreates the queue with or without profiling (waits for queued work). */
cl_int ocl_device_set_profiling(ocl_device *dev, int enabled);
cl_int ocl_device_synchronize(ocl_device *dev);

/* ---- submit.c ---- */
typedef struct {
  cl_uint index;
  cl_uint size;
  int local; /* local memory of `size` bytes: no value */
  unsigned char value[32];
} ocl_arg;

/* One command handed to the submitter. OCL_LAUNCH: the arguments to set
 * first (those changed since the kernel's previous launch), then the enqueue
 * (none when nd is 0: arguments only); OCL_COPY: src -> dst; OCL_FILL: dst
 * filled with the pattern. */
enum { OCL_LAUNCH, OCL_COPY, OCL_FILL };
typedef struct ocl_command {
  struct ocl_command *next;
  int kind;
  cl_kernel kernel;
  const char *name; /* the kernel's, for error text; must outlive the command */
  cl_uint nd;
  size_t g[3], l[3];
  int has_local;
  cl_mem src, dst;
  size_t src_offset, dst_offset, nbytes, pattern_size;
  unsigned char pattern[128];
  cl_uint nargs;
  ocl_arg args[];
} ocl_command;

/* A zeroed command with room for `max_args` arguments (free()d by the submitter). */
ocl_command *ocl_command_new(cl_uint max_args);
cl_int ocl_submit_start(ocl_device *dev);
/* Sets how long dev's idle submitter polls for work before it sleeps, in microseconds, when `us`
 * >= 0 (0: it sleeps at once); returns the setting, or -1 when dev has no submitter. */
int64_t ocl_submit_poll_us(ocl_device *dev, int64_t us);
/* Sets after how many commands handed over a sleeping submitter is woken, when n >= 1 (1: at
 * every command; more: it naps, at most 200 us at a time, while active); returns the setting,
 * or -1 when dev has no submitter. */
int64_t ocl_submit_batch(ocl_device *dev, int64_t n);
/* Hands `command` to dev's submitter (which must exist). */
void ocl_submit(ocl_device *dev, ocl_command *command);
/* Waits until dev's submitter has enqueued every command handed to it. */
void ocl_submit_drain(ocl_device *dev);
/* ocl_submit_drain, then the first error among those commands (forgotten
 * once returned), or CL_SUCCESS. */
cl_int ocl_submit_wait(ocl_device *dev);

/* ---- allocator.c ---- */
typedef struct ocl_block {
  cl_mem mem;          /* a cl_mem of its own */
  size_t size;         /* bytes reserved for this block (rounded) */
  size_t requested;    /* bytes asked for */
  int free;
  struct ocl_block *next_free; /* the free list of its size */
} ocl_block;

typedef struct {
  size_t allocated, max_allocated;
  size_t reserved, max_reserved;
  size_t requested;
  uint64_t allocations, frees, cache_hits, segments_created, segments_freed,
      ooms; /* (a segment is one block's cl_mem) */
  uint64_t idle_after; /* allocations after which an unrequested size's free blocks count as idle */
} ocl_memory_stats;

/* Returns a block of at least `nbytes`; OCL_E_OUT_OF_MEMORY when the device
 * cannot hold it even after the cache has been released. */
cl_int ocl_malloc(ocl_device *dev, size_t nbytes, ocl_block **out);
void ocl_free(ocl_device *dev, ocl_block *block);
/* Releases every free block. */
void ocl_empty_cache(ocl_device *dev);
void ocl_memory_stats_get(ocl_device *dev, ocl_memory_stats *out);
void ocl_reset_peak_stats(ocl_device *dev);
/* Caps the bytes the allocator may reserve on this device (0: the device's
 * global memory size). */
void ocl_set_memory_limit(ocl_device *dev, size_t limit);
size_t ocl_memory_limit(ocl_device *dev);

/* ---- program.c ---- */
typedef struct {
  uint64_t compiled;    /* built from source */
  uint64_t disk_hits;   /* loaded as binaries from the disk cache */
  uint64_t memory_hits; /* found in this process's cache */
  uint64_t disk_rejected; /* corrupt or unusable disk entries rebuilt */
} ocl_program_stats;

/* Sets the folder of the on-disk binary cache (NULL or "" disables it). */
void ocl_set_cache_dir(const char *dir);
const char *ocl_cache_dir(void);
/* Builds `source` with `options` through the memory and disk caches. `name`
 * labels errors. The program stays owned by the cache. */
cl_int ocl_build(ocl_device *dev, const char *source, const char *options,
                 const char *name, cl_program *out);
char *ocl_build_log(void); /* the log of the last failed build; caller frees */
void ocl_program_stats_get(ocl_program_stats *out);

#endif
