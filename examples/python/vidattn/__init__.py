"""vidattn: fast video-transformer inference on the CPU (Python binding over ctypes).

The shared library is found through $VIDATTN_LIB, then this package's folder,
then the repository's `.build/release` folder.
"""
from ._lib import lib
from .errors import (VidAttnError, InvalidArgument, NullPointer, OutOfMemory, ShapeMismatch, IOFailure,
                     BadFormat, Unsupported, InternalError, Aborted)
from . import kernels
from . import attention
from . import positional
from .model import Model, ModelOutput, load

__all__ = ["load", "Model", "ModelOutput", "version", "set_num_threads", "get_num_threads", "kernels", "attention", "positional", "flops",
           "VidAttnError"]


def version():
    """The library's version string, e.g. '0.1.0'."""
    return lib.vidattn_version().decode()


def set_num_threads(n):
    """Sets the worker threads used by each compute call (n >= 1)."""
    from .errors import check
    check(lib.vidattn_set_num_threads(int(n)))


def get_num_threads():
    return lib.vidattn_get_num_threads()


MECHANISMS = ["joint", "divided_time", "divided_space", "divided_time_hf", "divided_space_hf", "trajectory",
              "trajectory_nystrom", "trajectory_orthoformer", "trajectory_performer", "performer", "nystrom",
              "orthoformer", "fastformer", "window3d", "temporal_aim", "aim_block"]


def flops(mechanism, **shape):
    """Multiply-accumulates of one clip through a mechanism, as a dict with 'attention' (the
    attention matmuls only: the AIM / Video Swin flops() convention) and 'total' (every matmul,
    projections included). Multiply by 2 for FLOPs.

    shape keywords (defaults: ViT-B at 8 frames of 14x14): channels, heads, frames, patches,
    tokens (0 = 1 + frames*patches), landmarks (or Performer features), window (t, h, w),
    grid (t, h, w).
    """
    import ctypes
    from ._lib import MACs
    from .errors import check
    if mechanism not in MECHANISMS:
        raise ValueError(f"unknown mechanism {mechanism!r}; one of {MECHANISMS}")
    s = lib.vidattn_mechanism_default_shape()
    for key, value in shape.items():
        if key in ("window", "grid"):
            if len(value) != 3:
                raise ValueError(f"{key} must have 3 entries (t, h, w)")
            setattr(s, key, (ctypes.c_int64 * 3)(*[int(v) for v in value]))
        elif key in ("channels", "heads", "frames", "patches", "tokens", "landmarks"):
            setattr(s, key, int(value))
        else:
            raise TypeError(f"unknown shape field {key!r}")
    out = MACs()
    check(lib.vidattn_flops(MECHANISMS.index(mechanism), ctypes.byref(s), ctypes.byref(out)))
    return {"attention": out.attention, "total": out.total}


def use_reference_kernels(enable=True):
    """Forces the scalar reference kernels (slow; for parity checks)."""
    lib.vidattn_set_reference_kernels(1 if enable else 0)
