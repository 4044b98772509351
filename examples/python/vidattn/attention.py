"""Attention mechanisms on numpy float32 arrays."""
import ctypes
import numpy as np

from ._lib import lib
from ._arrays import f32, fptr, u8ptr
from .errors import InvalidArgument, check


def exact(q, k, v, *, scale=None, bias=None, key_mask=None, return_probs=False):
    """Fused exact attention softmax(scale * q k^T + bias) v.

    q: [B, H, Nq, d]; k, v: [B, H, Nk, d] (float32). bias broadcastable to
    [B, H, Nq, Nk]; key_mask bool [B, Nk], True = attend. Returns [B, H, Nq, d],
    and the probabilities [B, H, Nq, Nk] too when return_probs is set.
    """
    q = f32(q, "q"); k = f32(k, "k"); v = f32(v, "v")
    if q.ndim != 4 or k.ndim != 4 or v.ndim != 4:
        raise InvalidArgument(f"q, k, v must be 4-D [B, H, N, d]; got {q.shape}, {k.shape}, {v.shape}")
    B, H, nq, d = q.shape
    if k.shape[:2] != (B, H) or k.shape[3] != d or v.shape != k.shape:
        raise InvalidArgument(f"k and v must be [{B}, {H}, Nk, {d}]; got {k.shape} and {v.shape}")
    nk = k.shape[2]
    out = np.empty_like(q)
    bptr = None; strides = None
    if bias is not None:
        bias = f32(bias, "bias")
        if bias.ndim > 4:
            raise InvalidArgument(f"bias must broadcast to [{B}, {H}, {nq}, {nk}]; got {bias.shape}")
        b4 = bias.reshape((1,) * (4 - bias.ndim) + bias.shape)
        try:
            view = np.broadcast_to(b4, (B, H, nq, nk))
        except ValueError:
            raise InvalidArgument(f"bias must broadcast to [{B}, {H}, {nq}, {nk}]; got {bias.shape}") from None
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
            raise InvalidArgument(f"key_mask must be [{B}, {nk}]; got {mask.shape}")
    probs = np.empty((B, H, nq, nk), np.float32) if return_probs else None
    check(lib.vidattn_attention(B, H, nq, nk, d, fptr(q), fptr(k), fptr(v), fptr(out),
                                0.0 if scale is None else float(scale), bptr, strides, u8ptr(mask), fptr(probs)))
    return (out, probs) if return_probs else out


def _qkv4(q, k, v):
    q = f32(q, "q"); k = f32(k, "k"); v = f32(v, "v")
    if q.ndim != 4 or q.shape != k.shape or q.shape != v.shape:
        raise InvalidArgument(f"q, k, v must be equal 4-D [B, H, N, d]; got {q.shape}, {k.shape}, {v.shape}")
    return q, k, v


def joint(q, k, v, *, scale=None, key_mask=None):
    """Joint space-time attention (ViViT): exact attention over all tokens. q, k, v: [B, H, N, d]."""
    q, k, v = _qkv4(q, k, v)
    B, H, N, d = q.shape
    mask = None
    if key_mask is not None:
        mask = np.ascontiguousarray(np.asarray(key_mask), dtype=np.uint8)
        if mask.shape != (B, N):
            raise InvalidArgument(f"key_mask must be [{B}, {N}]; got {mask.shape}")
    out = np.empty_like(q)
    check(lib.vidattn_attn_joint(B, H, N, d, fptr(q), fptr(k), fptr(v), fptr(out),
                                 0.0 if scale is None else float(scale), u8ptr(mask)))
    return out


_GROUPING = {"time": 0, "space": 1}
_CLS = {"all_keys": 0, "per_frame": 1}


