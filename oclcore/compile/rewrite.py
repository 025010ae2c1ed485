"""Rewrites of aten graphs before fusion: functional updates of graph inputs
back into in-place ops, inference batch norm into the convolution before it
(or else into elementwise ops), training batch norm and the activation after
it into one kernel each way, and activations into the epilogue of the GEMM
or convolution that feeds them.

Functionalization makes every mutation of an input explicit: batch norm in
training returns new running statistics, ``num_batches_tracked + 1`` is a new
tensor, and a ``copy_`` at the end of the graph writes each back. On ocl the
in-place forms are single kernels (batch norm updates its running statistics
in the same launch that normalises), so each pattern below saves two or three
launches per layer."""

import operator

import torch

from ..ops import norm
from ..ops.elementwise import DESCRIPTIONS

aten = torch.ops.aten


def _recompiled(gm, count):
    """``count``, after regenerating gm's code when a rewrite changed its graph."""
    if count:
        gm.graph.lint()
        gm.recompile()
    return count


def _is_placeholder(node):
    return isinstance(node, torch.fx.Node) and node.op == "placeholder"


def _read_after(node, limit, position, allowed):
    """Whether ``node`` is used by anything other than ``allowed`` at or after ``limit``."""
    return any(u not in allowed and position[u] >= position[limit] for u in node.users)


def _inplace_batch_norm(graph, copies, position):
    """functional batch norm + copy_ of its new running statistics -> in-place batch norm."""
    count = 0
    for bn in list(graph.nodes):
        if bn.target is not aten._native_batch_norm_legit_functional.default:
            continue
        x, w, b, rm, rv, training, momentum, eps = bn.args
        outs = {u.args[1]: u for u in bn.users if u.target is operator.getitem}
        new_mean, new_var = outs.get(3), outs.get(4)
        if new_mean is None or new_var is None or not (_is_placeholder(rm) and _is_placeholder(rv)):
            continue
        cm, cv = copies.get(rm), copies.get(rv)
        if cm is None or cv is None or cm.args[1] is not new_mean or cv.args[1] is not new_var:
            continue
        # nothing may read the old statistics after the normalisation updated them
        if _read_after(rm, bn, position, {bn, cm}) or _read_after(rv, bn, position, {bn, cv}):
            continue
        bn.target = aten._native_batch_norm_legit.default
        if "val" in bn.meta:
            bn.meta["val"] = bn.meta["val"][:3]
        del copies[rm], copies[rv]
        graph.erase_node(cm)
        graph.erase_node(cv)
        new_mean.replace_all_uses_with(rm)
        new_var.replace_all_uses_with(rv)
        graph.erase_node(new_mean)
        graph.erase_node(new_var)
        count += 1
    return count


def _inplace_elementwise(graph, copies, position):
    """copy_(x, op(x, ...)) -> op_(x, ...) for elementwise ops with an in-place form."""
    count = 0
    for dst, copy in copies.items():
        src = copy.args[1]
        if not isinstance(src, torch.fx.Node) or src.target not in DESCRIPTIONS or not src.args \
                or src.args[0] is not dst:
            continue
        inplace = getattr(getattr(aten, src.target._opname + "_", None), src.target._overloadname, None)
        if inplace is None:
            continue
        dv, sv = dst.meta.get("val"), src.meta.get("val")
        if dv is None or sv is None or dv.shape != sv.shape or dv.dtype != sv.dtype or dv.stride() != sv.stride():
            continue
        if _read_after(dst, src, position, {src, copy}) or any(
                u is not copy and u.op != "output" for u in src.users):
            continue
        src.target = inplace
        graph.erase_node(copy)
        src.replace_all_uses_with(dst)
        count += 1
    return count


def _emit(graph, op, *args):
    """A call_function node for op(*args) with its fake value computed from the arguments'."""
    node = graph.call_function(op, args)
    node.meta["val"] = op(*(a.meta["val"] if isinstance(a, torch.fx.Node) else a for a in args))
    return node


def _batch_norm_output(bn):
    """Whether only the normalised output (getitem 0) of a batch norm node is used."""
    return all(u.target is operator.getitem and (u.args[1] == 0 or not u.users) for u in bn.users)


def _replace_batch_norm(graph, bn, y):
    for u in list(bn.users):
        if u.args[1] == 0:
            u.replace_all_uses_with(y)
        graph.erase_node(u)
    graph.erase_node(bn)


