"""Milliseconds per batch of torchvision networks on ocl next to a reference device
(cuda if present, else cpu), in one run, the way ../shared/seed-benchmarks.txt
and DESIGN.md (Measuring) measure: random weights; input randn(B,3,S,S) and
labels made once and kept on the device; training step = forward,
CrossEntropyLoss, zero_grad, backward, Adam step in train mode; inference =
eval under no_grad; warm-up steps, then N steps with the device synchronised
around each. The ratio column is reference time / ocl time in % (higher is
better), as in the seed table; Average is the mean of the ratios.

Each (network, mode, device) measurement runs in its own subprocess with a
timeout, so a failure or a hang is reported in the table and the run goes on.
Ops that fell back to the CPU during the timed steps are listed, never hidden.

    python bench/nets.py                                   # the seed's table
    python bench/nets.py --models resnet18 --batch 2 --iters 2 --warmup 1 \\
        --reference cpu --image-size 64 --out /tmp/nets   # a quick check
    python bench/nets.py --reference cuda --tf32 both --validate --cores 0,1 --out bench/results/h200
    python bench/nets.py --ocl-modes eager,graph,compile   # eager vs capture/replay vs torch.compile
    python bench/nets.py --merge gpu0/nets.json gpu1/nets.json --out both   # one table from two runs
    python bench/nets.py --profile resnet18 --batch 8      # top kernels (oclcore.profile())
    python bench/nets.py --profile efficientnet_b0 --mode infer --ocl-modes compile   # of the compiled step
"""

import argparse
import contextlib
import io
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
import warnings

# the seed table's networks and batch sizes
TRAIN_BATCH = {
    "alexnet": 64, "resnet18": 64, "resnet50": 32, "convnext_small": 16, "vgg16": 16, "densenet161": 16,
    "mobilenet_v2": 32, "mobilenet_v3_small": 64, "mobilenet_v3_large": 64, "resnext50_32x4d": 32,
    "wide_resnet50_2": 32, "mnasnet1_0": 32, "efficientnet_b0": 32, "regnet_y_400mf": 64,
}
INFER_NETWORKS = list(TRAIN_BATCH) + ["inception_v3", "efficientnet_b4"]
INFER_BATCH = 64
VALIDATE_TOLERANCE = 1e-3  # max |ocl - reference| relative to max |reference| of the logits
RESULT_PREFIX = "NETS-RESULT "


# ---------------------------------------------------------------- measuring (inside a worker process)

def build_model(name, image_size, train):
    """A torchvision network with random weights (seeded), 1000 classes."""
    import torch
    import torchvision

    kwargs = {}
    if name in ("inception_v3", "googlenet"):
        kwargs["init_weights"] = True
    if name == "inception_v3" and (not train or image_size < 299):
        kwargs["aux_logits"] = False  # the auxiliary head needs 299x299 inputs
    if name.startswith("vit_") and image_size != 224:
        kwargs["image_size"] = image_size
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torchvision.models.get_model(name, weights=None, **kwargs)


def logits_of(out):
    """The main logits of a network's output (inception/googlenet return named tuples in training)."""
    import torch

    return out if isinstance(out, torch.Tensor) else out[0]


def set_cuda_precision(tf32):
    """torch's default CUDA precision (tf32=True) or strict fp32 (TF32 off for cuDNN and matmul)."""
    import torch

    if not tf32:
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False


