"""nn.EmbeddingBag on ocl against torch CPU: sum, mean and max bags, padding_idx, include_last_offset,
2-D input, empty bags, per-sample weights (with their gradient), ties in max; the weight's
gradient throughout; scale_grad_by_freq through the CPU."""
import pytest
import torch
import torch.nn.functional as F

from conftest import DEVICE, assert_close

INDICES = torch.tensor([1, 2, 4, 5, 4, 3, 2, 9])
OFFSETS = torch.tensor([0, 4, 4])  # bag 1 is empty


def _check(call, indices, offsets=None, per_sample=None):
    torch.manual_seed(0)
    w = torch.randn(10, 4)
    wc, wo = w.clone().requires_grad_(), w.to(DEVICE).requires_grad_()
    pc = per_sample.clone().requires_grad_() if per_sample is not None else None
    po = per_sample.to(DEVICE).requires_grad_() if per_sample is not None else None
    want = call(indices, wc, offsets, pc)
    got = call(indices.to(DEVICE), wo, None if offsets is None else offsets.to(DEVICE), po)
    assert_close(got, want)
    seed = torch.randn(want.shape)
    want.backward(seed)
    got.backward(seed.to(DEVICE))
    assert_close(wo.grad, wc.grad)
    if per_sample is not None:
        assert_close(po.grad, pc.grad)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("case", ["plain", "padding_idx", "include_last_offset", "2-d", "trailing-empty", "no-indices"])
def test_embedding_bag(mode, case, no_fallbacks):
    if case == "plain":
        _check(lambda i, w, o, p: F.embedding_bag(i, w, o, mode=mode), INDICES, OFFSETS)
    elif case == "padding_idx":
        _check(lambda i, w, o, p: F.embedding_bag(i, w, o, mode=mode, padding_idx=2), INDICES, OFFSETS)
    elif case == "include_last_offset":
        _check(lambda i, w, o, p: F.embedding_bag(i, w, o, mode=mode, include_last_offset=True), INDICES,
               torch.tensor([0, 3, 3, 8]))
    elif case == "2-d":
        _check(lambda i, w, o, p: F.embedding_bag(i, w, mode=mode), torch.tensor([[1, 2, 3], [4, 4, 0]]))
    elif case == "trailing-empty":
        _check(lambda i, w, o, p: F.embedding_bag(i, w, o, mode=mode), INDICES, torch.tensor([0, 8, 8]))
    else:
        _check(lambda i, w, o, p: F.embedding_bag(i, w, o, mode=mode), torch.tensor([], dtype=torch.long),
               torch.tensor([0, 0]))


@pytest.mark.parametrize("padding_idx", [None, 4])
def test_per_sample_weights(padding_idx, no_fallbacks):
    _check(lambda i, w, o, p: F.embedding_bag(i, w, o, mode="sum", per_sample_weights=p, padding_idx=padding_idx),
           INDICES, OFFSETS, torch.rand(8))


def test_max_ties_take_the_first_row(no_fallbacks):
    w = torch.tensor([[1.0, 1.0], [1.0, 1.0], [2.0, 0.0]])
    args = (torch.tensor([0, 1, 2]), torch.tensor([0]), False, 2)
    want = torch.ops.aten._embedding_bag(w, *args)
    got = torch.ops.aten._embedding_bag(w.to(DEVICE), *(a.to(DEVICE) if isinstance(a, torch.Tensor) else a
                                                        for a in args))
    assert_close(got[0], want[0])
    assert torch.equal(got[3].cpu(), want[3])


def test_module_and_scale_grad_by_freq():
    import oclcore

    torch.manual_seed(1)
    bag = torch.nn.EmbeddingBag(10, 3, mode="mean", scale_grad_by_freq=True)
    want = bag(INDICES, OFFSETS)
    want.sum().backward()
    grad = bag.weight.grad.clone()
    bag.zero_grad()
    bag = bag.to(DEVICE)
    oclcore.reset_fallbacks()
    got = bag(INDICES.to(DEVICE), OFFSETS.to(DEVICE))
    got.sum().backward()
    assert_close(got, want)
    assert_close(bag.weight.grad, grad)
    assert set(oclcore.fallbacks()) == {"aten::_embedding_bag_dense_backward"}