def divided(q, k, v, frames, *, grouping, cls="all_keys", scale=None, frame_mask=None):
    """Divided space-time attention (TimeSformer), one grouping per call.

    q, k, v: [B, H, 1 + frames*P, d], CLS first, patches frame-major.
    grouping: 'time' (same patch across frames) or 'space' (same frame).
    cls: 'all_keys' (lucidrains / Motionformer: CLS query sees every key, CLS key
    prepended to every group) or 'per_frame' (HF: CLS excluded from time groups,
    one CLS copy per frame in space groups, averaged).
    frame_mask: bool [B, frames], True = real frame ('all_keys' only).
    """
    q, k, v = _qkv4(q, k, v)
    B, H, T, d = q.shape
    frames = int(frames)
    if frames <= 0 or (T - 1) % frames != 0 or T < 2:
        raise InvalidArgument(f"token count {T} is not 1 + frames*patches for frames={frames}")
    if grouping not in _GROUPING:
        raise InvalidArgument(f"grouping must be 'time' or 'space', got {grouping!r}")
    if cls not in _CLS:
        raise InvalidArgument(f"cls must be 'all_keys' or 'per_frame', got {cls!r}")
    mask = None
    if frame_mask is not None:
        mask = np.ascontiguousarray(np.asarray(frame_mask), dtype=np.uint8)
        if mask.shape != (B, frames):
            raise InvalidArgument(f"frame_mask must be [{B}, {frames}]; got {mask.shape}")
    out = np.empty_like(q)
    check(lib.vidattn_attn_divided(B, H, frames, (T - 1) // frames, d, fptr(q), fptr(k), fptr(v), fptr(out),
                                   _GROUPING[grouping], _CLS[cls], 0.0 if scale is None else float(scale),
                                   u8ptr(mask)))
    return out


_APPROX = {None: 0, "none": 0, "nystrom": 1, "orthoformer": 2, "performer": 3}


def trajectory(q, k, v, frames, proj_q_weight, proj_q_bias, proj_kv_weight, proj_kv_bias, *,
               use_original_code=True, approx=None, landmarks=128, orthoformer_start=0,
               performer_projection=None, performer_features=256, performer_seed=0, scale=None):
    """Trajectory attention (Motionformer) up to, not including, the final proj.

    q, k, v: [B, H, 1 + frames*P, d] heads-split qkv output (CLS first, frame-major).
    proj_q_weight [C, C], proj_kv_weight [2C, C] (Linear layout, C = H*d); biases or None.
    approx: None, 'nystrom', 'orthoformer' (greedy landmarks from `orthoformer_start`)
    or 'performer' (FAVOR+ with `performer_projection` [m, d], else one generated from
    `performer_seed`). Returns [B, 1 + frames*P, C].
    """
    from ._lib import TrajectoryParams
    q, k, v = _qkv4(q, k, v)
    B, H, T, d = q.shape
    C = H * d
    frames = int(frames)
    if frames <= 0 or T < 2 or (T - 1) % frames:
        raise InvalidArgument(f"token count {T} is not 1 + frames*patches for frames={frames}")
    if approx not in _APPROX:
        raise InvalidArgument(f"approx must be one of None, 'nystrom', 'orthoformer', 'performer'; got {approx!r}")
    wq, wkv = f32(proj_q_weight, "proj_q_weight"), f32(proj_kv_weight, "proj_kv_weight")
    if wq.shape != (C, C) or wkv.shape != (2 * C, C):
        raise InvalidArgument(f"proj_q_weight must be [{C}, {C}] and proj_kv_weight [{2 * C}, {C}]; "
                         f"got {wq.shape} and {wkv.shape}")
    bq = None if proj_q_bias is None else f32(proj_q_bias, "proj_q_bias")
    bkv = None if proj_kv_bias is None else f32(proj_kv_bias, "proj_kv_bias")
    if (bq is not None and bq.shape != (C,)) or (bkv is not None and bkv.shape != (2 * C,)):
        raise InvalidArgument(f"biases must be [{C}] and [{2 * C}]")
    p = lib.vidattn_trajectory_default_params()
    p.use_original_code = 1 if use_original_code else 0
    p.approx = _APPROX[approx]
    p.landmarks = int(landmarks)
    p.orthoformer_start = int(orthoformer_start)
    p.performer_features = int(performer_features)
    p.performer_seed = int(performer_seed)
    p.scale = 0.0 if scale is None else float(scale)
    proj = None
    if performer_projection is not None:
        proj = f32(performer_projection, "performer_projection")
        if proj.ndim != 2 or proj.shape[1] != d:
            raise InvalidArgument(f"performer_projection must be [m, {d}]; got {proj.shape}")
        p.performer_projection = fptr(proj)
        p.performer_features = proj.shape[0]
    out = np.empty((B, T, C), np.float32)
    check(lib.vidattn_attn_trajectory(B, H, frames, (T - 1) // frames, d, fptr(q), fptr(k), fptr(v),
                                      fptr(wq), fptr(bq), fptr(wkv), fptr(bkv), fptr(out), ctypes.byref(p)))
    return out


