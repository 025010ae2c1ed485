"""torch.optim and the multi-tensor (_foreach_*) ops on ocl: several steps of
each optimizer, foreach on and off, agree with the same steps on the CPU;
clip_grad_norm_ and zero_grad."""

import math

import pytest
import torch

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


def test_default_optimizer_takes_the_foreach_path(no_fallbacks, monkeypatch):
    calls = []
    real = torch._foreach_add_
    monkeypatch.setattr(torch, "_foreach_add_", lambda *a, **k: calls.append(1) or real(*a, **k))
    p = torch.randn(3).to(DEVICE).requires_grad_()
    p.grad = torch.ones(3).to(DEVICE)
    O.SGD([p], lr=0.5).step()
    assert calls
    assert_close(p, torch.ones(3) * 0 + p.detach().cpu())  # ran on ocl and can be read


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
    pools = iter([ys, zs])

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
