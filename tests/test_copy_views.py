"""Moving data to and from ocl, dtype conversions, copy_ between layouts and
devices, .item()/.tolist()/printing, and view ops sharing one buffer."""

import pytest
import torch

from conftest import DEVICE, assert_close, compare_forward_backward

from oclcore.torch.tensor import entry

DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int64, torch.int32, torch.int16,
          torch.int8, torch.uint8, torch.bool]
VALUES = torch.tensor([[0.0, 1.5, -2.25, 3.0, 0.5], [100.0, -7.0, 0.25, 1.0, -0.5]])


def ids(d):
    return str(d).replace("torch.", "")


@pytest.mark.parametrize("dtype", DTYPES, ids=ids)
def test_roundtrip_every_dtype(dtype):
    x = VALUES.to(dtype)
    o = x.to(DEVICE)
    assert o.device.type == "ocl" and o.dtype == dtype and o.shape == x.shape
    assert torch.equal(o.cpu(), x)
    assert torch.equal(x.t().to(DEVICE).cpu(), x.t())  # non-contiguous source
    assert torch.equal(o.t().cpu(), x.t())  # non-contiguous device tensor
    assert torch.equal(o[:, 1::2].cpu(), x[:, 1::2])
    assert torch.equal(torch.empty(0, 3, dtype=dtype).to(DEVICE).cpu(), torch.empty(0, 3, dtype=dtype))


# A few conversions in the default run (each pair is one kernel build); all pairs in the slow sweep.
CONVERSIONS = [(torch.float32, torch.bool), (torch.float32, torch.int32), (torch.float32, torch.float16),
               (torch.bfloat16, torch.float32), (torch.int64, torch.float32), (torch.bool, torch.float32),
               (torch.float16, torch.bool), (torch.uint8, torch.int64)]


def check_conversion(src_dtype, dst_dtype):
    x = VALUES.to(src_dtype)
    o = x.to(DEVICE)
    ref = x.to(dst_dtype)
    assert torch.equal(o.to(dst_dtype).cpu(), ref)
    dst = torch.zeros(5, 2, dtype=dst_dtype, device=DEVICE).t()  # copy_ into a transposed tensor
    dst.copy_(o)
    assert torch.equal(dst.cpu(), ref)
    dst = torch.zeros(5, 2, dtype=dst_dtype, device=DEVICE).t()
    dst.copy_(x)  # from the CPU, converting
    assert torch.equal(dst.cpu(), ref)
    host = torch.zeros(5, 2, dtype=dst_dtype).t()
    host.copy_(o)  # to the CPU, converting
    assert torch.equal(host, ref)


@pytest.mark.parametrize("src_dtype, dst_dtype", CONVERSIONS, ids=ids)
def test_dtype_conversions(src_dtype, dst_dtype, no_fallbacks):
    check_conversion(src_dtype, dst_dtype)


@pytest.mark.slow
@pytest.mark.parametrize("src_dtype", DTYPES, ids=ids)
@pytest.mark.parametrize("dst_dtype", DTYPES, ids=ids)
def test_dtype_conversions_every_pair(src_dtype, dst_dtype, no_fallbacks):
    check_conversion(src_dtype, dst_dtype)


def test_float_to_bool_tests_nonzero_in_float(no_fallbacks):
    x = torch.tensor([0.0, 0.5, -0.25, 1e-30, -0.0, float("nan")])
    assert torch.equal(x.to(DEVICE).bool().cpu(), x.bool())