def performer_projection(features, d, seed=0):
    """A seeded Gaussian orthogonal random matrix [features, d] for FAVOR+."""
    out = np.empty((int(features), int(d)), np.float32)
    check(lib.vidattn_performer_projection(int(features), int(d), int(seed), fptr(out)))
    return out


def performer(q, k, v, projection, *, eps=1e-4):
    """performer-pytorch's non-causal softmax-kernel attention with the given [m, d] projection.

    q: [B, H, Nq, d]; k, v: [B, H, Nk, d]. Returns [B, H, Nq, d].
    """
    q = f32(q, "q"); k = f32(k, "k"); v = f32(v, "v")
    if q.ndim != 4 or k.ndim != 4 or k.shape != v.shape or q.shape[:2] != k.shape[:2] or q.shape[3] != k.shape[3]:
        raise InvalidArgument(f"q must be [B, H, Nq, d] and k, v [B, H, Nk, d]; got {q.shape}, {k.shape}, {v.shape}")
    B, H, nq, d = q.shape
    proj = f32(projection, "projection")
    if proj.ndim != 2 or proj.shape[1] != d:
        raise InvalidArgument(f"projection must be [m, {d}]; got {proj.shape}")
    out = np.empty_like(q)
    check(lib.vidattn_attn_performer(B, H, nq, k.shape[2], d, fptr(q), fptr(k), fptr(v), fptr(proj),
                                     proj.shape[0], float(eps), fptr(out)))
    return out


_FORMS = {"paper": 0, "implemented": 1}


def fastformer(q, k, v, wq, wk, *, form="paper", scale=None):
    """Fastformer additive attention per head; returns u [B, H, n, d] (before to_out and the
    query residual). wq, wk: [d]. form: 'paper' (global key vector) or 'implemented'
    (FastTimeSformer's scalar per token)."""
    q, k, v = _qkv4(q, k, v)
    B, H, n, d = q.shape
    wq, wk = f32(wq, "wq").reshape(-1), f32(wk, "wk").reshape(-1)
    if wq.shape != (d,) or wk.shape != (d,):
        raise InvalidArgument(f"wq and wk must have {d} entries; got {wq.shape} and {wk.shape}")
    if form not in _FORMS:
        raise InvalidArgument(f"form must be 'paper' or 'implemented', got {form!r}")
    out = np.empty_like(q)
    check(lib.vidattn_attn_fastformer(B, H, n, d, fptr(q), fptr(k), fptr(v), fptr(wq), fptr(wk), _FORMS[form],
                                      0.0 if scale is None else float(scale), fptr(out)))
    return out


def window3d(x, qkv_weight, qkv_bias, proj_weight, proj_bias, relative_position_table, *, heads, window,
             shift=(0, 0, 0)):
    """Video Swin shifted-window attention (torchvision ShiftedWindowAttention3d.forward).

    x: [B, T, H, W, C] (layer-normed). window, shift: configured (t, h, w) sizes; clamped to
    the input as the reference does. Returns [B, T, H, W, C]."""
    x = f32(x, "x")
    if x.ndim != 5:
        raise InvalidArgument(f"x must be [B, T, H, W, C]; got {x.shape}")
    B, T, H, W, C = x.shape
    qw, pw = f32(qkv_weight, "qkv_weight"), f32(proj_weight, "proj_weight")
    if qw.shape != (3 * C, C) or pw.shape != (C, C):
        raise InvalidArgument(f"qkv_weight must be [{3 * C}, {C}] and proj_weight [{C}, {C}]; got {qw.shape}, {pw.shape}")
    qb = None if qkv_bias is None else f32(qkv_bias, "qkv_bias")
    pb = None if proj_bias is None else f32(proj_bias, "proj_bias")
    if (qb is not None and qb.shape != (3 * C,)) or (pb is not None and pb.shape != (C,)):
        raise InvalidArgument("qkv_bias must be [3C] and proj_bias [C]")
    win = [int(v) for v in window]
    rows = (2 * win[0] - 1) * (2 * win[1] - 1) * (2 * win[2] - 1)
    table = f32(relative_position_table, "relative_position_table")
    if table.shape != (rows, heads):
        raise InvalidArgument(f"relative_position_table must be [{rows}, {heads}]; got {table.shape}")
    y = np.empty_like(x)
    w3 = (ctypes.c_int64 * 3)(*win)
    s3 = (ctypes.c_int64 * 3)(*[int(v) for v in shift])
    check(lib.vidattn_attn_window3d(B, T, H, W, C, int(heads), w3, s3, fptr(x), fptr(qw), fptr(qb), fptr(pw),
                                    fptr(pb), fptr(table), fptr(y)))
    return y


