# cython: language_level=3, boundscheck=False, wraparound=False
"""Typed wrappers over oclcore's C runtime: devices, buffers, programs,
kernels and events. Python above this module never sees a raw cl_mem."""

from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_WRITABLE, PyBUF_C_CONTIGUOUS
from libc.stdlib cimport calloc, free
from libc.stdint cimport int64_t, uint64_t, int32_t, uint32_t
from libc.string cimport memcmp, memcpy
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC

import struct
import weakref


class OpenCLError(RuntimeError):
    """An OpenCL call failed; ``code`` and ``name`` say how (e.g. CL_OUT_OF_RESOURCES)."""

    def __init__(self, message, code=0):
        super().__init__(message)
        self.code = code
        self.name = ocl_error_name(code).decode()


class BuildError(OpenCLError):
    """An OpenCL program failed to build; ``log`` holds the compiler's build log."""

    def __init__(self, message, code, program, log):
        super().__init__(f"{message}\n--- build log ---\n{log}", code)
        self.program = program
        self.log = log


class OutOfMemoryError(RuntimeError):
    """The device could not hold an allocation, even after its cache was freed."""


_oom_error = OutOfMemoryError


def set_out_of_memory_error(cls):
    """Makes allocation failures raise ``cls`` (the torch layer passes torch.OutOfMemoryError)."""
    global _oom_error
    _oom_error = cls


cdef int check(cl_int rc) except -1:
    if rc == CL_SUCCESS:
        return 0
    msg = ocl_last_error().decode(errors="replace")
    if rc == OCL_E_OUT_OF_MEMORY:
        raise _oom_error("OpenCL out of memory: " + msg)
    raise OpenCLError(msg, rc)


cdef int check_call(cl_int rc, str call) except -1:
    if rc == CL_SUCCESS:
        return 0
    raise OpenCLError(f"{call} failed: {ocl_error_name(rc).decode()} (code {rc})", rc)


cdef object _recorder = None
cdef object _capture = None
cdef long long _launches = 0
cdef uint64_t _next_serial = 0  # the last Buffer.serial given out
# while a launch is recorded for a device's submitter (runtime/submit.c), the arguments to set
cdef ocl_command* _pending = NULL


cdef ocl_command* _new_command(int kind, cl_uint nargs) except NULL:
    """A command of ``kind`` for a device's submitter, with room for ``nargs`` kernel arguments."""
    cdef ocl_command* c = ocl_command_new(nargs)
    if c == NULL:
        raise MemoryError()
    c.kind = kind
    return c


cdef int _wait(Device device) except -1:
    """Waits until ``device``'s submitter (if any) has enqueued what it was handed; raises the
    first error among those commands."""
    if device.dev.submitter != NULL:
        check(ocl_submit_wait(device.dev))
    return 0


def launch_count():
    """Kernel launches enqueued by this process so far (replays included)."""
    return _launches


class CaptureError(RuntimeError):
    """An operation that cannot be replayed was attempted while a graph was being captured."""


def set_capture(capture):
    """While ``capture`` is not None every launch, device copy and fill calls
    ``capture.record(command)`` with a replayable command, every allocation calls
    ``capture.allocated(buffer)``, and host reads,
    host writes and synchronize raise CaptureError. The graph module's hook."""
    global _capture
    _capture = capture


def capturing():
    """The active capture object, or None."""
    return _capture


cdef int _no_capture(str what) except -1:
    if _capture is not None:
        raise CaptureError(f"{what} is not allowed while an oclcore graph is being captured: it would wait for "
                           "the device or move host data, which a replay cannot repeat")
    return 0


def error_name(int code):
    """The symbolic name of an OpenCL error code, e.g. -5 -> 'CL_OUT_OF_RESOURCES'."""
    return ocl_error_name(code).decode()


# ---- loading and discovery ----

def load(path=None):
    """Loads libOpenCL from ``path`` (or the system's when None) and lists its devices."""
    cdef bytes p = b"" if path is None else str(path).encode()
    check(ocl_load(p))
    check(ocl_discover())
    return ocl_loaded_path().decode()


def unload():
    """Forgets a loaded libOpenCL that has no opened devices (used when it lists none)."""
    ocl_unload()


def is_loaded():
    """True once a libOpenCL has been loaded."""
    return bool(ocl_is_loaded())


def loaded_path():
    """The path libOpenCL was loaded from ('' when none)."""
    return ocl_loaded_path().decode()


def device_count():
    """Number of OpenCL devices found, GPUs and accelerators first."""
    return ocl_device_count()


_devices = {}


def device(int index):
    """The Device at ``index`` of the discovery order."""
    if index < 0 or index >= ocl_device_count():
        raise IndexError(f"OpenCL device index {index} is out of range (found {ocl_device_count()} devices)")
    d = _devices.get(index)
    if d is None:
        d = Device.__new__(Device)
        (<Device>d).dev = ocl_device_at(index)
        (<Device>d).index = index
        _devices[index] = d
    return d


def set_cache_dir(path):
    """Sets the on-disk program binary cache folder ('' or None disables it)."""
    cdef bytes p = b"" if not path else str(path).encode()
    ocl_set_cache_dir(p)


def cache_dir():
    """The on-disk program binary cache folder ('' when disabled)."""
    return ocl_cache_dir().decode()


def program_stats():
    """Counts of programs compiled from source, loaded from disk, found in memory, and rejected disk entries."""
    cdef ocl_program_stats s
    ocl_program_stats_get(&s)
    return {"compiled": s.compiled, "disk_hits": s.disk_hits, "memory_hits": s.memory_hits,
            "disk_rejected": s.disk_rejected}


_TYPE_NAMES = ((4, "GPU"), (8, "ACCELERATOR"), (2, "CPU"))


