"""cat, stack, flip, roll, repeat, tril, triu on ocl against torch CPU."""

import pytest
import torch

from conftest import DEVICE, assert_close


def ocl(t):
    return t.to(DEVICE)


def test_cat_dims_dtypes_empty(no_fallbacks):
    a, b = torch.randn(2, 3, 4), torch.randn(2, 5, 4)
    assert_close(torch.cat([ocl(a), ocl(b)], 1), torch.cat([a, b], 1))
    assert_close(torch.cat([ocl(a), ocl(a)], -1), torch.cat([a, a], -1))
    i = torch.randint(0, 9, (2, 3, 4), dtype=torch.int32)
    assert_close(torch.cat([ocl(a), ocl(i)], 0), torch.cat([a, i], 0))  # promoted to float
    h = torch.randn(1, 3, 4).half()
    assert_close(torch.cat([ocl(h), ocl(h)], 0), torch.cat([h, h], 0))
    e = torch.empty(0)
    assert_close(torch.cat([ocl(a), ocl(e), ocl(a)], 2), torch.cat([a, e, a], 2))  # legacy empty skipped
    z = torch.empty(2, 0, 4)
    assert_close(torch.cat([ocl(z), ocl(a)], 1), torch.cat([z, a], 1))
    t = torch.randn(4, 3).t()  # non-contiguous
    assert_close(torch.cat([ocl(t), ocl(t[:1])], 0), torch.cat([t, t[:1]], 0))
    with pytest.raises(RuntimeError):
        torch.cat([ocl(a), ocl(b)], 0)
    with pytest.raises(RuntimeError, match="same device"):
        torch.cat([ocl(a), a], 0)
    with pytest.raises(RuntimeError, match="same device"):
        torch.cat([ocl(a), ocl(a)], 0, out=torch.empty(4, 3, 4))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.int64, torch.uint8,
                                   torch.bool, torch.complex64])
def test_cat_many_inputs_in_few_launches(no_fallbacks, dtype):
    from oclcore import runtime

    sizes = [1 + (k * 7) % 11 for k in range(40)]
    xs = [torch.randn(3, c, 5, 2).to(dtype) if dtype is not torch.bool else torch.randn(3, c, 5, 2) > 0
          for c in sizes]
    dev = [ocl(x) for x in xs]
    torch.ocl.synchronize()
    before = runtime.rt.launch_count()
    got = torch.cat(dev, 1)
    assert runtime.rt.launch_count() - before == 3  # 40 inputs, 16 per launch
    assert_close(got, torch.cat(xs, 1))
    same = [x[:, :1] for x in xs]  # views with gaps: copied one by one
    assert_close(torch.cat([ocl(x) for x in same], -1), torch.cat(same, -1))
    assert_close(torch.cat([ocl(x.contiguous()) for x in same], 0), torch.cat(same, 0))


def test_cat_layouts_views_and_out(no_fallbacks):
    from oclcore import runtime

    base = torch.randn(6, 9, 4, 5)
    parts = [base[1:3], base[3:4], base[:2, :, :, :].contiguous()]  # offsets into one storage
    assert_close(torch.cat([ocl(base)[1:3], ocl(base)[3:4], ocl(parts[2])], 0), torch.cat(parts, 0))
    # channels_last inputs: the result is channels_last and the copies run batched
    cl = [torch.randn(2, c, 3, 4).to(memory_format=torch.channels_last) for c in (3, 1, 6)]
    got = torch.cat([ocl(x) for x in cl], 1)
    want = torch.cat(cl, 1)
    assert got.stride() == want.stride()
    assert_close(got, want)
    for dim in (0, 2, 3):
        assert_close(torch.cat([ocl(x) for x in cl[:1]] * 3, dim), torch.cat(cl[:1] * 3, dim))
    # a transposed input among contiguous ones is copied on its own
    a, t = torch.randn(4, 3), torch.randn(3, 4).t()
    dev_a, dev_t = ocl(a), ocl(t)
    torch.ocl.synchronize()
    before = runtime.rt.launch_count()
    got = torch.cat([dev_a, dev_t, dev_a], 1)
    assert runtime.rt.launch_count() - before == 2
    assert_close(got, torch.cat([a, t, a], 1))
    # bigger than the kernel's work-items per input: they stride
    big = [torch.randn(70_000, 2), torch.randn(70_000, 3)]
    assert_close(torch.cat([ocl(x) for x in big], 1), torch.cat(big, 1))
    # out=: contiguous, and a transposed one
    out = ocl(torch.empty(4, 9))
    torch.cat([ocl(a), ocl(t), ocl(a)], 1, out=out)
    assert_close(out, torch.cat([a, t, a], 1))
    out_d = ocl(torch.empty(4, 9, dtype=torch.float64))  # a wider out= dtype: converting copies
    torch.cat([dev_a, dev_t, dev_a], 1, out=out_d)
    assert_close(out_d, torch.cat([a, t, a], 1).double())
    out_t = ocl(torch.empty(9, 4)).t()
    torch.cat([ocl(a), ocl(t), ocl(a)], 1, out=out_t)
    assert_close(out_t, torch.cat([a, t, a], 1))


