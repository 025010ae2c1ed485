"""torch.optim and the multi-tensor (_foreach_*) ops on ocl: several steps of
each optimizer, foreach on and off, agree with the same steps on the CPU;
clip_grad_norm_ and zero_grad; call plans (reused, never stale, errors kept); the fused=True steps (aten._fused_adam_,
_fused_adamw_, _fused_sgd_): results, launch counts and graph capture."""

import copy
import gc
import math

import pytest
import torch

import oclcore
from oclcore.graph import Graph, graph
from oclcore import runtime
from oclcore.ops import foreach
from oclcore.torch import optimizers
from oclcore.ops.fused_optim import ADAM_SLOTS
from oclcore.torch.tensor import rebind
from torch.optim.optimizer import _default_to_fused_or_foreach

from conftest import DEVICE, assert_close

O = torch.optim
SHAPES = ((3, 4), (5,), (2, 3, 4), (300,), (1,), (4, 4), (6,), (2, 2), (7, 3), (3,))  # > 8: two launches

CONFIGS = [
    (O.SGD, dict(lr=0.1)),
    (O.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    (O.SGD, dict(lr=0.1, momentum=0.9, dampening=0.1)),
    (O.Adam, dict(lr=0.01, weight_decay=0.1)),
    (O.Adam, dict(lr=0.01, amsgrad=True)),
    (O.AdamW, dict(lr=0.01)),
    (O.AdamW, dict(lr=0.01, amsgrad=True, weight_decay=0.05)),
    (O.RMSprop, dict(lr=0.01)),
    (O.RMSprop, dict(lr=0.01, centered=True, momentum=0.9, weight_decay=0.1)),
    (O.Adagrad, dict(lr=0.1, weight_decay=0.1, lr_decay=0.01)),
]


def _run(cls, kwargs, device, foreach, steps=3):
    torch.manual_seed(0)
    init = [torch.randn(s) for s in SHAPES]
    grads = [[torch.randn(s) for s in SHAPES] for _ in range(steps)]
    params = [p.to(device).requires_grad_() for p in init]
    opt = cls(params, foreach=foreach, **kwargs)
    for step in range(steps):
        for p, g in zip(params, grads[step]):
            p.grad = g.to(device)
        opt.step()
    return params


@pytest.mark.parametrize("cls,kwargs", CONFIGS, ids=lambda c: c.__name__ if isinstance(c, type) else
                         "-".join(f"{k}{v}" for k, v in c.items()))
@pytest.mark.parametrize("foreach", (True, False))
def test_optimizer_matches_cpu(cls, kwargs, foreach, no_fallbacks):
    expected = _run(cls, kwargs, "cpu", foreach)
    actual = _run(cls, kwargs, DEVICE, foreach)
    for a, e in zip(actual, expected):
        assert a.device.type == "ocl"
        assert_close(a, e, rtol=1e-5, atol=1e-5)


def test_torch_sees_ocl_tensors_as_foreach_capable(no_fallbacks):
    # (where fused is ruled out, torch's default is then the multi-tensor step, as on CUDA)
    p = torch.randn(3).to(DEVICE)
    assert _default_to_fused_or_foreach([p], False, use_fused=False) == (False, True)
    calls = []
    real = torch._foreach_add_
    torch._foreach_add_ = lambda *a, **k: calls.append(1) or real(*a, **k)
    try:
        p.requires_grad_()
        p.grad = torch.ones(3).to(DEVICE)
        O.SGD([p], lr=0.5, foreach=True).step()
    finally:
        torch._foreach_add_ = real
    assert calls


@pytest.mark.parametrize("cls,kwargs", [
    (O.Adam, dict(lr=0.01, weight_decay=0.1)),
    (O.AdamW, dict(lr=0.01, amsgrad=True)),
    (O.SGD, dict(lr=0.1, momentum=0.9)),
], ids=["adam", "adamw-amsgrad", "sgd-momentum"])
def test_default_optimizer_takes_the_fused_step(cls, kwargs, no_fallbacks):
    steps = 3
    expected = _run(cls, kwargs, "cpu", False, steps=steps)
    torch.manual_seed(0)
    params = [torch.randn(s).to(DEVICE).requires_grad_() for s in SHAPES]
    opt = cls(params, **kwargs)
    grads = [[torch.randn(s) for s in SHAPES] for _ in range(steps)]
    fused = "aten::_fused_adam_" if cls is O.Adam else "aten::_fused_adamw_" if cls is O.AdamW else "aten::_fused_sgd_"
    for step in range(steps):
        for p, g in zip(params, grads[step]):
            p.grad = g.to(DEVICE)
        with oclcore.profile() as prof:
            opt.step()
        assert fused in {op for op, *_ in prof.times()}
    assert opt.param_groups[0]["fused"] is True and opt._step_supports_amp_scaling
    if cls is not O.SGD:
        assert opt.state[params[0]]["step"].device.type == "ocl"  # as with fused=True
    for a, e in zip(params, expected):
        assert_close(a, e, rtol=1e-5, atol=1e-5)


def test_default_fused_step_only_where_torch_would_allow_it(no_fallbacks):
    def first_step(params, **kwargs):
        opt = O.Adam(params, lr=0.01, **kwargs)
        for p in params:
            p.grad = torch.ones_like(p)
        opt.step()
        return opt.param_groups[0]["fused"]

    ocl = lambda: [torch.randn(3).to(DEVICE).requires_grad_()]  # noqa: E731
    assert first_step(ocl()) is True
    assert first_step(ocl(), foreach=True) is None  # the user's choice stands
    assert first_step(ocl(), fused=False) is False
    opt = O.Adam(ocl(), lr=0.01, differentiable=True)  # (its step needs non-leaf parameters: the hook alone)
    optimizers.prefer_fused(opt, (), {})
    assert opt.param_groups[0]["fused"] is None
    assert first_step(ocl() + [torch.randn(3, requires_grad=True)]) is None  # a CPU parameter too
    # a group added later is fused at its first step when the others are; never beside an unfused
    # one (GradScaler hands the scale to all of an optimizer's groups or to none)
    for first, added in ((None, True), (True, None)):
        a, b = ocl(), ocl()
        opt = O.Adam(a, lr=0.01, foreach=first)
        a[0].grad = torch.ones(3).to(DEVICE)
        opt.step()
        opt.add_param_group({"params": b, "foreach": None})
        b[0].grad = torch.ones(3).to(DEVICE)
        opt.step()
        assert opt.param_groups[1]["fused"] is added
        assert opt.state[b[0]]["step"].device.type == ("ocl" if added else "cpu")
        assert opt.param_groups[0]["fused"] is (None if first else True)


@pytest.mark.parametrize("norm_type", (2.0, 1.0, math.inf, 3.0))
@pytest.mark.parametrize("foreach", (None, False))
def test_clip_grad_norm(norm_type, foreach, no_fallbacks):
    grads = [torch.randn(s) * 3 for s in SHAPES]
    cpu = [torch.zeros(s, requires_grad=True) for s in SHAPES]
    dev = [torch.zeros(s).to(DEVICE).requires_grad_() for s in SHAPES]
    for c, d, g in zip(cpu, dev, grads):
        c.grad, d.grad = g.clone(), g.to(DEVICE)
    expected = torch.nn.utils.clip_grad_norm_(cpu, 1.0, norm_type=norm_type, foreach=foreach)
    actual = torch.nn.utils.clip_grad_norm_(dev, 1.0, norm_type=norm_type, foreach=foreach)
    assert_close(actual, expected)
    for c, d in zip(cpu, dev):
        assert_close(d.grad, c.grad)


def test_zero_grad(no_fallbacks):
    ps = [torch.randn(s).to(DEVICE).requires_grad_() for s in SHAPES[:3]]
    opt = O.SGD(ps, lr=0.1)
    for p in ps:
        p.grad = torch.ones(p.shape).to(DEVICE)
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not bool(p.grad.cpu().any()) for p in ps)
    opt.zero_grad()
    assert all(p.grad is None for p in ps)
    grads = [torch.ones(p.shape).to(DEVICE) for p in ps]
    torch._foreach_zero_(grads)
    assert all(not bool(g.cpu().any()) for g in grads)


