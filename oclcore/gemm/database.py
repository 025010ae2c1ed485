"""GEMM parameter database.

Entries form a hierarchy like CLBlast's: device type -> vendor ->
architecture/driver family -> device name, with "*" as the default at every
level, so an unknown device still gets its vendor's or family's best guess.
Shipped entries live in oclcore/gemm/database/*.json; the user's own tuning
results (gemm_database.json in the user cache dir: $OCLCORE_CACHE_DIR, else
platformdirs' user_cache_dir('oclcore')) take precedence over shipped entries
of the same specificity.

File format: {"entries": [{"type": "gpu", "vendor": "nvidia", "arch": "*",
"device": "*", "dtype": "float32", "tiled": {...}, "tiled_small": {...},
"direct": {...}, "crossover": {...}}, ...]}.  "tiled_small" is a second tiled
parameter set with a smaller work-group tile, for problems whose grid of
"tiled" tiles leaves the device under-occupied or mostly padding;
"tiled_sets" is a list of further tiled sets the planner weighs beside those
two.  A tiled set may carry RATE: its measured speed relative to what the
planner's cost model predicts for it, fitted beside the entry's big set
(bench/probes/gemm_sets.py measures the data).  "problems" is a list of
measured plans, {"problem": key, "set": {...}, "split": S, "us": time}, for
problem shapes where timing every set beat the cost model's pick (planner.
problem_key names a shape and layout; ``oclcore tune gemm --problems`` adds
them).  An entry may hold any subset of the families; dtype "*" matches
every dtype.
"""
import json
import os
import re
import threading

FAMILIES = ("tiled", "tiled_small", "tiled_sets", "direct", "crossover", "problems")
USER_DB_NAME = "gemm_database.json"
_SHIPPED_DIR = os.path.join(os.path.dirname(__file__), "database")

_lock = threading.Lock()
_shipped = None
_user = None  # (path, mtime, entries)
generation = 0  # bumped whenever this process writes the user database

_VENDORS = (
    ("nvidia", "nvidia"), ("advanced micro devices", "amd"), ("amd", "amd"),
    ("authenticamd", "amd"), ("intel", "intel"), ("genuineintel", "intel"),
    ("arm", "arm"), ("qualcomm", "qualcomm"), ("apple", "apple"),
    ("imagination", "imagination"),
)

# NVIDIA exposes no architecture through plain OpenCL queries; map names.
_NVIDIA_ARCH = (
    (r"\b(H100|H200|H800|GH200)\b", "SM9.0"),
    (r"\b(L4|L40S?|RTX 40\d\d|RTX [456]000 Ada)\b", "SM8.9"),
    (r"\b(A100|A800|A30)\b", "SM8.0"),
    (r"\b(A10|A40|A16|A2|RTX 30\d\d|RTX A\d000)\b", "SM8.6"),
    (r"\b(T4|RTX 20\d\d|TITAN RTX|Quadro RTX)\b", "SM7.5"),
    (r"\b(V100|TITAN V)\b", "SM7.0"),
    (r"\b(P100)\b", "SM6.0"),
    (r"\b(GTX 10\d\d|P40|P4|TITAN X)\b", "SM6.1"),
    (r"\b(B100|B200|GB200)\b", "SM10.0"),
)


def cache_dir():
    """Directory of oclcore's user cache (created on demand by writers)."""
    d = os.environ.get("OCLCORE_CACHE_DIR")
    if d:
        return d
    try:
        import platformdirs
        return platformdirs.user_cache_dir("oclcore")
    except ImportError:
        return os.path.join(os.path.expanduser("~"), ".cache", "oclcore")


def user_db_path():
    """Path of the user's GEMM database file."""
    return os.path.join(cache_dir(), USER_DB_NAME)


def device_key(device_info):
    """(type, vendor, arch, device) identifying a device in the database."""
    dtype = str(device_info.get("type", "gpu")).lower()
    if "cpu" in dtype:
        dtype = "cpu"
    elif "accel" in dtype:
        dtype = "accelerator"
    else:
        dtype = "gpu"
    name = " ".join(str(device_info.get("name", "")).split())
    raw_vendor = str(device_info.get("vendor", "")).lower()
    vendor = "*"
    for needle, v in _VENDORS:
        if needle in raw_vendor:
            vendor = v
            break
    platform = str(device_info.get("platform", "")).lower()
    driver = str(device_info.get("driver_version", "")).lower()
    arch = "*"
    if ("portable computing language" in platform or "pocl" in driver
            or name.startswith(("pthread-", "cpu-", "basic-"))):
        arch = "pocl"
    elif vendor == "nvidia":
        for pattern, a in _NVIDIA_ARCH:
            if re.search(pattern, name, re.IGNORECASE):
                arch = a
                break
    elif vendor == "amd" and re.match(r"gfx\w+", name):
        arch = re.match(r"gfx\w+", name).group(0)
    return dtype, vendor, arch, name


