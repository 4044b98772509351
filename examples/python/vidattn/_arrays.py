import ctypes
import numpy as np

from ._lib import c_float_p, c_uint8_p


def f32(x, name):
    """A C-contiguous float32 view or copy of x (raises on non-numeric input)."""
    a = np.asarray(x)
    if a.dtype.kind not in "fiub":
        raise TypeError(f"{name} must be a numeric array, got dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=np.float32)


def fptr(a):
    return None if a is None else a.ctypes.data_as(c_float_p)


def u8ptr(a):
    return None if a is None else a.ctypes.data_as(c_uint8_p)
