"""The runtime layer on its own: device discovery and OCLCORE_DEVICE, buffers and
their bounds, kernels and their argument checks. Allocator and program-cache
behaviour have their own files (test_allocator.py, test_program_cache.py)."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import oclcore
from oclcore import _runtime as rt
from oclcore import runtime

KERNEL_SRC = """
__kernel void scale(__global float* out, int out_off, __global const float* x, int x_off, float a, int n) {
  int i = get_global_id(0);
  if (i < n) out[out_off + i] = a * x[x_off + i];
}
__kernel void vec(__global int* out, int8 v) {
  int i = get_global_id(0);
  if (i < 8) { int tmp[8]; vstore8(v, 0, tmp); out[i] = tmp[i]; }
}
__kernel void local_sum(__global float* out, __local float* scratch) {
  int l = get_local_id(0);
  scratch[l] = (float)l;
  barrier(CLK_LOCAL_MEM_FENCE);
  if (l == 0) { float s = 0; for (int k = 0; k < get_local_size(0); k++) s += scratch[k]; out[get_group_id(0)] = s; }
}
"""


def run_concurrently(jobs, timeout=300):
    """Runs {name: (code, env)} each in a fresh interpreter, all at once; {name: (returncode, stdout, stderr)}."""
    procs = {}
    for name, (code, env) in jobs.items():
        full_env = dict(os.environ)
        full_env.update(env or {})
        procs[name] = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=full_env, text=True,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    results = {}
    for name, p in procs.items():
        out, err = p.communicate(timeout=timeout)
        results[name] = (p.returncode, out, err)
    return results


@pytest.fixture(scope="module")
def dev():
    return runtime.device(0)


@pytest.fixture(scope="module")
def program(dev):
    return dev.build(KERNEL_SRC, "", "test_runtime")


# ---- discovery ----

def test_devices_listed_with_properties():
    devs = oclcore.devices()
    assert len(devs) >= 1
    d = devs[0]
    info = d.info()
    for key in ("name", "vendor", "platform", "type", "driver_version", "compute_units", "global_mem",
                "local_mem", "max_alloc", "extensions", "fp16", "fp64"):
        assert key in info
    assert d.name and d.platform
    assert d.type in ("GPU", "ACCELERATOR", "CPU", "OTHER")
    assert d.compute_units >= 1 and d.global_mem > 0 and 0 < d.max_alloc <= d.global_mem
    assert d.fp64 == ("cl_khr_fp64" in d.extensions)
    assert runtime.device(0) is devs[0]


def test_discovery_puts_gpus_and_accelerators_first():
    types = [d.type for d in oclcore.devices()]
    seen_cpu = False
    for t in types:
        if t == "CPU":
            seen_cpu = True
        elif t in ("GPU", "ACCELERATOR"):
            assert not seen_cpu, types


def test_device_index_out_of_range_raises():
    with pytest.raises(RuntimeError, match="does not exist"):
        runtime.device(len(oclcore.devices()))
    with pytest.raises(RuntimeError):
        runtime.device(-1)
    with pytest.raises(TypeError):
        runtime.device("0")


_SHOW_CHOICE = """
    import oclcore
    d = oclcore.runtime.device(0)
    print("CHOSEN", d.name)
    print("COUNT", len(oclcore.devices()))
"""


def _chosen(result):
    assert result.returncode == 0, result.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if line.startswith(("CHOSEN", "COUNT")))
    return lines["CHOSEN"], int(lines["COUNT"])


def _name_word():
    """A lower-cased substring of the last device's name."""
    return oclcore.devices()[-1].name.split()[-1][-6:].lower()


@pytest.fixture(scope="module")
def device_choice():
    """The device each OCLCORE_DEVICE value picks, each in its own process (all started at once)."""
    values = {"index": str(len(oclcore.devices()) - 1), "name": _name_word(), "bad_name": "no-such-device-xyz",
              "bad_index": "99"}
    return run_concurrently({k: (_SHOW_CHOICE, {"OCLCORE_DEVICE": v}) for k, v in values.items()})


def _chosen(result):
    rc, out, err = result
    assert rc == 0, err[-2000:]
    lines = dict(line.split(" ", 1) for line in out.splitlines() if line.startswith(("CHOSEN", "COUNT")))
    return lines["CHOSEN"], int(lines["COUNT"])


def test_oclcore_device_by_index_and_name_substring(device_choice):
    names = [d.name for d in oclcore.devices()]
    assert _chosen(device_choice["index"]) == (names[-1], len(names))
    chosen, count = _chosen(device_choice["name"])
    assert _name_word() in chosen.lower()
    assert count == len(names)