def _read(path):
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return []
    entries = data.get("entries", []) if isinstance(data, dict) else []
    return [e for e in entries if isinstance(e, dict)]


def shipped_entries():
    """All shipped entries (loaded once)."""
    global _shipped
    with _lock:
        if _shipped is None:
            entries = []
            for fn in sorted(os.listdir(_SHIPPED_DIR)):
                if fn.endswith(".json"):
                    entries += _read(os.path.join(_SHIPPED_DIR, fn))
            _shipped = entries
        return _shipped


def user_entries():
    """The user's entries (re-read when the file changes)."""
    global _user
    path = user_db_path()
    try:
        mtime = os.stat(path).st_mtime_ns
    except OSError:
        return []
    with _lock:
        if _user is None or _user[0] != path or _user[1] != mtime:
            _user = (path, mtime, _read(path))
        return _user[2]


def _levels(key):
    t, v, a, d = key
    # (t,*,a,*) lets a driver family that spans vendors (PoCL) carry defaults.
    return ((t, v, a, d), (t, v, a, "*"), (t, v, "*", "*"), (t, "*", a, "*"),
            (t, "*", "*", "*"), ("*", "*", "*", "*"))


def _match(e, level, dtype):
    return (e.get("type", "*"), e.get("vendor", "*"), e.get("arch", "*"),
            e.get("device", "*")) == level and e.get("dtype", "*") in (dtype, "*")


def lookup(device_info, family, dtype="float32", accept=None):
    """Best database parameters of family ('tiled', 'direct', 'crossover': a dict;
    'tiled_sets': a list of dicts) for the device, or None.  Most specific level wins; at equal
    level the user database beats the shipped one, and an entry for dtype
    beats a float32 one (used as a fallback for other dtypes).  accept(params)
    -> bool skips candidates unusable here (e.g. too much local memory for
    float64), falling through to the next level."""
    dtypes = (dtype, "float32") if dtype != "float32" else (dtype,)
    for e in _ranked(device_info, family, dtypes):
        if accept is None or accept(e[family]):
            v = e[family]
            return dict(v) if isinstance(v, dict) else [dict(x) for x in v]
    return None


def _ranked(device_info, family, dtypes):
    """The entries holding ``family`` that match the device and one of ``dtypes``, best first:
    most specific level, then dtype order, then the user's before the shipped ones, later
    entries before earlier."""
    dbs = (user_entries(), shipped_entries())
    seen = set()
    for level in _levels(device_key(device_info)):
        if level in seen:
            continue
        seen.add(level)
        for dt in dtypes:
            for entries in dbs:
                for e in reversed(entries):
                    if family in e and _match(e, level, dt):
                        yield e


def measured(device_info, dtype, key):
    """The measured plan {"set", "split", ...} recorded for problem ``key`` on this device and
    dtype, or None: the most specific level's record wins, the user's before the shipped one."""
    for e in _ranked(device_info, "problems", (dtype,)):
        for record in e["problems"]:
            if isinstance(record, dict) and record.get("problem") == key:
                return dict(record)
    return None


def _user_entry(entries, device_info, dtype):
    """The user database's entry for this exact device and dtype (added when missing)."""
    t, v, a, d = device_key(device_info)
    for e in entries:
        if (e.get("type"), e.get("vendor"), e.get("arch"), e.get("device"),
                e.get("dtype")) == (t, v, a, d, dtype):
            return e
    e = dict(type=t, vendor=v, arch=a, device=d, dtype=dtype)
    entries.append(e)
    return e


def _write_user(entries):
    global generation
    path = user_db_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp%d" % os.getpid()
    with open(tmp, "w") as f:
        json.dump({"entries": entries}, f, indent=1, sort_keys=True)
    os.replace(tmp, path)
    generation += 1
    return path


def save_user_problem(device_info, dtype, record):
    """Store a measured plan record ({"problem": key, "set", "split", ...}) for this exact device
    and dtype in the user database, replacing an earlier one of the same problem. Returns the
    file path."""
    entries = _read(user_db_path())
    e = _user_entry(entries, device_info, dtype)
    kept = [r for r in e.get("problems", ()) if isinstance(r, dict) and r.get("problem") != record["problem"]]
    e["problems"] = kept + [record]
    return _write_user(entries)


def save_user_entry(device_info, dtype, family, params, **meta):
    """Store params of family for this exact device and dtype in the user
    database (replacing an earlier result); extra meta (e.g. gflops) is kept
    alongside.  Returns the file path."""
    entries = _read(user_db_path())
    e = _user_entry(entries, device_info, dtype)
    e[family] = {k: (int(x) if not isinstance(x, float) else x) for k, x in params.items()}
    if meta:
        e.setdefault("meta", {})[family] = meta
    return _write_user(entries)
