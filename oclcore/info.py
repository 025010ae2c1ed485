"""A readable listing of every OpenCL platform and device (``oclcore info``)."""

from . import runtime
from .torch import native_guard


def _mib(n):
    return f"{n / 2**20:,.0f} MiB"


def report():
    """The text ``oclcore info`` prints."""
    try:
        devs = runtime.devices()
    except RuntimeError as e:
        return f"oclcore: {e}"
    lines = [f"OpenCL library: {runtime.rt.loaded_path()}",
             f"Program cache:  {runtime.cache_dir()}",
             f"Device guard:   {native_guard.status()}", ""]
    if not devs:
        lines.append("No OpenCL devices found.")
        return "\n".join(lines)
    for i, d in enumerate(devs):
        mark = "  (default)" if i == 0 else ""
        lines.append(f"ocl:{i}  {d.name}{mark}")
        rows = [("platform", d.platform), ("vendor", d.vendor), ("type", d.type),
                ("version", d.version), ("driver", d.driver_version),
                ("compute units", d.compute_units), ("clock", f"{d.clock_mhz} MHz"),
                ("global memory", _mib(d.global_mem)), ("max allocation", _mib(d.max_alloc)),
                ("local memory", f"{d.local_mem // 1024} KiB"),
                ("max work-group", d.max_work_group_size),
                ("fp16", "yes" if d.fp16 else "no"), ("fp64", "yes" if d.fp64 else "no"),
                ("extensions", " ".join(d.extensions))]
        for k, v in rows:
            lines.append(f"    {k:<15} {v}")
        lines.append("")
    return "\n".join(lines).rstrip()
