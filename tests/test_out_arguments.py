"""out= tensors of another shape are resized as torch's CPU kernels resize them: with torch's
deprecation warning when they held elements, silently when empty (and always silently for the
factories), and the result is cast into out's dtype where torch allows it."""

import warnings

import pytest
import torch

from conftest import DEVICE, assert_close

X = torch.randn(4, 6)
MASK = X > 0

CALLS = {
    "sum": (lambda x, out: torch.sum(x, 1, out=out), torch.float32),
    "mean": (lambda x, out: torch.mean(x, 0, out=out), torch.float32),
    "prod": (lambda x, out: torch.prod(x, 1, out=out), torch.float32),
    "softmax": (lambda x, out: torch._softmax(x, 1, False, out=out), torch.float32),
    "add": (lambda x, out: torch.add(x, 1, out=out), torch.float32),
    "mm": (lambda x, out: torch.mm(x, x.t(), out=out), torch.float32),
    "cat": (lambda x, out: torch.cat([x, x], 0, out=out), torch.float32),
    "masked_select": (lambda x, out: torch.masked_select(x, x > 0, out=out), torch.float32),
    "nonzero": (lambda x, out: torch.nonzero(x > 0, out=out), torch.int64),
    "inv": (lambda x, out: torch.linalg.inv(x[:, :4] + 4 * torch.eye(4, device=x.device), out=out), torch.float32),
    "arange": (lambda x, out: torch.arange(7, out=out), torch.float32),
    "eye": (lambda x, out: torch.eye(3, out=out), torch.float32),
}


def _run(call, x, out):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call(x, out)
    resized = [w for w in caught if "resized" in str(w.message)]
    return result, len(resized)


@pytest.mark.parametrize("name", list(CALLS))
@pytest.mark.parametrize("out_shape", [(0,), (2, 2), (5,)], ids=["empty", "2x2", "5"])
def test_out_of_another_shape_is_resized_as_on_the_cpu(name, out_shape, no_fallbacks):
    call, dtype = CALLS[name]
    cpu_out = torch.zeros(out_shape, dtype=dtype)
    dev_out = cpu_out.to(DEVICE)
    want, cpu_warnings = _run(call, X, cpu_out)
    got, dev_warnings = _run(call, X.to(DEVICE), dev_out)
    assert got is dev_out  # the same tensor object, resized
    assert dev_out.shape == cpu_out.shape
    assert_close(dev_out, cpu_out)
    # (where a C++ composite wraps the out= op, as linalg.inv does, torch can repeat the warning)
    assert bool(dev_warnings) == bool(cpu_warnings)


def test_out_dtype_rules(no_fallbacks):
    x = X.to(DEVICE)
    out = torch.empty(4, dtype=torch.float64, device=DEVICE)
    torch.sum(x, 1, out=out)  # float into double: allowed
    assert_close(out, X.sum(1).double())
    for op in (torch.sum, torch.prod):  # out's dtype is the result's: the input cast, then reduced
        want = op(X, 1, out=torch.empty(4, dtype=torch.int64))
        got = op(x, 1, out=torch.empty(4, dtype=torch.int64, device=DEVICE))
        assert got.dtype == torch.int64 and torch.equal(got.cpu(), want)
    for call in (lambda o: torch.mean(X if o.device.type == "cpu" else x, 1, out=o),
                 lambda o: torch.amax(X if o.device.type == "cpu" else x, 1, out=o)):
        with pytest.raises(RuntimeError):
            call(torch.empty(4, dtype=torch.int64))
        with pytest.raises(RuntimeError):
            call(torch.empty(4, dtype=torch.int64, device=DEVICE))


def test_factories_resize_by_element_count():
    out = torch.zeros(7, 1, device=DEVICE)
    assert torch.arange(7, out=out).shape == (7, 1)  # as on the CPU: same count, shape kept
    assert torch.linspace(0, 1, 7, out=out).shape == (7, 1)
    assert_close(out, torch.linspace(0, 1, 7).view(7, 1))
