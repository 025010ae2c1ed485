"""Fusing chains of elementwise ops in an aten graph into generated kernels.

Elementwise float32 nodes whose results feed each other become one kernel
over the largest shape among them (smaller results that only the chain reads,
such as per-channel scale factors, are recomputed per element): each
external input is read once (broadcast through its strides),
the chain is computed in registers with the expressions of
oclcore/ops/pointwise_table.py, and only the results used outside the chain
are written. Scalars are baked into the kernel text, so a program is built
once per distinct chain (e.g. the add + relu of every residual block shares
one) and reused for any geometry."""

import operator
import re

import torch

from .. import runtime
from ..ops import pointwise
from ..ops.elementwise import DESCRIPTIONS
from ..ops.pointwise_table import OPS
from ..torch.tensor import OclTensor, empty

_NAMES = re.compile(r"\b(x|y|z|p0|p1|p2)\b")
_kernels = {}


def _literal(value):
    if isinstance(value, bool):
        value = int(value)
    value = float(value)
    if value != value:
        return "NAN"
    if value in (float("inf"), float("-inf")):
        return "INFINITY" if value > 0 else "(-INFINITY)"
    return f"({value.hex()}f)"


def _val(node):
    return node.meta.get("val") if isinstance(node, torch.fx.Node) else node


def _describe(node):
    """(kernel op, operands, params) of a fusible node, operands being Nodes or numbers; else None."""
    if node.op != "call_function" or node.target not in DESCRIPTIONS:
        return None
    describe, compare = DESCRIPTIONS[node.target]
    out = node.meta.get("val")
    if compare or not isinstance(out, torch.Tensor) or out.dtype is not torch.float32 or out.dim() > 8 \
            or not out.is_contiguous() or out.numel() == 0:
        return None
    vals = {}
    args = []
    for a in node.args:
        v = _val(a)
        if isinstance(a, torch.fx.Node):
            if not isinstance(v, torch.Tensor) or v.dtype is not torch.float32 or v.device != out.device:
                return None
            vals[id(v)] = a
        elif not isinstance(a, (int, float, bool, str)) and a is not None:
            return None
        args.append(v)
    kwargs = {k: _val(v) for k, v in node.kwargs.items()}
    if any(isinstance(v, torch.Tensor) for v in kwargs.values()):
        return None
    try:
        op, inputs, params = describe(*args, **kwargs)
    except Exception:  # noqa: BLE001 - a description that needs real data: leave the node alone
        return None
    if OPS[op][1] is None:
        return None
    operands = []
    for x in inputs:
        if isinstance(x, torch.Tensor):
            if id(x) not in vals:
                return None
            operands.append(vals[id(x)])
        elif isinstance(x, (int, float, bool)):
            operands.append(x)
        else:
            return None
    if not all(isinstance(p, (int, float, bool)) for p in params):
        return None
    return op, operands, tuple(params)


class _Group:
    """Nodes computed by one kernel, in graph order; shape is the kernel's (the largest)."""

    def __init__(self, node, desc, position):
        self.nodes = [node]
        self.descs = {node: desc}
        self.first = position
        self.shape = tuple(node.meta["val"].shape)

    def absorb(self, other, position):
        self.nodes = sorted(self.nodes + other.nodes, key=position.get)
        self.descs.update(other.descs)
        self.first = min(self.first, other.first)


def _groups(graph):
    position = {n: i for i, n in enumerate(graph.nodes)}
    group_of = {}
    groups = []
    for n in graph.nodes:
        desc = _describe(n)
        if desc is None:
            continue
        _, operands, _ = desc
        shape = tuple(n.meta["val"].shape)
        # groups of n's operands that n can extend: of its shape, or of a shape broadcast to
        # it whose results nothing but n reads (each element then recomputes them)
        candidates = []
        for x in operands:
            cand = group_of.get(x) if isinstance(x, torch.fx.Node) else None
            if cand is not None and cand not in candidates and (
                    cand.shape == shape or (_broadcasts_to(cand.shape, shape) and _internal(cand, n))):
                candidates.append(cand)
        candidates.sort(key=lambda c: c.shape != shape)
        g = None
        for cand in candidates:
            if g is None:
                if _can_join(cand, n, operands, position):
                    g = cand
            elif cand.shape != shape and _can_merge(g, cand, position):
                g.absorb(cand, position)
                for m in cand.nodes:
                    group_of[m] = g
                groups.remove(cand)
        if g is None:
            g = _Group(n, desc, position[n])
            groups.append(g)
        else:
            g.nodes.append(n)
            g.descs[n] = desc
            g.shape = shape
        group_of[n] = g
    return [g for g in groups if len(g.nodes) > 1]