@pytest.mark.parametrize("case", ["bad_name", "bad_index"])
def test_oclcore_device_bad_value_lists_devices(device_choice, case):
    rc, out, err = device_choice[case]
    assert rc == 1, f"expected a Python error, got rc {rc}: {err[-2000:]}"
    assert "OCLCORE_DEVICE" in err
    for d in oclcore.devices():
        assert d.name in err, err[-2000:]


# ---- buffers ----

SIZES = [1, 3, 4, 255, 256, 257, 4096, 65537, (1 << 20) + 3, 3 << 20]


@pytest.mark.parametrize("nbytes", SIZES)
def test_buffer_roundtrip_bytes(dev, nbytes):
    rng = np.random.default_rng(nbytes)
    data = rng.integers(0, 256, nbytes, dtype=np.uint8)
    buf = dev.alloc(nbytes)
    assert buf.nbytes == nbytes and buf.capacity >= nbytes
    assert buf.write(data) == nbytes
    back = np.zeros(nbytes, np.uint8)
    assert buf.read(back) == nbytes
    np.testing.assert_array_equal(back, data)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int64, np.int32, np.int16, np.int8,
                                   np.uint8, np.bool_])
@pytest.mark.parametrize("offset_elems", [0, 1, 7])
def test_buffer_roundtrip_numpy_dtypes_and_offsets(dev, dtype, offset_elems):
    n = 1000
    data = (np.arange(n) * 3 - 500).astype(dtype)
    item = np.dtype(dtype).itemsize
    buf = dev.alloc((n + offset_elems + 5) * item)
    buf.fill(b"\xab", 0, buf.nbytes)
    buf.write(data, offset_elems * item)
    back = np.empty(n, dtype)
    buf.read(back, offset_elems * item)
    np.testing.assert_array_equal(back, data)
    # bytes before and after are untouched
    whole = np.empty(buf.nbytes, np.uint8)
    buf.read(whole)
    assert (whole[:offset_elems * item] == 0xAB).all()
    assert (whole[(offset_elems + n) * item:] == 0xAB).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int64,
                                   torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool])
def test_buffer_roundtrip_torch_cpu_tensors(dev, dtype):
    src = (torch.arange(777) % 13 - 6).to(dtype)
    buf = dev.alloc(src.numel() * src.element_size() + 64)
    buf.write(src, 64)
    back = torch.empty_like(src)
    buf.read(back, 64)
    assert torch.equal(back, src)
    # a view with a storage offset reads and writes its own elements only
    big = torch.zeros(800, dtype=dtype)
    buf.read(big[10:787], 64)
    assert torch.equal(big[10:787], src) and not big[:10].any() and not big[787:].any()


def test_buffer_rejects_device_and_noncontiguous_tensors(dev):
    buf = dev.alloc(64)
    with pytest.raises(ValueError, match="contiguous"):
        buf.write(torch.zeros(4, 4)[:, ::2])
    with pytest.raises(ValueError, match="contiguous"):
        buf.read(torch.zeros(4, 4).t())
    with pytest.raises(ValueError, match="CPU"):
        buf.write(torch.zeros(4, device="meta"))
    with pytest.raises(ValueError):
        buf.read(np.zeros((4, 4), np.float32)[:, ::2])
    with pytest.raises(TypeError):
        buf.write("not bytes")
    with pytest.raises(TypeError):
        buf.write(None)
    with pytest.raises((TypeError, BufferError)):
        buf.read(b"read-only bytes!")


def test_copy_to_and_fill(dev):
    n = 4096
    a, b = dev.alloc(n), dev.alloc(n + 100)
    data = np.arange(n, dtype=np.uint8)
    a.write(data)
    b.fill(b"\x00\x00\x00\x00")
    a.copy_to(b, 1000, 24, 40)
    back = np.empty(n + 100, np.uint8)
    b.read(back)
    np.testing.assert_array_equal(back[40:1040], data[24:1024])
    assert not back[:40].any() and not back[1040:].any()
    b.fill(b"\x01\x02", 2, 8)
    b.read(back)
    assert list(back[:12]) == [0, 0, 1, 2, 1, 2, 1, 2, 1, 2, 0, 0]
    b.fill(np.float32(1.5).tobytes(), 1024, 16)
    f = np.empty(4, np.float32)
    b.read(f, 1024)
    assert (f == 1.5).all()
    a.copy_to(a, 100, 0, 2000)  # same buffer, disjoint ranges
    a.read(back[:n])
    np.testing.assert_array_equal(back[2000:2100], data[:100])
    a.copy_to(b, 0)  # nothing to do


