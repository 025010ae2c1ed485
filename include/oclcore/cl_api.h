/* The subset of the OpenCL 1.2 API that oclcore uses, declared here so that
 * building needs no OpenCL SDK. Functions are reached through a table filled
 * by ocl_load() from whichever libOpenCL is found at run time. */
#ifndef OCLCORE_CL_API_H
#define OCLCORE_CL_API_H

#include <stddef.h>
#include <stdint.h>

typedef int32_t cl_int;
typedef uint32_t cl_uint;
typedef uint64_t cl_ulong;
typedef cl_ulong cl_bitfield;
typedef cl_bitfield cl_device_type;
typedef cl_bitfield cl_mem_flags;
typedef cl_bitfield cl_command_queue_properties;
typedef cl_uint cl_bool;
typedef cl_uint cl_platform_info;
typedef cl_uint cl_device_info;
typedef cl_uint cl_program_info;
typedef cl_uint cl_program_build_info;
typedef cl_uint cl_kernel_work_group_info;
typedef cl_uint cl_profiling_info;
typedef intptr_t cl_context_properties;

typedef struct _cl_platform_id *cl_platform_id;
typedef struct _cl_device_id *cl_device_id;
typedef struct _cl_context *cl_context;
typedef struct _cl_command_queue *cl_command_queue;
typedef struct _cl_mem *cl_mem;
typedef struct _cl_program *cl_program;
typedef struct _cl_kernel *cl_kernel;
typedef struct _cl_event *cl_event;

#define CL_SUCCESS 0
#define CL_TRUE 1
#define CL_FALSE 0
#define CL_OUT_OF_HOST_MEMORY (-6)

#define CL_PLATFORM_VERSION 0x0901
#define CL_PLATFORM_NAME 0x0902
#define CL_PLATFORM_VENDOR 0x0903

#define CL_DEVICE_TYPE_CPU (1 << 1)
#define CL_DEVICE_TYPE_GPU (1 << 2)
#define CL_DEVICE_TYPE_ACCELERATOR (1 << 3)
#define CL_DEVICE_TYPE_ALL 0xFFFFFFFF

#define CL_DEVICE_TYPE 0x1000
#define CL_DEVICE_MAX_COMPUTE_UNITS 0x1002
#define CL_DEVICE_MAX_WORK_GROUP_SIZE 0x1004
#define CL_DEVICE_MAX_PARAMETER_SIZE 0x1017
#define CL_DEVICE_PREFERRED_VECTOR_WIDTH_FLOAT 0x100A
#define CL_DEVICE_MAX_CLOCK_FREQUENCY 0x100C
#define CL_DEVICE_MAX_MEM_ALLOC_SIZE 0x1010
#define CL_DEVICE_MEM_BASE_ADDR_ALIGN 0x1019
#define CL_DEVICE_GLOBAL_MEM_SIZE 0x101F
#define CL_DEVICE_LOCAL_MEM_SIZE 0x1023
#define CL_DEVICE_NAME 0x102B
#define CL_DEVICE_VENDOR 0x102C
#define CL_DRIVER_VERSION 0x102D
#define CL_DEVICE_VERSION 0x102F
#define CL_DEVICE_EXTENSIONS 0x1030

#define CL_QUEUE_PROFILING_ENABLE (1 << 1)

#define CL_MEM_READ_WRITE (1 << 0)
#define CL_BUFFER_CREATE_TYPE_REGION 0x1220

#define CL_PROGRAM_BINARY_SIZES 0x1165
#define CL_PROGRAM_BINARIES 0x1166
#define CL_PROGRAM_BUILD_LOG 0x1183

#define CL_KERNEL_WORK_GROUP_SIZE 0x11B0

#define CL_PROFILING_COMMAND_QUEUED 0x1280
#define CL_PROFILING_COMMAND_START 0x1282
#define CL_PROFILING_COMMAND_END 0x1283

#define CL_EVENT_COMMAND_EXECUTION_STATUS 0x11D3
#define CL_COMPLETE 0x0

/* Each entry: return type, name, parameter list. Expanded into the function
 * table and into the loader's symbol lookup from this one list. */
