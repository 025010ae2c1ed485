"""Algorithm choice per convolution problem and pass.

Order of precedence: an explicit `algorithm=` argument, then the innermost
`force_algorithm(...)` block, then (in benchmark mode) the fastest candidate
measured once per shape key and remembered in a JSON file, then a heuristic.
A forced algorithm that does not support a problem/pass is skipped (the
heuristic decides) unless strict=True, so that forcing "winograd" around a
whole network still runs its 1x1 and strided layers elsewhere."""
import contextlib
import json
import os
import threading
import time

from .algorithms import ALGORITHMS, FORWARD

# Process-wide, not thread-local: autograd runs the backward of ocl tensors on its own device
# thread, and a block forced around a training step must reach those passes too.
_forced = []
_benchmark = {"on": os.environ.get("OCLCORE_CONV_BENCHMARK", "0") == "1"}
_winners = {}           # path -> {key: name}
_lock = threading.Lock()
_heuristic_choices = {}  # (ConvGeometry, pass) -> the heuristic's Algorithm (a pure function of both)
_CHOICES_LIMIT = 4096    # problems kept; the cache starts over when full


def _stack():
    return _forced


@contextlib.contextmanager
def force_algorithm(name, strict=False):
    """Use algorithm `name` for every convolution pass in this block that it
    supports; strict=True raises for passes it does not support."""
    if name not in ALGORITHMS:
        raise ValueError(f"unknown convolution algorithm '{name}'; "
                         f"expected one of {sorted(ALGORITHMS)}")
    _stack().append((name, strict))
    try:
        yield
    finally:
        _stack().pop()


def set_benchmark(on=True):
    """Turn benchmark mode on/off (like torch.backends.cudnn.benchmark)."""
    _benchmark["on"] = bool(on)


def settings():
    """What besides a problem decides the algorithms run for it: the forced algorithms and
    benchmark mode (a key for callers that remember launches)."""
    return tuple(_forced), _benchmark["on"]


def candidates(g, pass_):
    """Names of the algorithms that support this problem and pass."""
    return [n for n, a in ALGORITHMS.items() if a.supports(g, pass_)]


def heuristic(g, pass_):
    """Rule-of-thumb choice, no timing."""
    ok = set(candidates(g, pass_))
    if "depthwise" in ok:
        return "depthwise"
    # Narrow groups waste most of a GEMM tile and cost a GEMM launch per group.
    if "grouped" in ok and (g.Cg <= 16 or g.Kg <= 16):
        return "grouped"
    if "gemm_1x1" in ok:
        return "gemm_1x1"
    # Winograd saves 2.25x multiplies but adds transform traffic: it pays
    # once both channel counts are large enough for the GEMMs to dominate.
    # For the filter gradient it also replaces a GEMM per image (im2col) or a
    # reduction over N*P*Q inside one work-group (implicit GEMM) by 16*G
    # batched GEMMs with the whole batch as their depth. On an H200 it beat
    # both in 26 of 27 layers with 16 to 512 channels (1.2-8x; batch 1-128,
    # 7x7 to 224x224, NCHW and NHWC; the exception, one 14x14 image, lost
    # 0.23 vs 0.18 ms) but was 4x slower for a 3-channel first layer, whose
    # GEMMs are too thin: so the same bound holds for all three passes, and
    # thinner layers, where it sometimes won too, stay on the GEMM paths.
    if g.Cg >= 16 and g.Kg >= 16:
        # Larger tiles, timed on an H200 (bench/results/h200-round13.md, batch 64): F(4x4,3x3)
        # ran the forward pass of 3x3 layers up to 41% faster than F(2x2,3x3) on 7x7 to 224x224
        # images, equal on two (backward with its data gradient up to 29% faster, one 25x25 layer 4%
        # slower) and lost on 5x5 images, where 4x4 tiles are mostly padding; F(2x2,5x5) ran
        # inception_v3's 5x5 forward 4x faster than im2col.
        rows, cols = (g.P, g.Q) if pass_ == FORWARD else (g.H, g.W)
        if "winograd_f4x4_3x3" in ok and min(rows, cols) >= 7:
            return "winograd_f4x4_3x3"
        if "winograd_f2x2_5x5" in ok:
            return "winograd_f2x2_5x5"
        if "winograd" in ok:
            return "winograd"
    # Measured on an H200 (bench/conv.py, resnet50 b32): explicit im2col + the tuned GEMM
    # beats the implicit kernel on every strided and 7x7 layer in both gradients (3.1 vs
    # 11.9 ms for a stride-2 3x3 layer's backward; the 7x7 stem's data gradient took 67 ms
    # implicitly) and in the forward pass, RGB stems included since im2col runs one
    # work-item per element over a flat range (resnet50's 7x7 stem 0.75 vs 0.97 ms,
    # mobilenet_v2's 0.19 vs 0.22 ms); the implicit kernel keeps thin grouped forward
    # reductions, where im2col would run one GEMM per group.
    if pass_ == FORWARD and g.Cg * g.R * g.S < 192 and g.groups > 1:
        return "implicit_gemm"
    return "im2col"