# ---- the _foreach ops directly, against the CPU ----

def _lists(n=3, positive=False):
    torch.manual_seed(1)
    shapes = SHAPES[:n] + ((0,),)
    out = []
    for _ in range(3):
        ts = [torch.rand(s) + 0.5 if positive else torch.randn(s) for s in shapes]
        out.append(ts)
    return out


def _dev(ts):
    return [t.to(DEVICE) for t in ts]


def _same(actual, expected, rtol=1e-5):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert_close(a, e, rtol=rtol)


@pytest.mark.parametrize("op,args", [
    ("_foreach_add", ("L", )), ("_foreach_add", (2.5,)), ("_foreach_add", ("S",)), ("_foreach_sub", ("L",)),
    ("_foreach_mul", ("L",)), ("_foreach_mul", ("S",)), ("_foreach_div", ("L",)), ("_foreach_div", (3.0,)),
    ("_foreach_maximum", ("L",)), ("_foreach_minimum", (0.1,)), ("_foreach_clamp_min", ("L",)),
    ("_foreach_clamp_max", ("S",)), ("_foreach_pow", (2.0,)), ("_foreach_pow", ("L",)),
    ("_foreach_addcmul", ("L", "L", 0.5)), ("_foreach_addcdiv", ("L", "L", "S")),
    ("_foreach_lerp", ("L", 0.3)), ("_foreach_lerp", ("L", "L")), ("_foreach_lerp", ("L", "S")),
    ("_foreach_sqrt", ()), ("_foreach_exp", ()), ("_foreach_neg", ()), ("_foreach_reciprocal", ()),
    ("_foreach_sign", ()), ("_foreach_abs", ()), ("_foreach_log", ()),
])
@pytest.mark.parametrize("inplace", (False, True))
def test_foreach_op(op, args, inplace, no_fallbacks):
    xs, ys, zs = _lists(positive=True)
    scalars = [0.5, 2.0, -1.5, 3.0]

    def build(dev):
        out = []
        for a in args:
            if a == "L":
                out.append(next(pools_d[dev]))
            elif a == "S":
                out.append(scalars)
            else:
                out.append(a)
        return out

    pools_d = {False: iter([ys, zs]), True: iter([_dev(ys), _dev(zs)])}
    fn = getattr(torch, op + ("_" if inplace else ""))
    cpu_x, dev_x = [x.clone() for x in xs], _dev(xs)
    expected = fn(cpu_x, *build(False))
    actual = fn(dev_x, *build(True))
    if inplace:
        expected, actual = cpu_x, dev_x
    _same(actual, expected)


