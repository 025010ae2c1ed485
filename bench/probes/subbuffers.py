"""Launch cost of a kernel on a sub-buffer as its parent holds more live sub-buffers (disjoint
exact-size ones, or ones running to the parent's end), next to separate buffers, on every OpenCL GPU
(pyopencl; CPU devices are skipped). Why oclcore's allocator gives every block its own cl_mem
(bench/results/h200-round8.md).

    python bench/probes/subbuffers.py
"""
import time
import pyopencl as cl

for platform in cl.get_platforms():
    for d in platform.get_devices():
        if d.type & cl.device_type.CPU:
            continue
        ctx = cl.Context([d]); q = cl.CommandQueue(ctx)
        prg = cl.Program(ctx, "__kernel void k(__global float *x) { x[get_global_id(0)] += 1.0f; }").build()
        size = 64 << 20
        step = 64 << 10
        for kind in ("separate", "disjoint", "tail"):
            for n in (1, 10, 100, 900):
                big = cl.Buffer(ctx, cl.mem_flags.READ_WRITE, size)
                t0 = time.perf_counter()
                if kind == "separate":
                    subs = [cl.Buffer(ctx, cl.mem_flags.READ_WRITE, step) for i in range(n)]
                else:
                    subs = [big.get_sub_region(step * i + 4096, step if kind == "disjoint" else size - step * i - 4096) for i in range(n)]
                t1 = time.perf_counter()
                for s in subs: prg.k(q, (256,), (256,), s)
                q.finish(); t2 = time.perf_counter()
                reps = max(1, 2000 // n)
                for _ in range(reps):
                    for s in subs[:50]: prg.k(q, (256,), (256,), s)
                q.finish(); t3 = time.perf_counter()
                for _ in range(reps):
                    for _ in range(min(n, 50)): prg.k(q, (256,), (256,), big)
                q.finish(); t4 = time.perf_counter()
                m = reps * min(n, 50)
                print(f"{d.name} {kind:8s} n={n:4d}: create {1e6*(t1-t0)/n:8.2f} us, first use {1e6*(t2-t1)/n:8.2f} us, "
                      f"reuse {1e6*(t3-t2)/m:8.2f} us, parent {1e6*(t4-t3)/m:8.2f} us per launch", flush=True)
                for s in subs: s.release()
                big.release()
