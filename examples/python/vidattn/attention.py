"""Attention mechanisms on numpy float32 arrays."""
import ctypes
import numpy as np

from ._lib import lib
from ._arrays import f32, fptr, u8ptr
from .errors import check


def exact(q, k, v, *, scale=None, bias=None, key_mask=None, return_probs=False):
    """Fused exact attention softmax(scale * q k^T + bias) v.

    q: [B, H, Nq, d]; k, v: [B, H, Nk, d] (float32). bias broadcastable to
    [B, H, Nq, Nk]; key_mask bool [B, Nk], True = attend. Returns [B, H, Nq, d],
    and the probabilities [B, H, Nq, Nk] too when return_probs is set.
    """
    q = f32(q, "q"); k = f32(k, "k"); v = f32(v, "v")
    if q.ndim != 4 or k.ndim != 4 or v.ndim != 4:
        raise ValueError(f"q, k, v must be 4-D [B, H, N, d]; got {q.shape}, {k.shape}, {v.shape}")
    B, H, nq, d = q.shape
    if k.shape[:2] != (B, H) or k.shape[3] != d or v.shape != k.shape:
        raise ValueError(f"k and v must be [{B}, {H}, Nk, {d}]; got {k.shape} and {v.shape}")
    nk = k.shape[2]
    out = np.empty_like(q)
    bptr = None; strides = None
    if bias is not None:
        bias = f32(bias, "bias")
        if bias.ndim > 4:
            raise ValueError(f"bias must broadcast to [{B}, {H}, {nq}, {nk}]; got {bias.shape}")
        b4 = bias.reshape((1,) * (4 - bias.ndim) + bias.shape)
        try:
            view = np.broadcast_to(b4, (B, H, nq, nk))
        except ValueError:
            raise ValueError(f"bias must broadcast to [{B}, {H}, {nq}, {nk}]; got {bias.shape}") from None
        if view.strides[3] != 4:  # keys must be contiguous
            b4 = np.ascontiguousarray(np.broadcast_to(b4, b4.shape[:3] + (nk,)))
            view = np.broadcast_to(b4, (B, H, nq, nk))
        bias = b4
        strides = (ctypes.c_int64 * 3)(*(s // 4 for s in view.strides[:3]))
        bptr = fptr(b4)
    mask = None
    if key_mask is not None:
        mask = np.ascontiguousarray(np.asarray(key_mask), dtype=np.uint8)
        if mask.shape != (B, nk):
            raise ValueError(f"key_mask must be [{B}, {nk}]; got {mask.shape}")
    probs = np.empty((B, H, nq, nk), np.float32) if return_probs else None
    check(lib.vidattn_attention(B, H, nq, nk, d, fptr(q), fptr(k), fptr(v), fptr(out),
                                0.0 if scale is None else float(scale), bptr, strides, u8ptr(mask), fptr(probs)))
    return (out, probs) if return_probs else out