def test_copy_between_layouts(no_fallbacks):
    x = torch.randn(4, 6)
    o = torch.zeros(6, 4, device=DEVICE).t()
    o.copy_(x.to(DEVICE))
    assert torch.equal(o.cpu(), x)
    o2 = torch.zeros(4, 6, device=DEVICE)
    o2[:, ::2].copy_(x[:, 1::2].to(DEVICE))  # strided into strided
    ref = torch.zeros(4, 6)
    ref[:, ::2] = x[:, 1::2]
    assert torch.equal(o2.cpu(), ref)
    o3 = torch.zeros(3, 4, 6, device=DEVICE)
    o3.copy_(x)  # broadcast from the CPU
    assert torch.equal(o3.cpu(), x.expand(3, 4, 6))
    o3.copy_(x[0].to(DEVICE))  # broadcast on the device
    assert torch.equal(o3.cpu(), x[0].expand(3, 4, 6))
    o3.copy_(torch.tensor(2.5))  # a 0-dim CPU value
    assert (o3.cpu() == 2.5).all()
    cl = torch.randn(2, 3, 4, 5).to(memory_format=torch.channels_last)
    oc = cl.to(DEVICE)
    assert oc.stride() == cl.stride()
    assert torch.equal(oc.cpu(), cl)
    z = torch.zeros(2, 3, 4, 5, device=DEVICE).to(memory_format=torch.channels_last)
    z.copy_(cl.contiguous())
    assert torch.equal(z.cpu(), cl)
    assert z.clone().stride() == z.stride()
    assert oc.contiguous().is_contiguous()
    assert torch.equal(oc.contiguous().cpu(), cl)
    with pytest.raises(RuntimeError):
        torch.zeros(3, 5, device=DEVICE).copy_(torch.randn(4, 6))
    with pytest.raises(RuntimeError, match="written-to tensor"):
        torch.zeros(3, device=DEVICE).expand(2, 3).copy_(torch.ones(2, 3))


def test_to_variants(no_fallbacks):
    x = torch.randn(3, 4)
    o = x.to(DEVICE)
    assert o.to(DEVICE) is o
    c = o.to(DEVICE, copy=True)
    assert c is not o and c._buf is not o._buf and torch.equal(c.cpu(), x)
    assert torch.equal(x.to(DEVICE, non_blocking=True).cpu(), x)
    assert torch.equal(o.to("cpu", non_blocking=True), x)
    assert torch.equal(o.to(torch.float64).cpu(), x.double())
    assert torch.equal(o.double().cpu(), x.double())
    assert torch.equal(o.to("cpu", torch.int32), x.int())
    assert torch.equal(x.to(DEVICE, torch.float16).cpu(), x.half())
    assert o.new_zeros(2).device == o.device
    assert torch.equal(torch.tensor([1, 2], device=DEVICE).cpu(), torch.tensor([1, 2]))


def test_item_tolist_and_printing():
    assert torch.tensor([7]).to(DEVICE).item() == 7
    assert torch.tensor(True).to(DEVICE).item() is True
    assert torch.tensor([1.5], dtype=torch.float16).to(DEVICE).item() == 1.5
    assert torch.tensor([1.5], dtype=torch.bfloat16).to(DEVICE).item() == 1.5
    x = torch.randn(4, 5)
    assert x.to(DEVICE)[2, 3].item() == x[2, 3].item()
    assert float(x.to(DEVICE)[1, 1]) == float(x[1, 1])
    with pytest.raises(RuntimeError):
        torch.tensor([1, 2]).to(DEVICE).item()
    text = repr(torch.tensor([[1.0, 2.0]], requires_grad=True).to(DEVICE))
    assert "device='ocl:0'" in text and "1." in text and "grad_fn" in text
    assert "dtype=torch.bfloat16" in str(torch.ones(2, dtype=torch.bfloat16).to(DEVICE))
    assert "[]" in repr(torch.empty(0).to(DEVICE))
    assert "..." in repr(torch.arange(5000.0).to(DEVICE))


def test_format_zero_dim():
    assert f"{torch.tensor(1.25).to(DEVICE):.1f}" == f"{torch.tensor(1.25):.1f}"


def test_tolist():
    x = torch.arange(6).view(2, 3)
    assert x.to(DEVICE).tolist() == x.tolist()
    assert x.to(DEVICE).t().tolist() == x.t().tolist()
    assert torch.tensor(2.5).to(DEVICE).tolist() == 2.5


# ---- views ----

BASE = torch.arange(24.0).view(2, 3, 4)