cdef class Device:
    """One OpenCL device with its own context and in-order queue."""

    def __init__(self):
        raise TypeError("use oclcore._runtime.device(index)")

    cdef ocl_device* _d(self) except NULL:
        if self.dev is NULL:
            raise ValueError("this Device was not made by oclcore._runtime.device(index)")
        return self.dev

    def __repr__(self):
        return f"<oclcore Device {self.index}: {self.name} ({self.platform})>"

    @property
    def name(self): return self._d().name.decode(errors="replace").strip()
    @property
    def vendor(self): return self._d().vendor.decode(errors="replace").strip()
    @property
    def platform(self): return self._d().platform.decode(errors="replace").strip()
    @property
    def version(self): return self._d().version.decode(errors="replace").strip()
    @property
    def driver_version(self): return self._d().driver_version.decode(errors="replace").strip()
    @property
    def type(self):
        for bit, name in _TYPE_NAMES:
            if self._d().type & bit:
                return name
        return "OTHER"
    @property
    def compute_units(self): return self._d().compute_units
    @property
    def clock_mhz(self): return self._d().clock_mhz
    @property
    def global_mem(self): return self._d().global_mem
    @property
    def local_mem(self): return self._d().local_mem
    @property
    def max_alloc(self): return self._d().max_alloc
    @property
    def max_work_group_size(self): return self._d().max_work_group_size
    @property
    def max_parameter_size(self): return self._d().max_parameter_size
    @property
    def preferred_vector_width_float(self): return self._d().preferred_vector_width_float
    @property
    def extensions(self):
        cdef char* ext = self._d().extensions
        if ext is NULL:
            return []
        return sorted(ext.decode().split())
    @property
    def fp16(self): return bool(self._d().fp16)
    @property
    def fp64(self): return bool(self._d().fp64)

    def info(self):
        """All properties as a dict."""
        return {k: getattr(self, k) for k in (
            "index", "name", "vendor", "platform", "type", "version", "driver_version",
            "compute_units", "clock_mhz", "global_mem", "local_mem", "max_alloc",
            "max_work_group_size", "max_parameter_size", "preferred_vector_width_float", "fp16", "fp64", "extensions")}

    # -- queue --
    @property
    def queue_handle(self):
        """The cl_command_queue as an integer, for interop with other OpenCL libraries (CLBlast)."""
        check(ocl_device_open(self._d()))
        _wait(self)  # (the caller enqueues on it directly)
        return <size_t>self._d().queue

    def synchronize(self):
        """Waits until every command queued on this device has finished."""
        _no_capture("synchronize()")
        check(ocl_device_synchronize(self._d()))

    @property
    def submit_thread(self):
        """True when kernel launches, copies and fills are enqueued by a thread of this device's own
        (OCLCORE_SUBMIT_THREAD; by default on GPUs and accelerators)."""
        check(ocl_device_open(self._d()))
        return self._d().submitter != NULL

    cdef object _submitter_setting(self, int64_t (*setting)(ocl_device*, int64_t) noexcept nogil, bint read, object value,
                                   int64_t least, str name):
        """Reads or sets one of the submitter's settings (runtime/submit.c); the reading is None
        without a submitter."""
        check(ocl_device_open(self._d()))
        if read:
            now = setting(self._d(), -1)
            return None if now < 0 else now
        if value is None or value < least:
            raise ValueError(f"{name} must be a number >= {least}, got {value!r}")
        if setting(self._d(), int(value)) < 0:
            raise RuntimeError(f"{self.name} has no launch submitter (OCLCORE_SUBMIT_THREAD)")

    @property
    def submit_poll_us(self):
        """Microseconds this device's idle submitter polls for work before it sleeps (0, the default:
        it sleeps at once; OCLCORE_SUBMIT_POLL sets it at start); None without a submitter.
        Settable, for comparisons such as bench/probes/interleaved.py."""
        return self._submitter_setting(ocl_submit_poll_us, True, None, 0, "submit_poll_us")

    @submit_poll_us.setter
    def submit_poll_us(self, us):
        self._submitter_setting(ocl_submit_poll_us, False, us, 0, "submit_poll_us")

    @property
    def submit_batch(self):
        """Launches (and copies, fills) handed over before this device's sleeping submitter is woken:
        1, the default, wakes it for every one; more saves the handing thread wake-up system calls,
        the submitter then napping at most 200 us at a time while active (OCLCORE_SUBMIT_BATCH sets
        it at start). None without a submitter. Settable, for comparisons such as
        bench/probes/interleaved.py."""
        return self._submitter_setting(ocl_submit_batch, True, None, 1, "submit_batch")

    @submit_batch.setter
    def submit_batch(self, n):
        self._submitter_setting(ocl_submit_batch, False, n, 1, "submit_batch")

    def flush(self):
        """Submits queued commands to the device without waiting."""
        if self._d().queue:
            _wait(self)
            check_call(ocl_api.clFlush(self._d().queue), "clFlush")

    @property
    def profiling(self):
        return bool(self._d().profiling)

    @profiling.setter
    def profiling(self, enabled):
        check(ocl_device_set_profiling(self._d(), 1 if enabled else 0))

    # -- memory --
    def alloc(self, nbytes):
        """A Buffer of ``nbytes`` from the caching allocator; returned to it when released."""
        n = int(nbytes)
        if n < 0:
            raise ValueError(f"cannot allocate a negative number of bytes ({n})")
        global _next_serial
        cdef Buffer b = Buffer.__new__(Buffer)
        check(ocl_malloc(self._d(), <size_t>n, &b.block))
        b.device = self
        _next_serial += 1
        b.serial = _next_serial
        if _capture is not None:
            _capture.allocated(b)
        return b

    def memory_stats(self):
        """Allocator statistics in bytes and counts, with CUDA's meanings; ``idle_after``: the
        allocations after which the free blocks of a size nobody requested may be released."""
        cdef ocl_memory_stats s
        ocl_memory_stats_get(self._d(), &s)
        return {"allocated_bytes": s.allocated, "max_allocated_bytes": s.max_allocated,
                "reserved_bytes": s.reserved, "max_reserved_bytes": s.max_reserved,
                "requested_bytes": s.requested, "allocations": s.allocations, "frees": s.frees,
                "cache_hits": s.cache_hits, "segments_created": s.segments_created,
                "segments_freed": s.segments_freed, "ooms": s.ooms, "idle_after": s.idle_after}

    def empty_cache(self):
        """Releases every cached buffer that holds no live data."""
        ocl_empty_cache(self._d())

    def reset_peak_stats(self):
        """Sets the peak statistics to the current values."""
        ocl_reset_peak_stats(self._d())

    @property
    def memory_limit(self):
        """Bytes the allocator may reserve (the device's global memory unless lowered)."""
        return ocl_memory_limit(self._d())

    @memory_limit.setter
    def memory_limit(self, limit):
        limit = int(limit or 0)
        if limit < 0:
            raise ValueError("memory_limit must be >= 0 (0 restores the device's size)")
        ocl_set_memory_limit(self._d(), limit)

    # -- programs --
    def build(self, source, options="", name="<program>"):
        """Builds OpenCL C ``source`` with ``options`` through the memory and disk caches."""
        if not isinstance(source, str):
            raise TypeError(f"source must be str, not {type(source).__name__}")
        cdef Program p = Program.__new__(Program)
        cdef bytes src = source.encode()
        cdef bytes opts = b"" if options is None else str(options).encode()
        cdef bytes nm = str(name).encode()
        cdef cl_int rc = ocl_build(self._d(), src, opts, nm, &p.program)
        cdef char* log
        if rc != CL_SUCCESS:
            msg = ocl_last_error().decode(errors="replace")
            log = ocl_build_log()
            text = log.decode(errors="replace")
            free(log)
            if rc == -11:
                raise BuildError(msg, rc, name, text)
            check(rc)
        p.device = self
        p.name = str(name)
        return p


