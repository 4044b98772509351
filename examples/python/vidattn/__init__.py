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

__all__ = ["version", "set_num_threads", "get_num_threads", "kernels", "attention", "VidAttnError"]


def version():
    """The library's version string, e.g. '0.1.0'."""
    return lib.vidattn_version().decode()


def set_num_threads(n):
    """Sets the worker threads used by each compute call (n >= 1)."""
    from .errors import check
    check(lib.vidattn_set_num_threads(int(n)))


def get_num_threads():
    return lib.vidattn_get_num_threads()


def use_reference_kernels(enable=True):
    """Forces the scalar reference kernels (slow; for parity checks)."""
    lib.vidattn_set_reference_kernels(1 if enable else 0)
