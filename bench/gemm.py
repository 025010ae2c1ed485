"""GEMM throughput: oclcore next to torch on a reference device (CUDA with TF32
off when present, else the CPU) and CLBlast when its library is installed, in
one run. Square sizes and deep-learning shapes (vgg16 and vit_b_16 linear
layers, resnet50 1x1 convolutions as GEMM, attention bmm).

    python bench/gemm.py [--sizes 256 512 ...] [--out DIR] [--quick] [--clblast PATH]
"""

import argparse
import ctypes
import ctypes.util
import json
import os

import torch

import oclcore
from timing import kernel_seconds, median_seconds

# name: (M, N, K, batch, transpose B) -- C[b] = A[b] (MxK) @ B[b] (KxN), B stored as (N, K) when transposed
DL_SHAPES = {
    "vgg16 fc6 (b64)": (64, 4096, 25088, 1, True),
    "vgg16 fc7 (b64)": (64, 4096, 4096, 1, True),
    "vgg16 fc8 (b64)": (64, 1000, 4096, 1, True),
    "vit_b_16 qkv (b64)": (64 * 197, 2304, 768, 1, True),
    "vit_b_16 proj (b64)": (64 * 197, 768, 768, 1, True),
    "vit_b_16 mlp1 (b64)": (64 * 197, 3072, 768, 1, True),
    "vit_b_16 mlp2 (b64)": (64 * 197, 768, 3072, 1, True),
    "resnet50 1x1 64->256 56x56 (b32)": (256, 56 * 56, 64, 32, False),
    "resnet50 1x1 256->64 56x56 (b32)": (64, 56 * 56, 256, 32, False),
    "resnet50 1x1 512->128 28x28 (b32)": (128, 28 * 28, 512, 32, False),
    "resnet50 1x1 1024->256 14x14 (b32)": (256, 14 * 14, 1024, 32, False),
    "resnet50 1x1 2048->512 7x7 (b32)": (512, 7 * 7, 2048, 32, False),
    "vit attention QK^T (b64x12)": (197, 197, 64, 64 * 12, True),
    "vit attention AV (b64x12)": (197, 64, 197, 64 * 12, False),
}


def operands(M, N, K, batch, trans_b, device, dtype=torch.float32):
    a = torch.randn(batch, M, K, device=device, dtype=dtype)
    b = torch.randn(batch, N, K, device=device, dtype=dtype).transpose(1, 2) if trans_b else \
        torch.randn(batch, K, N, device=device, dtype=dtype)
    if batch == 1:
        a, b = a[0], b[0]
    return a, b


class CLBlast:
    """CLBlast's SGEMM (and strided-batched SGEMM) through ctypes, run on oclcore's own buffers
    and queue, so it is timed exactly like oclcore. The library is ``path``, else
    $OCLCORE_CLBLAST, else the system's libclblast."""

    def __init__(self, path=None):
        path = path or os.environ.get("OCLCORE_CLBLAST") or ctypes.util.find_library("clblast")
        self.lib = ctypes.CDLL(path) if path else None

    def available(self):
        return self.lib is not None

    def sgemm(self, dev, a, b, c, M, N, K, batch, trans_b):
        """C = A @ B on ocl float32 tensors (row-major, contiguous per batch; B given as (N, K)
        when trans_b)."""
        size_t = ctypes.c_size_t
        queue = ctypes.c_void_p(dev.queue_handle)
        head = (ctypes.c_int(101), ctypes.c_int(111), ctypes.c_int(112 if trans_b else 111),
                size_t(M), size_t(N), size_t(K), ctypes.c_float(1.0))
        operands = ((a, K, M * K), (b, K if trans_b else N, K * N), (c, N, M * N))
        args = [[ctypes.c_void_p(t._buf.handle), size_t(t.storage_offset()), size_t(ld)]
                + ([size_t(stride)] if batch > 1 else []) for t, ld, stride in operands]
        tail = (size_t(batch),) if batch > 1 else ()
        fn = self.lib.CLBlastSgemmStridedBatched if batch > 1 else self.lib.CLBlastSgemm
        status = fn(*head, *args[0], *args[1], ctypes.c_float(0.0), *args[2], *tail,
                    ctypes.byref(queue), None)
        if status != 0:
            raise RuntimeError(f"CLBlast SGEMM failed with status {status}")


