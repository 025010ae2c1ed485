"""GEMM kernel parameter sets: validation against the kernels' constraints and
device limits, and derivation of safe defaults.

Two families:
  tiled  (cl/gemm_tiled.cl): MWG NWG KWG MDIMC NDIMC MDIMA NDIMB KWI VWM VWN
                             STRM STRN SA SB
  direct (cl/gemm_direct.cl): WGD MDIMCD NDIMCD KWID VWMD VWND PADA PADB
Parameter sets are plain dicts of ints so they round-trip through JSON.
"""

DTYPE_SIZE = {"float32": 4, "float64": 8, "float16": 2}
VECTOR_WIDTHS = (1, 2, 4, 8, 16)
MAX_REGISTER_TILE = 256  # outputs per work-item; beyond this nothing is fast

TILED_KEYS = ("MWG", "NWG", "KWG", "MDIMC", "NDIMC", "MDIMA", "NDIMB", "KWI",
              "VWM", "VWN", "STRM", "STRN", "SA", "SB")
DIRECT_KEYS = ("WGD", "MDIMCD", "NDIMCD", "KWID", "VWMD", "VWND", "PADA", "PADB")

# Small, conservative sets every OpenCL 1.2 device can run (64 work-items,
# a few KiB of local memory).
TILED_SAFE = dict(MWG=32, NWG=32, KWG=16, MDIMC=8, NDIMC=8, MDIMA=8, NDIMB=8, KWI=2,
                  VWM=1, VWN=1, STRM=0, STRN=0, SA=1, SB=1)
DIRECT_SAFE = dict(WGD=16, MDIMCD=8, NDIMCD=8, KWID=2, VWMD=1, VWND=1, PADA=1, PADB=1)


def _divides(a, b):
    return a > 0 and b % a == 0


KCONT_LANES = 8  # threads along k that stage a K-contiguous operand (gemm_tiled.cl KLANES)


def kcont_pad(vw):
    """Elements of padding per local row of a K-contiguous operand (gemm_tiled.cl PADV)."""
    return vw if vw >= 4 else 4


def tiled_local_bytes(p, dtype="float32", a_kcont=False, b_kcont=False):
    """Local memory (bytes) the tiled kernel needs for parameter set p, with
    A and/or B staged from K-contiguous memory (padded local rows)."""
    a_row = p["MWG"] + (kcont_pad(p["VWM"]) if a_kcont else 0)
    b_row = p["NWG"] + (kcont_pad(p["VWN"]) if b_kcont else 0)
    return (p["SA"] * p["KWG"] * a_row + p["SB"] * p["KWG"] * b_row) * DTYPE_SIZE[dtype]


