"""Random number generation: one Philox generator per device, seeded by
torch.manual_seed, and the aten random ops (uniform_, normal_, bernoulli_,
random_, exponential_, randperm) on cl/random.cl."""

import os

import torch

from .. import runtime
from ..graph import current as current_graph
from ..torch.dispatch import register
from ..torch.tensor import OclTensor, empty
from . import dtypes, pointwise
from .copy import is_contiguous

aten = torch.ops.aten
_DEFAULT_SEED = 67280421310721  # torch's default seed


class Generator:
    """A device's Philox state: a 64-bit seed and the next unused counter."""

    def __init__(self):
        self.seed_value = _DEFAULT_SEED
        self.offset = 0

    def manual_seed(self, seed):
        """Restarts the stream from ``seed``."""
        self.seed_value = int(seed) & (2**64 - 1)
        self.offset = 0

    def seed(self):
        """Seeds from the operating system's entropy; returns the seed."""
        self.manual_seed(int.from_bytes(os.urandom(8), "little") >> 1)
        return self.seed_value

    def initial_seed(self):
        return self.seed_value

    def next_offset(self, count):
        """Reserves ``count`` counters and returns the first."""
        first = self.offset
        self.offset += int(count)
        return first

    def key(self):
        """The seed as two 32-bit words."""
        return self.seed_value & 0xFFFFFFFF, self.seed_value >> 32

    def get_state(self):
        return torch.tensor([self.seed_value - (1 << 64 if self.seed_value >= 1 << 63 else 0), self.offset],
                            dtype=torch.int64).view(torch.uint8)

    def set_state(self, state):
        seed, offset = state.view(torch.int64).tolist()
        self.seed_value = seed & (2**64 - 1)
        self.offset = offset


_generators = {}


def generator(index):
    """The generator of device ``ocl:index``."""
    g = _generators.get(index)
    if g is None:
        g = _generators[index] = Generator()
    return g


def _kernel(name, dtype, index, signature):
    ct = "double" if dtype is torch.float64 else "float"
    defines = {"TO": dtypes.storage(dtype), "STO": dtypes.store_macro(dtype), "CT": ct, "IDX": "int"}
    if ct == "double":
        defines["FP64"] = None
    return runtime.get_kernel(("types.cl", "random.cl"), defines, name, signature, runtime.device(index))


def _stream(index, source, items):
    """(key word 0, key word 1, first counter) of a draw of ``items`` counters on device ``index``:
    from the device's generator, or, when the op was given a CPU ``torch.Generator`` (ocl
    generators cannot exist: torch's Python backend hooks make none), from a key drawn from that
    generator, so that its seed reproduces the numbers."""
    if source is None:
        gen = generator(index)
        return (*gen.key(), gen.next_offset(items))
    if not isinstance(source, torch.Generator) or source.device.type != "cpu":
        raise RuntimeError(f"Expected a 'cpu' device type for generator but found '{source.device.type}' (ocl "
                           "random ops take the default ocl generator or a CPU torch.Generator)")
    seed = torch.empty((), dtype=torch.int64).random_(generator=source).item()
    return seed & 0xFFFFFFFF, seed >> 32, 0


def _fill(x, name, a, b, per_item=4, extra=None, scalar="ff", source=None):
    """Runs generator kernel ``name`` over ``x`` (through a contiguous temporary if needed), drawing
    from the device's generator or from CPU generator ``source``."""
    n = x.numel()
    if n == 0:
        return x
    target = x if is_contiguous(x) else empty(x.shape, x.dtype, x._index)
    items = (n + per_item - 1) // per_item
    k0, k1, base = _stream(x._index, source, items)
    if extra is not None:
        sig, tail = "BiiIIL" + "Bi", (extra._buf, extra.storage_offset())
    else:
        sig = "BiiIIL" + ("dd" if x.dtype is torch.float64 and scalar == "ff" else scalar)
        tail = (a, b)
    k = _kernel(name, x.dtype, x._index, sig)
    head = (target._buf, target.storage_offset(), n)
    k.launch((items,), (64,) if items >= 64 else None, head + (k0, k1, base) + tail)
    capture = current_graph()
    if capture is not None:  # every replay draws new numbers
        capture.refresh_last(lambda: head + _stream(x._index, source, items) + tail)
    if target is not x:
        pointwise.run("copy", x, [target])
    return x