cdef class Buffer:
    """A block of device memory from the caching allocator."""

    def __init__(self):
        raise TypeError("use Device.alloc(nbytes)")

    cdef ocl_block* _b(self) except NULL:
        if self.block is NULL or self.device is None:
            raise ValueError("this Buffer was not made by Device.alloc(nbytes)")
        return self.block

    def __dealloc__(self):
        if self.block is not NULL and self.device is not None:
            ocl_free(self.device.dev, self.block)
            self.block = NULL

    def __repr__(self):
        return f"<oclcore Buffer {self.nbytes} bytes on ocl:{self.device.index}>"

    @property
    def nbytes(self):
        """Bytes asked for."""
        return self._b().requested

    @property
    def capacity(self):
        """Bytes reserved for this buffer (the request rounded up)."""
        return self._b().size

    @property
    def handle(self):
        """The cl_mem as an integer, for interop and identity checks only."""
        return <size_t>self._b().mem

    cdef int _range(self, Py_ssize_t offset, Py_ssize_t nbytes, str what) except -1:
        if offset < 0 or nbytes < 0 or <size_t>(offset + nbytes) > self._b().requested:
            raise IndexError(f"{what} of {nbytes} bytes at offset {offset} is outside the "
                             f"buffer of {self._b().requested} bytes")
        return 0

    def write(self, src, Py_ssize_t offset=0):
        """Copies a contiguous host object (numpy array, bytes, CPU tensor) into the buffer at byte ``offset``."""
        _no_capture("copying host data to the device")
        return self._transfer(src, offset, True)

    def read(self, dst, Py_ssize_t offset=0):
        """Copies bytes at ``offset`` into a writable contiguous host object (waits for queued work)."""
        _no_capture("reading device data on the host (.item(), .cpu(), printing)")
        return self._transfer(dst, offset, False)

    cdef Py_ssize_t _transfer(self, obj, Py_ssize_t offset, bint to_device) except -1:
        cdef Py_buffer view
        cdef size_t ptr
        cdef Py_ssize_t n
        if _is_torch_tensor(obj):
            ptr, n = _tensor_memory(obj)
            self._blocking_copy(<void*>ptr, n, offset, to_device)
            return n
        PyObject_GetBuffer(obj, &view, PyBUF_C_CONTIGUOUS if to_device else PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE)
        try:
            self._blocking_copy(view.buf, view.len, offset, to_device)
            return view.len
        finally:
            PyBuffer_Release(&view)

    cdef int _blocking_copy(self, void* host, Py_ssize_t n, Py_ssize_t offset, bint to_device) except -1:
        cdef cl_int rc
        self._range(offset, n, "write" if to_device else "read")
        if n == 0:
            return 0
        _wait(self.device)
        if to_device:
            rc = ocl_api.clEnqueueWriteBuffer(self.device.dev.queue, self._b().mem, CL_TRUE, offset, n, host,
                                              0, NULL, NULL)
        else:
            rc = ocl_api.clEnqueueReadBuffer(self.device.dev.queue, self._b().mem, CL_TRUE, offset, n, host,
                                             0, NULL, NULL)
        check_call(rc, "clEnqueueWriteBuffer" if to_device else "clEnqueueReadBuffer")
        return 0

    def copy_to(self, Buffer dst, Py_ssize_t nbytes, Py_ssize_t src_offset=0, Py_ssize_t dst_offset=0):
        """Enqueues a copy of ``nbytes`` into ``dst`` (any device; across devices it waits)."""
        cdef ocl_command* c
        if dst is None:
            raise TypeError("copy_to needs a destination Buffer")
        self._range(src_offset, nbytes, "copy source")
        dst._range(dst_offset, nbytes, "copy destination")
        if nbytes == 0:
            return
        if dst.device is self.device:
            if self._b().mem == dst.block.mem and not (
                    src_offset + nbytes <= dst_offset or dst_offset + nbytes <= src_offset):
                raise ValueError("copy_to: source and destination ranges overlap")
            if self.device.dev.submitter != NULL:
                c = _new_command(OCL_COPY, 0)
                c.src, c.dst = self._b().mem, dst.block.mem
                c.src_offset, c.dst_offset, c.nbytes = src_offset, dst_offset, nbytes
                ocl_submit(self.device.dev, c)
            else:
                check_call(ocl_api.clEnqueueCopyBuffer(self.device.dev.queue, self._b().mem, dst.block.mem,
                                                       src_offset, dst_offset, nbytes, 0, NULL, NULL),
                           "clEnqueueCopyBuffer")
            if _capture is not None:
                _capture.record(("copy", self, dst, nbytes, src_offset, dst_offset))
        else:
            _no_capture("copying between devices")
            staging = bytearray(nbytes)
            self._read_into(staging, src_offset)
            dst.write(staging, dst_offset)

    def _read_into(self, bytearray staging, Py_ssize_t offset):
        cdef char* p = staging
        _wait(self.device)
        check_call(ocl_api.clEnqueueReadBuffer(self.device.dev.queue, self._b().mem, CL_TRUE, offset,
                                               len(staging), p, 0, NULL, NULL), "clEnqueueReadBuffer")

    def fill(self, pattern, Py_ssize_t offset=0, nbytes=None):
        """Enqueues filling ``nbytes`` from ``offset`` with a repeated byte ``pattern`` (1, 2, 4, ... 128 bytes)."""
        cdef bytes pat = bytes(pattern)
        cdef ocl_command* c
        cdef Py_ssize_t n = self._b().requested - offset if nbytes is None else nbytes
        cdef Py_ssize_t plen = len(pat)
        if plen not in (1, 2, 4, 8, 16, 32, 64, 128):
            raise ValueError(f"fill pattern must be 1, 2, 4, ..., 128 bytes long, not {plen}")
        self._range(offset, n, "fill")
        if offset % plen or n % plen:
            raise ValueError("fill offset and size must be multiples of the pattern size")
        if not n:
            return
        if self.device.dev.submitter != NULL:
            c = _new_command(OCL_FILL, 0)
            c.dst, c.dst_offset, c.nbytes, c.pattern_size = self._b().mem, offset, n, plen
            memcpy(c.pattern, <const char*>pat, plen)
            ocl_submit(self.device.dev, c)
        else:
            check_call(ocl_api.clEnqueueFillBuffer(self.device.dev.queue, self._b().mem, <const char*>pat,
                                                   plen, offset, n, 0, NULL, NULL), "clEnqueueFillBuffer")
        if _capture is not None:
            _capture.record(("fill", self, pat, offset, n))