@pytest.mark.parametrize("call", [
    lambda a, b: a.write(np.zeros(65, np.uint8)),
    lambda a, b: a.write(np.zeros(8, np.uint8), 60),
    lambda a, b: a.write(np.zeros(1, np.uint8), -1),
    lambda a, b: a.read(np.zeros(65, np.uint8)),
    lambda a, b: a.read(np.zeros(4, np.uint8), 61),
    lambda a, b: a.read(torch.zeros(17)),
    lambda a, b: a.write(torch.zeros(4), 49),
    lambda a, b: a.copy_to(b, 65),
    lambda a, b: a.copy_to(b, 8, 60, 0),
    lambda a, b: a.copy_to(b, 8, 0, 30),
    lambda a, b: a.copy_to(b, 1, -1, 0),
    lambda a, b: a.copy_to(b, -1),
    lambda a, b: a.copy_to(b, 2**62, 2**62, 0),
    lambda a, b: a.fill(b"\0", 0, 65),
    lambda a, b: a.fill(b"\0", 64, 4),
    lambda a, b: a.fill(b"\0", 0, -4),
    lambda a, b: a.fill(b"\0", -4, 4),
], ids=lambda c: "")
def test_out_of_range_transfers_raise_index_error(dev, call):
    a, b = dev.alloc(64), dev.alloc(32)
    pattern = np.arange(64, dtype=np.uint8)
    a.write(pattern)
    b.write(pattern[:32])
    with pytest.raises(IndexError, match="outside the buffer"):
        call(a, b)
    # nothing was written anywhere
    back = np.empty(64, np.uint8)
    a.read(back)
    np.testing.assert_array_equal(back, pattern)
    b.read(back[:32])
    np.testing.assert_array_equal(back[:32], pattern[:32])


def test_bad_transfer_arguments(dev):
    a, b = dev.alloc(64), dev.alloc(64)
    with pytest.raises(TypeError):
        a.copy_to(None, 4)
    with pytest.raises(TypeError):
        a.copy_to(5, 4)
    with pytest.raises(ValueError, match="overlap"):
        a.copy_to(a, 16, 0, 8)
    with pytest.raises(ValueError, match="pattern"):
        a.fill(b"abc")
    with pytest.raises(ValueError, match="multiples"):
        a.fill(b"\0\0\0\0", 2, 8)
    with pytest.raises(TypeError):
        a.fill(None)


def test_alloc_argument_checks(dev):
    with pytest.raises(ValueError):
        dev.alloc(-1)
    with pytest.raises((TypeError, ValueError)):
        dev.alloc("many")
    with pytest.raises((TypeError, ValueError)):
        dev.alloc(None)
    with pytest.raises((OverflowError, torch.OutOfMemoryError)):
        dev.alloc(2**70)
    assert dev.alloc(0).nbytes == 0


def test_runtime_objects_cannot_be_made_directly():
    for cls in (rt.Device, rt.Buffer, rt.Program, rt.Kernel):
        with pytest.raises(TypeError):
            cls()


# ---- programs and kernels ----

def test_kernel_launch_and_offsets(dev, program):
    k = program.kernel("scale", "BiBifi")
    n = 1000
    x = np.arange(n + 3, dtype=np.float32)
    xb, ob = dev.alloc(x.nbytes), dev.alloc(x.nbytes)
    xb.write(x)
    ob.fill(b"\0\0\0\0")
    k.launch((n,), (64,), (ob, 3, xb, 3, 2.5, n))
    out = np.empty(n + 3, np.float32)
    ob.read(out)
    np.testing.assert_array_equal(out[3:], 2.5 * x[3:])
    assert (out[:3] == 0).all()
    k.launch((0,), None, (ob, 0, xb, 0, 1.0, 0))  # an empty launch does nothing


