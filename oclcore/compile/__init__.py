"""``torch.compile(model, backend="oclcore")``.

Dynamo captures Python code into FX graphs (dynamo.py lets it see ocl
tensors as tensors); AOTAutograd splits each into forward and backward aten
graphs; every aten graph is rewritten to update inputs in place where
functionalization made copies (rewrite.py) and to fuse chains of elementwise
ops into generated kernels (fusion.py), and then runs as a captured command list that
later calls replay from Cython with no per-op Python (runner.py). Guards and
recompilation for new shapes are dynamo's; a graph that cannot be captured
runs through the eager ops."""

from .runner import GraphRunner

__all__ = ["backend", "register", "GraphRunner"]

runners = []  # every GraphRunner made, for statistics and tests (weakly useful, cleared by reset())


def _compile_graph(gm, example_inputs):
    from .fusion import fuse
    from .rewrite import decompose_inference_batch_norm, fuse_activation_epilogues, inplace_input_updates

    inplace_input_updates(gm)
    decompose_inference_batch_norm(gm)
    fuse_activation_epilogues(gm)
    fused = fuse(gm)
    runner = GraphRunner(gm)
    runner.stats["fused_groups"] = fused
    runners.append(runner)
    return runner


def backend(gm, example_inputs, **kwargs):
    """The dynamo backend: AOTAutograd with oclcore's fusing, capture-and-replay graph compiler."""
    from torch._dynamo.backends.common import aot_autograd

    return aot_autograd(fw_compiler=_compile_graph, bw_compiler=_compile_graph,
                        keep_inference_input_mutations=True)(gm, example_inputs, **kwargs)


def stats():
    """Totals over every compiled graph: captures, replays, eager calls, and fused kernels."""
    total = {"graphs": len(runners), "captures": 0, "replays": 0, "eager_calls": 0, "fused_groups": 0}
    for r in runners:
        for k, v in r.stats.items():
            total[k] += v
    return total


def reset():
    """Forgets the compiled graphs' statistics (torch._dynamo.reset() drops the graphs)."""
    runners.clear()


def register():
    """Registers the "oclcore" backend with dynamo (idempotent)."""
    from torch._dynamo import list_backends, register_backend

    from . import dynamo

    dynamo.install()
    if "oclcore" not in list_backends(exclude_tags=()):
        register_backend(name="oclcore")(backend)


register()