def fold_inference_batch_norm(gm):
    """Folds batch norm with running statistics into the convolution before it, which only it
    reads: conv(x, w * s, (b - mean) * s + beta) with s = gamma / sqrt(var + eps) per output
    channel. The new weight and bias come from one small kernel per call (oclcore::fold_batch_norm:
    parameters may change between calls), and the activation after the normalisation can then
    move into the convolution's epilogue; returns how many."""
    graph = gm.graph
    count = 0
    for bn in list(graph.nodes):
        if bn.target is not aten._native_batch_norm_legit_no_training.default or not _batch_norm_output(bn):
            continue
        conv, gamma, beta, rm, rv, _momentum, eps = bn.args
        if not isinstance(conv, torch.fx.Node) or conv.target is not aten.convolution.default \
                or list(conv.users) != [bn] or conv.args[6] or not _float32(conv):
            continue
        x, w, b = conv.args[:3]
        if not all(t is None or (isinstance(t, torch.fx.Node) and _float32(t)) for t in (w, b, gamma, beta, rm, rv)):
            continue
        with graph.inserting_before(conv):
            fold = graph.call_function(torch.ops.oclcore.fold_batch_norm.default, (w, b, gamma, beta, rm, rv, eps))
            fold.meta["val"] = torch.ops.oclcore.fold_batch_norm.default(
                *(t.meta["val"] if isinstance(t, torch.fx.Node) else t for t in fold.args))
            w2, b2 = (_emit(graph, operator.getitem, fold, k) for k in (0, 1))
        conv.args = (x, w2, b2) + tuple(conv.args[3:])
        _replace_batch_norm(graph, bn, conv)
        count += 1
    return _recompiled(gm, count)


def decompose_inference_batch_norm(gm):
    """Writes batch norm with running statistics as elementwise ops, (x - mean) * rsqrt(var +
    eps) * weight + bias over per-channel views, so that fusion folds it with its neighbours
    (the activation after it, the residual add) into one kernel; returns how many."""
    graph = gm.graph
    count = 0
    for bn in list(graph.nodes):
        if bn.target is not aten._native_batch_norm_legit_no_training.default:
            continue
        x, w, b, rm, rv, _momentum, eps = bn.args
        xv = x.meta.get("val") if isinstance(x, torch.fx.Node) else None
        if xv is None or xv.dtype is not torch.float32 or xv.dim() < 2 or not _batch_norm_output(bn):
            continue
        shape = [1, xv.shape[1]] + [1] * (xv.dim() - 2)
        with graph.inserting_before(bn):
            wv, bv, mv, vv = [None if t is None else _emit(graph, aten.view.default, t, shape) for t in (w, b, rm, rv)]
            y = _emit(graph, aten.mul.Tensor, _emit(graph, aten.sub.Tensor, x, mv),
                      _emit(graph, aten.rsqrt.default, _emit(graph, aten.add.Tensor, vv, eps)))
            if wv is not None:
                y = _emit(graph, aten.mul.Tensor, y, wv)
            if bv is not None:
                y = _emit(graph, aten.add.Tensor, y, bv)
        _replace_batch_norm(graph, bn, y)
        count += 1
    return _recompiled(gm, count)


def _only_user(node, user):
    return isinstance(node, torch.fx.Node) and list(node.users) == [user]


def _float32(node):
    v = node.meta.get("val")
    return isinstance(v, torch.Tensor) and v.dtype is torch.float32


def _activation(node):
    """The epilogue name of an activation node ('relu', 'gelu', ...), or None."""
    t = node.target
    if t is aten.relu.default:
        return "relu"
    if t is aten.gelu.default:
        return "gelu_tanh" if node.kwargs.get("approximate", "none") == "tanh" else "gelu"
    if t is aten.hardtanh.default and tuple(node.args[1:]) == (0.0, 6.0):
        return "relu6"
    return {aten.silu.default: "silu", aten.sigmoid.default: "sigmoid", aten.tanh.default: "tanh"}.get(t)


def _epilogue(producer, act):
    """The oclcore op and arguments computing act(producer) in one launch, or None."""
    t = producer.target
    if t is aten.addmm.default and not producer.kwargs:
        bias, a, b = producer.args[:3]
        if bias.meta["val"].dim() == 1:
            return torch.ops.oclcore.gemm.default, (a, b, bias, 1.0, act)
    if t is aten.mm.default:
        a, b = producer.args
        return torch.ops.oclcore.gemm.default, (a, b, None, 1.0, act)
    if t is aten.convolution.default:
        x, w, bias, stride, padding, dilation, transposed, _output_padding, groups = producer.args
        if not transposed and x.meta["val"].dim() == 4:
            return torch.ops.oclcore.conv2d.default, (x, w, bias, stride, padding, dilation, groups, act)
    return None


def fuse_activation_epilogues(gm):
    """act(addmm / mm) -> oclcore::gemm and act(convolution) -> oclcore::conv2d with the
    activation (ReLU, ReLU6, GELU, SiLU, sigmoid, tanh) in the epilogue, where the activation
    is the producer's only reader (in training the backward usually reads the producer too);
    returns how many."""
    graph = gm.graph
    count = 0
    for node in list(graph.nodes):
        act = _activation(node) if node.op == "call_function" else None
        if act is None:
            continue
        producer = node.args[0]
        if not _only_user(producer, node) or not _float32(producer):
            continue
        view = None  # linear on 3-D inputs: addmm, then a view back to (batch, tokens, features)
        if producer.target in (aten.view.default, aten._unsafe_view.default) and \
                _only_user(producer.args[0], producer):
            view, producer = producer, producer.args[0]
        fused = _epilogue(producer, act)
        if fused is None:
            continue
        op, args = fused
        with graph.inserting_before(node):
            new = graph.call_function(op, args)
            new.meta["val"] = producer.meta.get("val")
            if view is not None:
                new = graph.call_function(view.target, (new,) + tuple(view.args[1:]))
                new.meta["val"] = view.meta.get("val")
        node.replace_all_uses_with(new)
        graph.erase_node(node)
        if view is not None:
            graph.erase_node(view)
        graph.erase_node(producer)
        count += 1
    return _recompiled(gm, count)


