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
           "cpu_features", "fma_peak_gflops", "tile_peak_gflops", "read_video", "VidAttnError", "__version__"]


from .video import read_video  # noqa: E402


def version():
    """The library's version string, e.g. '0.1.0'."""
    return lib.vidattn_version().decode()


def set_num_threads(n):
    """Sets the worker threads used by each compute call (n >= 1)."""
    from .errors import check
    check(lib.vidattn_set_num_threads(int(n)))


def get_num_threads():
    return lib.vidattn_get_num_threads()


def cpu_features():
    """What the library detected: a dict with 'cpu' (brand string), 'flags' (a list of
    /proc/cpuinfo names such as 'avx512f', 'avx512_bf16', 'amx_tile'), cache sizes in bytes
    ('l1d', 'l2', 'l3'), 'amx_permitted' (the kernel granted the AMX tile state), and the units
    chosen: 'fp32' (avx2 | avx512), 'bf16' (amx | avx512_bf16 | fma | emulated: fma and emulated
    run bf16 on the fp32 kernels, fma because this CPU's AVX512-BF16 is slower than them) and
    'int8' (amx | avx512_vnni | emulated)."""
    out = {}
    for part in lib.vidattn_cpu_features().decode().split("; "):
        key, _, value = part.partition("=")
        out[key] = value
    out["flags"] = out.get("flags", "").split()
    for key in ("l1d", "l2", "l3", "amx_permitted"):
        out[key] = int(out.get(key, 0))
    return out


def fma_peak_gflops(threads=1):
    """This machine's measured fp32 FMA peak in GFLOP/s on `threads` threads (for benchmarks)."""
    if int(threads) < 1:
        from .errors import InvalidArgument
        raise InvalidArgument("threads must be at least 1")
    return lib.vidattn_fma_peak_gflops(int(threads))


def tile_peak_gflops(threads=1):
    """AMX bf16 tile-product throughput in GFLOP/s on `threads` of the library's workers at once
    (0 where bf16 does not run on AMX). On shared machines it can change within seconds: report
    it beside AMX timings."""
    if int(threads) < 1:
        from .errors import InvalidArgument
        raise InvalidArgument("threads must be at least 1")
    return lib.vidattn_tile_peak_gflops(int(threads))


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
        raise InvalidArgument(f"unknown mechanism {mechanism!r}; one of {MECHANISMS}")
    s = lib.vidattn_mechanism_default_shape()
    for key, value in shape.items():
        if key in ("window", "grid"):
            if len(value) != 3:
                raise InvalidArgument(f"{key} must have 3 entries (t, h, w)")
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


__version__ = version()