def reference_device():
    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        return torch.device("cuda"), torch.cuda.synchronize, f"torch cuda ({torch.cuda.get_device_name()}, TF32 off)"
    return torch.device("cpu"), lambda: None, f"torch cpu ({torch.get_num_threads()} threads)"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", nargs="*", type=int)
    p.add_argument("--no-dl", action="store_true", help="skip the deep-learning shapes")
    p.add_argument("--quick", action="store_true", help="small sizes only (for CPU devices)")
    p.add_argument("--device", type=int, default=0)
    p.add_argument("--out", default=None, help="folder for gemm.md, gemm.json and gemm.png")
    p.add_argument("--clblast", default=None, help="path of libclblast.so (default: $OCLCORE_CLBLAST, "
                   "else the system's)")
    a = p.parse_args()
    ocl = torch.device("ocl", a.device)
    dev = oclcore.runtime.device(a.device)
    is_gpu = dev.type != "CPU"
    sizes = a.sizes or ([256, 512, 1024, 2048, 4096, 8192] if is_gpu and not a.quick else [128, 256, 512])
    ref, ref_sync, ref_name = reference_device()
    ocl_sync = dev.synchronize
    clblast = CLBlast(a.clblast)
    rows = []
    problems = [(f"{n}x{n}x{n}", (n, n, n, 1, False)) for n in sizes]
    if not a.no_dl and is_gpu and not a.quick:
        problems += list(DL_SHAPES.items())
    try:
        from tqdm import tqdm
        problems_iter = tqdm(problems, desc="gemm", leave=False)
    except ImportError:
        problems_iter = problems
    for name, (M, N, K, batch, tb) in problems_iter:
        flops = 2.0 * M * N * K * batch
        x, y = operands(M, N, K, batch, tb, ocl)
        t_ocl = median_seconds(lambda: torch.matmul(x, y), ocl_sync)
        t_kernel = kernel_seconds(lambda: torch.matmul(x, y), ocl_sync)
        xr, yr = x.to(ref), y.to(ref)
        t_ref = median_seconds(lambda: torch.matmul(xr, yr), ref_sync)
        t_clb = None
        want = torch.matmul(xr, yr).cpu().double()
        err = ((torch.matmul(x, y).cpu().double() - want).norm() / want.norm()).item()
        clb_err = None
        if clblast.available():
            c = torch.empty((batch, M, N) if batch > 1 else (M, N), device=ocl)
            t_clb = median_seconds(lambda: clblast.sgemm(dev, x, y, c, M, N, K, batch, tb), ocl_sync)
            clb_err = ((c.cpu().double() - want).norm() / want.norm()).item()
        rows.append({"problem": name, "M": M, "N": N, "K": K, "batch": batch,
                     "oclcore_gflops": flops / t_ocl / 1e9, "ref_gflops": flops / t_ref / 1e9,
                     "ratio": t_ref / t_ocl, "rel_err": err, "kernel_gflops": flops / t_kernel / 1e9,
                     "kernel_ratio": t_ref / t_kernel,
                     "clblast_gflops": None if t_clb is None else flops / t_clb / 1e9,
                     "clblast_rel_err": clb_err})
        del x, y, xr, yr
    head = (f"device: ocl:{a.device} {dev.name} ({dev.platform}, driver {dev.driver_version}); "
            f"reference: {ref_name}; fp32")
    lines = [head, "", "| problem | M | N | K | batch | oclcore GFLOP/s | reference GFLOP/s | oclcore/reference | "
             "oclcore kernels GFLOP/s | kernels/reference | CLBlast GFLOP/s | oclcore/CLBlast | rel. error "
             "(oclcore, CLBlast) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        clb, vs, clb_err = "-", "-", ""
        if r["clblast_gflops"] is not None:
            clb = f"{r['clblast_gflops']:.0f}"
            vs = f"{r['oclcore_gflops'] / r['clblast_gflops']:.2f}x"
            clb_err = f", {r['clblast_rel_err']:.1e}"
        lines.append(f"| {r['problem']} | {r['M']} | {r['N']} | {r['K']} | {r['batch']} | {r['oclcore_gflops']:.0f} "
                     f"| {r['ref_gflops']:.0f} | {100 * r['ratio']:.1f}% | {r['kernel_gflops']:.0f} "
                     f"| {100 * r['kernel_ratio']:.1f}% | {clb} | {vs} | {r['rel_err']:.1e}{clb_err} |")
    lines.append("\n(oclcore and reference: calls streamed back to back, as a training loop issues them; "
                 "oclcore kernels: the OpenCL event time of the launches of one call, without the host's share.)")
    if not clblast.available():
        lines.append("\nCLBlast: not installed on this machine (no column).")
    text = "\n".join(lines)
    print(text)
    if a.out:
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, "gemm.md"), "w") as f:
            f.write(text + "\n")
        with open(os.path.join(a.out, "gemm.json"), "w") as f:
            json.dump({"header": head, "rows": rows}, f, indent=1)
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            fig, ax = plt.subplots(figsize=(10, 0.35 * len(rows) + 1.5))
            ys = range(len(rows))
            series = [("oclcore", [r["oclcore_gflops"] for r in rows]), (ref_name, [r["ref_gflops"] for r in rows])]
            if any(r["clblast_gflops"] for r in rows):
                series.append(("CLBlast", [r["clblast_gflops"] or 0 for r in rows]))
            width = 0.8 / len(series)
            for i, (label, values) in enumerate(series):
                ax.barh([y - 0.4 + width * (i + 0.5) for y in ys], values, width, label=label)
            ax.set_yticks(list(ys), [r["problem"] for r in rows])
            ax.invert_yaxis()
            ax.set_xlabel("GFLOP/s (fp32)")
            ax.legend()
            ax.set_title(head, fontsize=8)
            fig.tight_layout()
            fig.savefig(os.path.join(a.out, "gemm.png"), dpi=100)
        except ImportError:
            pass


if __name__ == "__main__":
    main()