cdef struct _command:
    int kind  # 0 launch, 1 copy, 2 fill
    cl_kernel kernel  # a handle of its own, arguments bound once
    cl_uint nd
    size_t g[3]
    size_t l[3]
    bint has_local
    cl_mem src  # copy source, fill target
    cl_mem dst
    size_t nbytes, src_offset, dst_offset, pattern_size
    unsigned char pattern[128]


cdef class CommandList:
    """Recorded commands ready to re-issue from one C loop: (kernel, gsize, lsize, args)
    launches, ("copy", src, dst, nbytes, src_offset, dst_offset) and ("fill", buf,
    pattern, offset, nbytes). Every launch gets its own kernel handle with its arguments
    set once, so a replay is one clEnqueue call per command; ``bind`` points a recorded
    buffer's uses at another buffer, ``set_args`` gives one launch new arguments."""

    cdef _command* cmds
    cdef Py_ssize_t n
    cdef readonly list commands  # the recorded tuples (their buffers stay alive with the list)
    cdef dict uses  # recorded Buffer -> [(command, argument; -1 source, -2 destination)]
    cdef dict bound  # recorded Buffer -> weak reference to the Buffer its uses point at now
    cdef Device device

    def __cinit__(self):
        self.cmds = NULL
        self.n = 0

    def __init__(self, list commands):
        cdef Py_ssize_t i, j
        cdef _command* c
        cdef Kernel k
        cdef cl_int rc = 0
        cdef bytes pat
        self.commands = list(commands)
        self.uses, self.bound = {}, {}
        self.cmds = <_command*>calloc(max(len(commands), 1), sizeof(_command))
        if self.cmds == NULL:
            raise MemoryError()
        for i, t in enumerate(self.commands):
            c = &self.cmds[i]
            head = t[0]
            if type(head) is Kernel:
                k = <Kernel>head
                self._device(k.device)
                c.kind = 0
                c.has_local = t[2] is not None
                if not k.sizes(<tuple>t[1], t[2], &c.nd, c.g, c.l):
                    c.nd = 0  # empty: skipped
                c.kernel = ocl_api.clCreateKernel(k.program.program, k.name.encode(), &rc)
                self.n = i + 1
                if rc != CL_SUCCESS:
                    c.kernel = NULL
                    raise OpenCLError(f"clCreateKernel({k.name!r}) failed: {ocl_error_name(rc).decode()}", rc)
                k.bind(c.kernel, <tuple>t[3], False)
                for j, a in enumerate(<tuple>t[3]):
                    if type(a) is Buffer:
                        self.uses.setdefault(a, []).append((i, j))
            elif head == "copy":
                self._device((<Buffer?>t[1]).device)
                c.kind = 1
                c.src, c.dst = (<Buffer>t[1])._b().mem, (<Buffer?>t[2])._b().mem
                c.nbytes, c.src_offset, c.dst_offset = t[3], t[4], t[5]
                self.uses.setdefault(t[1], []).append((i, -1))
                self.uses.setdefault(t[2], []).append((i, -2))
            elif head == "fill":
                self._device((<Buffer?>t[1]).device)
                pat = t[2]
                if len(pat) > 128:
                    raise ValueError(f"fill pattern of {len(pat)} bytes (at most 128)")
                c.kind = 2
                c.src = (<Buffer>t[1])._b().mem
                c.pattern_size = len(pat)
                memcpy(c.pattern, <char*>pat, len(pat))
                c.dst_offset, c.nbytes = t[3], t[4]
                self.uses.setdefault(t[1], []).append((i, -1))
            else:
                raise ValueError(f"unknown recorded command {head!r}")
            self.n = i + 1

    cdef int _device(self, Device d) except -1:
        if self.device is None:
            self.device = d
        elif d is not self.device:
            raise ValueError("a command list's commands must all run on one device")
        return 0

    def __dealloc__(self):
        cdef Py_ssize_t i
        if self.cmds != NULL:
            for i in range(self.n):
                if self.cmds[i].kernel != NULL:
                    ocl_api.clReleaseKernel(self.cmds[i].kernel)
            free(self.cmds)

    def __len__(self):
        return self.n

    cdef Buffer _now(self, Buffer recorded):
        ref = self.bound.get(recorded)
        if ref is None:
            return recorded
        buf = ref()
        if buf is None:
            raise RuntimeError("a buffer bound into this command list is gone: bind it again")
        return buf

    def bind(self, Buffer recorded, Buffer buf):
        """Makes every recorded use of ``recorded`` use ``buf`` (which must be as large)
        from the next replay on; binding ``recorded`` itself restores it. The list does
        not keep ``buf`` alive: bind again before replaying once it is gone."""
        cdef Py_ssize_t i, j
        cdef cl_mem m
        cdef _command* c
        cdef Kernel k
        if buf is None or buf.device is not recorded.device:
            raise ValueError("bind: the buffer must live on the recorded buffer's device")
        if buf.nbytes < recorded.nbytes:
            raise ValueError(f"bind: a buffer of {buf.nbytes} bytes cannot stand for one of {recorded.nbytes}")
        ref = self.bound.get(recorded)
        if (recorded if ref is None else ref()) is buf:
            return
        m = buf._b().mem
        for i, j in self.uses.get(recorded, ()):
            c = &self.cmds[i]
            if j >= 0:
                k = <Kernel>self.commands[i][0]
                k._set_arg(c.kernel, False, j, sizeof(cl_mem), &m)
            elif j == -1:
                c.src = m
            else:
                c.dst = m
        if buf is recorded:
            self.bound.pop(recorded, None)
        else:
            self.bound[recorded] = weakref.ref(buf)

    def set_args(self, Py_ssize_t i, tuple args):
        """Gives launch ``i`` new arguments (recorded buffers among them follow ``bind``)."""
        if i < 0 or i >= self.n or self.cmds[i].kind != 0:
            raise IndexError(f"command {i} is not a launch")
        k, g, l, old = self.commands[i]
        for j, a in enumerate(old):
            if type(a) is Buffer:
                self.uses[a].remove((i, j))
        self.commands[i] = (k, g, l, args)
        for j, a in enumerate(args):
            if type(a) is Buffer:
                self.uses.setdefault(a, []).append((i, j))
        (<Kernel>k).bind(self.cmds[i].kernel, tuple(self._now(a) if type(a) is Buffer else a for a in args),
                         False)

    def _rebind(self, dict swap):
        for recorded in [r for r in self.bound if r not in swap]:
            self.bind(recorded, recorded)
        for recorded, buf in swap.items():
            self.bind(recorded, buf)

    def replay(self, dict swap=None):
        """Enqueues every command (returns at once). ``swap`` (recorded Buffer -> Buffer),
        when given, sets every binding: the buffers it names are bound, all others restored.
        While a graph captures or the profiler listens, each command goes through the
        ordinary launch/copy/fill calls instead, so it is recorded and timed."""
        global _launches
        cdef Py_ssize_t i, launched = 0
        cdef cl_int rc = CL_SUCCESS
        cdef _command* c
        cdef cl_command_queue q
        if swap is not None:
            self._rebind(swap)
        for ref in self.bound.values():
            if ref() is None:
                raise RuntimeError("a buffer bound into this command list is gone: bind it again")
        if _capture is not None or _recorder is not None:
            self._replay_slow()
            return
        if self.n == 0:
            return
        _wait(self.device)
        q = self.device.dev.queue
        with nogil:
            for i in range(self.n):
                c = &self.cmds[i]
                if c.kind == 0:
                    if c.nd == 0:
                        continue
                    rc = ocl_api.clEnqueueNDRangeKernel(q, c.kernel, c.nd, NULL, c.g,
                                                        c.l if c.has_local else NULL, 0, NULL, NULL)
                    launched += 1
                elif c.kind == 1:
                    if c.nbytes == 0:
                        continue
                    rc = ocl_api.clEnqueueCopyBuffer(q, c.src, c.dst, c.src_offset, c.dst_offset, c.nbytes,
                                                     0, NULL, NULL)
                else:
                    if c.nbytes == 0:
                        continue
                    rc = ocl_api.clEnqueueFillBuffer(q, c.src, c.pattern, c.pattern_size, c.dst_offset,
                                                     c.nbytes, 0, NULL, NULL)
                if rc != CL_SUCCESS:
                    break
        _launches += launched
        if rc != CL_SUCCESS:
            head = self.commands[i][0]
            what = f"kernel {(<Kernel>head).name}" if type(head) is Kernel else head
            raise OpenCLError(f"replaying command {i} ({what}) failed: {ocl_error_name(rc).decode()}", rc)

    cdef int _replay_slow(self) except -1:
        for t in self.commands:
            head = t[0]
            if type(head) is Kernel:
                (<Kernel>head).launch(t[1], t[2], tuple(self._now(a) if type(a) is Buffer else a for a in t[3]))
            elif head == "copy":
                self._now(t[1]).copy_to(self._now(t[2]), t[3], t[4], t[5])
            else:
                self._now(t[1]).fill(t[2], t[3], t[4])
        return 0