def test_argument_values_follow_each_launch_on_shared_and_cloned_handles(dev, program):
    """Arguments unchanged since a handle's last launch are not set again; buffers are compared by
    their own identity (serial), so a buffer released and re-allocated is bound afresh."""
    n = 64
    x = np.arange(n, dtype=np.float32)
    xb = dev.alloc(4 * n)
    xb.write(x)

    def result(b):
        out = np.empty(n, np.float32)
        b.read(out)
        return out

    k = program.kernel("scale", "BiBifi")
    clone = k.clone()
    assert (clone.name, clone.signature) == (k.name, k.signature) and clone is not k
    a, b = dev.alloc(4 * n), dev.alloc(4 * n)
    assert a.serial != b.serial
    k.launch((n,), None, (a, 0, xb, 0, 2.0, n))
    clone.launch((n,), None, (b, 0, xb, 0, 3.0, n))
    k.launch((n,), None, (b, 0, xb, 0, 2.0, n))  # only the output changed on this handle
    np.testing.assert_array_equal(result(b), 2 * x)
    clone.launch((n,), None, (a, 0, xb, 0, 3.0, n))  # the clone kept its own scale
    np.testing.assert_array_equal(result(a), 3 * x)
    k.launch((n,), None, (a, 0, xb, 0, 5.0, n))
    np.testing.assert_array_equal(result(a), 5 * x)
    serial = b.serial
    del b
    c = dev.alloc(4 * n)  # (the allocator may hand out b's memory again, under a new serial)
    assert c.serial > serial
    c.fill(b"\0\0\0\0")
    k.launch((n,), None, (c, 0, xb, 0, 5.0, n))
    np.testing.assert_array_equal(result(c), 5 * x)


def test_kernel_vector_and_local_arguments(dev, program):
    v = program.kernel("vec", "BV")
    ob = dev.alloc(32)
    v.launch((8,), None, (ob, (1, -2, 3)))
    out = np.empty(8, np.int32)
    ob.read(out)
    assert list(out) == [1, -2, 3, 0, 0, 0, 0, 0]
    s = program.kernel("local_sum", "BZ")
    sb = dev.alloc(8)
    s.launch((32,), (16,), (sb, 16 * 4))
    res = np.empty(2, np.float32)
    sb.read(res)
    assert list(res) == [120.0, 120.0]


def test_launch_timed_gives_profiling_times(dev, program):
    k = program.kernel("scale", "BiBifi")
    b = dev.alloc(4096)
    e = k.launch_timed((1024,), None, (b, 0, b, 0, 1.0, 1024))
    assert e.end_ns >= e.start_ns >= e.queued_ns > 0
    assert e.elapsed_ns == e.end_ns - e.start_ns


@pytest.mark.parametrize("args, exc", [
    (("buf", 0, "buf", 0, 1.0), TypeError),                 # too few
    (("buf", 0, "buf", 0, 1.0, 4, 5), TypeError),           # too many
    ((5, 0, "buf", 0, 1.0, 4), TypeError),                  # int for a buffer
    (("buf", "zero", "buf", 0, 1.0, 4), TypeError),         # str for an int
    (("buf", 0, "buf", 0, "x", 4), TypeError),              # str for a float
    (("buf", 2**40, "buf", 0, 1.0, 4), OverflowError),      # int32 overflow
])
def test_launch_argument_checks(dev, program, args, exc):
    k = program.kernel("scale", "BiBifi")
    b = dev.alloc(64)
    args = tuple(b if a == "buf" else a for a in args)
    with pytest.raises(exc):
        k.launch((4,), None, args)
    dev.synchronize()


def test_launch_geometry_checks(dev, program):
    k = program.kernel("scale", "BiBifi")
    b = dev.alloc(64)
    args = (b, 0, b, 0, 1.0, 4)
    with pytest.raises(ValueError):
        k.launch((), None, args)
    with pytest.raises(ValueError):
        k.launch((1, 1, 1, 1), None, args)
    with pytest.raises(ValueError):
        k.launch((4,), (0,), args)
    with pytest.raises((ValueError, OverflowError)):
        k.launch((-4,), None, args)
    with pytest.raises(TypeError):
        k.launch(("4",), None, args)


def test_program_kernel_checks(program):
    with pytest.raises(ValueError, match="signature"):
        program.kernel("scale", "BiBiQi")
    with pytest.raises(rt.OpenCLError, match="CL_INVALID_KERNEL_NAME"):
        program.kernel("no_such_kernel", "B")


def test_build_checks_and_build_error(dev):
    with pytest.raises(TypeError):
        dev.build(b"__kernel void k() {}")
    bad = "__kernel void broken(__global float* x) { x[0] = undeclared_thing + ; }"
    with pytest.raises(rt.BuildError) as info:
        dev.build(bad, "", "broken.cl")
    err = info.value
    assert isinstance(err, rt.OpenCLError)
    assert "undeclared_thing" in err.log
    assert "broken.cl" in str(err) and "build log" in str(err)
    assert err.name == "CL_BUILD_PROGRAM_FAILURE"
    # the device still builds and runs programs
    p = dev.build("__kernel void fine(__global int* x) { x[0] = 42; }", "", "fine")
    b = dev.alloc(4)
    p.kernel("fine", "B").launch((1,), None, (b,))
    out = np.zeros(1, np.int32)
    b.read(out)
    assert out[0] == 42


