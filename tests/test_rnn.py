"""Recurrent layers on ocl against torch CPU: nn.LSTM / nn.GRU (layers, directions, batch_first,
without bias, projections, unbatched and packed sequences), LSTMCell / GRUCell, outputs, final
states and every gradient; gradients of only the cell state; double backward; the cell ops'
errors."""
import pytest
import torch

from conftest import DEVICE, assert_close
from oclcore import runtime


def _run(module, inputs, loss_of, device):
    """(outputs, grads of the float inputs and of every parameter) of ``loss_of(module(*inputs))``."""
    m = module.to(device)
    xs = [x.detach().to(device).requires_grad_(x.is_floating_point()) if isinstance(x, torch.Tensor)
          else x.to(device) if isinstance(x, torch.nn.utils.rnn.PackedSequence)
          else tuple(t.detach().to(device).requires_grad_() for t in x) for x in inputs]
    out = m(*xs)
    loss_of(out).backward()
    grads = [x.grad for x in xs if isinstance(x, torch.Tensor) and x.requires_grad]
    grads += [t.grad for x in xs if type(x) is tuple for t in x]
    grads += [p.grad for p in m.parameters()]
    return [o.detach().cpu() for o in _flat(out)], [g.cpu() for g in grads]


def _compare(make, inputs, loss_of=None, atol=2e-5):
    loss_of = loss_of or (lambda out: sum(o.pow(2).sum() for o in _flat(out)))
    torch.manual_seed(0)
    ref = _run(make(), inputs, loss_of, "cpu")
    torch.manual_seed(0)
    got = _run(make(), inputs, loss_of, DEVICE)
    for r, g in zip(ref[0] + ref[1], got[0] + got[1]):
        assert_close(g, r, atol=atol, rtol=1e-4)
    assert len(ref[1]) == len(got[1])


def _flat(out):
    """The tensors of a recurrent module's output: outputs (a packed sequence's data) and states."""
    if isinstance(out, torch.nn.utils.rnn.PackedSequence):
        yield out.data
    elif isinstance(out, tuple):
        for o in out:
            yield from _flat(o)
    else:
        yield out


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
@pytest.mark.parametrize("cfg", [dict(num_layers=1), dict(num_layers=2, bidirectional=True),
                                 dict(batch_first=True, bias=False), dict(num_layers=2, dropout=0.0)],
                         ids=["plain", "2-layer-bidirectional", "batch-first-no-bias", "2-layer"])
def test_rnn_layers_match_cpu(no_fallbacks, kind, cfg):
    torch.manual_seed(1)
    x = torch.randn(5, 3, 7) if not cfg.get("batch_first") else torch.randn(3, 5, 7)
    _compare(lambda: getattr(torch.nn, kind)(7, 11, **cfg), [x])


def test_lstm_initial_states_projection_and_unbatched(no_fallbacks):
    torch.manual_seed(2)
    x, h0, c0 = torch.randn(4, 2, 6), torch.randn(2, 2, 5), torch.randn(2, 2, 9)
    _compare(lambda: torch.nn.LSTM(6, 9, num_layers=2, proj_size=5), [x, (h0, c0)])
    _compare(lambda: torch.nn.GRU(6, 9), [torch.randn(4, 6), torch.randn(1, 9)])      # unbatched


def test_only_the_cell_state_has_a_gradient(no_fallbacks):
    """grad_hy is absent at the last step when the loss reads c_n alone."""
    torch.manual_seed(3)
    _compare(lambda: torch.nn.LSTM(4, 6), [torch.randn(3, 2, 4)], loss_of=lambda out: out[1][1].sum())


def test_packed_sequences(no_fallbacks):
    torch.manual_seed(4)
    x = torch.randn(6, 3, 5)
    lengths = torch.tensor([6, 4, 2])
    for kind in ("LSTM", "GRU"):
        _compare(lambda: getattr(torch.nn, kind)(5, 8), [torch.nn.utils.rnn.pack_padded_sequence(x, lengths)])


@pytest.mark.parametrize("batch_first", [True, False])
def test_pack_and_pad_on_the_device(no_fallbacks, batch_first):
    """pack_padded_sequence / pad_packed_sequence of device tensors: the data stays on the device,
    batch_sizes and lengths are CPU tensors as torch requires, and an LSTM through them matches
    the CPU forward and backward."""
    torch.manual_seed(5)
    x = torch.randn(3, 6, 4) if batch_first else torch.randn(6, 3, 4)
    lengths = torch.tensor([6, 4, 1])
    rnn = torch.nn.utils.rnn
    ref, got = rnn.pack_padded_sequence(x, lengths, batch_first), rnn.pack_padded_sequence(
        x.to(DEVICE), lengths, batch_first)
    assert got.data.device.type == "ocl" and got.batch_sizes.device.type == "cpu"
    assert torch.equal(got.data.cpu(), ref.data) and torch.equal(got.batch_sizes, ref.batch_sizes)
    padded, lens = rnn.pad_packed_sequence(got, batch_first, padding_value=-3.0, total_length=7)
    want, want_lens = rnn.pad_packed_sequence(ref, batch_first, padding_value=-3.0, total_length=7)
    assert lens.device.type == "cpu" and torch.equal(lens, want_lens)
    assert torch.equal(padded.cpu(), want)
    lstm = torch.nn.LSTM(4, 5, batch_first=batch_first)
    lstm_o = torch.nn.LSTM(4, 5, batch_first=batch_first).to(DEVICE)
    lstm_o.load_state_dict(lstm.state_dict())
    xc, xo = x.clone().requires_grad_(), x.to(DEVICE).requires_grad_()
    outs = []
    for model, inp in ((lstm, xc), (lstm_o, xo)):
        out, _ = model(rnn.pack_padded_sequence(inp, lengths, batch_first))
        y = rnn.pad_packed_sequence(out, batch_first)[0]
        (y * torch.linspace(-1, 1, y.shape[-1], device=y.device)).sum().backward()
        outs.append(y)
    assert_close(outs[1], outs[0], 1e-5, 1e-5)
    assert_close(xo.grad, xc.grad, 1e-5, 1e-5)
    mixed = rnn.pack_sequence([torch.randn(2, 4).to(DEVICE), torch.randn(5, 4).to(DEVICE)], enforce_sorted=False)
    assert torch.equal(mixed.batch_sizes, torch.tensor([2, 2, 1, 1, 1]))
    with pytest.raises(RuntimeError, match="sorted in decreasing order"):
        rnn.pack_padded_sequence(x.to(DEVICE), torch.tensor([1, 4, 6]), batch_first)
    with pytest.raises(RuntimeError, match="1D CPU int64 tensor"):
        rnn.pack_padded_sequence(x.to(DEVICE), lengths.to(DEVICE), batch_first, enforce_sorted=False)