# name: a view function of one tensor (returning a tensor or a tuple of tensors)
VIEWS = {
    "view": lambda t: t.view(6, 4),
    "view_infer": lambda t: t.view(-1, 2),
    "view_dtype": lambda t: t.view(torch.int32),
    "view_dtype_narrower": lambda t: t.view(torch.int16),
    "reshape": lambda t: t.reshape(4, 6),
    "flatten": lambda t: t.flatten(),
    "unflatten": lambda t: t.unflatten(2, (2, 2)),
    "as_strided": lambda t: t.as_strided((3, 3), (4, 1), 2),
    "permute": lambda t: t.permute(2, 0, 1),
    "transpose": lambda t: t.transpose(0, 2),
    "t": lambda t: t[0].t(),
    "mT": lambda t: t.mT,
    "expand": lambda t: t[:, :1].expand(2, 5, 4),
    "expand_new_dims": lambda t: t[0, 0].expand(3, 2, 4),
    "slice": lambda t: t[:, 1:, ::2],
    "slice_negative": lambda t: t[-1:, -2:],
    "slice_empty": lambda t: t[:, 3:],
    "select": lambda t: t[1, 2],
    "select_negative": lambda t: t.select(2, -1),
    "narrow": lambda t: t.narrow(1, 1, 2),
    "unsqueeze": lambda t: t.unsqueeze(1),
    "unsqueeze_last": lambda t: t.unsqueeze(-1),
    "squeeze": lambda t: t[:, :1].squeeze(),
    "squeeze_dim": lambda t: t[:, :1].squeeze(1),
    "squeeze_dims": lambda t: t[:1, :1].squeeze((0, 1)),
    "unfold": lambda t: t.unfold(2, 2, 1),
    "diagonal": lambda t: t.diagonal(0, 1, 2),
    "diagonal_offset": lambda t: t.diagonal(1, 1, 2),
    "split": lambda t: t.split(2, dim=2),
    "split_sizes": lambda t: t.split([1, 3], dim=2),
    "chunk": lambda t: t.chunk(2, dim=1),
    "unbind": lambda t: t.unbind(1),
    "movedim": lambda t: t.movedim(0, 2),
    "ellipsis_none": lambda t: t[None, ..., 1],
    "view_of_view": lambda t: t[1].view(12)[3:9].view(2, 3).t(),
    "detach": lambda t: t.detach(),
}


def assert_entry_matches(t):
    """What oclcore's ops read of ``t`` (its entry, set when the tensor was made) is torch's own
    geometry of it."""
    (dtype, shape, stride, index), buf, offset, _ = entry(t)
    assert (dtype, tuple(shape), tuple(stride), index) == (t.dtype, tuple(t.shape), t.stride(), t.device.index)
    assert buf is t._buf and offset == t.storage_offset()


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_views_share_the_buffer(name, no_fallbacks):
    fn = VIEWS[name]
    cpu = BASE.clone()
    dev = BASE.to(DEVICE)
    ref, got = fn(cpu), fn(dev)
    refs, gots = (list(ref), list(got)) if isinstance(ref, (list, tuple)) else ([ref], [got])
    assert len(refs) == len(gots)
    for g, r in zip(gots, refs):
        assert g.device == dev.device and g.dtype == r.dtype
        assert (g.shape, g.stride(), g.storage_offset()) == (r.shape, r.stride(), r.storage_offset())
        assert g._buf is dev._buf
        assert_entry_matches(g)
        assert torch.equal(g.cpu(), r)
    # a write through the (first) view shows in the base
    g, r = gots[0], refs[0]
    if g.numel() and 0 not in g.stride():
        g.fill_(-7)
        r.fill_(-7)
        assert torch.equal(dev.cpu().view(torch.uint8), cpu.view(torch.uint8))  # bitwise: NaNs may appear


@pytest.mark.parametrize("shape", [(), (0,), (2, 0, 3), (1, 1), (3, 1, 2)], ids=str)
def test_new_tensors_entries_match_their_geometry(shape, no_fallbacks):
    x = torch.empty(shape, device=DEVICE)
    for t in (x, x + 1, torch.empty_strided(shape, tuple(range(len(shape), 0, -1)), device=DEVICE), x.detach(),
              x.view(shape), x.permute(tuple(reversed(range(len(shape)))))):
        assert_entry_matches(t)


def test_reshape_copies_when_it_must():
    x = BASE.to(DEVICE).transpose(0, 1)
    r = x.reshape(3, 8)
    assert r._buf is not x._buf
    assert torch.equal(r.cpu(), BASE.transpose(0, 1).reshape(3, 8))