def test_get_kernel_with_defines_is_cached(dev):
    k1 = runtime.get_kernel(("types.cl", "pointwise.cl"), {"CT": "float", "TO": "float", "TA": "float",
                                                           "LDA": "LD_plain", "STO": "ST_plain", "IDX": "int"},
                            "pw_relu", "BiBif" + "ffiiiVVV", dev, extra_source="POINTWISE1(pw_relu, x)")
    k2 = runtime.get_kernel(("types.cl", "pointwise.cl"), {"CT": "float", "TO": "float", "TA": "float",
                                                           "LDA": "LD_plain", "STO": "ST_plain", "IDX": "int"},
                            "pw_relu", "BiBif" + "ffiiiVVV", dev, extra_source="POINTWISE1(pw_relu, x)")
    assert k1 is k2


# ---- command lists (graph replays) ----

def _read(buf, n):
    out = np.empty(n, np.float32)
    buf.read(out)
    return out


def test_command_list_replays_launches_copies_and_fills(dev, program):
    k = program.kernel("scale", "BiBifi")
    n = 37
    x = np.arange(n, dtype=np.float32)
    xb, yb, zb = dev.alloc(4 * n), dev.alloc(4 * n), dev.alloc(4 * n)
    xb.write(x)
    cl = rt.CommandList([("fill", zb, np.float32(7).tobytes(), 0, 4 * n), (k, (n,), (16,), (yb, 0, xb, 0, 3.0, n)),
                         ("copy", yb, zb, 4 * 10, 0, 4 * 5), (k, (0,), None, (yb, 0, xb, 0, 1.0, 0))])
    assert len(cl) == 4
    before = rt.launch_count()
    cl.replay()
    assert rt.launch_count() == before + 1  # the empty launch is skipped
    np.testing.assert_array_equal(_read(yb, n), 3 * x)
    expected = np.full(n, 7, np.float32)
    expected[5:15] = 3 * x[:10]
    np.testing.assert_array_equal(_read(zb, n), expected)
    cl.set_args(1, (yb, 0, xb, 0, -1.0, n))  # a launch's arguments can change between replays
    cl.replay()
    np.testing.assert_array_equal(_read(yb, n), -x)


def test_command_list_bind_points_uses_at_another_buffer(dev, program):
    k = program.kernel("scale", "BiBifi")
    n = 16
    xb, yb, zb, other = dev.alloc(4 * n), dev.alloc(4 * n), dev.alloc(4 * n), dev.alloc(4 * n + 8)
    xb.write(np.ones(n, np.float32))
    other.write(np.full(n + 2, 5, np.float32))
    cl = rt.CommandList([(k, (n,), None, (yb, 0, xb, 0, 2.0, n)), ("copy", yb, zb, 4 * n, 0, 0)])
    cl.replay({xb: other})  # a swap binds every use of the recorded buffer, launches and copies
    np.testing.assert_array_equal(_read(zb, n), np.full(n, 10, np.float32))
    fresh = dev.alloc(4 * n)
    cl.replay({xb: other, zb: fresh})
    np.testing.assert_array_equal(_read(fresh, n), np.full(n, 10, np.float32))
    cl.replay({})  # buffers not named go back to the recorded ones
    np.testing.assert_array_equal(_read(zb, n), np.full(n, 2, np.float32))
    with pytest.raises(ValueError, match="cannot stand for"):
        cl.bind(xb, dev.alloc(4))
    gone = dev.alloc(4 * n)
    cl.bind(xb, gone)
    del gone  # the list does not keep a bound buffer alive
    with pytest.raises(RuntimeError, match="gone: bind it again"):
        cl.replay()
    cl.bind(xb, xb)
    cl.replay()
    with pytest.raises(IndexError):
        cl.set_args(1, ())
    with pytest.raises(ValueError, match="unknown recorded command"):
        rt.CommandList([("move", xb)])


