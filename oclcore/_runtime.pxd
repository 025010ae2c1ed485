# Declarations of oclcore's C runtime (include/oclcore/runtime.h) for Cython.
from libc.stdint cimport uint64_t, int64_t, int32_t, uint32_t, intptr_t

cdef extern from "oclcore/runtime.h" nogil:
    ctypedef int32_t cl_int
    ctypedef uint32_t cl_uint
    ctypedef uint64_t cl_ulong
    ctypedef cl_ulong cl_device_type
    ctypedef void* cl_platform_id
    ctypedef void* cl_device_id
    ctypedef void* cl_context
    ctypedef void* cl_command_queue
    ctypedef void* cl_mem
    ctypedef void* cl_program
    ctypedef void* cl_kernel
    ctypedef void* cl_event

    int CL_SUCCESS
    int CL_TRUE
    int CL_FALSE
    int OCL_E_OUT_OF_MEMORY
    int OCL_E_BAD_ARGUMENT
    unsigned CL_KERNEL_WORK_GROUP_SIZE
    unsigned CL_PROFILING_COMMAND_QUEUED
    unsigned CL_PROFILING_COMMAND_START
    unsigned CL_PROFILING_COMMAND_END
    unsigned CL_EVENT_COMMAND_EXECUTION_STATUS
    int CL_COMPLETE

    ctypedef struct ocl_api_table:
        cl_int (*clSetKernelArg)(cl_kernel, cl_uint, size_t, const void*) noexcept nogil
        cl_int (*clEnqueueNDRangeKernel)(cl_command_queue, cl_kernel, cl_uint, const size_t*,
                                         const size_t*, const size_t*, cl_uint, const cl_event*,
                                         cl_event*) noexcept nogil
        cl_int (*clEnqueueReadBuffer)(cl_command_queue, cl_mem, cl_uint, size_t, size_t, void*,
                                      cl_uint, const cl_event*, cl_event*) noexcept nogil
        cl_int (*clEnqueueWriteBuffer)(cl_command_queue, cl_mem, cl_uint, size_t, size_t,
                                       const void*, cl_uint, const cl_event*, cl_event*) noexcept nogil
        cl_int (*clEnqueueCopyBuffer)(cl_command_queue, cl_mem, cl_mem, size_t, size_t, size_t,
                                      cl_uint, const cl_event*, cl_event*) noexcept nogil
        cl_int (*clEnqueueFillBuffer)(cl_command_queue, cl_mem, const void*, size_t, size_t,
                                      size_t, cl_uint, const cl_event*, cl_event*) noexcept nogil
        cl_kernel (*clCreateKernel)(cl_program, const char*, cl_int*) noexcept nogil
        cl_int (*clReleaseKernel)(cl_kernel) noexcept nogil
        cl_int (*clGetKernelWorkGroupInfo)(cl_kernel, cl_device_id, cl_uint, size_t, void*, size_t*) noexcept nogil
        cl_int (*clWaitForEvents)(cl_uint, const cl_event*) noexcept nogil
        cl_int (*clGetEventInfo)(cl_event, cl_uint, size_t, void*, size_t*) noexcept nogil
        cl_int (*clGetEventProfilingInfo)(cl_event, cl_uint, size_t, void*, size_t*) noexcept nogil
        cl_int (*clReleaseEvent)(cl_event) noexcept nogil
        cl_int (*clFlush)(cl_command_queue) noexcept nogil
        cl_int (*clFinish)(cl_command_queue) noexcept nogil
    ocl_api_table ocl_api

    const char* ocl_error_name(cl_int code)
    const char* ocl_last_error()
    cl_int ocl_fail(cl_int code, const char* fmt, ...)

    cl_int ocl_load(const char* path)
    void ocl_unload()
    int ocl_is_loaded()
    const char* ocl_loaded_path()

    ctypedef struct ocl_device:
        cl_device_id id
        cl_context context
        cl_command_queue queue
        int profiling
        char name[256]
        char vendor[256]
        char platform[256]
        char version[256]
        char driver_version[256]
        char* extensions
        cl_device_type type
        cl_uint compute_units
        cl_uint clock_mhz
        cl_uint preferred_vector_width_float
        cl_ulong global_mem
        cl_ulong local_mem
        cl_ulong max_alloc
        size_t max_work_group_size
        size_t max_parameter_size
        int fp16
        int fp64
        void* submitter

    ctypedef struct ocl_arg:
        cl_uint index
        cl_uint size
        int local
        unsigned char value[32]

    int OCL_LAUNCH
    int OCL_COPY
    int OCL_FILL

    ctypedef struct ocl_command:
        int kind
        cl_kernel kernel
        const char* name
        cl_uint nd
        size_t g[3]
        size_t l[3]
        int has_local
        cl_mem src
        cl_mem dst
        size_t src_offset, dst_offset, nbytes, pattern_size
        unsigned char pattern[128]
        cl_uint nargs
        ocl_arg args[1]

    ocl_command* ocl_command_new(cl_uint max_args)
    int64_t ocl_submit_poll_us(ocl_device* dev, int64_t us)
    int64_t ocl_submit_batch(ocl_device* dev, int64_t n)
    void ocl_submit(ocl_device* dev, ocl_command* command)
    void ocl_submit_drain(ocl_device* dev)
    cl_int ocl_submit_wait(ocl_device* dev)

    cl_int ocl_discover()
    int ocl_device_count()
    ocl_device* ocl_device_at(int index)
    cl_int ocl_device_open(ocl_device* dev)
    cl_int ocl_device_set_profiling(ocl_device* dev, int enabled)
    cl_int ocl_device_synchronize(ocl_device* dev)

    ctypedef struct ocl_block:
        cl_mem mem
        size_t size
        size_t requested

    ctypedef struct ocl_memory_stats:
        size_t allocated, max_allocated, reserved, max_reserved, requested
        uint64_t allocations, frees, cache_hits, segments_created, segments_freed, ooms
        uint64_t idle_after

    cl_int ocl_malloc(ocl_device* dev, size_t nbytes, ocl_block** out)
    void ocl_free(ocl_device* dev, ocl_block* block)
    void ocl_empty_cache(ocl_device* dev)
    void ocl_memory_stats_get(ocl_device* dev, ocl_memory_stats* out)
    void ocl_reset_peak_stats(ocl_device* dev)
    void ocl_set_memory_limit(ocl_device* dev, size_t limit)
    size_t ocl_memory_limit(ocl_device* dev)

    ctypedef struct ocl_program_stats:
        uint64_t compiled, disk_hits, memory_hits, disk_rejected

    void ocl_set_cache_dir(const char* dir)
    const char* ocl_cache_dir()
    cl_int ocl_build(ocl_device* dev, const char* source, const char* options, const char* name,
                     cl_program* out)
    char* ocl_build_log()
    void ocl_program_stats_get(ocl_program_stats* out)