def kcont_possible(p, operand, device_info=None, dtype="float32", a_kcont=False):
    """True when the tiled kernel with set p can stage operand 'a'/'b' from
    K-contiguous memory: staged in local memory, the thread count and tile
    divisible by the staging layout, and the padded rows fit (for 'b', with
    A's rows padded too when a_kcont)."""
    threads = p["MDIMC"] * p["NDIMC"]
    tile, staged = (p["MWG"], p["SA"]) if operand == "a" else (p["NWG"], p["SB"])
    if not staged or threads % KCONT_LANES or p["KWG"] % KCONT_LANES:
        return False
    if tile % (threads // KCONT_LANES):
        return False
    if device_info is None:
        return True
    need = tiled_local_bytes(p, dtype, operand == "a" or a_kcont, operand == "b")
    return need <= int(device_info.get("local_mem", 32768))


def direct_local_bytes(p, dtype="float32"):
    """Local memory (bytes) the direct kernel needs for parameter set p."""
    wgd = p["WGD"]
    return (wgd * (wgd + p["PADA"]) + wgd * (wgd + p["PADB"])) * DTYPE_SIZE[dtype]


def tiled_errors(p, device_info=None, dtype="float32"):
    """List of violated constraints of tiled parameter set p (empty when valid)."""
    missing = [k for k in TILED_KEYS if k not in p]
    if missing:
        return ["missing " + ",".join(missing)]
    e = []
    MWG, NWG, KWG = p["MWG"], p["NWG"], p["KWG"]
    MDIMC, NDIMC, MDIMA, NDIMB = p["MDIMC"], p["NDIMC"], p["MDIMA"], p["NDIMB"]
    VWM, VWN, KWI = p["VWM"], p["VWN"], p["KWI"]
    if min(MWG, NWG, KWG, MDIMC, NDIMC, MDIMA, NDIMB, KWI) <= 0:
        return ["non-positive parameter"]
    if VWM not in VECTOR_WIDTHS or VWN not in VECTOR_WIDTHS:
        e.append("VWM/VWN must be one of %s" % (VECTOR_WIDTHS,))
    for k in ("STRM", "STRN", "SA", "SB"):
        if p[k] not in (0, 1):
            e.append(k + " must be 0 or 1")
    if not _divides(MDIMC * VWM, MWG):
        e.append("MWG % (MDIMC*VWM) != 0")
    if not _divides(NDIMC * VWN, NWG):
        e.append("NWG % (NDIMC*VWN) != 0")
    if not _divides(KWI, KWG):
        e.append("KWG % KWI != 0")
    threads = MDIMC * NDIMC
    if p["SA"]:
        if not _divides(MDIMA, threads):
            e.append("(MDIMC*NDIMC) % MDIMA != 0")
        else:
            if not _divides(threads // MDIMA, KWG):
                e.append("KWG % KDIMA != 0")
        if not _divides(MDIMA * VWM, MWG):
            e.append("MWG % (MDIMA*VWM) != 0")
    if p["SB"]:
        if not _divides(NDIMB, threads):
            e.append("(MDIMC*NDIMC) % NDIMB != 0")
        else:
            if not _divides(threads // NDIMB, KWG):
                e.append("KWG % KDIMB != 0")
        if not _divides(NDIMB * VWN, NWG):
            e.append("NWG % (NDIMB*VWN) != 0")
    if (MWG // max(MDIMC, 1)) * (NWG // max(NDIMC, 1)) > MAX_REGISTER_TILE:
        e.append("register tile larger than %d" % MAX_REGISTER_TILE)
    if device_info is not None:
        e += _device_errors(threads, tiled_local_bytes(p, dtype), device_info)
        e += _vector_errors((VWM, VWN), device_info, dtype)
    return e


def direct_errors(p, device_info=None, dtype="float32"):
    """List of violated constraints of direct parameter set p (empty when valid)."""
    missing = [k for k in DIRECT_KEYS if k not in p]
    if missing:
        return ["missing " + ",".join(missing)]
    e = []
    WGD, MDIMCD, NDIMCD, KWID = p["WGD"], p["MDIMCD"], p["NDIMCD"], p["KWID"]
    VWMD, VWND = p["VWMD"], p["VWND"]
    if min(WGD, MDIMCD, NDIMCD, KWID) <= 0:
        return ["non-positive parameter"]
    if VWMD not in VECTOR_WIDTHS or VWND not in VECTOR_WIDTHS:
        e.append("VWMD/VWND must be one of %s" % (VECTOR_WIDTHS,))
    if p["PADA"] not in (0, 1) or p["PADB"] not in (0, 1):
        e.append("PADA/PADB must be 0 or 1")
    if not _divides(MDIMCD * VWMD, WGD):
        e.append("WGD % (MDIMCD*VWMD) != 0")
    if not _divides(NDIMCD * VWND, WGD):
        e.append("WGD % (NDIMCD*VWND) != 0")
    if not _divides(KWID, WGD):
        e.append("WGD % KWID != 0")
    threads = MDIMCD * NDIMCD
    if not _divides(threads, WGD * WGD):
        e.append("(WGD*WGD) % (MDIMCD*NDIMCD) != 0")
    if (WGD // max(MDIMCD, 1)) * (WGD // max(NDIMCD, 1)) > MAX_REGISTER_TILE:
        e.append("register tile larger than %d" % MAX_REGISTER_TILE)
    if device_info is not None:
        e += _device_errors(threads, direct_local_bytes(p, dtype), device_info)
        e += _vector_errors((VWMD, VWND), device_info, dtype)
    return e


# PoCL's compiler (LLVM) crashes building GEMM kernels with double8 vectors on some CPUs (an
# AMD EPYC host, round 18): on CPU devices a vector holds at most this many bytes.
MAX_CPU_VECTOR_BYTES = 32


def _vector_errors(widths, device_info, dtype):
    if "cpu" in str(device_info.get("type", "")).lower() and max(widths) * DTYPE_SIZE[dtype] > MAX_CPU_VECTOR_BYTES:
        return ["vectors of %d bytes > %d on a CPU device" % (max(widths) * DTYPE_SIZE[dtype], MAX_CPU_VECTOR_BYTES)]
    return []


def _device_errors(threads, local_bytes, device_info):
    e = []
    max_wg = int(device_info.get("max_work_group_size", 256))
    if threads > max_wg:
        e.append("work-group size %d > device max %d" % (threads, max_wg))
    local_mem = int(device_info.get("local_mem", 32768))
    if local_bytes > local_mem:
        e.append("local memory %d B > device %d B" % (local_bytes, local_mem))
    return e


def is_valid(kind, p, device_info=None, dtype="float32"):
    """True when parameter set p of family kind ('tiled'/'direct') is usable."""
    check = tiled_errors if kind == "tiled" else direct_errors
    return not check(p, device_info, dtype)


def safe_default(kind, device_info, dtype="float32"):
    """A valid parameter set for kind derived from the device limits alone:
    the conservative set, shrunk further for tiny devices."""
    p = dict(TILED_SAFE if kind == "tiled" else DIRECT_SAFE)
    max_wg = int(device_info.get("max_work_group_size", 256))
    if kind == "tiled":
        while p["MDIMC"] * p["NDIMC"] > max_wg and p["MDIMC"] > 1:
            p["MDIMC"] //= 2
            p["NDIMC"] //= 2
            p["MDIMA"], p["NDIMB"] = p["MDIMC"], p["NDIMC"]
        while tiled_errors(p, device_info, dtype) and p["MWG"] > p["MDIMC"]:
            p["MWG"] //= 2
            p["NWG"] //= 2
            p["KWG"] = max(p["KWG"] // 2, p["KWI"], 1)
    else:
        while p["MDIMCD"] * p["NDIMCD"] > max_wg and p["MDIMCD"] > 1:
            p["MDIMCD"] //= 2
            p["NDIMCD"] //= 2
        while direct_errors(p, device_info, dtype) and p["WGD"] > p["MDIMCD"]:
            p["WGD"] //= 2
    return p


def derive_small(p, device_info, dtype="float32"):
    """A tiled parameter set with half the work-group tile of p along M and N
    (for problems that p's tile grid leaves under-occupied or mostly padding),
    keeping p's thread layout where the constraints allow; p itself when no
    valid smaller set follows from it."""
    q = dict(complete("tiled", p))
    if q["MWG"] < 2 * q["MDIMC"] or q["NWG"] < 2 * q["NDIMC"]:
        return dict(q)
    q["MWG"] //= 2
    q["NWG"] //= 2
    for wg, dimc, dima, vw in (("MWG", "MDIMC", "MDIMA", "VWM"), ("NWG", "NDIMC", "NDIMB", "VWN")):
        while q[wg] % (q[dimc] * q[vw]) and q[vw] > 1:
            q[vw] //= 2
        while q[wg] % (q[dima] * q[vw]) and q[dima] > 1:
            q[dima] //= 2
    threads = q["MDIMC"] * q["NDIMC"]
    while (q["KWG"] % (threads // q["MDIMA"]) or q["KWG"] % (threads // q["NDIMB"])) and q["KWG"] < 128:
        q["KWG"] *= 2
    return q if is_valid("tiled", q, device_info, dtype) else dict(complete("tiled", p))


def complete(kind, p):
    """p with unspecified keys filled in (MDIMA/NDIMB follow MDIMC/NDIMC, the
    rest from the safe set), restricted to kind's keys, as ints."""
    keys = TILED_KEYS if kind == "tiled" else DIRECT_KEYS
    q = dict(p)
    if kind == "tiled":
        q.setdefault("MDIMA", q.get("MDIMC", TILED_SAFE["MDIMC"]))
        q.setdefault("NDIMB", q.get("NDIMC", TILED_SAFE["NDIMC"]))
    base = TILED_SAFE if kind == "tiled" else DIRECT_SAFE
    return {k: int(q.get(k, base[k])) for k in keys}


def resolve(kind, p, device_info, dtype="float32"):
    """p completed with defaults for unspecified keys if it is valid on the
    device, else the safe default (never raises)."""
    if p:
        q = complete(kind, p)
        if is_valid(kind, q, device_info, dtype):
            return q
    return safe_default(kind, device_info, dtype)


def tiled_defines(p):
    """-D defines (dict) of a tiled parameter set."""
    return {k: int(p[k]) for k in TILED_KEYS}


def direct_defines(p):
    """-D defines (dict) of a direct parameter set."""
    return {k: int(p[k]) for k in DIRECT_KEYS}