def test_command_list_replay_inside_a_capture_is_recorded(dev, program):
    """A replay while a graph captures (a compiled model called inside oclcore.graph) goes
    through the ordinary launches, so the outer graph records it with the bound buffers."""
    from oclcore.graph import Graph, graph
    k = program.kernel("scale", "BiBifi")
    n = 8
    xb, yb, other = dev.alloc(4 * n), dev.alloc(4 * n), dev.alloc(4 * n)
    other.write(np.full(n, 4, np.float32))
    cl = rt.CommandList([(k, (n,), None, (yb, 0, xb, 0, 2.0, n))])
    g = Graph()
    with graph(g):
        cl.replay({xb: other})
    assert [(c[0].name, c[3][2] is other) for c in g.commands] == [("scale", True)]
    yb.fill(b"\0\0\0\0")
    g.replay()
    np.testing.assert_array_equal(_read(yb, n), np.full(n, 8, np.float32))


def test_error_names():
    assert rt.error_name(-5) == "CL_OUT_OF_RESOURCES"
    assert rt.error_name(-11) == "CL_BUILD_PROGRAM_FAILURE"


# ---- inputs that used to crash the process: each runs in its own interpreter ----

_CRASH_PRELUDE = """
    import numpy as np, oclcore
    from oclcore import runtime, _runtime as rt
    d = runtime.device(0)
    p = d.build("__kernel void k(__global int* o, int8 v) { if (get_global_id(0) == 0) o[0] = v.s0; }", "", "crash")
    k = p.kernel("k", "BV")
    b = d.alloc(64)
    try:
        {call}
    except Exception as e:
        print("RAISED", type(e).__name__, e)
    else:
        d.synchronize()
        print("NO ERROR")
"""

CRASH_CASES = {
    "vector_longer_than_8": "k.launch((4,), None, (b, tuple(range(100))))",
    "local_size_shorter_than_global": "k.launch((4, 4), (1,), (b, (1,)))",
    "local_size_not_a_tuple": "k.launch((4,), 1, (b, (1,)))",
    "uninitialised_buffer": "rt.Buffer.__new__(rt.Buffer).write(np.zeros(4, np.uint8))",
    "uninitialised_buffer_nbytes": "rt.Buffer.__new__(rt.Buffer).nbytes",
    "uninitialised_device": "rt.Device.__new__(rt.Device).name",
    "uninitialised_kernel": "rt.Kernel.__new__(rt.Kernel).launch((4,), None, ())",
    "uninitialised_event": "rt.Event().elapsed_ns",
}


@pytest.fixture(scope="module")
def crash_results():
    """Runs every crash case at once, each in its own interpreter."""
    return run_concurrently({case: (_CRASH_PRELUDE.replace("{call}", call), None)
                             for case, call in CRASH_CASES.items()})


_SUBMIT_SCRIPT = """
import os, numpy as np, torch, oclcore
from oclcore import runtime, _runtime as rt
d = runtime.device(0)
print("SUBMIT", d.submit_thread)
torch.manual_seed(0)
x = torch.randn(257, 33)
z = torch.zeros(33, 257, device="ocl")  # a fill
z += (x.to("ocl") * 2 + 1).t().contiguous()  # launches and a copy, handed over in this order
z[:, 5] = 7.0
w = z.clone()
ref = (x * 2 + 1).t().contiguous()
ref[:, 5] = 7.0
assert torch.equal(w.cpu(), ref)

def train(device):
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, bias=False), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                                torch.nn.Flatten(), torch.nn.Linear(8 * 6 * 6, 4)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    data = torch.randn(16, 3, 8, 8).to(device)
    labels = torch.arange(16).remainder(4).to(device)
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(model(data), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return [p.detach().cpu() for p in model.parameters()]

for a, b in zip(train("ocl"), train("cpu")):
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
class Recorder:  # (a capture sees handed-over copies and fills too)
    def __init__(self):
        self.commands = []

    def record(self, command):
        self.commands.append(command[0])

    def allocated(self, buf):
        pass

rec = Recorder()
rt.set_capture(rec)
w._buf.fill(bytes(4))
w._buf.copy_to(w._buf, 64, 0, 64)
rt.set_capture(None)
assert rec.commands == ["fill", "copy"], rec.commands
assert not w.cpu().any()
k = d.build("__kernel void k(__global int* o) { o[get_global_id(0)] = 1; }", "", "submit_err").kernel("k", "B")
b = d.alloc(4 * 8 * d.max_work_group_size)
too_big = 2 * d.max_work_group_size
try:
    k.launch((too_big,), (too_big,), (b,))  # a work-group larger than the device takes
    torch.ocl.synchronize()
except rt.OpenCLError as e:
    print("ERROR", e)
assert torch.equal((z + 1).cpu(), ref + 1)  # the queue goes on after the error
if d.submit_thread:  # the loop below: a submitter that polls when idle, one woken every 7 launches,
    assert d.submit_poll_us == 0 and d.submit_batch == int(os.environ["OCLCORE_SUBMIT_BATCH"])  # then at every one
    d.submit_poll_us = 250
    assert d.submit_poll_us == 250
else:
    assert d.submit_poll_us is None and d.submit_batch is None
    for knob, value in (("submit_poll_us", 5), ("submit_batch", 4)):
        try:
            setattr(d, knob, value)
            raise AssertionError("set without a submitter")
        except RuntimeError as e:
            assert "no launch submitter" in str(e)
n = torch.zeros(8, device="ocl")
for i in range(5000):  # more than the submitter lets wait: this thread waits for room
    n.add_(1)
    if i == 1500 and d.submit_thread:
        d.submit_poll_us = 0
        d.submit_batch = 7
        assert d.submit_batch == 7
    if i == 3500 and d.submit_thread:
        assert n[0].item() == 3501.0  # (a read while launches wait for the submitter's wake-up)
        d.submit_batch = 1
assert n.cpu().tolist() == [5000.0] * 8
print("DONE")
if d.submit_thread:
    d.submit_batch = 8
for _ in range(200):  # left to the exit (the last few not yet woken for)
    n.add_(1)
"""