cdef enum:
    BUFFER_ARG = 255  # Kernel._last_size of an argument whose _last holds a buffer's serial


cdef class Device:
    cdef ocl_device* dev
    cdef readonly int index
    cdef ocl_device* _d(self) except NULL
    cdef object _submitter_setting(self, int64_t (*setting)(ocl_device*, int64_t) noexcept nogil, bint read, object value,
                                   int64_t least, str name)


cdef class Buffer:
    cdef ocl_block* block
    cdef object __weakref__
    cdef readonly Device device
    # unique per Buffer object for the process's life (0 is never used): what a kernel's
    # argument cache compares, as a cl_mem handle can be reused by a later allocation
    cdef readonly uint64_t serial
    cdef int _range(self, Py_ssize_t offset, Py_ssize_t nbytes, str what) except -1
    cdef ocl_block* _b(self) except NULL
    cdef Py_ssize_t _transfer(self, obj, Py_ssize_t offset, bint to_device) except -1
    cdef int _blocking_copy(self, void* host, Py_ssize_t n, Py_ssize_t offset, bint to_device) except -1


cdef class Program:
    cdef cl_program program
    cdef readonly Device device
    cdef readonly str name


cdef class Kernel:
    cdef cl_kernel kernel
    cdef readonly Device device
    cdef readonly Program program
    cdef readonly str name
    cdef readonly str signature
    cdef bytes sig
    cdef bytes bname  # the name as C text, for a submitted launch's error
    cdef int nargs
    # per argument, the value bytes last set (a buffer's serial for buffers) and their count:
    # unchanged ones are not set again
    cdef unsigned char (*_last)[32]
    cdef unsigned char* _last_size
    cdef cl_int _set_arg(self, cl_kernel kernel, bint cached, Py_ssize_t i, size_t size,
                         const void* value) except -1
    cdef int bind(self, cl_kernel kernel, tuple args, bint cached) except -1
    cdef int sizes(self, tuple gsize, object lsize, cl_uint* nd, size_t* g, size_t* l) except -1
    cdef cl_int launch_c(self, tuple gsize, object lsize, tuple args, cl_event* event) except -1
    cdef int _submit(self, int nonempty, cl_uint nd, size_t* g, size_t* l, tuple args) except -1


cdef class Event:
    cdef cl_event event
    cdef uint64_t _time(self, unsigned what) except? 0