def device_setup(device, tf32):
    """Imports what ``device`` needs; returns (synchronize function, device description)."""
    import torch

    if device.startswith("ocl"):
        import oclcore
        from oclcore import runtime

        d = runtime.device(torch.device(device).index or 0)
        return (lambda: torch.ocl.synchronize()), f"{d.name} ({d.platform}, driver {d.driver_version})"
    if device.startswith("cuda"):
        set_cuda_precision(tf32)
        name = torch.cuda.get_device_name(torch.device(device))
        return (lambda: torch.cuda.synchronize()), f"{name} (CUDA {torch.version.cuda})"
    import platform
    return (lambda: None), f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def make_step(model, x, y, train, forward=None, fused=False):
    """The timed step: a training step with Adam (torch's default multi-tensor form, or its
    fused form), or eval inference under no_grad (``forward``: what computes the model's
    output, e.g. its compiled form)."""
    import torch

    forward = model if forward is None else forward
    if train:
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-4, fused=fused or None)
        loss_fn = torch.nn.CrossEntropyLoss()

        def step():
            loss = loss_fn(logits_of(forward(x)), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return step
    model.eval()

    def infer():
        with torch.no_grad():
            forward(x)
    return infer


def make_graph_step(model, x, y, train):
    """The same step captured once with oclcore.graph and replayed (Adam with fused=True, which
    keeps its step counts on the device as CUDA graphs require, in one kernel per 8 parameters
    where capturable=True takes ten multi-tensor ops); warm-up eager steps allocate gradients
    and optimizer state first.
    Gradients are set to None inside the step, as in the eager step and torch.cuda.graph's
    whole-network example: backward allocates them in the capture and replays rewrite them."""
    import torch
    from oclcore import graph as ograph

    if train:
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-4, fused=True)
        loss_fn = torch.nn.CrossEntropyLoss()

        def step():
            loss = loss_fn(logits_of(model(x)), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    else:
        model.eval()

        def step():
            with torch.no_grad():
                model(x)
    for _ in range(2):
        step()
    g = ograph.Graph()
    with ograph.graph(g):
        step()
    return g.replay


def make_compiled_step(model, x, y, train):
    """The same step with the model under torch.compile(backend="oclcore"); Adam's step stays
    eager, in its fused form (one kernel per 8 parameters)."""
    import torch

    import oclcore.compile  # noqa: F401  (registers the backend even without the entry point)

    return make_step(model, x, y, train, forward=torch.compile(model, backend="oclcore"), fused=True)


STEP_MAKERS = {"eager": make_step, "graph": make_graph_step, "compile": make_compiled_step}


def measure(job):
    """Runs one measurement job; returns a dict of results (times in ms)."""
    import torch

    if job.get("cores"):
        os.sched_setaffinity(0, job["cores"])
        torch.set_num_threads(len(job["cores"]))
    device, train = job["device"], job["mode"] == "train"
    sync, description = device_setup(device, job.get("tf32", False))
    result = {"device_name": description}
    model = build_model(job["model"], job["image_size"], train).to(device)
    torch.manual_seed(1)
    x = torch.randn(job["batch"], 3, job["image_size"], job["image_size"]).to(device)
    if job["kind"] == "validate":
        return validate(job, model, x, result)
    y = torch.randint(0, 1000, (job["batch"],)).to(device)
    step = STEP_MAKERS[job.get("ocl_mode", "eager")](model, x, y, train)
    for _ in range(job["warmup"]):
        step()
    sync()
    on_ocl = device.startswith("ocl")
    if on_ocl:
        import oclcore
        oclcore.reset_fallbacks()
        launches = oclcore.runtime.rt.launch_count()
    times, host = [], []
    for _ in range(job["iters"]):
        sync()
        t0 = time.perf_counter()
        step()
        t1 = time.perf_counter()  # the host has enqueued everything: the step's host time
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
        host.append((t1 - t0) * 1e3)
    result.update(times_ms=times, mean_ms=statistics.mean(times), median_ms=statistics.median(times),
                  host_ms=statistics.median(host))
    if on_ocl:
        result["kernels_per_step"] = (oclcore.runtime.rt.launch_count() - launches) / job["iters"]
        result["fallbacks"] = dict(oclcore.fallbacks())
    if device.startswith("cuda"):
        result["max_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def validate(job, model, x, result):
    """Eval logits of the same network and input on ocl and on the reference device."""
    import torch

    import oclcore

    model.eval()
    with torch.no_grad():
        expected = logits_of(model(x)).double().cpu()
        oclcore.reset_fallbacks()
        ocl_model = model.cpu().to("ocl")
        actual = logits_of(ocl_model(x.cpu().to("ocl"))).double().cpu()
    err = (actual - expected).abs().max().item() / max(expected.abs().max().item(), 1e-30)
    result.update(relative_error=err, ok=bool(err <= VALIDATE_TOLERANCE and torch.isfinite(actual).all()),
                  fallbacks=dict(oclcore.fallbacks()))
    return result


def worker(job_json):
    """Entry point of a measurement subprocess: prints one result line."""
    warnings.simplefilter("ignore")
    job = json.loads(job_json)
    print(RESULT_PREFIX + json.dumps(measure(job)), flush=True)


# ---------------------------------------------------------------- orchestrating

def reference_columns(reference, tf32):
    """(column label, device, tf32) for each reference column."""
    if reference == "none":
        return []
    if reference == "cpu":
        return [("cpu", "cpu", False)]
    modes = {"strict": [False], "default": [True], "both": [False, True]}[tf32]
    return [("cuda strict fp32" if not t else "cuda default (TF32)", "cuda", t) for t in modes]


def run_job(job, timeout):
    """Runs ``job`` in a subprocess; returns its result dict, or {'error': ...}."""
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(job)]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX):])
            result["wall_s"] = time.perf_counter() - start
            return result
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    reason = next((ln for ln in reversed(lines) if "Error" in ln or "error" in ln), lines[-1] if lines else "")
    return {"error": f"exit {proc.returncode}: {reason.strip()[:300]}", "stderr_tail": "\n".join(lines[-30:])}