@pytest.mark.parametrize("submit, wake", [("1", "1"), ("1", "8"), ("0", "1")],
                         ids=["thread", "thread_woken_every_8", "no_thread"])
def test_launches_handed_to_a_submit_thread_keep_program_order_and_report_errors(submit, wake):
    """OCLCORE_SUBMIT_THREAD=1 (the default on GPUs) has a thread of the device's own set
    arguments and enqueue launches, copies and fills; reads and synchronize wait for it, and a
    launch it could not enqueue is reported by the next of them; the process exits cleanly with
    launches still handed over. =0 enqueues on the calling thread. OCLCORE_SUBMIT_BATCH=8 wakes
    a sleeping submitter once per 8 commands (training with backward on torch's device thread too)."""
    env = {"OCLCORE_SUBMIT_THREAD": submit, "OCLCORE_SUBMIT_BATCH": wake}
    rc, out, err = run_concurrently({"run": (_SUBMIT_SCRIPT, env)})["run"]
    assert rc == 0 and "DONE" in out, out + err[-3000:]
    assert f"SUBMIT {submit == '1'}" in out
    error = next(line for line in out.splitlines() if line.startswith("ERROR"))
    assert "CL_INVALID_WORK_GROUP_SIZE" in error
    assert ("an earlier launch" in error) == (submit == "1")


@pytest.mark.parametrize("case", sorted(CRASH_CASES))
def test_bad_input_raises_instead_of_crashing(crash_results, case):
    rc, out, err = crash_results[case]
    assert "RAISED" in out, f"process died (rc {rc}) instead of raising: {out} {err[-1500:]}"
    assert any(f"RAISED {name}" in out for name in ("TypeError", "ValueError", "RuntimeError", "OpenCLError")), out


# ---- torch.ocl and torch.accelerator ----

def test_torch_ocl_device_functions():
    ocl = torch.ocl
    n = len(oclcore.devices())
    assert ocl.is_available() and ocl.device_count() == n
    assert ocl.current_device() == 0
    ocl.set_device(0)
    ocl.set_device("ocl:0")
    ocl.set_device(torch.device("ocl", 0))
    with ocl.device(0):
        assert ocl.current_device() == 0
    for bad in (n, -1):
        with pytest.raises(RuntimeError, match="invalid device ordinal"):
            ocl.set_device(bad)
        with pytest.raises(RuntimeError, match="invalid device ordinal"):
            with ocl.device(bad):
                pass
    with pytest.raises(ValueError):
        ocl.set_device("cpu")
    assert ocl.current_device() == 0
    assert ocl.get_device_name() == ocl.get_device_name(0) == runtime.device(0).name
    props = ocl.get_device_properties(0)
    assert props.name == runtime.device(0).name
    assert props.total_memory == runtime.device(0).global_mem
    assert props.multi_processor_count == runtime.device(0).compute_units
    x = torch.ones(1000, device="ocl") * 3
    ocl.synchronize()
    ocl.synchronize(0)
    ocl.synchronize("ocl:0")
    assert x.sum().item() == 3000