def _broadcasts_to(small, big):
    try:
        return tuple(torch.broadcast_shapes(small, big)) == tuple(big)
    except RuntimeError:
        return False


def _internal(g, n):
    """Whether nothing outside group ``g`` but node ``n`` reads the group's results."""
    members = set(g.nodes)
    return all(u in members or u is n for m in g.nodes for u in m.users)


def _can_merge(g, other, position):
    """Whether internal group ``other`` can be computed inside ``g``'s kernel."""
    members = set(g.nodes)
    return not any(_depends_on(x, members, g.first, position)
                   for m in other.nodes for x in other.descs[m][1] if isinstance(x, torch.fx.Node))


def _can_join(g, n, operands, position):
    members = set(g.nodes)
    # inputs from outside must not depend on the chain (the fused kernel computes it all at once)
    for x in operands:
        if isinstance(x, torch.fx.Node) and x not in members and _depends_on(x, members, g.first, position):
            return False
    # results used outside must be needed only after the fused kernel, which takes n's place
    for m in g.nodes:
        for u in m.users:
            if u not in members and u is not n and position[u] < position[n]:
                return False
    return True


def _depends_on(x, members, first, position):
    """Whether node ``x`` is computed from any of ``members`` (all at positions >= first)."""
    stack, seen = [x], set()
    while stack:
        node = stack.pop()
        if node in members:
            return True
        for a in node.all_input_nodes:
            if a not in seen and position[a] >= first:
                seen.add(a)
                stack.append(a)
    return False


def _kernel_source(g, inputs, outputs):
    """OpenCL C for a group; inputs are external nodes, outputs the members read outside.
    Like cl/pointwise.cl's kernels, a launch with every operand contiguous (rank 0) gives
    each work-item ILP elements, loaded before any is computed; other launches walk the
    collapsed dims for one element per item."""
    names = {x: f"v{k}" for k, x in enumerate(inputs)}
    body = []
    for j, m in enumerate(g.nodes):
        op, operands, params = g.descs[m]
        values = {}
        for slot, x in zip("xyz", operands):
            values[slot] = names[x] if isinstance(x, torch.fx.Node) else _literal(x)
        for k, p in enumerate(params):
            values[f"p{k}"] = _literal(p)
        expr = _NAMES.sub(lambda mt: values[mt.group(1)], OPS[op][1])
        names[m] = f"t{j}"
        body.append(f"float t{j} = {expr};")
    nin = len(inputs)  # at least one: fuse() skips groups without tensor inputs
    compute = " ".join(body)
    stores = lambda at: " ".join(f"out{k}[o_off{k} + {at}] = {names[m]};" for k, m in enumerate(outputs))  # noqa: E731
    params = [f"__global float* out{k}, IDX o_off{k}" for k in range(len(outputs))]
    params += [f"__global const float* in{k}, IDX in_off{k}, int8 st{k}" for k in range(nin)]
    params += ["IDX n", "int rank", "int8 sz"]
    ilp_loads = "".join(f"    float v{k}s[ILP];\n" for k in range(nin))
    ilp_loads += "    for (int k = 0; k < ILP; k++) {\n      const IDX i = item + k * G;\n"
    ilp_loads += "".join(f"      v{k}s[k] = i < n ? in{k}[in_off{k} + i] : 0.0f;\n" for k in range(nin))
    bind = " ".join(f"const float v{k} = v{k}s[k];" for k in range(nin))
    setup = "".join(f"  IDX off{k} = in_off{k};\n" for k in range(nin))
    walk = "".join(f"      off{k} += c * INT8_AT(st{k}, d);\n" for k in range(nin))
    loads = " ".join(f"const float v{k} = in{k}[off{k}];" for k in range(nin))
    # Dims are walked from registers (types.cl's INT8_AT in an unrolled loop): copying the
    # geometry into private arrays made such kernels several times slower on NVIDIA GPUs.
    return f"""__kernel void fused({", ".join(params)}) {{
  const IDX item = get_global_id(0);
  if (rank == 0) {{
    const IDX G = get_global_size(0);
{ilp_loads}    }}
    for (int k = 0; k < ILP; k++) {{
      const IDX i = item + k * G;
      if (i < n) {{ {bind} {compute} {stores("i")} }}
    }}
    return;
  }}
  if (item >= n) return;
{setup}  IDX r = item;
#pragma unroll
  for (int d = 7; d >= 0; d--) {{
    if (d < rank) {{
      const IDX sd = INT8_AT(sz, d), c = r % sd;
      r /= sd;
{walk}    }}
  }}
  {loads} {compute} {stores("item")}
}}
"""


