"""GEMM planning and execution.

plan_gemm() decides, for one problem shape/layout on one device, between the
direct kernel (no packing; small or skinny problems) and the tiled kernel
(operands read in place when they are contiguous along M/N or along K,
else packed into padded K-major layouts first), using the crossover and
parameters from the database.  Tiled plans pick between the big ("tiled") and
small ("tiled_small") parameter sets and a split of K into S chunks (partial
products into a workspace, then a fixed-order reduction that applies alpha,
beta and the epilogue) by a relative cost model of occupancy, padding,
packing and launches, so that skinny-deep and mid-size problems fill the
device.  Direct plans whose grid cannot fill the device split K the same way
(tiny outputs of very deep products, such as convolution filter gradients).
A problem shape whose best set and split were measured (the database's
"problems", from ``oclcore tune gemm --problems``) takes them instead.
run_gemm() enqueues the launches through the
runtime's get_kernel(files, defines, name, signature).launch(gsize, lsize,
args) convention.  gemm() does both in one call.

Layout convention (row-major like torch): element (m, k) of A lives at
A[a_off + b*a_bs + m*a_rs + k*a_cs] for batch index b, likewise B (K x N) and
C (M x N).  Offsets and strides are in elements.
"""
from . import database, params as P

DTYPES = {  # dtype -> (REAL, ACC, scalar signature char, element bytes)
    "float32": ("float", "float", "f", 4),
    "float64": ("double", "double", "d", 8),
    "float16": ("half", "float", "f", 2),
}
TILED_FILES = ("gemm_common.cl", "gemm_pack.cl", "gemm_tiled.cl")
DIRECT_FILES = ("gemm_common.cl", "gemm_direct.cl")
SPLITK_FILES = ("gemm_common.cl", "gemm_splitk.cl")
TILED_SIGNATURE_TAIL = "BiiiBiiiBiiiiBii"
SPLITK_SIGNATURE_TAIL = "BBiiiiBi"
DIRECT_SIGNATURE_TAIL = "BiiiiBiiiiBiiiiBii"
EPILOGUE_DEFINES = ("EPILOGUE", "ACT", "BIAS_COL", "BIAS_ROW")
ACTIVATIONS = {None: 0, "none": 0, "relu": 1, "relu6": 2, "gelu_tanh": 3, "silu": 4,
               "sigmoid": 5, "gelu": 6, "tanh": 7}
DEFAULT_CROSSOVER = {"min_indirect_size": 256, "min_indirect_dim": 16}
_INT_MAX = 2 ** 31 - 1


def _ceil(a, b):
    return (a + b - 1) // b * b


class PackStep:
    """One launch of a pack kernel: operand ('a'/'b' of the kernel problem)
    into a workspace buffer of nbytes."""
    __slots__ = ("operand", "kernel", "args", "gsize", "nbytes")

    def __init__(self, operand, kernel, args, gsize, nbytes):
        self.operand, self.kernel, self.args = operand, kernel, args
        self.gsize, self.nbytes = gsize, nbytes


class GemmPlan:
    """Everything needed to enqueue one GEMM: chosen kind ('direct'/'tiled'),
    parameters, program defines, launch geometry, pack steps.  The kernel
    problem may be the transpose of the caller's (swap=True: C^T = B^T A^T,
    so that the kernel's fast M dimension is C's contiguous one)."""

    def __init__(self, **kw):
        self.__dict__.update(kw)

    def __repr__(self):
        return "GemmPlan(%s %dx%dx%d batch=%d swap=%s %s)" % (
            self.kind, self.M, self.N, self.K, self.batch, self.swap, self.params)


def _check_int(name, v):
    if not -_INT_MAX <= v <= _INT_MAX:
        raise ValueError("gemm: %s=%d does not fit a 32-bit kernel argument" % (name, v))


def _max_index(off, rows, cols, rs, cs, batch, bs):
    return off + max(rows - 1, 0) * abs(rs) + max(cols - 1, 0) * abs(cs) + max(batch - 1, 0) * abs(bs)