def test_torch_accelerator_api_picks_ocl():
    acc = torch.accelerator
    dev = acc.current_accelerator()
    assert dev.type == "ocl"
    assert acc.is_available()
    assert acc.device_count() == len(oclcore.devices())
    assert acc.current_device_index() == 0
    acc.set_device_index(0)
    with acc.device_index(0):
        assert acc.current_device_index() == 0
    x = torch.ones(4, device=dev) + 1
    acc.synchronize()
    acc.synchronize(0)
    assert x.cpu().tolist() == [2.0] * 4
    bad = acc.device_count()
    with pytest.raises(RuntimeError):
        acc.set_device_index(bad)
    with pytest.raises(RuntimeError):
        with acc.device_index(bad):
            pass
    with pytest.raises(RuntimeError):
        acc.synchronize(bad)
    assert acc.current_device_index() == 0


_GUARD_PROBE = """
import torch, oclcore
from oclcore.torch import backend, native_guard
calls = []
type_ = backend._Guard.type_
backend._Guard.type_ = lambda self: calls.append(1) or type_(self)
x = torch.randn(5, 3, device="ocl", requires_grad=True)
(x * 2).relu().sum().backward()
s = torch._C._accelerator_getStream(0)
print(native_guard.status().split()[0], len(calls), s.device, s.device_index, s.stream_id,
      x.grad.device, torch.accelerator.device_count())
"""


@pytest.fixture(scope="module")
def guard_runs():
    """What _GUARD_PROBE prints with the C++ device guard allowed and with it turned off."""
    import subprocess
    import sys
    runs = {}
    for allowed in ("1", "0"):
        env = dict(os.environ, OCLCORE_NATIVE_GUARD=allowed)
        done = subprocess.run([sys.executable, "-c", _GUARD_PROBE], capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr[-2000:]
        runs[allowed] = done.stdout.split()
    return runs


def test_native_device_guard_replaces_the_python_one(guard_runs):
    """With the C++ guard, autograd on ocl never asks torch's Python guard; its answers are the
    Python guard's (device 0, the default stream, one device); turned off, the Python guard answers."""
    native, python = guard_runs["1"], guard_runs["0"]
    assert python[:2] == ["python", python[1]] and int(python[1]) > 0
    if native[0] != "native":
        pytest.skip(f"the native guard could not be built here: {native}")
    assert int(native[1]) == 0
    assert native[2:] == python[2:] == ["ocl:0", "0", "0", "ocl:0", str(len(oclcore.devices()))]


@pytest.mark.parametrize("cxx, why", [("false", "compiling device_guard.cpp failed"),
                                      ("no-such-compiler-here", "no C++ compiler found")],
                         ids=["failing_compiler", "missing_compiler"])
def test_device_guard_falls_back_to_python_without_a_working_compiler(cxx, why):
    """A compiler that fails or is missing leaves torch's Python guard in place: import works,
    autograd works, and oclcore info says why."""
    code = ("import torch, oclcore; from oclcore.torch import native_guard; "
            "x = torch.ones(3, device='ocl', requires_grad=True); (x * 2).sum().backward(); "
            "print(native_guard.status()); print(x.grad.tolist())")
    env = dict(os.environ, CXX=cxx)  # (a library built by another compiler is cached under another name)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    status, grad = done.stdout.splitlines()
    assert status.startswith("python (") and why in status, status
    assert grad == "[2.0, 2.0, 2.0]"


def test_tensors_on_a_missing_device_raise():
    n = len(oclcore.devices())
    with pytest.raises(RuntimeError, match="does not exist"):
        torch.zeros(2, device=f"ocl:{n}")
    with pytest.raises(RuntimeError, match="does not exist"):
        torch.ones(2).to(f"ocl:{n}")


@pytest.mark.skipif(len(oclcore.devices()) < 2, reason="needs two OpenCL devices")
def test_buffer_from_another_device_is_rejected(program):
    k = program.kernel("scale", "BiBifi")
    other = runtime.device(1).alloc(64)
    mine = runtime.device(0).alloc(64)
    with pytest.raises(ValueError, match="lives on"):
        k.launch((4,), None, (other, 0, mine, 0, 1.0, 4))


def test_import_freezes_the_objects_alive_then():
    """Importing oclcore moves the objects alive then (torch's, mostly) out of cyclic garbage
    collection, so that a full collection in a training loop does not scan them again."""
    import subprocess
    import sys
    code = ("import gc, torch; before = gc.get_freeze_count(); import oclcore; "
            "print(before, gc.get_freeze_count(), len(gc.get_objects()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    before, frozen, tracked = map(int, out)
    assert before == 0 and frozen > 100_000 and tracked < frozen // 10