def patch_merging(x, norm_weight, norm_bias, reduction_weight, *, eps=1e-5):
    """Swin patch merging: [B, T, H, W, C] -> [B, T, ceil(H/2), ceil(W/2), 2C]."""
    x = f32(x, "x")
    if x.ndim != 5:
        raise InvalidArgument(f"x must be [B, T, H, W, C]; got {x.shape}")
    B, T, H, W, C = x.shape
    r = f32(reduction_weight, "reduction_weight")
    if r.shape != (2 * C, 4 * C):
        raise InvalidArgument(f"reduction_weight must be [{2 * C}, {4 * C}]; got {r.shape}")
    nw = None if norm_weight is None else f32(norm_weight, "norm_weight")
    nb = None if norm_bias is None else f32(norm_bias, "norm_bias")
    y = np.empty((B, T, (H + 1) // 2, (W + 1) // 2, 2 * C), np.float32)
    check(lib.vidattn_patch_merging(B, T, H, W, C, fptr(x), fptr(nw), fptr(nb), fptr(r), float(eps), fptr(y)))
    return y


def _landmark(kind, q, k, v, landmarks, start):
    q, k, v = _qkv4(q, k, v)
    B, H, n, d = q.shape
    out = np.empty_like(q)
    check(lib.vidattn_attn_landmark(kind, B, H, n, d, fptr(q), fptr(k), fptr(v), int(landmarks), int(start),
                                    fptr(out)))
    return out


def nystrom(q, k, v, landmarks=128):
    """Nystrom attention over all keys (Motionformer's helper with one frame): contiguous
    segment-mean landmarks, 6 Newton-Schulz steps. q, k, v: [B, H, n, d]."""
    return _landmark(1, q, k, v, landmarks, 0)


def orthoformer(q, k, v, landmarks=128, start=0):
    """Orthoformer attention over all keys: greedy max-min orthogonal landmarks from `start`."""
    return _landmark(2, q, k, v, landmarks, start)


def temporal_aim(z, qkv_weight, qkv_bias, proj_weight, proj_bias, temporal_table, *, heads):
    """AIM temporal attention over the frames of each group: z [G, T', C] -> [G, T', C]."""
    z = f32(z, "z")
    if z.ndim != 3:
        raise InvalidArgument(f"z must be [groups, frames, C]; got {z.shape}")
    G, T, C = z.shape
    qw, pw, tt = f32(qkv_weight, "qkv_weight"), f32(proj_weight, "proj_weight"), f32(temporal_table, "temporal_table")
    if qw.shape != (3 * C, C) or pw.shape != (C, C) or tt.shape != (2 * T - 1, heads):
        raise InvalidArgument(f"expected qkv_weight [{3 * C}, {C}], proj_weight [{C}, {C}], temporal_table "
                         f"[{2 * T - 1}, {heads}]; got {qw.shape}, {pw.shape}, {tt.shape}")
    qb = None if qkv_bias is None else f32(qkv_bias, "qkv_bias")
    pb = None if proj_bias is None else f32(proj_bias, "proj_bias")
    y = np.empty_like(z)
    check(lib.vidattn_attn_temporal_aim(G, T, C, int(heads), fptr(z), fptr(qw), fptr(qb), fptr(pw), fptr(pb),
                                        fptr(tt), fptr(y)))
    return y
