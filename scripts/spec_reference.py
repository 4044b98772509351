"""Torch re-implementations, written from shared/spec/REFERENCE.md, of the reference
systems that have no installable package (Motionformer's trajectory attention and its
approximation helpers). Used only by scripts/make_fixtures.py to make golden outputs."""
import math

import torch


def _softmax(x, dim=-1):
    return torch.softmax(x, dim=dim)


def spatial_exact(q, k, v, F, P):
    """§1.4 step 4: q, k, v [B', N, d] (unscaled) -> Ytilde [B', N, F, d]."""
    d = q.shape[-1]
    logits = (q * d ** -0.5) @ k.transpose(-1, -2)                    # [B', N, N]
    a = _softmax(logits.reshape(*logits.shape[:2], F, P))           # per frame over P
    return torch.einsum("bnfp,bfpd->bnfd", a, v.reshape(v.shape[0], F, P, d))


def _segment_means(x, L, F, P):
    """Nyström spatial landmarks: patch-major reorder, L contiguous (uneven) segments."""
    Bp, N, d = x.shape
    x = x.reshape(Bp, F, P, d).transpose(1, 2).reshape(Bp, N, d)   # (f, p) -> (p, f)
    if N % L == 0:
        return x.reshape(Bp, L, N // L, d).mean(2)
    segs = N // L
    n_short = (segs + 1) * L - N
    a = x[:, : n_short * segs].reshape(Bp, n_short, segs, d).mean(2)
    b = x[:, n_short * segs:].reshape(Bp, L - n_short, segs + 1, d).mean(2)
    return torch.cat([a, b], dim=1)


def iterative_inv(K, n_iter=6):
    """§1.5.1 step 4, init 'exact': Z0 = K^T / max column sum, per batch element."""
    I = torch.eye(K.shape[-1], dtype=K.dtype)
    Z = K.transpose(-1, -2) / K.sum(dim=-2).amax(dim=-1)[:, None, None]
    for _ in range(n_iter):
        KZ = K @ Z
        Z = 0.25 * Z @ (13 * I - KZ @ (15 * I - KZ @ (7 * I - KZ)))
    return Z


def spatial_nystrom(q, k, v, F, P, L):
    d = q.shape[-1]
    q = q * d ** -0.5
    lq, lk = _segment_means(q, L, F, P), _segment_means(k, L, F, P)
    K1 = _softmax(q @ lk.transpose(-1, -2))                        # [B', N, L]
    K2 = _softmax(lq @ lk.transpose(-1, -2))                       # [B', L, L]
    kf, vf = k.reshape(k.shape[0], F, P, d), v.reshape(v.shape[0], F, P, d)
    K3 = _softmax(torch.einsum("bld,bfpd->blfp", lq, kf))          # [B', L, F, P]
    M = torch.einsum("blfp,bfpd->blfd", K3, vf)
    W = K1 @ iterative_inv(K2)
    return torch.einsum("bnl,blfd->bnfd", W, M)


def orthogonal_landmarks(q, L, start):
    """§1.5.2 step 1: greedy max-min |cosine| selection from scaled q, given start index."""
    u = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    Bp, N, _ = q.shape
    out = []
    for b in range(Bp):
        selected = torch.zeros(N, dtype=torch.bool)
        selected[start] = True
        last = start
        cols = []
        for _ in range(L - 1):
            cols.append((u[b] @ u[b, last]).abs())
            c = torch.stack(cols, dim=1).max(dim=1).values.clone()
            c[selected] = 10.0
            last = int(torch.argmin(c))
            selected[last] = True
        out.append(q[b][selected])                                   # ascending token order
    return torch.stack(out)


def spatial_orthoformer(q, k, v, F, P, L, start):
    d = q.shape[-1]
    q, k = q * d ** -0.25, k * d ** -0.25
    lm = orthogonal_landmarks(q, L, start)
    K1 = _softmax(q @ lm.transpose(-1, -2))
    kf, vf = k.reshape(k.shape[0], F, P, d), v.reshape(v.shape[0], F, P, d)
    K2 = _softmax(torch.einsum("bld,bfpd->blfp", lm, kf))
    return torch.einsum("bnl,blfd->bnfd", K1, torch.einsum("blfp,bfpd->blfd", K2, vf))


def favor_features(x, omega, is_query, eps=1e-6):
    """§1.5.3 softmax_kernel_transformation on x [B', n, d] with Ω [m, d]."""
    d, m = x.shape[-1], omega.shape[0]
    xs = x * d ** -0.25
    U = xs @ omega.T
    h = (xs ** 2).sum(-1, keepdim=True) / 2
    mx = U.amax(dim=-1, keepdim=True) if is_query else U.amax(dim=(-1, -2), keepdim=True)
    return m ** -0.5 * (torch.exp(U - h - mx) + eps)


def spatial_performer(q, k, v, F, P, omega):
    d = q.shape[-1]
    pq, pk = favor_features(q, omega, True), favor_features(k, omega, False)
    pk = pk.reshape(pk.shape[0], F, P, -1)
    vf = v.reshape(v.shape[0], F, P, d)
    KV = torch.einsum("bfpm,bfpd->bfmd", pk, vf)
    z = pk.sum(2)                                                    # [B', F, m]
    num = torch.einsum("bnm,bfmd->bnfd", pq, KV)
    den = torch.einsum("bnm,bfm->bnf", pq, z)
    return num / den[..., None]


def trajectory_attention(q, k, v, Wq, bq, Wkv, bkv, F, P, use_original_code=True, spatial=spatial_exact):
    """§1.4 on heads-split q, k, v [B, H, 1+N, d]; returns [B, 1+N, C] before `proj`."""
    B, H, T, d = q.shape
    N, C = T - 1, H * d
    scale = d ** -0.5
    cls_out = _softmax((q[:, :, :1] * scale) @ k.transpose(-1, -2)) @ v            # [B, H, 1, d]
    flat = lambda t: t[:, :, 1:].reshape(B * H, N, d)
    Y = spatial(flat(q), flat(k), flat(v), F, P).reshape(B, H, N, F, d)
    Ym = Y.permute(0, 2, 3, 1, 4).reshape(B, N, F, C)                               # merge heads
    frame = torch.arange(N) // P
    yhat = Ym[:, torch.arange(N), frame]                                            # [B, N, C]
    q2 = (yhat @ Wq.T + bq).reshape(B, N, H, d).transpose(1, 2) * scale              # [B, H, N, d]
    kv2 = Ym @ Wkv.T + bkv                                                          # [B, N, F, 2C]
    k2 = kv2[..., :C].reshape(B, N, F, H, d).permute(0, 3, 1, 2, 4)
    v2 = kv2[..., C:].reshape(B, N, F, H, d).permute(0, 3, 1, 2, 4)
    a = _softmax(torch.einsum("bhnd,bhnfd->bhnf", q2, k2))
    vals = Y if use_original_code else v2
    out = torch.einsum("bhnf,bhnfd->bhnd", a, vals)
    out = torch.cat([cls_out, out], dim=2)                                          # [B, H, 1+N, d]
    return out.transpose(1, 2).reshape(B, T, C)
