"""One exception class per vidattn_status, carrying the library's message."""
from ._lib import lib


class VidAttnError(Exception):
    status = -8

    def __init__(self, message, status=None):
        super().__init__(message)
        if status is not None:
            self.status = status


class InvalidArgument(VidAttnError, ValueError):
    status = -1


class NullPointer(VidAttnError, ValueError):
    status = -2


class OutOfMemory(VidAttnError, MemoryError):
    status = -3


class ShapeMismatch(VidAttnError, ValueError):
    status = -4


class IOFailure(VidAttnError, OSError):
    status = -5


class BadFormat(VidAttnError, ValueError):
    status = -6


class Unsupported(VidAttnError, NotImplementedError):
    status = -7


class InternalError(VidAttnError):
    status = -8


class Aborted(VidAttnError):
    status = 1


_by_status = {c.status: c for c in (InvalidArgument, NullPointer, OutOfMemory, ShapeMismatch, IOFailure,
                                    BadFormat, Unsupported, InternalError, Aborted)}


def check(status):
    """Raises the exception for a nonzero status with vidattn_last_error()."""
    if status == 0:
        return
    name = lib.vidattn_status_string(status).decode()
    msg = lib.vidattn_last_error().decode()
    cls = _by_status.get(status, VidAttnError)
    raise cls(f"{name}: {msg}", status)