@pytest.mark.parametrize("kind", ["LSTMCell", "GRUCell"])
def test_cells_match_cpu(no_fallbacks, kind):
    torch.manual_seed(5)
    x = torch.randn(3, 7)
    state = (torch.randn(3, 10), torch.randn(3, 10)) if kind == "LSTMCell" else torch.randn(3, 10)
    _compare(lambda: getattr(torch.nn, kind)(7, 10), [x, state])
    _compare(lambda: getattr(torch.nn, kind)(7, 10, bias=False), [x])


def test_float64_cells(no_fallbacks):
    if not runtime.device(0).fp64:
        pytest.skip("no cl_khr_fp64")
    torch.manual_seed(6)
    _compare(lambda: torch.nn.LSTM(4, 5).double(), [torch.randn(3, 2, 4, dtype=torch.float64)], atol=1e-12)
    _compare(lambda: torch.nn.GRU(4, 5).double(), [torch.randn(3, 2, 4, dtype=torch.float64)], atol=1e-12)


def test_double_backward_through_a_cell(no_fallbacks):
    """create_graph=True differentiates the cell's backward (torch's composite formula)."""
    def grad_norm(device):
        torch.manual_seed(7)
        cell = torch.nn.LSTMCell(3, 4).to(device)
        x = torch.randn(2, 3).to(device).requires_grad_()
        h, c = cell(x)
        (g,) = torch.autograd.grad((h * h).sum() + c.sum(), x, create_graph=True)
        g.pow(2).sum().backward()
        return g.detach().cpu(), x.grad.cpu()
    for r, o in zip(grad_norm("cpu"), grad_norm(DEVICE)):
        assert_close(o, r, atol=1e-5, rtol=1e-4)


def test_cell_op_errors(no_fallbacks):
    aten = torch.ops.aten
    gates = torch.randn(2, 8, device=DEVICE)
    with pytest.raises(RuntimeError, match="previous state"):
        aten._thnn_fused_lstm_cell(gates, gates, torch.randn(2, 3, device=DEVICE))
    with pytest.raises(RuntimeError, match="differ in shape"):
        aten._thnn_fused_gru_cell(torch.randn(2, 9, device=DEVICE), torch.randn(2, 6, device=DEVICE),
                                  torch.randn(2, 3, device=DEVICE))
    with pytest.raises(RuntimeError, match="input_bias"):
        aten._thnn_fused_lstm_cell(gates, gates, torch.randn(2, 2, device=DEVICE), torch.randn(5, device=DEVICE))
    with pytest.raises(RuntimeError, match="not implemented for 'Int'"):
        ints = torch.ones(2, 6, dtype=torch.int32, device=DEVICE)
        aten._thnn_fused_gru_cell(ints, ints, torch.ones(2, 2, dtype=torch.int32, device=DEVICE))
    with pytest.raises(RuntimeError, match="does not match"):
        aten._thnn_fused_gru_cell_backward(torch.randn(2, 3, device=DEVICE), torch.randn(2, 10, device=DEVICE), True)
    assert aten._thnn_fused_lstm_cell_backward_impl(None, None, gates, gates, gates, True) == (None, None, None)


def test_one_bias_of_two(no_fallbacks):
    """A cell op given only one of its two biases treats the other as zeros (checked against two)."""
    aten = torch.ops.aten
    torch.manual_seed(8)
    ig, hg, cx, b = (torch.randn(3, 12, device=DEVICE), torch.randn(3, 12, device=DEVICE),
                     torch.randn(3, 3, device=DEVICE), torch.randn(12, device=DEVICE))
    zeros = torch.zeros(12, device=DEVICE)
    pairs = ((aten._thnn_fused_lstm_cell(ig, hg, cx, b, None), aten._thnn_fused_lstm_cell(ig, hg, cx, b, zeros)),
             (aten._thnn_fused_gru_cell(ig[:, :9], hg[:, :9], cx, None, b[:9]),
              aten._thnn_fused_gru_cell(ig[:, :9], hg[:, :9], cx, zeros[:9], b[:9])))
    for got, want in pairs:
        for g, w in zip(got, want):
            assert_close(g.cpu(), w.cpu(), atol=0, rtol=0)
