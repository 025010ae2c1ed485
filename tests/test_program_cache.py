"""The program cache: in memory, on disk across processes, recovery from corrupt
entries, and concurrent writers. Each scenario runs fresh interpreters that share
one OCLCORE_CACHE_DIR (a temporary folder)."""

import glob
import os
import subprocess
import sys
import textwrap
import uuid

from oclcore import _runtime as rt
from oclcore import runtime

# Prints the program statistics after building ``n`` programs whose source is unique to this test run
# (so neither our cache nor PoCL's own can already hold them).
_BUILD = """
    import json, sys, oclcore
    from oclcore import _runtime as rt
    d = oclcore.runtime.device(0)
    tag, n = sys.argv[1], int(sys.argv[2])
    before = rt.program_stats()
    for i in range(n):
        src = f"__kernel void k{i}(__global int* x) {{ x[get_global_id(0)] = {i}; /* {tag} */ }}"
        p = d.build(src, "-DTAG=1", f"prog{i}")
        b = d.alloc(16)
        p.kernel(f"k{i}", "B").launch((4,), None, (b,))
        import numpy as np
        out = np.zeros(4, np.int32)
        b.read(out)
        assert (out == i).all(), out
    after = rt.program_stats()
    print("STATS", json.dumps({k: after[k] - before[k] for k in after}))
"""


def _start(cache, tag, n):
    env = dict(os.environ, OCLCORE_CACHE_DIR=str(cache))
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(_BUILD), tag, str(n)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _stats(proc):
    import json

    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    line = [ln for ln in out.splitlines() if ln.startswith("STATS ")][-1]
    return json.loads(line[6:])


def _build(cache, tag, n=1):
    return _stats(_start(cache, tag, n))


def _entries(cache):
    return sorted(glob.glob(os.path.join(str(cache), "*.bin")))


def test_second_process_compiles_nothing(tmp_path):
    tag = uuid.uuid4().hex
    first = _build(tmp_path, tag, 2)
    assert first["compiled"] == 2 and first["disk_hits"] == 0
    assert len(_entries(tmp_path)) == 2
    second = _build(tmp_path, tag, 2)
    assert second["compiled"] == 0, second
    assert second["disk_hits"] == 2
    assert not glob.glob(os.path.join(str(tmp_path), "*.tmp"))


def _damage(path, how):
    data = bytearray(open(path, "rb").read())
    if how == "truncate":
        data = data[:len(data) // 2]
    elif how == "garble_payload":
        for i in range(64, len(data), 97):
            data[i] ^= 0x5A
    elif how == "garble_header":
        data[:8] = b"garbage!"
    else:
        data = b""
    open(path, "wb").write(bytes(data))


def test_corrupt_entries_are_rebuilt_silently(tmp_path):
    tag = uuid.uuid4().hex
    damages = ["truncate", "garble_payload", "garble_header", "empty"]
    _build(tmp_path, tag, len(damages))
    entries = _entries(tmp_path)
    assert len(entries) == len(damages)
    for path, how in zip(entries, damages):
        _damage(path, how)
    stats = _build(tmp_path, tag, len(damages))  # the child asserts every kernel computes the right values
    assert stats["compiled"] == len(damages) and stats["disk_hits"] == 0
    assert stats["disk_rejected"] >= len(damages)
    # the entries were rewritten whole: the next process loads them all
    again = _build(tmp_path, tag, len(damages))
    assert again["compiled"] == 0 and again["disk_hits"] == len(damages) and again["disk_rejected"] == 0


def test_concurrent_processes_leave_a_valid_cache(tmp_path):
    tag = uuid.uuid4().hex
    procs = [_start(tmp_path, tag, 3) for _ in range(3)]
    for p in procs:
        _stats(p)
    assert len(_entries(tmp_path)) == 3
    assert not glob.glob(os.path.join(str(tmp_path), "*.tmp"))
    stats = _build(tmp_path, tag, 3)
    assert stats["compiled"] == 0 and stats["disk_hits"] == 3 and stats["disk_rejected"] == 0


def test_memory_cache_and_options_are_part_of_the_key():
    dev = runtime.device(0)
    src = f"__kernel void k(__global int* x) {{ x[0] = VALUE; }} /* {uuid.uuid4().hex} */"
    before = rt.program_stats()
    p1 = dev.build(src, "-DVALUE=1")
    p1_again = dev.build(src, "-DVALUE=1")
    p2 = dev.build(src, "-DVALUE=2")
    after = rt.program_stats()
    assert after["memory_hits"] - before["memory_hits"] == 1
    assert after["compiled"] + after["disk_hits"] - before["compiled"] - before["disk_hits"] == 2
    import numpy as np

    out = np.zeros(1, np.int32)
    for prog, want in ((p1, 1), (p1_again, 1), (p2, 2)):
        b = dev.alloc(4)
        prog.kernel("k", "B").launch((1,), None, (b,))
        b.read(out)
        assert out[0] == want


def test_cache_dir_follows_the_environment(tmp_path):
    env = dict(os.environ, OCLCORE_CACHE_DIR=str(tmp_path / "nested" / "cache"))
    code = "import oclcore; from oclcore import _runtime as rt; oclcore.runtime.device(0); print(rt.cache_dir())"
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().endswith(os.path.join("nested", "cache"))


def test_a_build_on_a_cpu_device_waits_for_launched_kernels():
    """PoCL compiles launched kernels on its worker threads: a build there first lets them finish."""
    d = runtime.device(0)
    if d.info()["type"] != "CPU":
        return  # (GPU drivers build beside running kernels; nothing to wait for)
    slow = d.build("__kernel void spin(__global float* x, const int n) {"
                   " float a = x[get_global_id(0)];"
                   " for (int i = 0; i < n; i++) a = a * 0.999999f + 1e-6f;"
                   " x[get_global_id(0)] = a; }", "", "spin")
    b = d.alloc(4 * 64)
    b.fill(b"\0\0\0\0")
    profiling = d.profiling
    try:
        event = slow.kernel("spin", "Bi").launch_timed((64,), None, (b, 20_000_000))
        assert not event.done()  # still running: the next build must wait for it
        d.build(f"__kernel void fresh(__global int* x) {{ x[0] = 1; /* {uuid.uuid4().hex} */ }}", "", "fresh")
        assert event.done()
    finally:
        d.profiling = profiling