@pytest.mark.parametrize("make, size", [
    (lambda t: t.permute(0, 2, 3, 1), (2, 12, 5)),  # splits and merges within contiguous runs
    (lambda t: t.permute(0, 2, 3, 1), (2, 3, 4, 5, 1)),
    (lambda t: t.permute(0, 2, 3, 1), (1, 2, 60, 1)),
    (lambda t: t.permute(0, 2, 3, 1), (-1, 5)),
    (lambda t: t[:, :, ::2], (2, 3, 10)),
    (lambda t: t[:, 1:2], (2, 4, 5)),  # a size-1 dim with any stride
    (lambda t: t.transpose(0, 3)[1:4], (3, 4, 3, 2)),
    (lambda t: t.expand(3, 2, 3, 4, 5), (3, 2, 3, 20)),  # stride-0 dims
    (lambda t: t.permute(0, 2, 3, 1), (2, 60)),  # no view exists: torch's error
], ids=lambda c: "")
def test_view_of_non_contiguous_tensors(make, size, no_fallbacks):
    """view on strided tensors gives torch's exact strides (its computeStride), or its error."""
    base = torch.randn(2, 3, 4, 5)
    cpu, dev = make(base), make(base.to(DEVICE))
    try:
        want = cpu.view(size)
    except RuntimeError as e:
        with pytest.raises(RuntimeError, match="view size is not compatible"):
            dev.view(size)
        assert "view size is not compatible" in str(e)
        return
    got = dev.view(size)
    assert_entry_matches(got)
    assert got.stride() == want.stride() and got.storage_offset() == want.storage_offset()
    assert got._buf is dev._buf
    assert torch.equal(got.cpu(), want)


def test_views_of_zero_dim_and_empty():
    s = torch.tensor(1.5).to(DEVICE)
    assert s.unsqueeze(0).cpu().tolist() == [1.5]
    assert s.view(1, 1).shape == (1, 1)
    assert s.t().shape == ()
    e = torch.empty(0, 3).to(DEVICE)
    assert e.view(-1, 3).shape == (0, 3) and e.t().shape == (3, 0)


@pytest.mark.parametrize("call", [
    lambda t: t.transpose(0, 1).view(24),
    lambda t: t.view(5, 5),
    lambda t: t.view(-1, -1),
    lambda t: t.view(-2, 12),
    lambda t: t[5],
    lambda t: t.narrow(1, 2, 5),
    lambda t: t.expand(3, 3, 4),
    lambda t: t.permute(0, 0, 1),
    lambda t: t.permute(0, 1, 5),
    lambda t: t.transpose(0, 5),
    lambda t: t.t(),
    lambda t: t.unsqueeze(5),
    lambda t: t[::0],
    lambda t: t[::-1],
    lambda t: t[:, :, 1:].view(torch.float64),
], ids=lambda c: "")
def test_view_errors_match_cpu(call):
    with pytest.raises((RuntimeError, IndexError, ValueError)) as cpu_err:
        call(BASE.clone())
    with pytest.raises(type(cpu_err.value)) as ocl_err:
        call(BASE.to(DEVICE))
    assert str(ocl_err.value).split("(")[0] == str(cpu_err.value).split("(")[0]


@pytest.mark.parametrize("call", [
    lambda t: t.transpose_(0, 2), lambda t: t[0].t_(), lambda t: t.swapdims_(1, 2), lambda t: t.swapaxes_(0, 1),
    lambda t: t.unsqueeze_(1), lambda t: t[:1].squeeze_(), lambda t: t[:1].squeeze_(0), lambda t: t[:1].squeeze_((0, 1)),
    lambda t: t.as_strided_((2, 5), (1, 3), 1),
], ids=["transpose_", "t_", "swapdims_", "swapaxes_", "unsqueeze_", "squeeze_", "squeeze_dim", "squeeze_dims",
        "as_strided_"])
def test_inplace_views(call, no_fallbacks):
    """In-place view ops give the tensor itself the new geometry over the same data, as on the CPU."""
    cpu, ocl = BASE.clone(), BASE.to(DEVICE)
    want, got = call(cpu), call(ocl)
    assert_entry_matches(got)  # (the old one was dropped with the old geometry)
    assert tuple(got.shape) == tuple(want.shape) and got.stride() == want.stride()
    assert got.storage_offset() == want.storage_offset()
    assert_close(got, want)
    ocl.fill_(1.0)   # the view still shares the base's buffer
    assert torch.equal(got.cpu(), torch.ones(want.shape))