def test_cat_stack_backward(no_fallbacks):
    a, b = torch.randn(2, 3), torch.randn(2, 3)
    A, B = ocl(a).requires_grad_(), ocl(b).requires_grad_()
    a.requires_grad_()
    b.requires_grad_()
    ra, rb = torch.cat([a, b], 1) * 2, torch.cat([A, B], 1) * 2
    assert_close(rb, ra)
    g = torch.randn(ra.shape)
    ra.backward(g)
    rb.backward(ocl(g))
    assert_close(A.grad, a.grad)
    assert_close(B.grad, b.grad)
    assert_close(torch.stack([ocl(a), ocl(b)], 1), torch.stack([a, b], 1))
    assert_close(torch.stack([ocl(a), ocl(b)], -1), torch.stack([a, b], -1))


@pytest.mark.parametrize("dtype", [torch.float32, torch.int64, torch.bool, torch.float16])
def test_flip_roll_repeat(dtype, no_fallbacks):
    x = (torch.randn(3, 4, 5) * 4).to(dtype)
    t = x.transpose(0, 2)[1:]
    for src in (x, t):
        X = ocl(src)
        assert_close(X.flip(0), src.flip(0))
        assert_close(X.flip([0, -1]), src.flip([0, -1]))
        assert_close(X.roll(2, 1), src.roll(2, 1))
        assert_close(X.roll((-1, 7), (0, 2)), src.roll((-1, 7), (0, 2)))
        assert_close(X.roll(3), src.roll(3))
        assert_close(X.repeat(2, 1, 3), src.repeat(2, 1, 3))
        assert_close(X.repeat(2, 1, 1, 2), src.repeat(2, 1, 1, 2))
    s = torch.tensor(3.0).to(dtype)
    assert_close(ocl(s).repeat(2, 3), s.repeat(2, 3))
    assert_close(ocl(x).repeat(1, 0, 1), x.repeat(1, 0, 1))


def test_flip_roll_repeat_backward(no_fallbacks):
    x = torch.randn(3, 4)
    for fn in (lambda t: t.flip(1), lambda t: t.roll(1, 0), lambda t: t.roll(5)):
        a, b = x.clone().requires_grad_(), ocl(x).requires_grad_()
        ra, rb = fn(a), fn(b)
        assert_close(rb, ra)
        g = torch.randn(ra.shape)
        ra.backward(g)
        rb.backward(ocl(g))
        assert_close(b.grad, a.grad)


def test_repeat_backward(no_fallbacks):
    x = torch.randn(3, 4)
    a, b = x.clone().requires_grad_(), ocl(x).requires_grad_()
    ra, rb = a.repeat(2, 3), b.repeat(2, 3)
    g = torch.randn(ra.shape)
    ra.backward(g)
    rb.backward(ocl(g))
    assert_close(b.grad, a.grad)


@pytest.mark.parametrize("dtype", [torch.float32, torch.int32, torch.bool])
def test_tril_triu(dtype, no_fallbacks):
    x = (torch.randn(2, 4, 6) * 3).to(dtype)
    for src in (x, x.transpose(1, 2)):
        for k in (-2, 0, 1, 7):
            assert_close(ocl(src).tril(k), src.tril(k))
            assert_close(ocl(src).triu(k), src.triu(k))
    y = ocl(x)
    y.triu_(1)
    assert_close(y, x.triu(1))
    assert_close(ocl(torch.empty(0, 3)).tril(), torch.empty(0, 3).tril())


@pytest.mark.parametrize("op", [torch.tril_indices, torch.triu_indices])
def test_triangle_indices_factories(op):
    """tril_indices / triu_indices with device="ocl" (factories with no tensor input)."""
    for args in ((3, 3), (4, 3, 1), (3, 5, -2), (0, 3), (5, 5, 9)):
        got = op(*args, device=DEVICE)
        assert got.device.type == "ocl" and got.dtype == torch.long
        assert torch.equal(got.cpu(), op(*args))
    assert op(3, 4, dtype=torch.int32, device=DEVICE).dtype == torch.int32
    with pytest.raises(RuntimeError, match="row must be non-negative"):
        op(-1, 3, device=DEVICE)