def plan(args):
    """The jobs of the run, in order: per network and mode, validation, references, ocl."""
    modes = ["train", "infer"] if args.mode == "both" else [args.mode]
    columns = reference_columns(args.reference, args.tf32)
    jobs = []
    for mode in modes:
        names = args.models or (list(TRAIN_BATCH) if mode == "train" else INFER_NETWORKS)
        for name in names:
            batch = args.batch or (TRAIN_BATCH.get(name, 32) if mode == "train" else INFER_BATCH)
            base = {"model": name, "mode": mode, "batch": batch, "image_size": args.image_size,
                    "warmup": args.warmup, "iters": args.iters, "cores": args.cores}
            if args.validate and (mode == "infer" or "infer" not in modes):  # once per network
                ref_device = columns[0][1] if columns else "cpu"
                jobs.append(dict(base, kind="validate", column="validate", device=ref_device, tf32=False))
            for label, device, tf32 in columns:
                jobs.append(dict(base, kind="time", column=label, device=device, tf32=tf32))
            for m in args.ocl_modes:
                jobs.append(dict(base, kind="time", column=_ocl_column(m), device="ocl", ocl_mode=m))
    return jobs


def _ocl_column(mode):
    return "ocl" if mode == "eager" else f"ocl {mode}"


def cell(result, stat):
    if result is None:
        return ""
    if "error" in result:
        return "fail"
    return f"{result[stat + '_ms']:.1f}"


def ratio(ref, ocl, stat):
    if not ref or not ocl or "error" in ref or "error" in ocl:
        return None
    return 100.0 * ref[stat + "_ms"] / ocl[stat + "_ms"]