#define OCL_API_FUNCTIONS(X)                                                   \
  X(cl_int, clGetPlatformIDs, (cl_uint, cl_platform_id *, cl_uint *))          \
  X(cl_int, clGetPlatformInfo,                                                 \
    (cl_platform_id, cl_platform_info, size_t, void *, size_t *))              \
  X(cl_int, clGetDeviceIDs,                                                    \
    (cl_platform_id, cl_device_type, cl_uint, cl_device_id *, cl_uint *))      \
  X(cl_int, clGetDeviceInfo,                                                   \
    (cl_device_id, cl_device_info, size_t, void *, size_t *))                  \
  X(cl_context, clCreateContext,                                               \
    (const cl_context_properties *, cl_uint, const cl_device_id *,            \
     void (*)(const char *, const void *, size_t, void *), void *, cl_int *))  \
  X(cl_int, clReleaseContext, (cl_context))                                    \
  X(cl_command_queue, clCreateCommandQueue,                                    \
    (cl_context, cl_device_id, cl_command_queue_properties, cl_int *))         \
  X(cl_int, clReleaseCommandQueue, (cl_command_queue))                         \
  X(cl_mem, clCreateBuffer,                                                    \
    (cl_context, cl_mem_flags, size_t, void *, cl_int *))                      \
  X(cl_int, clReleaseMemObject, (cl_mem))                                      \
  X(cl_mem, clCreateSubBuffer,                                                 \
    (cl_mem, cl_mem_flags, cl_uint, const void *, cl_int *))                                      \
  X(cl_program, clCreateProgramWithSource,                                     \
    (cl_context, cl_uint, const char **, const size_t *, cl_int *))            \
  X(cl_program, clCreateProgramWithBinary,                                     \
    (cl_context, cl_uint, const cl_device_id *, const size_t *,                \
     const unsigned char **, cl_int *, cl_int *))                              \
  X(cl_int, clBuildProgram,                                                    \
    (cl_program, cl_uint, const cl_device_id *, const char *,                  \
     void (*)(cl_program, void *), void *))                                    \
  X(cl_int, clGetProgramInfo,                                                  \
    (cl_program, cl_program_info, size_t, void *, size_t *))                   \
  X(cl_int, clGetProgramBuildInfo,                                             \
    (cl_program, cl_device_id, cl_program_build_info, size_t, void *,          \
     size_t *))                                                                \
  X(cl_int, clReleaseProgram, (cl_program))                                    \
  X(cl_kernel, clCreateKernel, (cl_program, const char *, cl_int *))           \
  X(cl_int, clReleaseKernel, (cl_kernel))                                      \
  X(cl_int, clSetKernelArg, (cl_kernel, cl_uint, size_t, const void *))        \
  X(cl_int, clGetKernelWorkGroupInfo,                                          \
    (cl_kernel, cl_device_id, cl_kernel_work_group_info, size_t, void *,       \
     size_t *))                                                                \
  X(cl_int, clEnqueueNDRangeKernel,                                            \
    (cl_command_queue, cl_kernel, cl_uint, const size_t *, const size_t *,     \
     const size_t *, cl_uint, const cl_event *, cl_event *))                   \
  X(cl_int, clEnqueueReadBuffer,                                               \
    (cl_command_queue, cl_mem, cl_bool, size_t, size_t, void *, cl_uint,       \
     const cl_event *, cl_event *))                                            \
  X(cl_int, clEnqueueWriteBuffer,                                              \
    (cl_command_queue, cl_mem, cl_bool, size_t, size_t, const void *, cl_uint, \
     const cl_event *, cl_event *))                                            \
  X(cl_int, clEnqueueCopyBuffer,                                               \
    (cl_command_queue, cl_mem, cl_mem, size_t, size_t, size_t, cl_uint,       \
     const cl_event *, cl_event *))                                            \
  X(cl_int, clEnqueueFillBuffer,                                               \
    (cl_command_queue, cl_mem, const void *, size_t, size_t, size_t, cl_uint,  \
     const cl_event *, cl_event *))                                            \
  X(cl_int, clFlush, (cl_command_queue))                                       \
  X(cl_int, clFinish, (cl_command_queue))                                      \
  X(cl_int, clWaitForEvents, (cl_uint, const cl_event *))                      \
  X(cl_int, clGetEventInfo, (cl_event, cl_uint, size_t, void *, size_t *))    \
  X(cl_int, clGetEventProfilingInfo,                                           \
    (cl_event, cl_profiling_info, size_t, void *, size_t *))                   \
  X(cl_int, clReleaseEvent, (cl_event))

#define OCL_DECLARE_POINTER(ret, name, params) typedef ret(*name##_fn) params;
OCL_API_FUNCTIONS(OCL_DECLARE_POINTER)
#undef OCL_DECLARE_POINTER

#define OCL_TABLE_ENTRY(ret, name, params) name##_fn name;
typedef struct {
  OCL_API_FUNCTIONS(OCL_TABLE_ENTRY)
} ocl_api_table;
#undef OCL_TABLE_ENTRY

/* The loaded API; valid after a successful ocl_load(). */
extern ocl_api_table ocl_api;
#define CL(name) (ocl_api.name)

#endif
