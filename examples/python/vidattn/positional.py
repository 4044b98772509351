"""Positional pieces of TimeSformer-pytorch: rotary tables, rotary application, token
shift, GEGLU feed-forward (docs/models.md, timesformer_pytorch; docs/attention.md)."""
import ctypes

import numpy as np

from ._lib import lib, c_int64_p
from ._arrays import f32, fptr
from .errors import InvalidArgument, check


def rotary_time_table(frames, dim, *, consistent=False):
    """(sin, cos), each [frames, dim]; consistent=True gives the pair-consistent RoPE."""
    s = np.empty((frames, dim), np.float32); c = np.empty_like(s)
    check(lib.vidattn_rotary_time_table(frames, dim, 1 if consistent else 0, fptr(s), fptr(c)))
    return s, c


def rotary_image_table(h, w, dim, *, max_freq=10.0):
    """(sin, cos), each [h*w, dim], of the axial 2-D rotary embedding."""
    s = np.empty((h * w, dim), np.float32); c = np.empty_like(s)
    check(lib.vidattn_rotary_image_table(h, w, dim, float(max_freq), fptr(s), fptr(c)))
    return s, c


def apply_rotary(x, sin, cos, positions=None):
    """Rotates the first sin.shape[1] channels of x [..., d] (a new array); the rows of x
    (all leading axes flattened) use table rows `positions` (default: 0, 1, ...)."""
    x = f32(x, "x").copy()
    sin, cos = f32(sin, "sin"), f32(cos, "cos")
    if sin.shape != cos.shape or sin.ndim != 2:
        raise InvalidArgument(f"sin and cos must be equal 2-D tables; got {sin.shape} and {cos.shape}")
    d = x.shape[-1]
    rows = x.size // d
    pos = None
    if positions is not None:
        pos = np.ascontiguousarray(positions, dtype=np.int64).reshape(-1)
        if pos.size != rows:
            raise InvalidArgument(f"positions must have {rows} entries; got {pos.size}")
    check(lib.vidattn_rotary_apply(rows, d, fptr(x), fptr(sin), fptr(cos), sin.shape[0], sin.shape[1],
                                   None if pos is None else pos.ctypes.data_as(c_int64_p)))
    return x


def token_shift(x, frames):
    """TimeSformer-pytorch token shift on x [B, 1 + frames*P, C]."""
    x = f32(x, "x")
    if x.ndim != 3 or (x.shape[1] - 1) % frames:
        raise InvalidArgument(f"x must be [B, 1 + frames*P, C]; got {x.shape}")
    y = np.empty_like(x)
    check(lib.vidattn_token_shift(x.shape[0], frames, (x.shape[1] - 1) // frames, x.shape[2], fptr(x), fptr(y)))
    return y


def geglu_ff(x, w1, b1, w2, b2):
    """GEGLU feed-forward: W2 (a * gelu(g)) + b2 with [a | g] = W1 x + b1. x [..., dim]."""
    x = f32(x, "x"); w1 = f32(w1, "w1"); w2 = f32(w2, "w2")
    dim = x.shape[-1]
    if w1.ndim != 2 or w1.shape[1] != dim or w1.shape[0] % 2 or w2.ndim != 2 or w2.shape[1] * 2 != w1.shape[0]:
        raise InvalidArgument(f"w1 must be [2h, {dim}] and w2 [out, h]; got {w1.shape} and {w2.shape}")
    hidden, out = w2.shape[1], w2.shape[0]
    b1 = None if b1 is None else f32(b1, "b1")
    b2 = None if b2 is None else f32(b2, "b2")
    rows = x.size // dim
    y = np.empty(x.shape[:-1] + (out,), np.float32)
    check(lib.vidattn_geglu_ff(rows, dim, hidden, out, fptr(x), fptr(w1), fptr(b1), fptr(w2), fptr(b2), fptr(y)))
    return y
