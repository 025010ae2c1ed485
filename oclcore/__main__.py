"""The ``oclcore`` command: ``oclcore info``, ``oclcore demo``, ``oclcore tune gemm``."""

import argparse
import sys


def _info(args):
    from . import info

    print(info.report())
    return 0


def _demo(args):
    from . import demo

    return demo.main(args)


def _tune(args):
    from .gemm import cli

    return cli.main(args)


def main(argv=None):
    """Entry point of the console script and of ``python -m oclcore``."""
    parser = argparse.ArgumentParser(prog="oclcore", description="PyTorch on any OpenCL device")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("info", help="list OpenCL platforms and devices")
    p.set_defaults(run=_info)
    p = sub.add_parser("demo", help="train a small CNN on scikit-learn's digits on an OpenCL device")
    p.add_argument("--device", default="ocl", help="torch device to train on (default: ocl, the default OpenCL device)")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--no-cpu-reference", action="store_true", help="skip timing the same training on torch CPU")
    p.set_defaults(run=_demo)
    p = sub.add_parser("tune", help="tune kernels for the current device")
    p.add_argument("what", choices=["gemm"])
    p.add_argument("--budget", type=float, default=120.0, help="seconds to spend")
    p.add_argument("--sizes", nargs="*", type=int, help="square problem sizes to tune for")
    p.add_argument("--problems", nargs="*", metavar="MxNxK[xBATCH][:AB]",
                   help="tune these problem shapes instead (a layer's GEMM: C = A @ B with A M x K, B K x N; "
                        "AB: 'n' or 's' for A per batch or shared by all, 'n' or 't' for B stored K x N or "
                        "N x K; default nn) and record each one's best set and split")
    p.add_argument("--model", metavar="NAME",
                   help="tune the GEMM problems of one pass of this torchvision model instead (see oclcore.tune_gemms)")
    p.add_argument("--batch", type=int, default=32, help="--model: batch size")
    p.add_argument("--image", type=int, default=224, help="--model: input height and width")
    p.add_argument("--train", action="store_true", help="--model: a training pass (forward and backward)")
    p.add_argument("--top", type=int, default=20, help="--model: the heaviest problems tuned")
    p.add_argument("--device", type=int, default=0, help="ocl device index")
    p.set_defaults(run=_tune)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