def choose_kind(device_info, M, N, K, dtype="float32", batch=1):
    """'direct' or 'tiled' for a batch of M x N x K problems by the database
    crossover (on the total work M*N*K*batch).  Problems with a dimension
    below the crossover's min_indirect_dim stay direct however deep (a tiny
    M or N would be mostly padding in a tiled tile; the direct plan splits
    K itself when its grid is small); deep problems wide enough for the
    tiled kernel whose direct grid cannot fill the device go tiled."""
    if K == 0:
        return "direct"
    x = database.lookup(device_info, "crossover", dtype) or DEFAULT_CROSSOVER
    size = x.get("min_indirect_size", DEFAULT_CROSSOVER["min_indirect_size"])
    dim = x.get("min_indirect_dim", DEFAULT_CROSSOVER["min_indirect_dim"])
    if min(M, N, K) < dim:
        return "direct"
    if M * N * K * batch >= size ** 3:
        return "tiled"
    fill = x.get("batched_tiled_fill")
    if fill and batch > 1:
        # The crossover is tuned on single square problems; a batch whose small-tile grid fills
        # the device runs faster tiled (H200: resnet/mobilenet/regnet 1x1 convolutions as GEMMs,
        # batch 64, 1.3x in total).
        t = database.lookup(device_info, "tiled_small", dtype) or database.lookup(device_info, "tiled", dtype)
        if -(-M // t["MWG"]) * -(-N // t["NWG"]) * batch >= fill * _compute_units(device_info):
            return "tiled"
    wgd = (database.lookup(device_info, "direct", dtype) or {}).get("WGD", 32)
    direct_groups = -(-M // wgd) * -(-N // wgd) * batch
    if dtype != "float16" and K >= SPLIT_MIN_K and direct_groups < _compute_units(device_info):
        return "tiled"
    return "direct"


# ---- tiled cost model --------------------------------------------------------------------------
# Relative time in units of one compute unit's multiply-add; only the ranking
# of candidates matters.  BYTE_COST: multiply-adds a compute unit does while
# the whole device moves compute_units bytes (GPUs: ~3-10).  LAUNCH_COST: one
# extra launch (a few microseconds).  Operands read in place instead of
# packed cost KCONT_COST more multiply-add time each when K-contiguous, and
# GUARD_COST more when the loads need bounds checks (H200: 4096^3 with a
# K-contiguous operand 2-6% slower than packed, guarded plans ~20% slower).
# A work-group tile of MWG x NWG with a register tile of MWI x NWI runs at
# efficiency
#   min(1, MWI*NWI / (MWI+NWI) / 4) * min(1, sqrt(MWG*NWG / (MWG+NWG) / 48))
# (local-memory and global traffic per multiply-add), and a compute unit is
# saturated by max(1, RESIDENT_THREADS / work-group size) resident groups.
# A database set's RATE scales its estimate by what was measured (see _rate).
BYTE_COST = 10.0
LAUNCH_COST = 1.0e6
KCONT_COST = 0.05
GUARD_COST = 0.2
RESIDENT_THREADS = 512
SPLIT_MIN_K = 1024       # deeper problems are worth a split-K when the grid is small
SPLIT_MIN_CHUNK = 128    # shallowest K chunk of a split
SPLIT_MAX = 1024         # tiny outputs of very deep products (filter gradients) need many chunks
DIRECT_SPLIT_FILL = 3    # a split direct grid aims at this many work-groups per compute unit


def _compute_units(device_info):
    return max(int(device_info.get("compute_units") or 1), 1)


def tile_efficiency(prm):
    """Relative multiply-add rate of one saturated compute unit on tiled set prm."""
    mwi, nwi = prm["MWG"] // prm["MDIMC"], prm["NWG"] // prm["NDIMC"]
    tile = prm["MWG"] * prm["NWG"] / float(prm["MWG"] + prm["NWG"])
    return min(1.0, mwi * nwi / float(mwi + nwi) / 4.0) * min(1.0, (tile / 48.0) ** 0.5)


def tiled_cost(device_info, prm, kM, kN, K, batch, split, esize, pack_elems, kcont=0, guard=False):
    """Estimated relative time of the tiled kernel with set prm on a batch of
    kM x kN x K problems in split K chunks, moving pack_elems elements
    through the pack kernels (read and write), with kcont operands read in
    place along K and bounds-checked loads when guard."""
    cu = _compute_units(device_info)
    occ = max(1, RESIDENT_THREADS // (prm["MDIMC"] * prm["NDIMC"]))
    groups = -(-kM // prm["MWG"]) * -(-kN // prm["NWG"]) * batch * split
    waves = -(-groups // (cu * occ))
    chunk = _ceil(-(-K // split), prm["KWG"])
    t = waves * prm["MWG"] * prm["NWG"] * chunk * occ / tile_efficiency(prm)
    # The in-place penalties slow the multiply-adds, so they weigh in
    # proportion to the tiles' useful part.
    useful = kM * kN / float(_ceil(kM, prm["MWG"]) * _ceil(kN, prm["NWG"]))
    t *= 1 + (KCONT_COST * kcont + GUARD_COST * guard) * useful
    t += BYTE_COST * pack_elems * esize / cu + LAUNCH_COST * (1 + (pack_elems > 0))
    if split > 1:
        t += BYTE_COST * (split + 2) * kM * kN * batch * esize / cu + LAUNCH_COST
    return t


def _split_candidates(K, kwg, allowed):
    """Split counts to consider for depth K (1 = no split)."""
    if not allowed or K < 2 * SPLIT_MIN_CHUNK:
        return (1,)
    top = min(SPLIT_MAX, K // max(SPLIT_MIN_CHUNK, kwg))
    out, s = [1], 2
    while s <= top:
        out.append(s)
        s += 1 if s < 8 else (2 if s < 16 else (4 if s < 64 else s // 2))
    return tuple(out)


def _direct_split(device_info, K, groups, wgd):
    """K chunks of a direct plan with groups work-groups per chunk: only
    grids below two groups per compute unit with K >= SPLIT_MIN_K are split,
    into enough chunks for about DIRECT_SPLIT_FILL groups per compute unit,
    each a multiple of wgd and at least SPLIT_MIN_CHUNK deep."""
    cu = _compute_units(device_info)
    if K < SPLIT_MIN_K or groups >= 2 * cu:
        return 1
    S = min(SPLIT_MAX, -(-DIRECT_SPLIT_FILL * cu // groups), K // _ceil(SPLIT_MIN_CHUNK, wgd))
    if S < 2:
        return 1
    return -(-K // _ceil(-(-K // S), wgd))   # chunks rounded up to wgd may need fewer of them


def _split_reduce(defines, device_info, kM, kN, batch, S, scalar, esize):
    """(defines of the partial-product program, reduce launch) of a plan
    split into S chunks of K: the partial products take the plan's program
    without its epilogue, with SPLIT_K, and write slices of a workspace of
    reduce['nbytes']; gemm_splitk_reduce applies alpha, beta, bias and
    activation."""
    partial = {k: v for k, v in defines.items() if k not in EPILOGUE_DEFINES}
    partial["SPLIT_K"] = 1
    _check_int("split-K workspace size", S * batch * kM * kN)
    rgs, rls = _reduce_geometry(device_info, kM, kN, batch)
    reduce = dict(files=SPLITK_FILES,
                  defines={k: v for k, v in defines.items() if k in ("REAL", "ACC") + EPILOGUE_DEFINES},
                  name="gemm_splitk_reduce", signature="iii" + scalar * 2 + SPLITK_SIGNATURE_TAIL,
                  gsize=rgs, lsize=rls, nbytes=S * batch * kM * kN * esize)
    return partial, reduce


def _kernel_problem(M, N, K, a_strides, b_strides, c_strides):
    """(swap, kM, kN, ka, kb, kc): the kernel computes C with rows along its M, so a C that is
    contiguous along N is computed transposed (C^T = B^T A^T)."""
    if abs(c_strides[1]) < abs(c_strides[0]):
        return (True, N, M, (b_strides[1], b_strides[0], b_strides[2]), (a_strides[1], a_strides[0], a_strides[2]),
                (c_strides[1], c_strides[0], c_strides[2]))
    return False, M, N, a_strides, b_strides, c_strides


def _key(kM, kN, K, batch, ka, kb):
    a = ("k" if abs(ka[1]) <= abs(ka[0]) else "m") + ("0" if batch > 1 and ka[2] == 0 else "")
    b = ("n" if abs(kb[1]) <= abs(kb[0]) else "k") + ("0" if batch > 1 and kb[2] == 0 else "")
    return "%dx%dx%dx%d a%s b%s" % (kM, kN, K, batch, a, b)


def problem_key(M, N, K, batch=1, a_strides=None, b_strides=None, c_strides=None):
    """The database's name of a problem shape and layout, as the kernel sees it: sizes
    'MxNxKxbatch', then each operand's contiguous dimension ('a' k or m, 'b' n or k; a trailing 0
    when one operand serves every batch). 32 row-major products (256 x 1024) @ (1024 x 196) into a
    row-major C are '196x256x1024x32 am bk': the kernel computes C transposed."""
    a_strides = (tuple(a_strides) + (0,))[:3] if a_strides else (K, 1, M * K)
    b_strides = (tuple(b_strides) + (0,))[:3] if b_strides else (N, 1, K * N)
    c_strides = (tuple(c_strides) + (0,))[:3] if c_strides else (N, 1, M * N)
    _, kM, kN, ka, kb, _ = _kernel_problem(M, N, K, a_strides, b_strides, c_strides)
    return _key(kM, kN, K, batch, ka, kb)


def _measured_set(device_info, dtype, key):
    """(set, split) measured for problem key on this device, if recorded and runnable here."""
    record = database.measured(device_info, dtype, key)
    if not record or not isinstance(record.get("set"), dict):
        return None
    q = P.complete("tiled", record["set"])
    if not P.is_valid("tiled", q, device_info, dtype):
        return None
    return q, max(1, int(record.get("split", 1)))


def plan_gemm(device_info, M, N, K, batch=1, dtype="float32", a_strides=None, b_strides=None,
              c_strides=None, a_off=0, b_off=0, bias=None, act=None, kind=None, params=None,
              split=None, pack=None):
    """Plan C = alpha*A@B + beta*C (+ bias, activation) on one device.

    a_strides/b_strides/c_strides: (row stride, col stride[, batch stride])
    in elements (default: contiguous row-major, batches back to back; a
    missing batch stride means 0, i.e. the operand is shared by all batches).
    a_off/b_off only matter for the tiled kernel's decision to read an
    already-aligned operand in place.  bias: None, 'col' (bias[n], as in
    linear) or 'row' (bias[m], as in convolution).  act: a key of ACTIVATIONS.
    kind/params force the kernel family / its parameter set (tuner, tests);
    split forces the number of K chunks (1: no split-K; for tiled plans
    forcing it, or params, also keeps the big/small choice to that set);
    tiled plans read operands in place or pack them, whichever the cost model
    prefers; pack=True makes them pack both, pack=False read both in place
    where the kernel can (tests, benchmarks).
    Returns a GemmPlan, or None when there is nothing to do (M or N or batch 0).
    """
    if dtype not in DTYPES:
        raise TypeError("gemm: unsupported dtype %s" % dtype)
    if dtype == "float16" and not device_info.get("fp16"):
        raise TypeError("gemm: float16 needs cl_khr_fp16, which %s lacks" % device_info.get("name"))
    if dtype == "float64" and not device_info.get("fp64", True):
        raise TypeError("gemm: float64 needs cl_khr_fp64, which %s lacks" % device_info.get("name"))
    if act not in ACTIVATIONS:
        raise ValueError("gemm: unknown activation %r" % (act,))
    if bias not in (None, "col", "row"):
        raise ValueError("gemm: bias must be None, 'col' or 'row', not %r" % (bias,))
    if min(M, N, K, batch) < 0:
        raise ValueError("gemm: negative size")
    if M == 0 or N == 0 or batch == 0:
        return None
    a_strides = (tuple(a_strides) + (0,))[:3] if a_strides else (K, 1, M * K)
    b_strides = (tuple(b_strides) + (0,))[:3] if b_strides else (N, 1, K * N)
    c_strides = (tuple(c_strides) + (0,))[:3] if c_strides else (N, 1, M * N)
    for name, v in (("M", M), ("N", N), ("K", K), ("batch", batch)):
        _check_int(name, v)
    for name, s in (("a", a_strides), ("b", b_strides), ("c", c_strides)):
        for v in s:
            _check_int(name + "_stride", v)

    swap, kM, kN, ka, kb, kc = _kernel_problem(M, N, K, a_strides, b_strides, c_strides)
    ka_off, kb_off, kbias = (b_off, a_off, {"col": "row", "row": "col"}.get(bias)) if swap else (a_off, b_off, bias)

    real, acc, scalar, esize = DTYPES[dtype]
    # Partials are stored as REAL, so a split would round float16 sums twice.
    can_split = real == acc
    if split is not None and (split < 1 or (split > 1 and not can_split)):
        raise ValueError("gemm: split=%d is not possible for %s" % (split, dtype))
    measured = None
    if kind is None and params is None and split is None and K > 0:
        measured = _measured_set(device_info, dtype, _key(kM, kN, K, batch, ka, kb))
        if measured is not None and measured[1] > 1 and not can_split:
            measured = None
    if kind is None:
        kind = "tiled" if measured is not None else choose_kind(device_info, M, N, K, dtype, batch)
    if kind == "tiled" and K == 0:
        kind = "direct"
    family = kind
    if params is not None:
        prm = P.complete(kind, params)
        errors = (P.tiled_errors if kind == "tiled" else P.direct_errors)(prm, device_info, dtype)
        if errors:
            raise ValueError("gemm: invalid %s parameters %s: %s" % (kind, params, "; ".join(errors)))
        family = "forced"
    else:
        usable = lambda p: P.is_valid(kind, P.complete(kind, p), device_info, dtype)
        found = database.lookup(device_info, kind, dtype, usable)
        prm = P.resolve(kind, found, device_info, dtype)
        rate = _rate(found) if found else 1.0

    defines = {"REAL": real, "ACC": acc}
    if kbias or ACTIVATIONS[act]:
        defines["EPILOGUE"] = 1
        defines["ACT"] = ACTIVATIONS[act]
        if kbias == "col":
            defines["BIAS_COL"] = 1
        elif kbias == "row":
            defines["BIAS_ROW"] = 1

    common = dict(kind=kind, params=prm, swap=swap, M=M, N=N, K=K, batch=batch, dtype=dtype,
                  kM=kM, kN=kN, ka=ka, kb=kb, kc=kc, scalar=scalar, esize=esize, bias=bias, act=act)
    if kind == "direct":
        defines.update(P.direct_defines(prm))
        big = max(_max_index(0, kM, K, ka[0], ka[1], 1, 0), _max_index(0, K, kN, kb[0], kb[1], 1, 0))
        if big > _INT_MAX:
            defines["GEMM_IDX"] = "long"
        a_cont_k = abs(ka[1]) <= abs(ka[0])
        b_cont_n = abs(kb[1]) <= abs(kb[0])
        name = "gemm_direct_%s_%s" % ("ak" if a_cont_k else "am", "bn" if b_cont_n else "bk")
        wgd = prm["WGD"]
        groups = -(-kM // wgd) * -(-kN // wgd) * batch
        S = split if split is not None else _direct_split(device_info, K, groups, wgd) if can_split else 1
        S = S if K > 0 else 1
        Kc = _ceil(-(-K // S), wgd) if S > 1 else K
        _check_int("split-K depth", S * Kc)
        reduce = None
        if S > 1:
            defines, reduce = _split_reduce(defines, device_info, kM, kN, batch, S, scalar, esize)
        gsize = (-(-kM // wgd) * prm["MDIMCD"], -(-kN // wgd) * prm["NDIMCD"], batch * S)
        lsize = (prm["MDIMCD"], prm["NDIMCD"], 1)
        return GemmPlan(files=DIRECT_FILES, defines=defines, name=name, family="direct", split=S,
                        Kc=Kc, reduce=reduce, signature="iiii" + scalar * 2 + DIRECT_SIGNATURE_TAIL,
                        gsize=gsize, lsize=lsize, packs=(), **common)

    defines["PACK_TILE"] = 16 if device_info.get("max_work_group_size", 256) >= 256 else 8
    if measured is not None:
        candidates = [("measured", measured[0], 1.0)]
        split = measured[1]
    elif params is not None or split is not None:
        candidates = [(family, prm, 1.0)]
    else:
        candidates = _tiled_candidates(device_info, dtype, prm, rate)
    # Operands to pack: every combination, or as forced.
    pack_choices = {True: (("a", "b"),), False: ((),)}.get(pack, ((), ("a",), ("b",), ("a", "b")))
    best = None
    for family, q, rate in candidates:
        # Only grids that cannot fill the device (fewer than two groups per
        # compute unit) are split; larger ones lose little to wave tails.
        tiles = -(-kM // q["MWG"]) * -(-kN // q["NWG"]) * batch
        splits = (split,) if split is not None else _split_candidates(
            K, q["KWG"], can_split and tiles < 2 * _compute_units(device_info))
        for S in splits:
            for packed in pack_choices:
                layout = _tiled_layout(q, S, kM, kN, K, batch, ka, kb, ka_off, kb_off, esize,
                                       defines["PACK_TILE"], device_info, dtype, packed)
                cost = tiled_cost(device_info, q, kM, kN, K, batch, S, esize, layout["pack_elems"],
                                  sum(o[0] == "kcont" for o in layout["operands"].values()),
                                  layout["guard"]) / rate
                if best is None or cost < best[0]:
                    best = (cost, family, q, S, layout)
    _, family, prm, S, layout = best
    common["params"] = prm
    defines.update(P.tiled_defines(prm))
    defines["A_KCONT"] = int(layout["operands"]["a"][0] == "kcont")
    defines["B_KCONT"] = int(layout["operands"]["b"][0] == "kcont")
    defines["GUARD"] = int(layout["guard"])
    lsize = (prm["MDIMC"], prm["NDIMC"], 1)
    gsize = (layout["Mp"] // prm["MWG"] * prm["MDIMC"], layout["Np"] // prm["NWG"] * prm["NDIMC"],
             batch * S)
    reduce = None
    if S > 1:
        defines, reduce = _split_reduce(defines, device_info, kM, kN, batch, S, scalar, esize)
    return GemmPlan(files=TILED_FILES, defines=defines, name="gemm_tiled", family=family,
                    signature="iiii" + scalar * 2 + TILED_SIGNATURE_TAIL, gsize=gsize, lsize=lsize,
                    packs=layout["packs"], operands=layout["operands"], Mp=layout["Mp"],
                    Np=layout["Np"], Kp=layout["Kp"], Kc=layout["Kc"], split=S, reduce=reduce,
                    pack_lsize=(defines["PACK_TILE"], defines["PACK_TILE"], 1), **common)


def _reduce_geometry(device_info, M, N, batch):
    """Launch sizes of gemm_splitk_reduce over M x N outputs of batch entries."""
    rx = min(64, int(device_info.get("max_work_group_size", 256)))
    ry = max(1, min(4, int(device_info.get("max_work_group_size", 256)) // rx))
    return (_ceil(M, rx), _ceil(N, ry), batch), (rx, ry, 1)


def sum_slices(get_kernel, device_info, W, S, M, N, C, c_off, c_rs, c_cs, alpha=1.0, beta=0.0,
               dtype="float32"):
    """C = alpha * (sum of the S slices of W, in order) + beta * C, slice s
    holding element (m, n) at W[(s*N + n)*M + m]: the split-K reduction,
    also the deterministic sum of per-image filter gradients.  C is not read
    when beta == 0.  device_info may be None (work-groups of 64)."""
    real, acc, scalar, _ = DTYPES[dtype]
    k = get_kernel(SPLITK_FILES, {"REAL": real, "ACC": acc}, "gemm_splitk_reduce",
                   "iii" + scalar * 2 + SPLITK_SIGNATURE_TAIL)
    gsize, lsize = _reduce_geometry(device_info or {"max_work_group_size": 64}, M, N, 1)
    return k.launch(gsize, lsize, (M, N, S, alpha, beta, W, C, c_off, c_rs, c_cs, 0, C, 0))


def _rate(entry):
    """A database set's measured speed relative to what the cost model predicts for it (its
    RATE key, 1 when absent): bench/probes/gemm_sets.py fits it per set on deep-learning shapes,
    where tile_efficiency alone misjudges sets of other thread shapes and depths."""
    return float(entry.get("RATE", 1.0))


def _small_set(device_info, dtype, big):
    """(the 'tiled_small' set for the device, its rate): its database entry when usable, else
    one derived from the big set."""
    usable = lambda p: P.is_valid("tiled", P.complete("tiled", p), device_info, dtype)
    found = database.lookup(device_info, "tiled_small", dtype, usable)
    if found:
        return P.complete("tiled", found), _rate(found)
    return P.derive_small(big, device_info, dtype), 1.0


def _tiled_candidates(device_info, dtype, big, big_rate):
    """(family, set, rate) of every tiled set the cost model weighs on this device: the big set,
    the small one, and the database's further 'tiled_sets' (a list) that the device can run."""
    out = [("tiled", big, big_rate)]
    small, small_rate = _small_set(device_info, dtype, big)
    if small != big:
        out.append(("tiled_small", small, small_rate))
    for i, e in enumerate(database.lookup(device_info, "tiled_sets", dtype) or ()):
        q = P.complete("tiled", e)
        if P.is_valid("tiled", q, device_info, dtype) and all(q != c[1] for c in out):
            out.append(("tiled_set%d" % i, q, _rate(e)))
    return out


def _in_place(prm, op, rows, K, Kp, si, sj, sb, off, batch, device_info, dtype, a_kcont):
    """How the tiled kernel with set prm can read operand op ('a': kM x K,
    'b': K x kN seen as kN x K) in place: 'mcont' (contiguous along rows,
    vector-aligned), 'kcont' (contiguous along K, staged through local
    memory; a_kcont: A already is), or None (it must be packed).  Also
    whether that read needs the kernel's bounds checks (sizes not covering
    the tile grid)."""
    tile, vw, staged = ((prm["MWG"], prm["VWM"], prm["SA"]) if op == "a"
                        else (prm["NWG"], prm["VWN"], prm["SB"]))
    exact = rows % tile == 0 and K == Kp
    if _max_index(off, rows, K, si, sj, batch, sb) > _INT_MAX:
        return None, False
    if (si == 1 and sj >= rows and sj % vw == 0 and off % vw == 0
            and (batch == 1 or sb % vw == 0) and (exact or (staged and rows % vw == 0))):
        return "mcont", not exact
    if (sj == 1 or K == 1) and si >= K and P.kcont_possible(prm, op, device_info, dtype, a_kcont):
        return "kcont", not exact
    return None, False


def _tiled_layout(prm, S, kM, kN, K, batch, ka, kb, ka_off, kb_off, esize, pack_tile, device_info,
                  dtype, pack=()):
    """Padded sizes, pack steps and operand sources of the tiled kernel with
    set prm and S K chunks of Kc (K padded to Kp = S*Kc).  Operands are read
    in place where the kernel can (see _in_place) unless named in pack; the
    others are packed, once when shared by every batch entry (batch stride 0)."""
    Mp, Np = _ceil(kM, prm["MWG"]), _ceil(kN, prm["NWG"])
    Kc = _ceil(-(-K // S), prm["KWG"])
    Kp = S * Kc
    packs, operands, pack_elems, guard = [], {}, 0, False
    # Packed kernel A (kM x K) is a[k*Mp + m]; packed kernel B (K x kN) is b[k*Np + n].
    for op, rows, (si, sj, sb), off, Ip in (("a", kM, ka, ka_off, Mp),
                                             ("b", kN, (kb[1], kb[0], kb[2]), kb_off, Np)):
        shared = batch > 1 and sb == 0
        a_kcont = op == "b" and operands["a"][0] == "kcont"
        how, guarded = (None, False) if op in pack else _in_place(
            prm, op, rows, K, Kp, si, sj, sb, off, batch, device_info, dtype, a_kcont)
        if how is not None:
            operands[op] = (how, si if how == "kcont" else sj, sb if batch > 1 else 0)
            guard |= guarded
            continue
        copies = 1 if shared else batch
        _check_int("packed size", copies * Kp * Ip)
        kname = "gemm_pack_copy" if abs(si) <= abs(sj) else "gemm_pack_transpose"
        gs = (_ceil(Ip, pack_tile), _ceil(Kp, pack_tile), copies)
        packs.append(PackStep(op, kname, (rows, K, Ip, Kp, si, sj, sb, Kp * Ip), gs,
                              copies * Kp * Ip * esize))
        operands[op] = ("packed", Ip, 0 if shared else Kp * Ip)
        pack_elems += copies * (rows * K + Kp * Ip)
    return dict(Mp=Mp, Np=Np, Kc=Kc, Kp=Kp, packs=tuple(packs), operands=operands,
                pack_elems=pack_elems, guard=guard)


PACK_SIGNATURE = "iiiiBiiiiBiii"


def event_elapsed_ns(event):
    """Kernel execution time of a launch event in ns: the runtime's
    event.elapsed_ns, or pyopencl's profile.end - profile.start."""
    ns = getattr(event, "elapsed_ns", None)
    if ns is not None:
        return ns() if callable(ns) else ns
    event.wait()
    return event.profile.end - event.profile.start


def _launch(kernel, gsize, lsize, args, timing):
    # oclcore's runtime returns a profiled event only from launch_timed();
    # pyopencl-style kernels return one from launch() itself.
    if timing:
        timed = getattr(kernel, "launch_timed", None)
        if timed is not None:
            return timed(gsize, lsize, args)
    return kernel.launch(gsize, lsize, args)


def run_gemm(plan, get_kernel, A, a_off, B, b_off, C, c_off, alpha=1.0, beta=0.0,
             bias=None, bias_off=0, alloc=None, timing=False):
    """Enqueue plan on buffers A, B, C (element offsets a_off, b_off, c_off;
    strides as given to plan_gemm).  bias: buffer of the bias vector when the
    plan has one.  Tiled plans may read an aligned operand in place, so
    a_off/b_off must equal those given to plan_gemm modulo the vector width.
    alloc(nbytes) -> buffer provides pack and split-K workspaces (plans
    with packs or split > 1).  Returns the list of what the launches
    returned (pack launches first; the runtime returns events only when
    timing=True, which asks for profiled events)."""
    if plan is None:
        return []
    for name, v in (("a_off", a_off), ("b_off", b_off), ("c_off", c_off), ("bias_off", bias_off)):
        _check_int(name, v)
    if plan.bias and bias is None:
        raise ValueError("gemm: the plan expects a bias buffer")
    if plan.swap:
        A, a_off, B, b_off = B, b_off, A, a_off
    bias_buf = bias if bias is not None else C
    if plan.kind == "direct":
        ka, kb = plan.ka, plan.kb
        ops = [A, a_off, ka[0], ka[1], ka[2] if plan.batch > 1 else 0,
               B, b_off, kb[0], kb[1], kb[2] if plan.batch > 1 else 0]
        return _run_product(plan, get_kernel, ops, C, c_off, alpha, beta, bias_buf, bias_off, alloc,
                            timing)
    events = []
    src = {"a": (A, a_off), "b": (B, b_off)}
    packed = {}
    for step in plan.packs:
        if alloc is None:
            raise ValueError("gemm: the tiled plan needs an alloc(nbytes) callable for workspaces")
        buf = alloc(step.nbytes)
        I, J, Ip, Jp, si, sj, sb, dst_bs = step.args
        sbuf, soff = src[step.operand]
        k = get_kernel(plan.files, plan.defines, step.kernel, PACK_SIGNATURE)
        events.append(_launch(k, step.gsize, plan.pack_lsize,
                              (I, J, Ip, Jp, sbuf, soff, si, sj, sb if plan.batch > 1 else 0,
                               buf, 0, Ip, dst_bs), timing))
        packed[step.operand] = buf
    ops = []
    for op, vw in (("a", plan.params["VWM"]), ("b", plan.params["VWN"])):
        how, ld, bs = plan.operands[op]
        if how == "packed":
            ops += [packed[op], 0, ld, bs]
        else:
            if how == "mcont" and src[op][1] % vw:
                raise ValueError("gemm: offset %d is not aligned as the plan assumed" % src[op][1])
            ops += [src[op][0], src[op][1], ld, bs]
    return events + _run_product(plan, get_kernel, ops, C, c_off, alpha, beta, bias_buf, bias_off,
                                 alloc, timing)


def _run_product(plan, get_kernel, ops, C, c_off, alpha, beta, bias_buf, bias_off, alloc, timing):
    """Launches the plan's product kernel (arguments M, N, K, KC, alpha, beta,
    the operand arguments ops, C, bias, ksplit) into C; with a split of K,
    into a workspace from alloc followed by gemm_splitk_reduce.  Returns the
    list of what the launches returned."""
    kc = plan.kc
    k = get_kernel(plan.files, plan.defines, plan.name, plan.signature)
    if plan.reduce is None:
        args = [plan.kM, plan.kN, plan.K, plan.Kc, alpha, beta] + ops + [
            C, c_off, kc[0], kc[1], kc[2] if plan.batch > 1 else 0, bias_buf, bias_off, 1]
        return [_launch(k, plan.gsize, plan.lsize, args, timing)]
    if alloc is None:
        raise ValueError("gemm: the split-K plan needs an alloc(nbytes) callable for its workspace")
    r = plan.reduce
    work = alloc(r["nbytes"])
    args = [plan.kM, plan.kN, plan.K, plan.Kc, 1.0, 0.0] + ops + [
        work, 0, 1, plan.kM, plan.kM * plan.kN, work, 0, plan.split]
    events = [_launch(k, plan.gsize, plan.lsize, args, timing)]
    k = get_kernel(r["files"], r["defines"], r["name"], r["signature"])
    args = (plan.kM, plan.kN, plan.split, alpha, beta, work, C, c_off, kc[0], kc[1],
            kc[2] if plan.batch > 1 else 0, bias_buf, bias_off)
    events.append(_launch(k, r["gsize"], r["lsize"], args, timing))
    return events


_plan_cache = {}
_PLAN_CACHE_MAX = 4096


def _cached_plan(device_info, M, N, K, batch, dtype, a_strides, b_strides, c_strides, a_off, b_off,
                 bias, act):
    key = (device_info.get("name"), device_info.get("vendor"), device_info.get("driver_version"),
           device_info.get("platform"), database.generation, M, N, K, batch, dtype, a_strides,
           b_strides, c_strides, a_off % 16, b_off % 16, bias, act)
    plan = _plan_cache.get(key)
    if plan is None and key not in _plan_cache:
        if len(_plan_cache) >= _PLAN_CACHE_MAX:
            _plan_cache.clear()
        plan = _plan_cache[key] = plan_gemm(device_info, M, N, K, batch, dtype, a_strides, b_strides,
                                            c_strides, a_off, b_off, bias, act)
    return plan


def gemm(get_kernel, device_info, A, a_off, a_rs, a_cs, B, b_off, b_rs, b_cs, C, c_off, c_rs, c_cs,
         M, N, K, alpha=1.0, beta=0.0, batch=1, a_bs=0, b_bs=0, c_bs=0, bias=None, bias_off=0,
         bias_dim="col", act=None, dtype="float32", alloc=None):
    """C[b] = act(alpha * A[b] @ B[b] + beta * C[b] + bias) for b < batch, on
    buffers with element offsets and (row, col, batch) strides.  bias (a
    buffer) is indexed by column n (bias_dim='col') or row m ('row').  C is
    not read when beta == 0.  alloc(nbytes) -> buffer supplies temporary pack
    and split-K workspaces.  Plans are cached per process (keyed by device,
    shape, strides, offset alignment; refreshed when the user database is
    written).  Returns the launch events."""
    plan = _cached_plan(device_info, M, N, K, batch, dtype, (a_rs, a_cs, a_bs), (b_rs, b_cs, b_bs),
                     (c_rs, c_cs, c_bs), a_off, b_off, bias_dim if bias is not None else None, act)
    return run_gemm(plan, get_kernel, A, a_off, B, b_off, C, c_off, alpha, beta, bias, bias_off,
                    alloc)