def cache_path():
    """JSON file holding benchmark winners."""
    d = os.environ.get("OCLCORE_CACHE_DIR")
    if not d:
        try:
            import platformdirs
            d = platformdirs.user_cache_dir("oclcore")
        except ImportError:
            d = os.path.join(os.path.expanduser("~"), ".cache", "oclcore")
    return os.path.join(d, "conv_algorithms.json")


def _table(path):
    t = _winners.get(path)
    if t is None:
        try:
            with open(path) as f:
                t = json.load(f)
        except (OSError, ValueError):
            t = {}
        _winners[path] = t
    return t


def _store(path, key, name):
    with _lock:
        t = _table(path)
        t[key] = name
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            json.dump(t, f, indent=0, sort_keys=True)
        os.replace(tmp, path)


def shape_key(ctx, g, pass_, layout):
    """String key of a problem for the benchmark cache."""
    return f"{ctx.device_name}|{pass_}|{layout}|" + ",".join(map(str, g.key()))


def benchmark(ctx, g, pass_, layout, run):
    """Time every candidate once (after a warm-up run that also builds its
    kernels) and remember the winner. run(algorithm) executes the pass."""
    best, best_t = None, float("inf")
    sync = ctx.synchronize or (lambda: None)
    for name in candidates(g, pass_):
        alg = ALGORITHMS[name]
        run(alg)
        sync()
        t0 = time.perf_counter()
        run(alg)
        sync()
        dt = time.perf_counter() - t0
        if dt < best_t:
            best, best_t = name, dt
    _store(cache_path(), shape_key(ctx, g, pass_, layout), best)
    return best


def choose(ctx, g, pass_, layout="nchw", run=None, algorithm=None):
    """Pick the Algorithm for (problem, pass). In benchmark mode with no
    cached winner, `run(algorithm)` is used to time the candidates; the
    caller then runs the winner as usual."""
    name = algorithm
    if name is None and _stack():
        forced, strict = _stack()[-1]
        if ALGORITHMS[forced].supports(g, pass_):
            name = forced
        elif strict:
            raise RuntimeError(f"convolution algorithm '{forced}' does not support {pass_} "
                               f"for this problem: {g}")
    if name is not None:
        if name not in ALGORITHMS:
            raise ValueError(f"unknown convolution algorithm '{name}'")
        if not ALGORITHMS[name].supports(g, pass_):
            raise RuntimeError(f"convolution algorithm '{name}' does not support {pass_} "
                               f"for this problem: {g}")
        return ALGORITHMS[name]
    if _benchmark["on"] and run is not None:
        key = shape_key(ctx, g, pass_, layout)
        cached = _table(cache_path()).get(key)
        if cached in ALGORITHMS and ALGORITHMS[cached].supports(g, pass_):
            return ALGORITHMS[cached]
        name = benchmark(ctx, g, pass_, layout, run)
        return ALGORITHMS[name]
    alg = _heuristic_choices.get((g, pass_))
    if alg is None:
        if len(_heuristic_choices) >= _CHOICES_LIMIT:
            _heuristic_choices.clear()
        alg = _heuristic_choices[(g, pass_)] = ALGORITHMS[heuristic(g, pass_)]
    return alg