def fuse_batch_norm_activations(gm):
    """Training batch norm (in place, as inplace_input_updates leaves it) followed by ReLU, ReLU6 or
    SiLU -> oclcore::batch_norm_act, which writes act(y) as it normalises, and y too only when the
    graph returns it (saved for the backward); returns how many."""
    graph = gm.graph
    count = 0
    for bn in list(graph.nodes):
        if bn.target is not aten._native_batch_norm_legit.default or bn.args[5] is not True:
            continue
        outs = {u.args[1]: u for u in bn.users if u.target is operator.getitem}
        y = outs.get(0)
        if y is None or len(outs) != len(bn.users) or not _float32(y):
            continue
        acts = [u for u in y.users if u.op == "call_function" and _activation(u) in norm.ACTIVATIONS]
        others = [u for u in y.users if u not in acts]
        # (an in-place activation leaves a clone of y that only the backward reads: y itself serves)
        clones = [u for u in others if _saved_copy(u, y)]
        if len(acts) != 1 or any(u.op != "output" for u in others if u not in clones):
            continue
        act = acts[0]
        with graph.inserting_before(bn):
            fused = graph.call_function(torch.ops.oclcore.batch_norm_act.default,
                                        tuple(bn.args) + (_activation(act), bool(others)))
            y_val, mean_val, rstd_val = bn.meta["val"][:3]
            fused.meta["val"] = (y_val, act.meta["val"], mean_val, rstd_val)
            for k, old in outs.items():
                old.replace_all_uses_with(_emit(graph, operator.getitem, fused, {0: 0, 1: 2, 2: 3}[k]))
            act.replace_all_uses_with(_emit(graph, operator.getitem, fused, 1))
        for c in clones:
            c.replace_all_uses_with(c.args[0])
            graph.erase_node(c)
        graph.erase_node(act)
        for old in outs.values():
            graph.erase_node(old)
        graph.erase_node(bn)
        count += 1
    return _recompiled(gm, count)


def _saved_copy(node, src):
    """Whether node is a same-layout clone of src that only the graph's output reads."""
    if node.target is not aten.clone.default or node.kwargs.get("memory_format", torch.preserve_format) not in (
            torch.preserve_format, None) or not node.users or any(u.op != "output" for u in node.users):
        return False
    a, b = node.meta.get("val"), src.meta.get("val")
    return a is not None and b is not None and a.stride() == b.stride()


def _activation_backward(node):
    """(activation name, grad_out, src) of a ReLU / ReLU6 / SiLU backward node, or None."""
    t, args = node.target, node.args
    if t is aten.threshold_backward.default and args[2] == 0:
        return "relu", args[0], args[1]
    if t is aten.hardtanh_backward.default and tuple(args[2:]) == (0.0, 6.0):
        return "relu6", args[0], args[1]
    if t is aten.silu_backward.default:
        return "silu", args[0], args[1]
    return None


def fuse_batch_norm_activation_backward(gm):
    """An activation's backward feeding only a training batch norm's backward ->
    oclcore::batch_norm_act_backward, which applies the activation's gradient as it reads
    grad_out; returns how many."""
    graph = gm.graph
    count = 0
    for bnb in list(graph.nodes):
        if bnb.target is not aten.native_batch_norm_backward.default:
            continue
        grad = bnb.args[0]
        if not isinstance(grad, torch.fx.Node) or list(grad.users) != [bnb] or grad.op != "call_function":
            continue
        found = _activation_backward(grad)
        if found is None:
            continue
        act, g, src = found
        gv, sv = (n.meta.get("val") if isinstance(n, torch.fx.Node) else None for n in (g, src))
        if not (_float32(g) and _float32(src)) or gv.shape != sv.shape or gv.stride() != sv.stride():
            continue
        with graph.inserting_before(bnb):
            fused = graph.call_function(torch.ops.oclcore.batch_norm_act_backward.default,
                                        (g, src, act) + tuple(bnb.args[1:]))
            fused.meta["val"] = bnb.meta.get("val")
        bnb.replace_all_uses_with(fused)
        graph.erase_node(bnb)
        graph.erase_node(grad)
        count += 1
    return _recompiled(gm, count)


def inplace_input_updates(gm):
    """Rewrites ``gm`` in place; returns how many functional updates became in-place ops."""
    graph = gm.graph
    position = {n: i for i, n in enumerate(graph.nodes)}
    copies = {}
    for n in graph.nodes:
        if n.target is aten.copy_.default and _is_placeholder(n.args[0]) and not n.users:
            copies[n.args[0]] = n
    if not copies:
        return 0
    count = _inplace_batch_norm(graph, copies, position)
    count += _inplace_elementwise(graph, copies, position)
    return _recompiled(gm, count)