def test_foreach_scalar_tensor_stays_on_device(no_fallbacks):
    xs, _, _ = _lists()
    s = torch.tensor(1.75)
    _same(torch._foreach_mul(_dev(xs), s.to(DEVICE)), torch._foreach_mul(xs, s))
    _same(torch._foreach_add(_dev(xs), s.double().to(DEVICE), alpha=2), torch._foreach_add(xs, s.double(), alpha=2))


@pytest.mark.parametrize("op", ("_foreach_div_", "_foreach_add", "_foreach_sub_", "_foreach_mul"))
def test_foreach_list_of_zero_dim_tensors_is_one_launch_per_slot_count(op, no_fallbacks):
    """capturable Adam divides every tensor by a 0-dim tensor of its own (its bias corrections):
    the multi-tensor kernel reads one element per slot instead of a launch per tensor."""
    from oclcore import _runtime
    torch.manual_seed(3)
    xs = [torch.randn(s) for s in ((3, 5), (7,), (), (2, 2, 2), (0,), (1,), (4, 1), (9,), (6,), (2, 3))]
    ds = [torch.rand(()) + 0.5 for _ in xs]
    kw = {"alpha": 0.5} if "add" in op or "sub" in op else {}
    fn = getattr(torch, op)
    dev_x, dev_d = _dev(xs), _dev(ds)
    fn(dev_x, dev_d, **kw)  # plans the call
    dev_x = _dev(xs)
    before = _runtime.launch_count()
    actual = fn(dev_x, dev_d, **kw)
    assert _runtime.launch_count() - before == -(-9 // foreach.slots(runtime.device(0)))  # 9 non-empty tensors
    cpu_x = [x.clone() for x in xs]
    expected = fn(cpu_x, ds, **kw)
    _same(dev_x if op.endswith("_") else actual, cpu_x if op.endswith("_") else expected)
    # a 0-dim tensor of another dtype, and a list mixing 0-dim and full tensors, stay correct
    mixed = [d.double() if i == 2 else d for i, d in enumerate(ds)]
    _same(fn(_dev(xs), _dev(mixed), **kw) or [], fn([x.clone() for x in xs], mixed, **kw) or [])
    full = [torch.randn(x.shape) + 3 if i % 2 else d for i, (x, d) in enumerate(zip(xs, ds))]
    dev_x, cpu_x = _dev(xs), [x.clone() for x in xs]
    out_dev, out_cpu = fn(dev_x, _dev(full), **kw), fn(cpu_x, full, **kw)
    _same(dev_x if op.endswith("_") else out_dev, cpu_x if op.endswith("_") else out_cpu)


@pytest.mark.parametrize("n", (16, 32))
def test_foreach_with_more_slots_per_launch(n, no_fallbacks, monkeypatch):
    """GPUs with room for more kernel arguments take 16 or 32 tensors per launch (the CPU device
    takes 8): the same ops, forced to those counts here, against the CPU."""
    from oclcore import _runtime
    monkeypatch.setitem(foreach._slots, 0, n)
    monkeypatch.setattr(foreach, "_plans", {})
    torch.manual_seed(4)
    xs = [torch.randn(i % 7 + 1, 3) for i in range(2 * n + 3)] + [torch.randn(0)]
    ys = [torch.randn(x.shape) for x in xs]
    dev_x, dev_y = _dev(xs), _dev(ys)
    before = _runtime.launch_count()
    actual = torch._foreach_addcmul(dev_x, dev_y, dev_y, 0.5)
    assert _runtime.launch_count() - before == 3
    _same(actual, torch._foreach_addcmul(xs, ys, ys, 0.5))
    scalars = [float(i) for i in range(len(xs))]
    torch._foreach_lerp_(dev_x, dev_y, scalars)
    _same(dev_x, torch._foreach_lerp(xs, ys, scalars))
    _same(torch._foreach_norm(dev_y), torch._foreach_norm(ys), rtol=2e-5)


def test_foreach_mixed_layouts_dtypes_and_integers(no_fallbacks):
    xs = [torch.randn(4, 3).t(), torch.randn(6)[::2], torch.randn(3, dtype=torch.float64),
          torch.arange(4), torch.randn(5)]
    ys = [torch.randn(x.shape, dtype=x.dtype) if x.dtype.is_floating_point else torch.arange(4) for x in xs]
    _same(torch._foreach_add(_dev(xs), _dev(ys), alpha=2), torch._foreach_add(xs, ys, alpha=2))
    dev = _dev(xs)
    torch._foreach_mul_(dev, 3)
    _same(dev, torch._foreach_mul(xs, 3))


@pytest.mark.parametrize("ord", (2, 1, 0, math.inf, -math.inf, 3.5))
def test_foreach_norm(ord, no_fallbacks):
    xs = [torch.randn(s) for s in SHAPES] + [torch.randn(70000), torch.randn(3, 5).t()]
    xs[0][0, 0] = 0
    _same(torch._foreach_norm(_dev(xs), ord), torch._foreach_norm(xs, ord), rtol=2e-5)


def test_foreach_norm_dtype_and_max(no_fallbacks):
    xs = [torch.randn(s) for s in SHAPES[:4]]
    _same(torch._foreach_norm(_dev(xs), 2, dtype=torch.float64), torch._foreach_norm(xs, 2, dtype=torch.float64))
    _same(torch._foreach_max(_dev(xs)), torch._foreach_max(xs))


def test_foreach_copy_and_list_length_error(no_fallbacks):
    xs, ys, _ = _lists()
    dev = _dev(xs)
    torch._foreach_copy_(dev, _dev([y.double() for y in ys]))
    _same(dev, ys)
    with pytest.raises(RuntimeError):
        torch._foreach_add(dev, dev[:2])


# ---- plans: a call signature is checked and planned once; later calls read buffers afresh ----

def test_foreach_plans_are_reused_and_never_stale(no_fallbacks, monkeypatch):
    monkeypatch.setattr(foreach, "_plans", {})
    checks = []
    real_infer = foreach.infer
    monkeypatch.setattr(foreach, "infer", lambda *a, **k: checks.append(1) or real_infer(*a, **k))
    xs, ys, _ = _lists()
    dev_x, dev_y = _dev(xs), _dev(ys)
    for value in (0.5, 3.0):  # float values change neither the plan nor the checks
        torch._foreach_addcmul_(dev_x, dev_y, dev_y, value)
        torch._foreach_addcmul_(xs, ys, ys, value)
    assert len(checks) == 1
    _same(dev_x, xs)
    # a tensor re-bound to other data, same geometry: the next call writes the new buffer
    fresh = torch.randn(SHAPES[0])
    rebind(dev_x[0], fresh.to(DEVICE)._buf, fresh.shape, fresh.stride())
    xs[0] = fresh
    # ... and one laid out differently (transposed): a new signature, planned and checked anew
    dev_x[0], xs[0] = dev_x[0].t(), xs[0].t()
    torch._foreach_mul_(dev_x, 2.0)
    torch._foreach_mul_(xs, 2.0)
    _same(dev_x, xs)
    out = torch._foreach_exp(dev_x)
    _same(out, torch._foreach_exp(xs))
    assert out[0].stride() == xs[0].stride() == (1, 4)


@pytest.mark.parametrize("change", ["data", "resize_", "set_", "t_", "unsqueeze_", "swap_tensors", "deepcopy"])
def test_foreach_list_entries_follow_tensors_changed_in_place(change, no_fallbacks):
    # The multi-tensor ops keep each tensor's geometry and buffer on the tensor between calls:
    # every way of giving a tensor other geometry or memory in place must be seen by the next call.
    xs = [torch.randn(3, 4), torch.randn(5)]
    dev = _dev(xs)
    torch._foreach_mul_(dev, 2.0)
    torch._foreach_mul_(xs, 2.0)
    other = torch.randn(4, 3)
    if change == "data":
        dev[0].data, xs[0].data = other.to(DEVICE), other.clone()
    elif change == "resize_":
        dev[0].resize_(2, 2), xs[0].resize_(2, 2)
    elif change == "set_":
        dev[0].set_(other.to(DEVICE)), xs[0].set_(other.clone())
    elif change == "t_":
        dev[0].t_(), xs[0].t_()
    elif change == "unsqueeze_":
        dev[1].unsqueeze_(0), xs[1].unsqueeze_(0)
    elif change == "swap_tensors":
        fresh = other.to(DEVICE)
        torch.utils.swap_tensors(dev[0], fresh)
        xs[0] = other.clone()
    else:
        dev[0], xs[0] = copy.deepcopy(dev[0]), copy.deepcopy(xs[0])
        dev[0].t_(), xs[0].t_()
    torch._foreach_add_(dev, 1.0)
    torch._foreach_add_(xs, 1.0)
    _same(dev, xs)
    out = torch._foreach_mul(dev, 3.0)
    _same(out, torch._foreach_mul(xs, 3.0))


def test_foreach_errors_after_planning(no_fallbacks):
    xs, ys, _ = _lists()
    dev_x, dev_y = _dev(xs), _dev(ys)
    torch._foreach_add_(dev_x, dev_y)
    for _ in range(2):
        with pytest.raises(RuntimeError):
            torch._foreach_add_(dev_x, dev_y[:2])
    for _ in range(2):  # same lengths, other shapes
        with pytest.raises(RuntimeError, match="must match"):
            torch._foreach_add_(dev_x, dev_y[::-1])
    empty = [torch.zeros(0).to(DEVICE)]
    torch._foreach_norm(empty, 2.0)
    with pytest.raises(RuntimeError, match="infinity norm"):  # the norm's order counts by value
        torch._foreach_norm(empty, math.inf)


def test_foreach_plans_keep_no_memory(no_fallbacks):
    gc.collect()
    before = torch.ocl.memory_allocated()
    xs = [torch.randn(1000 + i).to(DEVICE) for i in range(3)]
    ys = torch._foreach_exp(xs)
    torch._foreach_add_(ys, xs, alpha=2)
    del xs, ys
    gc.collect()
    assert torch.ocl.memory_allocated() == before


def test_foreach_device_values_skip_no_tensor(no_fallbacks):
    # one value per tensor, read on the device: tensors that take no kernel slot (empty, another
    # dtype, strided) must not shift the values of the ones after them
    shapes = [(3,), (0,), (4,), (2,), (5,), (2, 3)]
    torch.manual_seed(2)
    xs = [torch.randn(s) for s in shapes]
    xs[3] = xs[3].double()
    xs[5] = xs[5].t()
    t1 = [torch.randn(x.shape, dtype=x.dtype) for x in xs]
    t2 = [torch.rand(x.shape, dtype=x.dtype) + 1 for x in xs]
    values = torch.arange(1.0, 7.0)
    for op in (torch._foreach_addcdiv, torch._foreach_addcmul):
        _same(op(_dev(xs), _dev(t1), _dev(t2), values.to(DEVICE)), op(xs, t1, t2, values))


# ---- fused=True: aten._fused_adam_ / _fused_adamw_ / _fused_sgd_ ----

FUSED_SHAPES = SHAPES + ((), (1500,))  # 12 tensors: two Adam launches; 0-dim; one spanning chunks

FUSED_CONFIGS = [
    (O.Adam, dict(lr=0.01, weight_decay=0.1)),
    (O.Adam, dict(lr=0.01, amsgrad=True, maximize=True, betas=(0.3, 0.5))),  # v falls: the max counts
    (O.AdamW, dict(lr=0.01, weight_decay=0.05, amsgrad=True)),
    (O.SGD, dict(lr=0.1)),
    (O.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    (O.SGD, dict(lr=0.1, momentum=0.9, dampening=0.1, maximize=True)),
]


def _fused_run(cls, kwargs, device, steps=3, shapes=FUSED_SHAPES, layouts=None, lr=None, grad_scale=None):
    """``steps`` steps on ``shapes`` (``layouts`` makes the parameters strided views): fused on
    ocl, foreach=False on the CPU; ``lr`` replaces kwargs' lr with a tensor on the device;
    ``grad_scale`` scales the ocl grads (the CPU gets them unscaled). Returns the parameters, the
    optimizer and the last (unscaled) gradients."""
    torch.manual_seed(0)
    init = [torch.randn(s) for s in shapes]
    grads = [[torch.randn(s) for s in shapes] for _ in range(steps)]
    on_ocl = device != "cpu"
    params = [p.to(device) if on_ocl else p.clone() for p in init]
    params = [(f(p) if layouts else p).requires_grad_() for f, p in zip(layouts or params, params)]
    if on_ocl and lr is not None:
        kwargs = dict(kwargs, lr=torch.tensor(kwargs["lr"]).to(device))
    opt = cls(params, **kwargs, **({"fused": True} if on_ocl else {"foreach": False}))
    for step in range(steps):
        for p, g in zip(params, grads[step]):
            p.grad = (g * (grad_scale or 1)).to(device)
        if on_ocl and grad_scale:
            opt.grad_scale = torch.tensor(grad_scale).to(device)
            opt.found_inf = torch.tensor(0.0).to(device)
        opt.step()
    return params, opt, grads[-1]


def _ids(c):
    return c.__name__ if isinstance(c, type) else "-".join(f"{k}{v}" for k, v in c.items())


@pytest.mark.parametrize("cls,kwargs", FUSED_CONFIGS, ids=_ids)
def test_fused_matches_cpu(cls, kwargs, no_fallbacks):
    expected, _, _ = _fused_run(cls, kwargs, "cpu")
    actual, _, _ = _fused_run(cls, kwargs, DEVICE)
    for a, e in zip(actual, expected):
        assert_close(a, e, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cls,kwargs", [FUSED_CONFIGS[2], FUSED_CONFIGS[5]], ids=_ids)
def test_fused_strided_params(cls, kwargs, no_fallbacks):
    # transposed (dense, laid out unlike its contiguous grad) and sliced (not dense) parameters
    layouts = [lambda x: x.t().contiguous().t(), lambda x: torch.stack([x, x], -1)[..., 1]]
    expected, _, _ = _fused_run(cls, kwargs, "cpu", shapes=((3, 4), (5, 2)), layouts=layouts)
    actual, _, _ = _fused_run(cls, kwargs, DEVICE, shapes=((3, 4), (5, 2)), layouts=layouts)
    for a, e in zip(actual, expected):
        assert_close(a, e)


@pytest.mark.parametrize("cls,kwargs", [FUSED_CONFIGS[0], FUSED_CONFIGS[4]], ids=_ids)
def test_fused_tensor_lr_and_grad_scale(cls, kwargs, no_fallbacks):
    expected, _, _ = _fused_run(cls, kwargs, "cpu")
    actual, opt, grads = _fused_run(cls, kwargs, DEVICE, lr=True, grad_scale=4.0)
    for a, e, g in zip(actual, expected, grads):
        assert_close(a, e, rtol=1e-5, atol=1e-5)
        assert_close(a.grad, g)  # the fused step leaves the unscaled gradients behind, as on CUDA
    # found_inf != 0: nothing changes (parameters, state, step counters)
    before = [p.detach().cpu() for p in actual]
    state = [{k: v.cpu() for k, v in opt.state[p].items()} for p in actual]
    opt.found_inf = torch.tensor(1.0).to(DEVICE)
    opt.step()
    for p, b, s in zip(actual, before, state):
        assert_close(p, b, rtol=0, atol=0)
        for k, v in s.items():
            assert_close(opt.state[p][k], v, rtol=0, atol=0)
    # the tensor lr is read on the device at every step: 0 leaves the parameters as they are
    opt.found_inf = torch.tensor(0.0).to(DEVICE)
    opt.param_groups[0]["lr"].fill_(0.0)
    opt.step()
    for p, b in zip(actual, before):
        assert_close(p, b, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", (pytest.param(torch.float64, marks=pytest.mark.slow), torch.float16, torch.bfloat16))
@pytest.mark.parametrize("cls,kwargs", [FUSED_CONFIGS[2], FUSED_CONFIGS[4]], ids=_ids)
def test_fused_other_dtypes(cls, kwargs, dtype, no_fallbacks):
    # fp16/bf16 are computed in float32 and rounded once per step, as torch's fused kernels do: the
    # result stays within a rounding or two of the same steps in float64 (on the CPU, foreach=False)
    torch.manual_seed(0)
    init = [torch.randn(s).to(dtype) for s in FUSED_SHAPES[:4]]
    grads = [torch.randn(s).to(dtype) for s in FUSED_SHAPES[:4]]
    results = []
    for device, kind, how in (("cpu", torch.float64, {"foreach": False}), (DEVICE, dtype, {"fused": True})):
        params = [p.clone().to(kind).to(device).requires_grad_() for p in init]
        opt = cls(params, **how, **kwargs)
        for _ in range(2):
            for p, g in zip(params, grads):
                p.grad = g.to(kind).to(device)
            opt.step()
        results.append(params)
    tol = {torch.float64: 1e-12, torch.float16: 2e-3, torch.bfloat16: 1e-2}[dtype]
    for a, e in zip(results[1], results[0]):
        assert a.dtype == dtype
        assert_close(a.double(), e, rtol=tol, atol=tol)


def _launches(n, cls=O.Adam, **kwargs):
    """Kernel launches per aten op of one fused step over ``n`` parameters of assorted sizes."""
    params = [torch.randn(7 * i + 1).to(DEVICE).requires_grad_() for i in range(n)]
    for p in params:
        p.grad = torch.randn(p.shape).to(DEVICE)
    opt = cls(params, lr=0.01, fused=True, **kwargs)
    opt.step()  # creates the state
    with oclcore.profile() as prof:
        opt.step()
    counts = {}
    for op, *_ in prof.times():
        counts[op] = counts.get(op, 0) + 1
    return counts


def test_fused_step_launches_do_not_grow_with_parameters(no_fallbacks):
    one, eight = _launches(1, amsgrad=True), _launches(8, amsgrad=True)
    assert one == eight  # _foreach_add_ on the step counters, then one fused launch
    assert one["aten::_fused_adam_"] == 1
    assert _launches(ADAM_SLOTS)["aten::_fused_adam_"] == 1
    assert _launches(ADAM_SLOTS + 1)["aten::_fused_adam_"] == 2  # the kernel-argument bound per launch
    assert _launches(1, O.SGD, momentum=0.9) == _launches(16, O.SGD, momentum=0.9) == {"aten::_fused_sgd_": 1}


def test_fused_adam_replays_under_graph_capture(no_fallbacks):
    torch.manual_seed(0)
    init = [torch.randn(s) for s in FUSED_SHAPES[:5]]
    grads = [[torch.randn(s) for s in FUSED_SHAPES[:5]] for _ in range(4)]
    cpu = [p.clone().requires_grad_() for p in init]
    dev = [p.to(DEVICE).requires_grad_() for p in init]
    lr = torch.tensor(0.01).to(DEVICE)
    opt_c = O.Adam(cpu, lr=0.01, amsgrad=True, foreach=False)
    opt_o = O.Adam(dev, lr=lr, amsgrad=True, fused=True)
    for p, q, g in zip(cpu, dev, grads[0]):
        p.grad, q.grad = g.clone(), g.to(DEVICE)
    opt_c.step()
    opt_o.step()  # warm-up: the state exists before capture, as for CUDA graphs
    g = Graph()
    with graph(g):
        opt_o.step()
    opt_c.step()
    for step, lr_value in ((1, 0.01), (2, 0.005), (3, 0.005)):
        for p, q, gr in zip(cpu, dev, grads[step]):
            p.grad.copy_(gr)
            q.grad.copy_(gr)
        for group in opt_c.param_groups:
            group["lr"] = lr_value
        lr.fill_(lr_value)  # read by the kernel on every replay
        g.replay()
        opt_c.step()
    for p, q in zip(dev, cpu):
        assert_close(p, q)
        assert_close(opt_o.state[p]["step"], opt_c.state[q]["step"])


def test_fused_errors(no_fallbacks):
    ps = [torch.zeros(3).to(DEVICE), torch.zeros(2).to(DEVICE)]
    steps = [torch.zeros((), device=DEVICE) for _ in ps]
    kw = dict(lr=0.1, beta1=0.9, beta2=0.99, weight_decay=0.0, eps=1e-8, amsgrad=False, maximize=False)
    with pytest.raises(RuntimeError, match="expected 2 grads"):
        torch._fused_adam_(ps, ps[:1], ps, ps, [], steps, **kw)
    with pytest.raises(RuntimeError, match="dtype"):
        torch._fused_adam_(ps, [p.double() for p in ps], ps, ps, [], steps, **kw)
    with pytest.raises(RuntimeError, match="float32 tensor"):
        torch._fused_adam_(ps, ps, ps, ps, [], [s.double() for s in steps], **kw)
    with pytest.raises(RuntimeError, match="same device"):
        torch._fused_sgd_(ps, [torch.zeros(3), torch.zeros(2)], [], weight_decay=0.0, momentum=0.0, lr=0.1,
                          dampening=0.0, nesterov=False, maximize=False, is_first_step=False)
    with pytest.raises(TypeError, match="float32, float64, float16 or bfloat16"):
        ints = [torch.zeros(3, dtype=torch.int32).to(DEVICE)]
        torch._fused_sgd_(ints, ints, [], weight_decay=0.0, momentum=0.0, lr=0.1,
                          dampening=0.0, nesterov=False, maximize=False, is_first_step=False)


def test_fused_plans_are_reused_and_never_stale(no_fallbacks, monkeypatch):
    monkeypatch.setattr(foreach, "_plans", {})  # (the fused steps' plans live there too)
    fused_plans = lambda: [k for k in foreach._plans if k[0] == "_fused_adam_"]  # noqa: E731
    torch.manual_seed(0)
    init = [torch.randn(s) for s in FUSED_SHAPES[:5]]
    fresh = torch.randn(FUSED_SHAPES[0])
    runs = {}
    for device in ("cpu", DEVICE):
        params = [p.clone().to(device).requires_grad_() for p in init]
        opt = O.Adam(params, lr=0.01, amsgrad=True, **({"fused": True} if device != "cpu" else {"foreach": False}))
        for step in range(4):
            for p in params:
                p.grad = torch.full(p.shape, 0.1 * (step + 1)).to(device)
            if step == 2:  # a parameter moved to new memory between steps: the plan must read its buffer anew
                with torch.no_grad():
                    params[0].data = fresh.clone().to(device)
            opt.step()
        runs[device] = params
    for a, e in zip(runs[DEVICE], runs["cpu"]):
        assert_close(a, e, rtol=1e-5, atol=1e-5)
    assert len(fused_plans()) == 1  # one signature, planned once
    # another layout of the same shapes is another signature: checked and planned afresh
    _fused_run(O.Adam, dict(lr=0.01), DEVICE, steps=2, shapes=((3, 4),), layouts=[lambda x: x.t().contiguous().t()])
    assert len(fused_plans()) == 2
    # a planned signature still gets torch's errors for what the plan does not cover
    ps = [torch.zeros(3).to(DEVICE), torch.zeros(2).to(DEVICE)]
    steps = [torch.zeros((), device=DEVICE) for _ in ps]
    kw = dict(lr=0.1, beta1=0.9, beta2=0.99, weight_decay=0.0, eps=1e-8, amsgrad=False, maximize=False)
    torch._fused_adam_(ps, ps, ps, ps, [], steps, **kw)
    with pytest.raises(RuntimeError, match="expected 2 grads"):
        torch._fused_adam_(ps, ps[:1], ps, ps, [], steps, **kw)
    with pytest.raises(RuntimeError, match="same device"):
        torch._fused_adam_(ps, [ps[0], torch.zeros(2)], ps, ps, [], steps, **kw)