def tables(results, args):
    """Markdown tables (one per mode) and the per-mode ratio lists for the chart."""
    stat = args.stat
    columns = [c[0] for c in reference_columns(args.reference, args.tf32)]
    out, chart = [], {}
    for mode in ("train", "infer"):
        rows = [r for r in results if r["job"]["mode"] == mode]
        if not rows:
            continue
        names = list(dict.fromkeys(r["job"]["model"] for r in rows))
        by = {(r["job"]["model"], r["job"]["column"]): r["result"] for r in rows}
        title = "Training (forward, loss, backward, Adam)" if mode == "train" else "Inference (eval, no_grad)"
        out.append(f"## {title}, ms per batch ({stat} of {args.iters}), input Bx3x{args.image_size}x"
                   f"{args.image_size}\n")
        head = ["network", "batch"] + [f"{c} ms" for c in columns] + ["ocl ms"] + [f"% of {c}" for c in columns]
        extra = [m for m in args.ocl_modes if m != "eager"]
        for m in extra:
            head += [f"ocl {m} ms", f"{m} speedup"] + [f"{m} % of {c}" for c in columns]
        head += ["kernels/step", "host ms/step"]
        if args.validate:
            head.append("validate")
        head.append("notes")
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "|".join(["---"] + ["---:"] * (len(head) - 2) + ["---"]) + "|")
        sums = {c: [] for c in columns}
        chart[mode] = {c: [] for c in columns}
        for name in names:
            ocl = by.get((name, "ocl"))
            batch = next(r["job"]["batch"] for r in rows if r["job"]["model"] == name)
            line = [name, str(batch)] + [cell(by.get((name, c)), stat) for c in columns] + [cell(ocl, stat)]
            for c in columns:
                q = ratio(by.get((name, c)), ocl, stat)
                line.append("" if q is None else f"{q:.1f}")
                if q is not None:
                    sums[c].append(q)
                chart[mode][c].append((name, q))
            for m in extra:
                g = by.get((name, _ocl_column(m)))
                line.append(cell(g, stat))
                speed = ratio(ocl, g, stat)
                line.append("" if speed is None else f"{speed / 100:.2f}x")
                for c in columns:
                    q = ratio(by.get((name, c)), g, stat)
                    line.append("" if q is None else f"{q:.1f}")
                    if q is not None:
                        sums.setdefault(f"{m} {c}", []).append(q)
            mode_results = [(m, by.get((name, _ocl_column(m)))) for m in args.ocl_modes]
            line.append(" / ".join(f"{r['kernels_per_step']:.0f}" if r and "kernels_per_step" in r else "-"
                                   for _, r in mode_results))
            line.append(" / ".join(f"{r['host_ms']:.1f}" if r and "host_ms" in r else "-" for _, r in mode_results))
            notes = []
            if args.validate:
                v = by.get((name, "validate"))
                if v is None:
                    line.append("")
                elif "error" in v:
                    line.append("fail")
                    notes.append(f"validate: {v['error']}")
                else:
                    line.append(("ok" if v["ok"] else "MISMATCH") + f" ({v['relative_error']:.1e})")
                    if v.get("fallbacks"):
                        notes.append(f"validate fallbacks: {v['fallbacks']}")
            for label, r in [(c, by.get((name, c))) for c in columns + [_ocl_column(m) for m in extra]] + [("ocl", ocl)]:
                if r and "error" in r:
                    notes.append(f"{label}: {r['error']}")
            if ocl and ocl.get("fallbacks"):
                notes.append("CPU fallbacks: " + ", ".join(f"{k} x{v}" for k, v in sorted(ocl["fallbacks"].items())))
            line.append("; ".join(notes).replace("|", "/"))
            out.append("| " + " | ".join(line) + " |")
        avg = ["**Average**", ""] + [""] * (len(columns) + 1)
        avg += [f"**{statistics.mean(sums[c]):.1f}**" if sums[c] else "" for c in columns]
        for m in extra:
            avg += ["", ""] + [f"**{statistics.mean(sums[f'{m} {c}']):.1f}**" if sums.get(f"{m} {c}") else ""
                               for c in columns]
        avg += [""] * (len(head) - len(avg))
        out.append("| " + " | ".join(avg) + " |")
        out.append("")
    return "\n".join(out), chart


