/* Finds libOpenCL at run time and fills the API table from it. */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "oclcore/runtime.h"

ocl_api_table ocl_api;
static void *library;
static char library_path[4096];

cl_int ocl_load(const char *path) {
  if (library) return CL_SUCCESS;
  const char *name = (path && *path) ? path : "libOpenCL.so.1";
  void *handle = dlopen(name, RTLD_NOW | RTLD_LOCAL);
  if (!handle && !(path && *path)) handle = dlopen("libOpenCL.so", RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char *why = dlerror();
    return ocl_fail(OCL_E_LOAD_FAILED, "dlopen(%s) failed: %s", name, why ? why : "?");
  }
  ocl_api_table table;
#define LOOKUP(ret, fn, params)                                               \
  table.fn = (fn##_fn)dlsym(handle, #fn);                                     \
  if (!table.fn) {                                                            \
    dlclose(handle);                                                          \
    return ocl_fail(OCL_E_LOAD_FAILED, "%s lacks the symbol %s", name, #fn);  \
  }
  OCL_API_FUNCTIONS(LOOKUP)
#undef LOOKUP
  ocl_api = table;
  library = handle;
  snprintf(library_path, sizeof library_path, "%s", name);
  return CL_SUCCESS;
}

void ocl_unload(void) {
  if (!library) return;
  dlclose(library);
  library = NULL;
  library_path[0] = 0;
  memset(&ocl_api, 0, sizeof ocl_api);
}

int ocl_is_loaded(void) { return library != NULL; }

const char *ocl_loaded_path(void) { return library_path; }