class FusedKernel:
    """The callable a fused group becomes: outputs = kernel(external inputs)."""

    def __init__(self, source, n_inputs, n_outputs):
        self.source, self.n_inputs, self.n_outputs = source, n_inputs, n_outputs
        self.__name__ = "oclcore_fused"

    def _kernel(self, dev, idx):
        key = (self.source, dev.index, idx)
        k = _kernels.get(key)
        if k is None:
            i = "l" if idx == "long" else "i"
            sig = ("B" + i) * self.n_outputs + ("B" + i + "V") * self.n_inputs + i + "iV"
            k = runtime.get_kernel(("types.cl", "pointwise.cl"), {"CT": "float", "IDX": idx}, "fused", sig, dev,
                                   extra_source=self.source)
            _kernels[key] = k
        return k

    def __call__(self, *inputs):
        index = inputs[0]._index
        # each member's shape is the broadcast of its operands', so the kernel's is the
        # broadcast of the external inputs (computed here: under dynamic shapes the traced
        # one is symbolic)
        shape = torch.broadcast_shapes(*(x.shape for x in inputs))
        outs = [empty(shape, torch.float32, index) for _ in range(self.n_outputs)]
        n = outs[0].numel()
        strides = [pointwise.broadcast_strides(x, shape) for x in inputs]
        sizes, st = pointwise.collapse(shape, [outs[0].stride()] + strides)
        rank = 0 if len(sizes) == 1 and all(s[0] == 1 for s in st) else len(sizes)
        big = n > 2**31 - 1 or any(x._buf.nbytes // 4 > 2**31 - 1 for x in inputs)
        k = self._kernel(runtime.device(index), "long" if big else "int")
        args = []
        for o in outs:
            args += (o._buf, 0)
        for x, s in zip(inputs, st[1:]):
            args += (x._buf, x.storage_offset(), tuple(s))
        args += (n, rank, tuple(sizes))
        items = -(-n // pointwise.ILP) if rank == 0 else n
        k.launch((items,), (256,) if items >= 256 else None, tuple(args))
        return tuple(outs)


def fuse(gm):
    """Rewrites ``gm`` in place, replacing elementwise chains with FusedKernel calls;
    returns the number of groups fused."""
    graph = gm.graph
    groups = _groups(graph)
    replaced = {}  # members of groups fused already -> the nodes now giving their values
    for g in groups:
        members = set(g.nodes)
        for m in g.nodes:
            op, operands, params = g.descs[m]
            g.descs[m] = op, [replaced.get(x, x) if isinstance(x, torch.fx.Node) else x for x in operands], params
        inputs = []
        for m in g.nodes:
            for x in g.descs[m][1]:
                if isinstance(x, torch.fx.Node) and x not in members and x not in inputs:
                    inputs.append(x)
        outputs = [m for m in g.nodes if any(u not in members for u in m.users)]
        if not inputs or not outputs:
            continue
        fn = FusedKernel(_kernel_source(g, inputs, outputs), len(inputs), len(outputs))
        last = g.nodes[-1]
        with graph.inserting_before(last):
            call = graph.call_function(fn, tuple(inputs))
            call.meta["val"] = tuple(m.meta["val"] for m in outputs)
            results = []
            for k, m in enumerate(outputs):
                r = graph.call_function(operator.getitem, (call, k))
                r.meta["val"] = m.meta["val"]
                results.append(r)
        for m, r in zip(outputs, results):
            m.replace_all_uses_with(r)
            replaced[m] = r
        for m in reversed(g.nodes):
            graph.erase_node(m)
    if groups:
        graph.lint()
        gm.recompile()
    return len(groups)