def _float_only(x, op):
    if not x.dtype.is_floating_point:
        raise RuntimeError(f"{op} expects floating point dtypes, got: {x.dtype}")


@register(aten.uniform_.default)
def uniform_(x, from_=0.0, to=1.0, generator=None):
    _float_only(x, "uniform_")
    if from_ > to:
        raise RuntimeError(f"uniform_ expects to return a [from, to) range, but found from={from_} > to={to}")
    return _fill(x, "rand_uniform", float(from_), float(to), source=generator)


@register(aten.normal_.default)
def normal_(x, mean=0.0, std=1.0, generator=None):
    _float_only(x, "normal_")
    if std < 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
    return _fill(x, "rand_normal", float(mean), float(std), source=generator)


@register(aten.exponential_.default)
def exponential_(x, lambd=1.0, generator=None):
    _float_only(x, "exponential_")
    if lambd <= 0:
        raise RuntimeError(f"exponential_ expects lambda > 0.0, but found lambda={lambd}")
    return _fill(x, "rand_exponential", float(lambd), 0.0, source=generator)


@register(aten.bernoulli_.float)
def bernoulli_(x, p=0.5, generator=None):
    if not 0 <= p <= 1:
        raise RuntimeError(f"bernoulli_ expects p to be in [0, 1], but got p={p}")
    return _fill(x, "rand_bernoulli", float(p), 0.0, source=generator)


@register(aten.bernoulli_.Tensor)
def bernoulli_tensor_(x, p, generator=None):
    if not isinstance(p, OclTensor):
        return bernoulli_(x, float(p), generator)
    prob = empty(x.shape, torch.float32, x._index)
    pointwise.run("copy", prob, [p])
    return _fill(x, "rand_bernoulli_tensor", 0, 0, extra=prob, source=generator)


@register(aten.bernoulli.default)
def bernoulli(p, generator=None):
    out = empty(p.shape, p.dtype, p._index)
    return bernoulli_tensor_(out, p, generator)


@register(aten.bernoulli.p)
def bernoulli_p(x, p, generator=None):
    out = empty(x.shape, x.dtype, x._index)
    return bernoulli_(out, p, generator)


def _int_range(x, lo, hi, source=None):
    if hi <= lo:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={lo} >= to={hi}")
    return _fill(x, "rand_int", int(lo), int(hi - lo), per_item=2, scalar="lL", source=source)


def _dtype_top(dtype):
    if dtype is torch.bool:
        return 2
    if dtype.is_floating_point:
        return 2 ** torch.finfo(dtype).nmant + 1
    return torch.iinfo(dtype).max + 1


@register(getattr(aten.random_, "from"))
def random_from(x, from_, to=None, generator=None):
    return _int_range(x, from_, _dtype_top(x.dtype) if to is None else to, generator)


@register(aten.random_.to)
def random_to(x, to, generator=None):
    return _int_range(x, 0, to, generator)


@register(aten.random_.default)
def random_(x, generator=None):
    return _int_range(x, 0, _dtype_top(x.dtype), generator)


def randperm_into(out, n, source=None):
    """Fills ``out`` with a permutation of 0..n-1 drawn from the device's generator (or from CPU
    generator ``source``)."""
    k0, k1, base = _stream(out._index, source, 1)
    cpu_gen = torch.Generator().manual_seed(((k1 << 32 | k0) ^ (base * 0x9E3779B97F4A7C15)) % (2**63))
    perm = torch.randperm(n, generator=cpu_gen, dtype=out.dtype)
    out.copy_(perm)
    return out


def _like(x, kwargs):
    options = {k: kwargs.get(k) for k in ("dtype", "layout", "device", "pin_memory", "memory_format")}
    return aten.empty_like.default(x, **options)


@register(aten.rand_like.default)
def rand_like(x, **kwargs):
    return _like(x, kwargs).uniform_()


@register(aten.randn_like.default)
def randn_like(x, **kwargs):
    return _like(x, kwargs).normal_()


@register(aten.randint_like.default)
def randint_like(x, high, **kwargs):
    return _like(x, kwargs).random_(0, high)


