"""How each torch dtype is stored and computed in OpenCL C."""

import torch

# dtype -> (storage type, load macro, store macro, compute type)
_TABLE = {
    torch.float32: ("float", "LD_plain", "ST_plain", "float"),
    torch.float16: ("half", "LD_half", "ST_half", "float"),
    torch.bfloat16: ("ushort", "LD_bf16", "ST_bf16", "float"),
    torch.float64: ("double", "LD_plain", "ST_plain", "double"),
    torch.int64: ("long", "LD_plain", "ST_plain", "long"),
    torch.int32: ("int", "LD_plain", "ST_plain", "int"),
    torch.int16: ("short", "LD_plain", "ST_plain", "int"),
    torch.int8: ("char", "LD_plain", "ST_plain", "int"),
    torch.uint8: ("uchar", "LD_plain", "ST_plain", "int"),
    torch.bool: ("uchar", "LD_bool", "ST_bool", "int"),
}

# compute type -> kernel signature character for a scalar argument
SCALAR_CHAR = {"float": "f", "double": "d", "int": "i", "long": "l"}

FLOATING = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


def supported(dtype):
    """True when ocl kernels handle ``dtype``."""
    return dtype in _TABLE


def check(dtype, what="this operation"):
    """Raises a torch-style TypeError for dtypes ocl has no kernels for."""
    if dtype not in _TABLE:
        raise TypeError(f"ocl does not support dtype {dtype} for {what}")


def storage(dtype):
    """OpenCL C storage type of ``dtype``."""
    return _TABLE[dtype][0]


def load_macro(dtype):
    return _TABLE[dtype][1]


def store_macro(dtype):
    return _TABLE[dtype][2]


def compute(dtype):
    """OpenCL C type the arithmetic of ``dtype`` is done in."""
    return _TABLE[dtype][3]


def is_float_compute(ct):
    return ct in ("float", "double")


def kernel_defines(dtype, out_dtype=None, store="STO"):
    """The -D defines of a kernel built on cl/types.cl that reads ``dtype`` and writes
    ``out_dtype`` (default: the same): T and LD (input storage type, load macro), TO and the
    store macro (named ``store``), CT (compute type of ``dtype``), and FP64 where doubles appear."""
    out_dtype = out_dtype or dtype
    ct = compute(dtype)
    defines = {"T": storage(dtype), "LD": load_macro(dtype), "TO": storage(out_dtype),
               store: store_macro(out_dtype), "CT": ct}
    if ct == "double" or torch.float64 in (dtype, out_dtype):
        defines["FP64"] = None
    return defines


def py_scalar(value, ct):
    """A Python number converted for a kernel argument of compute type ``ct``."""
    if ct in ("float", "double"):
        return float(value)
    if isinstance(value, float):
        return int(value)
    return int(value)


_TYPE_NAMES = {torch.float32: "Float", torch.float16: "Half", torch.bfloat16: "BFloat16", torch.float64: "Double",
               torch.int64: "Long", torch.int32: "Int", torch.int16: "Short", torch.int8: "Char",
               torch.uint8: "Byte", torch.bool: "Bool", torch.complex64: "ComplexFloat",
               torch.complex128: "ComplexDouble"}


def type_name(dtype):
    """torch's ScalarType name of ``dtype`` ('Float', 'Long', ...), as its "not implemented for"
    errors show it."""
    return _TYPE_NAMES.get(dtype, str(dtype).split(".")[-1])
