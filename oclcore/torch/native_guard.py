"""The ocl device guard in C++ (device_guard.cpp), built against the installed torch at first use.

torch's Python backend guard costs a trip into Python for each of the thousands of device and
stream questions autograd asks per training step (5-7% of a small network's host time, measured
with bench/host.py). The C++ guard gives the same answers without Python. It is compiled once
per torch installation into the cache folder (about a second) and loaded from there afterwards.
Without a C++ compiler (``CXX``, else ``c++``, ``g++`` or ``clang++``), or with
``OCLCORE_NATIVE_GUARD=0``, the Python guard stays and everything works as before, a little
slower; :func:`status` says which guard is in use."""

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile

import torch

_SOURCE = os.path.join(os.path.dirname(__file__), "device_guard.cpp")
_status = "python (the native guard was not tried)"
_library = None  # the loaded guard library (kept: the registry points into it)


def status():
    """Which device guard torch uses for ocl: "native" or "python (why)"."""
    return _status


def _compiler():
    cxx = os.environ.get("CXX")
    if cxx:
        return shutil.which(cxx)
    return next(filter(None, map(shutil.which, ("c++", "g++", "clang++"))), None)


def _build(cxx, folder):
    """Path of the guard library for this torch and compiler, compiled now if not cached."""
    with open(_SOURCE, "rb") as f:
        source = f.read()
    torch_dir = os.path.dirname(torch.__file__)
    abi = int(torch._C._GLIBCXX_USE_CXX11_ABI)
    key = hashlib.sha256(b"\0".join([source, torch.__version__.encode(), torch_dir.encode(),
                                     cxx.encode(), str(abi).encode()])).hexdigest()[:16]
    path = os.path.join(folder, f"device_guard-{key}.so")
    if os.path.exists(path):
        return path
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=folder)
    os.close(fd)
    lib = os.path.join(torch_dir, "lib")
    errors = ""
    try:
        for std in ("c++20", "c++17"):  # (newer torch headers need C++20; older compilers lack it)
            cmd = [cxx, "-O2", f"-std={std}", "-shared", "-fPIC", f"-D_GLIBCXX_USE_CXX11_ABI={abi}",
                   "-I", os.path.join(torch_dir, "include"), _SOURCE, "-L", lib, "-lc10",
                   f"-Wl,-rpath,{lib}", "-o", tmp]
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            if done.returncode == 0:
                os.replace(tmp, path)  # (atomic: a concurrent process loads a whole file or builds its own)
                return path
            errors = done.stderr
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    raise RuntimeError(f"compiling {os.path.basename(_SOURCE)} failed: {errors.strip()[-500:]}")


def install(cache_folder):
    """Replaces torch's guard for ocl with the C++ one when it can be built (again, after torch's
    Python guard was registered anew); returns status()."""
    global _status, _library
    if _library is not None:
        _library.oclcore_install_device_guard()
        return _status
    if os.environ.get("OCLCORE_NATIVE_GUARD", "") == "0":
        _status = "python (OCLCORE_NATIVE_GUARD=0)"
        return _status
    cxx = _compiler()
    if cxx is None:
        _status = "python (no C++ compiler found: set CXX)"
        return _status
    try:
        lib = ctypes.CDLL(_build(cxx, os.path.join(cache_folder, "native")))
        lib.oclcore_install_device_guard()
    except (OSError, RuntimeError, subprocess.SubprocessError) as e:
        _status = f"python ({e})"
        return _status
    _library = lib
    _status = "native"
    return _status