@register(aten.randint_like.low_dtype)
def randint_like_low(x, low, high, **kwargs):
    return _like(x, kwargs).random_(low, high)


def _check_distribution(p, num_samples, replacement):
    """torch's checks of multinomial's weights: the shape-level ones, then the values (one flag
    vector read back: a synchronisation, as on torch's CPU path)."""
    if not p.dtype.is_floating_point:
        raise RuntimeError("multinomial only supports floating-point dtypes for input, got: "
                           f"{dtypes.type_name(p.dtype)}")
    if p.dim() not in (1, 2):
        raise RuntimeError("prob_dist must be 1 or 2 dim")
    if num_samples <= 0:
        raise RuntimeError("cannot sample n_sample <= 0 samples")
    n = p.shape[-1]
    if n == 0:
        raise RuntimeError("multinomial: the probability distributions have no categories")
    if not replacement and num_samples > n:
        raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without replacement")
    bad = aten.any.default(aten.logical_or.default(aten.logical_not.default(aten.isfinite.default(p)),
                                                   aten.lt.Scalar(p, 0)))
    empty_row = aten.any.default(aten.le.Scalar(aten.sum.dim_IntList(p, [-1]), 0))
    flags = [bad, empty_row]
    if not replacement:
        nonzero = aten.count_nonzero.dim_IntList(p, [-1])
        flags.append(aten.any.default(aten.lt.Scalar(nonzero, num_samples)))
    flags = aten.stack.default(flags).to("cpu").tolist()
    if flags[0]:
        raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
    if flags[1]:
        raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
    if not replacement and flags[2]:
        raise RuntimeError("invalid multinomial distribution (with replacement=False, not enough non-negative "
                           "category to sample)")


@register(aten.multinomial.default)
def multinomial(p, num_samples, replacement=False, *, generator=None):
    """torch.multinomial: ``num_samples`` category indices per row of weights ``p`` (1-D or 2-D).
    With replacement by inverse CDF (a cumulative sum, then a binary search of uniform draws);
    without, by the exponential race torch's CUDA kernel runs (the k largest p / Exponential(1))."""
    _check_distribution(p, num_samples, replacement)
    rows = aten.unsqueeze.default(p, 0) if p.dim() == 1 else p
    if rows.shape[0] == 0:
        out = empty((0, num_samples), torch.int64, p._index)
    elif replacement:
        weights = rows if rows.dtype in (torch.float32, torch.float64) else \
            aten._to_copy.default(rows, dtype=torch.float32)
        cdf = aten.cumsum.default(weights, -1)
        total = aten.slice.Tensor(cdf, -1, cdf.shape[-1] - 1)
        draws = uniform_(empty((rows.shape[0], num_samples), weights.dtype, p._index), generator=generator)
        out = aten.searchsorted.Tensor(cdf, aten.mul.Tensor(draws, total), right=True)
        # a draw that rounds up to the total would land past the end: the last category with weight
        positions = aten.arange.start(0, rows.shape[-1], dtype=torch.int64, device=p.device)
        last = aten.amax.default(aten.mul.Tensor(aten.gt.Scalar(rows, 0), positions), [-1], True)
        out = aten.minimum.default(out, last)
    else:
        race = exponential_(empty(tuple(rows.shape), torch.float32, p._index), generator=generator)
        out = aten.topk.default(aten.div.Tensor(rows, race), num_samples)[1]
    return aten.squeeze.dim(out, 0) if p.dim() == 1 else out


@register(aten.rrelu_with_noise.default)
def rrelu_with_noise(x, noise, lower=0.125, upper=1.0 / 3.0, training=False, generator=None):
    """F.rrelu: in training each negative element is scaled by a slope drawn from U(lower, upper)
    (kept in ``noise``, 1 for the others, for the backward); in eval by their mean."""
    if not training:
        return aten.leaky_relu.default(x, (lower + upper) / 2)
    slopes = uniform_(empty(tuple(x.shape), x.dtype, x._index), float(lower), float(upper), generator)
    aten.copy_.default(noise, aten.where.ScalarSelf(aten.gt.Scalar(x, 0), 1.0, slopes))
    return aten.mul.Tensor(x, noise)