def chart_png(chart, path):
    """Horizontal bars: ocl speed as % of each reference column, per network and mode."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = [m for m in chart if any(chart[m].values())]
    if not modes:
        return False
    fig, axes = plt.subplots(1, len(modes), figsize=(7 * len(modes), 0.35 * max(
        len(next(iter(chart[m].values()))) for m in modes) + 2), squeeze=False)
    for ax, mode in zip(axes[0], modes):
        cols = chart[mode]
        names = [n for n, _ in next(iter(cols.values()))]
        height = 0.8 / max(len(cols), 1)
        for i, (label, pairs) in enumerate(cols.items()):
            ys = [j + i * height for j in range(len(pairs))]
            ax.barh(ys, [q or 0 for _, q in pairs], height=height, label=f"% of {label}")
        ax.axvline(100, color="k", lw=0.8)
        ax.set_yticks([j + 0.4 - height / 2 for j in range(len(names))])
        ax.set_yticklabels(names)
        ax.invert_yaxis()
        ax.set_xlabel("reference time / ocl time (%), higher is better")
        ax.set_title("training" if mode == "train" else "inference")
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def environment(results):
    """Commit, versions and device names for the report header."""
    import torch

    env = {"command": " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0])] + sys.argv[1:]),
           "torch": torch.__version__, "python": sys.version.split()[0],
           "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        commit = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        env["commit"] = commit + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        env["commit"] = "unknown"
    try:
        drivers = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=20).stdout.split()
        env["nvidia_driver"] = ", ".join(dict.fromkeys(drivers))  # one line per GPU
    except (OSError, subprocess.SubprocessError):
        pass
    devices = {}
    for r in results:
        name = r["result"].get("device_name")
        if name and r["job"]["kind"] == "time":
            devices[r["job"]["column"]] = name
    env["devices"] = devices
    return env


def report(results, args, elapsed, env=None):
    text, chart = tables(results, args)
    env = env or environment(results)
    lines = ["# Network benchmarks: ocl vs reference", "",
             f"- command: `{env['command']}`", f"- commit: {env['commit']}", f"- date: {env['date']}",
             f"- torch {env['torch']}, python {env['python']}"]
    if env.get("nvidia_driver"):
        lines.append(f"- NVIDIA driver: {env['nvidia_driver']}")
    for column, name in env["devices"].items():
        lines.append(f"- {column}: {name}")
    cores = f"pinned to cores {args.cores}" if args.cores else "not pinned"
    lines += [f"- {args.warmup} warm-up steps, {args.stat} of {args.iters} timed steps, device synchronised "
              f"around each step; processes {cores}; total {elapsed:.0f} s", "", text]
    md = "\n".join(lines)
    print(md)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "nets.md"), "w") as f:
            f.write(md + "\n")
        with open(os.path.join(args.out, "nets.json"), "w") as f:
            json.dump({"environment": env, "args": vars(args), "elapsed_s": elapsed, "results": results}, f, indent=1)
        png = os.path.join(args.out, "nets.png")
        drawn = chart_png(chart, png)
        print(f"wrote {args.out}/nets.md, nets.json" + (", nets.png" if drawn else " (no ratios to chart)"))


def profile(args):
    """Profiles a few steps of one network on ocl with oclcore.profile() and prints the top kernels."""
    import torch

    import oclcore

    if not hasattr(oclcore, "profile"):
        print("--profile needs oclcore.profile() (issue 7, item 2), which this oclcore does not have yet.",
              file=sys.stderr)
        return 2
    mode = "infer" if args.mode == "infer" else "train"
    name = args.profile
    batch = args.batch or (TRAIN_BATCH.get(name, 32) if mode == "train" else INFER_BATCH)
    model = build_model(name, args.image_size, mode == "train").to("ocl")
    x = torch.randn(batch, 3, args.image_size, args.image_size).to("ocl")
    y = torch.randint(0, 1000, (batch,)).to("ocl")
    ocl_mode = args.ocl_modes[0]
    step = STEP_MAKERS[ocl_mode](model, x, y, mode == "train")
    warmup, iters = args.warmup, args.iters  # warm graph and compile steps are profiled replays
    for _ in range(warmup):
        step()
    torch.ocl.synchronize()
    oclcore.reset_fallbacks()
    with oclcore.profile() as prof:
        for _ in range(iters):
            step()
        torch.ocl.synchronize()
    print(f"{name} {mode} ({ocl_mode}), batch {batch}, {args.image_size}x{args.image_size}, {iters} steps:")
    print(prof.table(top=args.top))
    if oclcore.fallbacks():
        print("CPU fallbacks during the profiled steps:", oclcore.fallbacks())
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        path = os.path.join(args.out, f"{name}-{mode}-trace.json")
        prof.export_chrome_trace(path)
        print(f"wrote {path} (open in chrome://tracing or ui.perfetto.dev)")
    return 0


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--models", type=lambda s: [m for m in s.split(",") if m],
                   help="comma-separated torchvision names (default: the seed's lists)")
    p.add_argument("--batch", type=int, help="batch size for every network (default: the seed's)")
    p.add_argument("--mode", choices=["train", "infer", "both"], default="both")
    p.add_argument("--ocl-modes", type=lambda s: [m for m in s.split(",") if m], default=["eager"],
                   help="comma-separated ocl modes to time: eager, graph (oclcore.graph capture/replay), "
                        "compile (torch.compile backend='oclcore'); kernels/step and host ms/step are per mode")
    p.add_argument("--ocl-graph", action="store_true", help="same as adding graph to --ocl-modes")
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--stat", choices=["mean", "median"], default="mean", help="statistic in the table")
    p.add_argument("--reference", choices=["cuda", "cpu", "none"],
                   help="reference device (default: cuda if available, else cpu)")
    p.add_argument("--tf32", choices=["strict", "default", "both"], default="both",
                   help="CUDA reference precision: strict fp32 (TF32 off), torch's default (TF32 on in cuDNN), "
                        "or both columns")
    p.add_argument("--validate", action="store_true", help="first compare each network's outputs on ocl "
                   "with the reference device")
    p.add_argument("--timeout", type=float, default=900, help="seconds per network and device")
    p.add_argument("--cores", type=lambda s: [int(c) for c in s.split(",")],
                   help="pin every measurement to these cores, e.g. 0,1 (DESIGN.md's method)")
    p.add_argument("--out", help="directory for nets.md, nets.png and nets.json")
    p.add_argument("--profile", metavar="MODEL", help="profile MODEL on ocl with oclcore.profile() instead")
    p.add_argument("--top", type=int, default=25, help="kernels shown by --profile")
    p.add_argument("--merge", nargs="+", metavar="JSON", help="one report (to --out) from the nets.json of "
                   "several runs, e.g. parts of a table run on two GPUs at once")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.reference is None and not args.worker:
        import torch
        args.reference = "cuda" if torch.cuda.is_available() else "cpu"
    return args


def merge(args):
    """One report from several runs' nets.json (e.g. the halves of a table, run at once on two GPUs):
    their results in order, the first run's settings, every run's command."""
    runs = []
    for path in args.merge:
        with open(path) as f:
            runs.append(json.load(f))
    first = runs[0]
    settings = argparse.Namespace(**dict(first["args"], out=args.out, merge=args.merge))
    settings.ocl_modes = list(dict.fromkeys(m for r in runs for m in r["args"]["ocl_modes"]))
    results = [r for run in runs for r in run["results"]]
    env = dict(first["environment"])
    env["command"] = "` + `".join(r["environment"]["command"] for r in runs)
    commits = dict.fromkeys(r["environment"]["commit"] for r in runs)
    env["commit"] = ", ".join(commits)
    env["devices"] = {k: v for r in runs for k, v in r["environment"]["devices"].items()}
    report(results, settings, max(r.get("elapsed_s", 0.0) for r in runs), env)
    return 0


def main(argv=None):
    args = parse_args(argv)
    if args.merge:
        return merge(args)
    if args.ocl_graph and "graph" not in args.ocl_modes:
        args.ocl_modes.append("graph")
    if args.worker:
        return worker(args.worker)
    if args.profile:
        return profile(args)
    from tqdm import tqdm

    jobs = plan(args)
    results = []
    start = time.perf_counter()
    bar = tqdm(jobs, unit="job", file=sys.stderr)
    for job in bar:
        bar.set_description(f"{job['mode']} {job['model']} {job['column']}")
        result = run_job(job, args.timeout)
        if "error" in result:
            tqdm.write(f"{job['model']} {job['mode']} {job['column']}: {result['error']}", file=sys.stderr)
        results.append({"job": job, "result": result})
        if args.out and job is not jobs[-1]:  # partial reports survive an interrupted run
            with contextlib.redirect_stdout(io.StringIO()):
                report(results, args, time.perf_counter() - start)
    report(results, args, time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