def test_inplace_view_errors_and_backward(no_fallbacks):
    with pytest.raises(IndexError, match="Dimension out of range"):
        BASE.to(DEVICE).transpose_(0, 7)
    with pytest.raises(RuntimeError, match="t_"):
        BASE.to(DEVICE).t_()
    w = torch.randn(3, 4, device=DEVICE, requires_grad=True)
    y = (w * torch.arange(12.0, device=DEVICE).view(3, 4)).transpose_(0, 1)
    y[0].sum().backward()
    assert_close(w.grad, torch.tensor([[0.0, 0, 0, 0], [4, 0, 0, 0], [8, 0, 0, 0]]))


def test_view_backward(no_fallbacks):
    x = torch.randn(3, 4, 5)
    xc = x.clone().requires_grad_()
    xo = x.to(DEVICE).requires_grad_()
    for t, dev in ((xc, False), (xo, True)):
        y = t.permute(2, 0, 1)[1:, :, ::2].unsqueeze(0).expand(2, -1, -1, -1, -1) * 2
        g = torch.ones(y.shape)
        y.backward(g.to(DEVICE) if dev else g)
    assert_close(xo.grad, xc.grad)


@pytest.mark.parametrize("make", [lambda: torch.randn(4, 6), lambda: torch.randn(6, 4).t()], ids=["dense", "transposed"])
def test_as_strided_scatter_and_functional_copy(make, no_fallbacks):
    x, src = make(), torch.randn(2, 3)
    got = torch.as_strided_scatter(x.to("ocl"), src.to("ocl"), (2, 3), (4, 1), 2)
    want = torch.as_strided_scatter(x, src, (2, 3), (4, 1), 2)
    assert got.stride() == want.stride()
    assert torch.equal(got.cpu(), want)
    row = torch.randn(x.shape[1])
    got = torch.ops.aten.copy(x.to("ocl"), row.to("ocl"))
    assert got.stride() == torch.ops.aten.copy(x, row).stride()
    assert torch.equal(got.cpu(), row.expand_as(x))


def test_resize_keeps_the_data_and_grows_the_buffer(no_fallbacks):
    x = torch.arange(6.0).to(DEVICE)
    x.resize_(2, 2)  # shrinking: a view of the first elements
    assert torch.equal(x.cpu(), torch.tensor([[0.0, 1.0], [2.0, 3.0]]))
    x.resize_(3, 3)  # growing past the buffer: the old elements come along
    assert x.shape == (3, 3) and torch.equal(x.cpu().flatten()[:6], torch.arange(6.0))
    v = torch.arange(10.0).to(DEVICE)[4:]  # a view keeps its storage offset
    v.resize_(2, 2)
    assert torch.equal(v.cpu(), torch.tensor([[4.0, 5.0], [6.0, 7.0]]))
    y = torch.empty(0, device=DEVICE)
    y.resize_as_(torch.empty(2, 3, 4, 5, device=DEVICE), memory_format=torch.channels_last)
    assert y.shape == (2, 3, 4, 5) and y.stride() == (60, 1, 15, 3)
    with pytest.raises(RuntimeError, match="negative dimension"):
        x.resize_(-1, 2)


def test_legacy_cross_map_lrn_resizes_its_buffers(no_fallbacks):
    x = torch.randn(2, 6, 5, 5)
    compare_forward_backward(torch.nn.CrossMapLRN2d(3), x, rtol=1e-5, atol=1e-6)


def test_set_shares_the_source_memory_and_geometry(no_fallbacks):
    a = torch.zeros(3).to(DEVICE)
    b = torch.arange(6.0).to(DEVICE).view(2, 3).t()
    a.set_(b)
    assert a.shape == (3, 2) and a.stride() == b.stride()
    a.add_(1)  # one memory
    assert torch.equal(b.cpu(), torch.arange(6.0).view(2, 3).t() + 1)
    with pytest.raises(RuntimeError, match="Could not set tensor of type double to a tensor of type float"):
        a.set_(torch.zeros(3, dtype=torch.float64).to(DEVICE))
    with pytest.raises(RuntimeError, match="for set_"):
        a.set_(torch.zeros(3))
    c = torch.zeros(2, 3).to(DEVICE)
    c.set_()
    assert c.shape == (0,) and c.stride() == (1,)
