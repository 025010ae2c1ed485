"""``torch.compile(model, backend="oclcore")``.

Dynamo captures Python code into FX graphs (dynamo.py lets it see ocl
tensors as tensors); AOTAutograd splits each into forward and backward aten
graphs; every aten graph is rewritten (rewrite.py: inputs updated in place
where functionalization made copies, inference batch norm folded into
convolutions or written as elementwise ops, training batch norm and its
activation one kernel forward and one backward, activations in
GEMM/convolution epilogues), its elementwise chains are fused into generated kernels
(fusion.py), and it then runs as a captured
command list that later calls replay from Cython with no per-op Python
(runner.py). Guards and recompilation for new shapes are dynamo's; a graph
that cannot be captured runs through the eager ops."""

import weakref

from .runner import GraphRunner

__all__ = ["backend", "register", "stats", "reset", "runners", "GraphRunner"]

# the GraphRunners made so far, weakly: a runner (and the device memory of its captures) lives
# only as long as torch's compiled code holds it
_runners = []


def _compile_graph(gm, example_inputs):
    from .fusion import fuse
    from .rewrite import (decompose_inference_batch_norm, fold_inference_batch_norm, fuse_activation_epilogues,
                          fuse_batch_norm_activation_backward, fuse_batch_norm_activations, inplace_input_updates)

    inplace_input_updates(gm)
    fold_inference_batch_norm(gm)
    decompose_inference_batch_norm(gm)
    fuse_batch_norm_activations(gm)
    fuse_batch_norm_activation_backward(gm)
    fuse_activation_epilogues(gm)
    fused = fuse(gm)
    runner = GraphRunner(gm)
    runner.stats["fused_groups"] = fused
    _runners.append(weakref.ref(runner))
    return runner


def runners():
    """The live GraphRunners, oldest first (a model's forward graph comes before its backward)."""
    return [r for r in (ref() for ref in _runners) if r is not None]


def backend(gm, example_inputs, **kwargs):
    """The dynamo backend: AOTAutograd with oclcore's fusing, capture-and-replay graph compiler."""
    from torch._dynamo.backends.common import aot_autograd

    return aot_autograd(fw_compiler=_compile_graph, bw_compiler=_compile_graph,
                        keep_inference_input_mutations=True)(gm, example_inputs, **kwargs)


def stats():
    """Totals over the live compiled graphs: captures, replays, eager calls, and fused kernels."""
    live = runners()
    total = {"graphs": len(live), "captures": 0, "replays": 0, "eager_calls": 0, "fused_groups": 0}
    for r in live:
        for k, v in r.stats.items():
            total[k] += v
    return total


def reset():
    """Forgets the compiled graphs for statistics (torch._dynamo.reset() drops the graphs)."""
    _runners.clear()


def register():
    """Registers the "oclcore" backend with dynamo (idempotent)."""
    from torch._dynamo import list_backends, register_backend

    from . import dynamo

    dynamo.install()
    if "oclcore" not in list_backends(exclude_tags=()):
        register_backend(name="oclcore")(backend)


register()
