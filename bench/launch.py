"""Host time per kernel launch: oclcore's Kernel.launch (arguments packed in
Cython) and a graph replay (a CommandList: arguments bound once per recorded
launch) next to a bare C loop over clSetKernelArg + clEnqueueNDRangeKernel,
in one run.

--gaps times Kernel.launch when launches come apart, as an op's Python puts them: the calling
thread's CPU time per launch with the given busy-waits between launches (a thread handing a
launch to a sleeping submitter pays for waking it).

    python bench/launch.py [--device N] [--launches 20000]
    python bench/launch.py --gaps 0,5,20,50
"""

import argparse
import statistics
import time

from oclcore import _runtime, runtime

SOURCE = """
__kernel void empty() {}
__kernel void args4(__global float* a, int a_off, float s, int n) {}
"""


def measure(fn, launches, repeats, dev):
    times = []
    for _ in range(repeats):
        dev.synchronize()
        t0 = time.perf_counter()
        fn(launches)
        t1 = time.perf_counter()
        dev.synchronize()
        times.append((t1 - t0) / launches * 1e6)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", type=int, default=0)
    p.add_argument("--launches", type=int, default=20000)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--gaps", help="microseconds between launches, comma-separated: time spaced launches instead")
    a = p.parse_args()
    dev = runtime.device(a.device)
    prog = dev.build(SOURCE, "", "bench_launch")
    empty = prog.kernel("empty", "")
    args4 = prog.kernel("args4", "Bifi")
    buf = dev.alloc(4096)
    g = (1,)

    def ours_empty(n):
        launch = empty.launch
        for _ in range(n):
            launch(g, None, ())

    def ours_args(n):
        launch, args = args4.launch, (buf, 0, 1.5, 1)
        for _ in range(n):
            launch(g, None, args)

    def bare(n):
        empty._bare_enqueue_loop(n, g)

    def bare_args(n):
        args4._bare_enqueue_loop(n, g, (buf, 0, 1.5, 1))

    chunk = 1000
    lists = {name: _runtime.CommandList([(k, g, None, args)] * chunk)
             for name, k, args in (("empty", empty, ()), ("args", args4, (buf, 0, 1.5, 1)))}

    def replayed(name):
        def run(n):
            for _ in range(max(n // chunk, 1)):
                lists[name].replay()
        return run

    if a.gaps:
        spaced(args4, (buf, 0, 1.5, 1), [float(v) for v in a.gaps.split(",")], min(a.launches, 2000), dev)
        return
    for f in (bare, bare_args, ours_empty, ours_args, replayed("empty"), replayed("args")):  # warm-up
        f(chunk)
    launches = max(a.launches // chunk, 1) * chunk
    rows = [("no arguments", *(measure(f, launches, a.repeats, dev) for f in (bare, ours_empty, replayed("empty")))),
            ("4 arguments (buffer, int, float, int)",
             *(measure(f, launches, a.repeats, dev) for f in (bare_args, ours_args, replayed("args"))))]
    print(f"device: ocl:{a.device} {dev.name} ({dev.platform}, driver {dev.driver_version})")
    print("host microseconds per launch, median of", a.repeats, "runs of", a.launches, "launches")
    print(f"{'kernel':<40}{'bare C loop':>12}{'Kernel.launch':>15}{'difference':>12}{'graph replay':>14}")
    for name, bare_us, ours_us, replay_us in rows:
        print(f"{name:<40}{bare_us:>12.2f}{ours_us:>15.2f}{ours_us - bare_us:>+12.2f}{replay_us:>14.2f}")


def spaced(kernel, args, gaps, launches, dev):
    """Calling-thread CPU microseconds per Kernel.launch with a busy-wait of each gap between launches."""
    print(f"device: ocl:{dev.index} {dev.name}; submitter thread: {'on' if dev.submit_thread else 'off'}")
    print(f"{'gap (us)':>10}{'cpu us per launch':>20}")
    g = (1,)
    for gap in gaps:
        total = 0.0
        for _ in range(launches):
            until = time.perf_counter() + gap * 1e-6
            while time.perf_counter() < until:
                pass
            t0 = time.thread_time()
            kernel.launch(g, None, args)
            total += time.thread_time() - t0
        dev.synchronize()
        print(f"{gap:>10.0f}{total / launches * 1e6:>20.2f}")


if __name__ == "__main__":
    main()