def set_launch_recorder(recorder):
    """Calls ``recorder(kernel, event)`` after every launch (None stops); the profiler's hook.
    Devices must have profiling enabled for the events' times."""
    global _recorder
    _recorder = recorder


cdef object _torch_Tensor = None


cdef bint _is_torch_tensor(obj):
    global _torch_Tensor
    if _torch_Tensor is None:
        mod = type(obj).__module__
        if not mod.startswith("torch"):
            return False
        import torch
        _torch_Tensor = torch.Tensor
    return isinstance(obj, _torch_Tensor)


cdef tuple _tensor_memory(t):
    if t.device.type != "cpu":
        raise ValueError(f"expected a CPU tensor, got one on {t.device}")
    if not t.is_contiguous():
        raise ValueError("expected a contiguous CPU tensor")
    return <size_t>t.data_ptr(), t.numel() * t.element_size()


cdef class Program:
    """A built OpenCL program, owned by the program cache."""

    def __init__(self):
        raise TypeError("use Device.build(source, options)")

    def kernel(self, name, signature):
        """The kernel ``name``, whose arguments are described by ``signature``: one character per
        argument, B buffer, i/I int32/uint32, l/L int64/uint64, f float, d double, V int8 vector (a
        tuple of up to 8 ints), Z local memory bytes."""
        cdef Kernel k = Kernel.__new__(Kernel)
        cdef cl_int rc = 0
        sig = str(signature)
        for c in sig:
            if c not in "BiIlLfdVZ":
                raise ValueError(f"unknown kernel argument type {c!r} in signature {sig!r}")
        cdef bytes nm = str(name).encode()
        k.kernel = ocl_api.clCreateKernel(self.program, nm, &rc)
        if rc != CL_SUCCESS:
            raise OpenCLError(f"clCreateKernel({name!r}) in program '{self.name}' failed: "
                              f"{ocl_error_name(rc).decode()}", rc)
        k.device = self.device
        k.program = self
        k.name = str(name)
        k.signature = sig
        k.sig = sig.encode()
        k.bname = nm
        k.nargs = len(sig)
        k._last = <unsigned char (*)[32]>calloc(max(k.nargs, 1), 32)
        k._last_size = <unsigned char*>calloc(max(k.nargs, 1), 1)
        if k._last is NULL or k._last_size is NULL:
            raise MemoryError()
        return k


