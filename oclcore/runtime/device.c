/* Device discovery, and one context and in-order queue per device. */
#include <stdlib.h>
#include <string.h>

#include "oclcore/runtime.h"

#define MAX_DEVICES 64

static ocl_device devices[MAX_DEVICES];
static int device_count = -1;

static void info_string(cl_device_id id, cl_device_info what, char *dst, size_t n) {
  dst[0] = 0;
  if (CL(clGetDeviceInfo)(id, what, n, dst, NULL) != CL_SUCCESS) dst[0] = 0;
  dst[n - 1] = 0;
}

static char *info_string_alloc(cl_device_id id, cl_device_info what) {
  size_t n = 0;
  if (CL(clGetDeviceInfo)(id, what, 0, NULL, &n) != CL_SUCCESS) n = 0;
  char *s = calloc(n + 1, 1);
  if (s && n) CL(clGetDeviceInfo)(id, what, n, s, NULL);
  return s;
}

static void describe(ocl_device *d, cl_platform_id p, cl_device_id id) {
  memset(d, 0, sizeof *d);
  d->platform_id = p;
  d->id = id;
  CL(clGetPlatformInfo)(p, CL_PLATFORM_NAME, sizeof d->platform, d->platform, NULL);
  d->platform[sizeof d->platform - 1] = 0;
  info_string(id, CL_DEVICE_NAME, d->name, sizeof d->name);
  info_string(id, CL_DEVICE_VENDOR, d->vendor, sizeof d->vendor);
  info_string(id, CL_DEVICE_VERSION, d->version, sizeof d->version);
  info_string(id, CL_DRIVER_VERSION, d->driver_version, sizeof d->driver_version);
  d->extensions = info_string_alloc(id, CL_DEVICE_EXTENSIONS);
  CL(clGetDeviceInfo)(id, CL_DEVICE_TYPE, sizeof d->type, &d->type, NULL);
  CL(clGetDeviceInfo)(id, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof d->compute_units, &d->compute_units, NULL);
  CL(clGetDeviceInfo)(id, CL_DEVICE_MAX_CLOCK_FREQUENCY, sizeof d->clock_mhz, &d->clock_mhz, NULL);
  CL(clGetDeviceInfo)(id, CL_DEVICE_PREFERRED_VECTOR_WIDTH_FLOAT,
                      sizeof d->preferred_vector_width_float, &d->preferred_vector_width_float, NULL);
  CL(clGetDeviceInfo)(id, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof d->global_mem, &d->global_mem, NULL);
  CL(clGetDeviceInfo)(id, CL_DEVICE_LOCAL_MEM_SIZE, sizeof d->local_mem, &d->local_mem, NULL);
  CL(clGetDeviceInfo)(id, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof d->max_alloc, &d->max_alloc, NULL);
  CL(clGetDeviceInfo)(id, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof d->max_work_group_size,
                      &d->max_work_group_size, NULL);
  CL(clGetDeviceInfo)(id, CL_DEVICE_MAX_PARAMETER_SIZE, sizeof d->max_parameter_size,
                      &d->max_parameter_size, NULL);
  const char *ext = d->extensions ? d->extensions : "";
  d->fp16 = strstr(ext, "cl_khr_fp16") != NULL;
  d->fp64 = strstr(ext, "cl_khr_fp64") != NULL;
}

static int rank(const ocl_device *d) {
  if (d->type & (CL_DEVICE_TYPE_GPU | CL_DEVICE_TYPE_ACCELERATOR)) return 0;
  if (d->type & CL_DEVICE_TYPE_CPU) return 1;
  return 2;
}

cl_int ocl_discover(void) {
  if (!ocl_is_loaded()) return ocl_fail(OCL_E_NOT_LOADED, "libOpenCL is not loaded");
  if (device_count >= 0) return CL_SUCCESS;
  cl_platform_id platforms[16];
  cl_uint np = 0;
  cl_int rc = CL(clGetPlatformIDs)(16, platforms, &np);
  if (rc == -1001 /* CL_PLATFORM_NOT_FOUND_KHR */ || np == 0) {
    device_count = 0;
    return CL_SUCCESS;
  }
  if (rc != CL_SUCCESS) return ocl_fail(rc, "clGetPlatformIDs failed");
  ocl_device found[MAX_DEVICES];
  int n = 0;
  for (cl_uint p = 0; p < np && p < 16; p++) {
    cl_device_id ids[MAX_DEVICES];
    cl_uint nd = 0;
    if (CL(clGetDeviceIDs)(platforms[p], CL_DEVICE_TYPE_ALL, MAX_DEVICES, ids, &nd) != CL_SUCCESS)
      continue;
    for (cl_uint i = 0; i < nd && n < MAX_DEVICES; i++) describe(&found[n++], platforms[p], ids[i]);
  }
  /* stable: GPUs and accelerators, then CPUs, then the rest */
  int k = 0;
  for (int r = 0; r < 3; r++)
    for (int i = 0; i < n; i++)
      if (rank(&found[i]) == r) devices[k++] = found[i];
  device_count = k;
  return CL_SUCCESS;
}

int ocl_device_count(void) { return device_count < 0 ? 0 : device_count; }

ocl_device *ocl_device_at(int index) {
  if (index < 0 || index >= ocl_device_count()) return NULL;
  return &devices[index];
}

cl_int ocl_device_open(ocl_device *d) {
  if (d->queue) return CL_SUCCESS;
  cl_int rc = CL_SUCCESS;
  if (!d->context) {
    cl_context_properties props[] = {0x1084 /* CL_CONTEXT_PLATFORM */,
                                     (cl_context_properties)d->platform_id, 0};
    d->context = CL(clCreateContext)(props, 1, &d->id, NULL, NULL, &rc);
    if (rc != CL_SUCCESS) {
      d->context = NULL;
      return ocl_fail(rc, "clCreateContext failed for %s", d->name);
    }
  }
  d->queue = CL(clCreateCommandQueue)(d->context, d->id,
                                      d->profiling ? CL_QUEUE_PROFILING_ENABLE : 0, &rc);
  if (rc != CL_SUCCESS) {
    d->queue = NULL;
    return ocl_fail(rc, "clCreateCommandQueue failed for %s", d->name);
  }
  const char *submit = getenv("OCLCORE_SUBMIT_THREAD");
  int wanted = submit && *submit ? strcmp(submit, "0") != 0
                                 : (d->type & (CL_DEVICE_TYPE_GPU | CL_DEVICE_TYPE_ACCELERATOR)) != 0;
  return wanted ? ocl_submit_start(d) : CL_SUCCESS;
}

cl_int ocl_device_set_profiling(ocl_device *d, int enabled) {
  enabled = !!enabled;
  if (d->queue && d->profiling == enabled) return CL_SUCCESS;
  if (d->queue) {
    cl_int rc = ocl_submit_wait(d);
    if (rc != CL_SUCCESS) return rc;
    rc = CL(clFinish)(d->queue);
    if (rc != CL_SUCCESS) return ocl_fail(rc, "clFinish failed on %s", d->name);
    CL(clReleaseCommandQueue)(d->queue);
    d->queue = NULL;
  }
  d->profiling = enabled;
  return ocl_device_open(d);
}

cl_int ocl_device_synchronize(ocl_device *d) {
  if (!d->queue) return CL_SUCCESS;
  cl_int rc = ocl_submit_wait(d);
  if (rc != CL_SUCCESS) return rc;
  rc = CL(clFinish)(d->queue);
  return rc == CL_SUCCESS ? rc : ocl_fail(rc, "clFinish failed on %s", d->name);
}
