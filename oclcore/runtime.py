"""Loading OpenCL, choosing devices, and compiling kernels from ``cl/``.

This is the Python side of the runtime layer: it finds a libOpenCL (the
system's first, else the ICD loader inside the pyopencl wheel, which also
finds PoCL from pocl-binary-distribution), orders the devices (honouring
``OCLCORE_DEVICE``), points the program cache at ``OCLCORE_CACHE_DIR`` and
hands out kernels by (file, defines, name)."""

import glob
import importlib.util
import os

from . import _runtime as rt  # noqa: F401  (also reached as runtime.rt)

_devices = None  # ocl index -> _runtime.Device, after OCLCORE_DEVICE reordering
_kernels = {}  # (device, files, sorted defines, name, extra source) -> Kernel
_kernels_by_call = {}  # the same with the defines in the caller's order: found without sorting them
_sources = {}


def cache_dir():
    """The folder for compiled programs, tuning results and other caches."""
    path = os.environ.get("OCLCORE_CACHE_DIR")
    if not path:
        import platformdirs

        path = platformdirs.user_cache_dir("oclcore")
    return path


def _wheel_loader():
    spec = importlib.util.find_spec("pyopencl")
    if spec is None or not spec.submodule_search_locations:
        return None, None
    pkg = list(spec.submodule_search_locations)[0]
    found = sorted(glob.glob(os.path.join(pkg, ".libs", "libOpenCL*.so*")))
    return (found[0], pkg) if found else (None, pkg)


def _preload_icd_drivers(folder):
    import ctypes

    for icd in glob.glob(os.path.join(folder, "*.icd")):
        with open(icd) as f:
            lib = os.path.join(folder, f.read().strip())
        if os.path.isfile(lib):
            try:
                ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL)
            except OSError:
                pass


def _load():
    """Loads libOpenCL once: the system's if it lists any device, else pyopencl's."""
    if rt.is_loaded():
        return
    rt.set_cache_dir(cache_dir())
    errors = []
    try:
        rt.load(None)
        if rt.device_count() > 0:
            return
        rt.unload()
        errors.append("the system libOpenCL lists no devices")
    except rt.OpenCLError as e:
        errors.append(str(e))
    path, pkg = _wheel_loader()
    if path:
        # That loader finds the .icd files beside it through PYOPENCL_HOME; the
        # drivers they name (libpocl-*.so) sit beside it too, but by bare name,
        # which dlopen only resolves once they are loaded.
        os.environ.setdefault("PYOPENCL_HOME", pkg)
        _preload_icd_drivers(os.path.dirname(path))
        try:
            rt.load(path)
            return
        except rt.OpenCLError as e:
            errors.append(str(e))
    else:
        errors.append("pyopencl (whose wheel carries an OpenCL loader) is not installed")
    raise RuntimeError("oclcore found no OpenCL library: " + "; ".join(errors) +
                       ". Install a vendor OpenCL driver, or `pip install pyopencl pocl-binary-distribution` "
                       "for the CPU device.")


def _choose_order(devs):
    want = os.environ.get("OCLCORE_DEVICE", "").strip()
    if not want:
        return devs
    listing = "; ".join(f"{i}: {d.name} ({d.platform})" for i, d in enumerate(devs))
    if want.lstrip("-").isdigit():
        i = int(want)
        if not 0 <= i < len(devs):
            raise RuntimeError(f"OCLCORE_DEVICE={want} is out of range; the OpenCL devices are: {listing or 'none'}")
        chosen = devs[i]
    else:
        matches = [d for d in devs if want.lower() in f"{d.name} {d.vendor} {d.platform}".lower()]
        if not matches:
            raise RuntimeError(f"OCLCORE_DEVICE={want!r} matches no device; the OpenCL devices are: {listing or 'none'}")
        chosen = matches[0]
    return [chosen] + [d for d in devs if d is not chosen]


def devices():
    """The OpenCL devices as ``ocl:N`` sees them: index N of this list."""
    global _devices
    if _devices is None:
        _load()
        _devices = _choose_order([rt.device(i) for i in range(rt.device_count())])
    return _devices


def work_group_size(dev, limit=256):
    """The largest power-of-two work-group size up to ``limit`` that runtime Device ``dev`` allows
    (what tree reductions in local memory need)."""
    size = 1
    while size * 2 <= min(limit, dev.max_work_group_size):
        size *= 2
    return size


def device(index=0):
    """The runtime Device behind ``ocl:index``."""
    devs = devices()
    if not devs:
        raise RuntimeError("no OpenCL device was found")
    if not 0 <= index < len(devs):
        raise RuntimeError(f"ocl:{index} does not exist: {len(devs)} OpenCL device(s) found")
    return devs[index]


def cl_dir():
    """The folder holding the OpenCL C sources (installed beside the package or in the source tree)."""
    here = os.path.dirname(os.path.abspath(__file__))
    for path in (os.path.join(here, "cl"), os.path.join(os.path.dirname(here), "cl")):
        if os.path.isdir(path):
            return path
    raise RuntimeError(f"oclcore's OpenCL sources are missing (looked in {here}/cl and {here}/../cl)")


def _read(path):
    with open(path) as f:
        return f.read()


def source(*files):
    """The text of files under cl/, joined in order."""
    key = tuple(files)
    text = _sources.get(key)
    if text is None:
        text = "\n".join(_read(os.path.join(cl_dir(), f)) for f in files)
        _sources[key] = text
    return text


def options(defines):
    """Build options for a dict of -D defines, in a stable order (the cache key)."""
    return " ".join(f"-D{k}={v}" if v is not None else f"-D{k}" for k, v in sorted(defines.items()))


def get_kernel(files, defines, name, signature, dev=None, extra_source=""):
    """A cached Kernel ``name`` from the cl/ ``files`` built with ``defines`` on device ``dev``
    (a runtime Device; default ocl:0). ``extra_source`` is appended (for generated kernels)."""
    if isinstance(files, str):
        files = (files,)
    if dev is None:
        dev = device(0)
    call = (dev.index, tuple(files), tuple(defines.items()), name, extra_source)
    k = _kernels_by_call.get(call)
    if k is not None:
        return k
    key = (dev.index, tuple(files), tuple(sorted(defines.items())), name, extra_source)
    k = _kernels.get(key)
    if k is None:
        src = source(*files) + ("\n" + extra_source if extra_source else "")
        label = "+".join(files) if files else name
        prog = dev.build(src, options(defines), label)
        k = prog.kernel(name, signature)
        _kernels[key] = k
    _kernels_by_call[call] = k
    return k