cdef class Kernel:
    """A kernel with a typed argument signature; launch() packs arguments in C and enqueues."""

    def __init__(self):
        raise TypeError("use Program.kernel(name, signature)")

    def __dealloc__(self):
        if self.kernel is not NULL:
            if self.device is not None and self.device.dev.submitter != NULL:
                ocl_submit_drain(self.device.dev)  # (commands handed over may name this kernel)
            ocl_api.clReleaseKernel(self.kernel)
        free(self._last)
        free(self._last_size)

    def clone(self):
        """A new handle of this kernel (same program, name and signature) whose argument values are
        its own: a launch site that keeps one sets only the arguments that changed since its last
        launch, where a shared handle sees every other site's values in between."""
        return self.program.kernel(self.name, self.signature)

    @property
    def max_work_group_size(self):
        """The largest work-group this kernel can run with on its device."""
        cdef size_t n = 0
        check_call(ocl_api.clGetKernelWorkGroupInfo(self.kernel, self.device.dev.id, CL_KERNEL_WORK_GROUP_SIZE,
                                                    sizeof(size_t), &n, NULL), "clGetKernelWorkGroupInfo")
        return n

    cdef cl_int _set_arg(self, cl_kernel kernel, bint cached, Py_ssize_t i, size_t size,
                         const void* value) except -1:
        # OpenCL keeps argument values between launches: skip the driver call (costly on some
        # drivers) when this one is unchanged
        if cached and self._last_size[i] == size and memcmp(self._last[i], value, size) == 0:
            return 0
        cdef ocl_arg* a
        if _pending != NULL:  # set by the submitter, in order, before its enqueue
            a = &_pending.args[_pending.nargs]
            _pending.nargs += 1
            a.index, a.size, a.local = <cl_uint>i, <cl_uint>size, 0
            memcpy(a.value, value, size)
            if cached:
                memcpy(self._last[i], value, size)
                self._last_size[i] = <unsigned char>size
            return 0
        cdef cl_int rc = ocl_api.clSetKernelArg(kernel, i, size, value)
        if rc != CL_SUCCESS:
            if cached:
                self._last_size[i] = 0
            raise OpenCLError(f"clSetKernelArg({self.name}, argument {i} '{chr(self.sig[i])}') failed: "
                              f"{ocl_error_name(rc).decode()}", rc)
        if cached:
            memcpy(self._last[i], value, size)
            self._last_size[i] = <unsigned char>size
        return 0

    cdef int bind(self, cl_kernel kernel, tuple args, bint cached) except -1:
        """Sets ``args`` on ``kernel`` (this kernel's handle, or a copy of it made for one
        recorded command); ``cached`` skips scalars equal to the ones last set on this handle."""
        cdef Py_ssize_t i, j
        cdef const char* sig = self.sig
        cdef int32_t vi
        cdef int32_t v8[8]
        cdef int64_t vl
        cdef float vf
        cdef double vd
        cdef cl_mem m
        cdef uint64_t serial
        cdef Buffer b
        cdef cl_int rc
        if len(args) != self.nargs:
            raise TypeError(f"{self.name} takes {self.nargs} arguments ({self.signature}), got {len(args)}")
        for i in range(self.nargs):
            c = sig[i]
            a = args[i]
            if c == b'B':
                if a is None:
                    m, serial = NULL, 0
                else:
                    b = <Buffer?>a
                    if b.device is not self.device:
                        raise ValueError(f"{self.name}: argument {i} lives on ocl:{b.device.index}, "
                                         f"the kernel on ocl:{self.device.index}")
                    m, serial = b._b().mem, b.serial
                # compared by serial, not by handle: a released cl_mem's handle value can come
                # back for another buffer, which a driver may resolve differently
                if cached:
                    if self._last_size[i] == BUFFER_ARG and memcmp(self._last[i], &serial, sizeof(serial)) == 0:
                        continue
                    self._set_arg(kernel, False, i, sizeof(cl_mem), &m)
                    memcpy(self._last[i], &serial, sizeof(serial))
                    self._last_size[i] = BUFFER_ARG
                else:
                    self._set_arg(kernel, False, i, sizeof(cl_mem), &m)
            elif c == b'i' or c == b'I':
                vi = <int32_t>a if c == b'i' else <int32_t><uint32_t>a
                self._set_arg(kernel, cached, i, 4, &vi)
            elif c == b'l' or c == b'L':
                vl = <int64_t>a if c == b'l' else <int64_t><uint64_t>a
                self._set_arg(kernel, cached, i, 8, &vl)
            elif c == b'f':
                vf = <float>a
                self._set_arg(kernel, cached, i, 4, &vf)
            elif c == b'd':
                vd = <double>a
                self._set_arg(kernel, cached, i, 8, &vd)
            elif c == b'V':
                if len(a) > 8:
                    raise ValueError(f"{self.name}: argument {i} is an int8 vector, got {len(a)} values (at most 8)")
                for j in range(8):
                    v8[j] = 0
                for j in range(len(a)):
                    v8[j] = <int32_t>a[j]
                self._set_arg(kernel, cached, i, 32, v8)
            elif _pending != NULL:  # 'Z': local memory, set by the submitter
                _pending.args[_pending.nargs].index = <cl_uint>i
                _pending.args[_pending.nargs].size = <cl_uint><size_t>a
                _pending.args[_pending.nargs].local = 1
                _pending.nargs += 1
            else:  # 'Z': local memory
                rc = ocl_api.clSetKernelArg(kernel, i, <size_t>a, NULL)
                if rc != CL_SUCCESS:
                    raise OpenCLError(f"clSetKernelArg({self.name}, argument {i} 'Z' = {a!r}) failed: "
                                      f"{ocl_error_name(rc).decode()}", rc)
        return 0

    cdef int sizes(self, tuple gsize, object lsize, cl_uint* nd, size_t* g, size_t* l) except -1:
        """Checks and converts launch sizes (global rounded up to a multiple of local); returns
        0 when the launch is empty, 1 otherwise."""
        cdef Py_ssize_t i
        nd[0] = len(gsize)
        if nd[0] < 1 or nd[0] > 3:
            raise ValueError(f"{self.name}: global size must have 1 to 3 dimensions, got {gsize}")
        if lsize is not None and len(<tuple>lsize) != nd[0]:
            raise ValueError(f"{self.name}: local size {lsize} must have as many dimensions as global size {gsize}")
        cdef int nonempty = 1
        for i in range(nd[0]):
            g[i] = <size_t>gsize[i]
            if lsize is not None:
                l[i] = <size_t>(<tuple>lsize)[i]
                if l[i] == 0:
                    raise ValueError(f"{self.name}: local size must be positive, got {lsize}")
                g[i] = (g[i] + l[i] - 1) // l[i] * l[i]
            if g[i] == 0:
                nonempty = 0
        return nonempty

    cdef cl_int launch_c(self, tuple gsize, object lsize, tuple args, cl_event* event) except -1:
        global _launches
        cdef cl_uint nd
        cdef size_t g[3]
        cdef size_t l[3]
        if self.kernel == NULL or self.device is None:
            raise ValueError("this Kernel was not made by Program.kernel(name, signature)")
        cdef int nonempty = self.sizes(gsize, lsize, &nd, g, l)
        cdef ocl_device* d = self.device.dev
        if d.submitter != NULL:
            if event == NULL:
                return self._submit(nonempty, nd, g, l if lsize is not None else NULL, args)
            _wait(self.device)  # (a launch with an event is enqueued here, after the handed-over ones)
        self.bind(self.kernel, args, True)  # (checked even for an empty launch)
        if not nonempty:
            return 0
        cdef cl_int rc = ocl_api.clEnqueueNDRangeKernel(self.device.dev.queue, self.kernel, nd, NULL, g,
                                                        l if lsize is not None else NULL, 0, NULL, event)
        _launches += 1
        if rc != CL_SUCCESS:
            raise OpenCLError(f"clEnqueueNDRangeKernel({self.name}, global={tuple(gsize)}, local={lsize}) "
                              f"failed: {ocl_error_name(rc).decode()}", rc)
        return 0

    cdef int _submit(self, int nonempty, cl_uint nd, size_t* g, size_t* l, tuple args) except -1:
        """launch_c through the device's submitter: the changed arguments and the sizes are recorded
        here and handed over; the submitter sets and enqueues them."""
        global _launches, _pending
        cdef ocl_command* c = _new_command(OCL_LAUNCH, self.nargs)
        cdef cl_uint i
        c.kernel, c.name = self.kernel, self.bname
        _pending = c
        try:
            self.bind(self.kernel, args, True)  # (checked even for an empty launch)
        except BaseException:
            _pending = NULL
            ocl_submit(self.device.dev, c)  # the arguments recorded before the error are cached as set
            raise
        _pending = NULL
        if nonempty:
            c.nd = nd
            for i in range(nd):
                c.g[i] = g[i]
                if l != NULL:
                    c.l[i] = l[i]
            c.has_local = l != NULL
            _launches += 1
        ocl_submit(self.device.dev, c)
        return 0

    def launch(self, gsize, lsize, args):
        """Enqueues the kernel over ``gsize`` (rounded up to a multiple of ``lsize``) and returns at once.
        Sizes and arguments are tuples (lists are accepted)."""
        cdef Event e
        gsize = gsize if type(gsize) is tuple else tuple(gsize)
        lsize = lsize if lsize is None or type(lsize) is tuple else tuple(lsize)
        args = args if type(args) is tuple else tuple(args)
        if _recorder is None:
            self.launch_c(gsize, lsize, args, NULL)
        else:  # a capturing launch is profiled too (replays are not)
            e = Event.__new__(Event)
            self.launch_c(gsize, lsize, args, &e.event)
            _recorder(self, e)
        if _capture is not None:
            _capture.record((self, gsize, lsize, args))

    def launch_timed(self, gsize, lsize, args):
        """Like launch, but returns an Event with profiling times (enables profiling on the device)."""
        if not self.device.dev.profiling:
            self.device.profiling = True
        cdef Event e = Event.__new__(Event)
        self.launch_c(tuple(gsize), None if lsize is None else tuple(lsize), tuple(args), &e.event)
        return e

    def _bare_enqueue_loop(self, int count, tuple gsize, tuple args=()):
        """Enqueues the kernel ``count`` times from a C loop (setting ``args``, packed once, with
        clSetKernelArg on every iteration); returns the host seconds taken. The reference for
        bench/launch.py."""
        cdef size_t g[3]
        cdef int i, j, nd = len(gsize), na = len(args)
        cdef timespec t0, t1
        cdef cl_int rc = 0
        cdef char packed[32][8]
        cdef size_t sizes[32]
        cdef Buffer b
        if nd < 1 or nd > 3:
            raise ValueError(f"{self.name}: global size must have 1 to 3 dimensions, got {gsize}")
        if na > 32 or na != self.nargs:
            raise ValueError(f"{self.name} takes {self.nargs} arguments, got {na} (at most 32 here)")
        for i in range(nd):
            g[i] = gsize[i]
        for j in range(self.nargs):  # this loop sets arguments behind launch_c's cache
            self._last_size[j] = 0
        for j in range(na):
            c = self.sig[j]
            if c == b'B':
                b = <Buffer?>args[j]
                memcpy(packed[j], &b._b().mem, sizeof(cl_mem))
                sizes[j] = sizeof(cl_mem)
            else:
                raw = struct.pack({"i": "i", "I": "I", "l": "q", "L": "Q", "f": "f", "d": "d"}[chr(c)], args[j])
                memcpy(packed[j], <char*>raw, len(raw))
                sizes[j] = len(raw)
        _wait(self.device)
        cdef cl_command_queue q = self.device.dev.queue
        cdef cl_kernel k = self.kernel
        with nogil:
            clock_gettime(CLOCK_MONOTONIC, &t0)
            for i in range(count):
                for j in range(na):
                    rc = ocl_api.clSetKernelArg(k, j, sizes[j], packed[j])
                rc = ocl_api.clEnqueueNDRangeKernel(q, k, nd, NULL, g, NULL, 0, NULL, NULL)
                if rc != CL_SUCCESS:
                    break
            clock_gettime(CLOCK_MONOTONIC, &t1)
        check_call(rc, "clEnqueueNDRangeKernel")
        return (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9


cdef class Event:
    """A launched command; its profiling times are in nanoseconds."""

    def __dealloc__(self):
        if self.event is not NULL:
            ocl_api.clReleaseEvent(self.event)

    def wait(self):
        """Blocks until the command has finished."""
        if self.event is not NULL:
            check_call(ocl_api.clWaitForEvents(1, &self.event), "clWaitForEvents")

    def done(self):
        """Whether the command has finished, without waiting for it."""
        cdef cl_int status = CL_COMPLETE
        if self.event is not NULL:
            check_call(ocl_api.clGetEventInfo(self.event, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof(cl_int),
                                              &status, NULL), "clGetEventInfo")
        return status <= CL_COMPLETE  # (negative: it ended with an error)

    cdef uint64_t _time(self, unsigned what) except? 0:
        cdef uint64_t t = 0
        self.wait()
        check_call(ocl_api.clGetEventProfilingInfo(self.event, what, sizeof(uint64_t), &t, NULL),
                   "clGetEventProfilingInfo")
        return t

    @property
    def queued_ns(self): return self._time(CL_PROFILING_COMMAND_QUEUED)
    @property
    def start_ns(self): return self._time(CL_PROFILING_COMMAND_START)
    @property
    def end_ns(self): return self._time(CL_PROFILING_COMMAND_END)
    @property
    def elapsed_ns(self):
        """Device time from start to end of the command."""
        return self._time(CL_PROFILING_COMMAND_END) - self._time(CL_PROFILING_COMMAND_START)
