"""FLOP counts by execution: numpy implementations of the mechanisms whose every product goes
through a counting matmul, checked against vidattn's own outputs (so the counted products are
the ones the mechanism needs), then their multiply-adds compared with `vidattn.flops`. The
counting rule is docs/attention.md's: multiply-adds of the matrix products (Q·Kᵀ, A·V and their
analogues); elementwise products, norms, softmax and scalings are not counted. Exact equality."""
import numpy as np
import pytest

import vidattn
from vidattn import attention


class Counter:
    def __init__(self):
        self.macs = 0

    def mm(self, a, b):
        """a @ b (batched), counting prod(result) · the contracted length."""
        out = np.matmul(a, b)
        self.macs += out.size * a.shape[-1]
        return out


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def divided_counted(c, q, k, v, F, grouping):
    """lucidrains' scheme: patch queries over {CLS} ∪ their group, CLS over all tokens."""
    B, H, T, d = q.shape
    P = (T - 1) // F
    s = d ** -0.5
    out = np.zeros_like(q)
    idx = np.arange(1, T).reshape(F, P)                      # token of (frame, patch)
    groups = idx.T if grouping == "time" else idx              # time: per patch, its F frames
    for g in groups:
        keys = np.concatenate([[0], g])
        a = softmax(c.mm(q[:, :, g], np.swapaxes(k[:, :, keys], -1, -2)) * s)
        out[:, :, g] = c.mm(a, v[:, :, keys])
    a = softmax(c.mm(q[:, :, :1], np.swapaxes(k, -1, -2)) * s)
    out[:, :, :1] = c.mm(a, v)
    return out


@pytest.mark.parametrize("grouping,mech", [("time", "divided_time"), ("space", "divided_space")])
def test_divided(grouping, mech):
    B, H, F, P, d = 1, 2, 3, 5, 8
    T = 1 + F * P
    rng = np.random.default_rng(1)
    q, k, v = (rng.standard_normal((B, H, T, d)).astype(np.float32) for _ in range(3))
    c = Counter()
    want = divided_counted(c, q.astype(np.float64), k.astype(np.float64), v.astype(np.float64), F, grouping)
    np.testing.assert_allclose(attention.divided(q, k, v, F, grouping=grouping, cls="all_keys"), want, atol=1e-5)
    f = vidattn.flops(mech, channels=H * d, heads=H, frames=F, patches=P)
    assert f["attention"] == c.macs
    assert f["total"] - f["attention"] == 4 * (H * d) ** 2 * T        # qkv and proj on every token


def fastformer_counted(c, q, k, v, wq, wk):
    s = q.shape[-1] ** -0.5
    alpha = softmax(c.mm(q, wq) * s)                          # [B, H, n]
    qbar = c.mm(alpha[..., None, :], q)[..., 0, :]            # [B, H, d]
    p = qbar[:, :, None] * k
    beta = softmax(c.mm(p, wk) * s)
    kbar = c.mm(beta[..., None, :], p)[..., 0, :]
    return kbar[:, :, None] * v


def test_fastformer():
    B, H, n, d = 1, 3, 11, 8
    rng = np.random.default_rng(2)
    q, k, v = (rng.standard_normal((B, H, n, d)).astype(np.float32) for _ in range(3))
    wq, wk = rng.standard_normal(d).astype(np.float32), rng.standard_normal(d).astype(np.float32)
    c = Counter()
    want = fastformer_counted(c, *(x.astype(np.float64) for x in (q, k, v, wq, wk)))
    np.testing.assert_allclose(attention.fastformer(q, k, v, wq, wk, form="paper"), want, atol=1e-5)
    f = vidattn.flops("fastformer", channels=H * d, heads=H, tokens=n)
    assert f["attention"] == c.macs


def performer_counted(c, q, k, v, omega, eps):
    d, m = q.shape[-1], omega.shape[0]
    s4 = d ** -0.25

    def features(x, is_query):
        xs = x * s4
        u = c.mm(xs, omega.T)
        h = 0.5 * (xs * xs).sum(-1, keepdims=True)
        mx = u.max(-1, keepdims=True) if is_query else u.max(axis=(-2, -1), keepdims=True)
        return m ** -0.5 * (np.exp(u - h - mx) + eps)
    pq, pk = features(q, True), features(k, False)
    ctx = c.mm(np.swapaxes(pk, -1, -2), v)
    num = c.mm(pq, ctx)
    den = c.mm(pq, pk.sum(-2)[..., None])
    return num / den


def test_performer():
    B, H, n, d, m = 1, 2, 13, 8, 16
    rng = np.random.default_rng(3)
    q, k, v = (rng.standard_normal((B, H, n, d)).astype(np.float32) for _ in range(3))
    omega = attention.performer_projection(m, d, seed=1)
    c = Counter()
    want = performer_counted(c, *(x.astype(np.float64) for x in (q, k, v, omega)), 1e-4)
    np.testing.assert_allclose(attention.performer(q, k, v, omega, eps=1e-4), want, atol=1e-4, rtol=1e-4)
    f = vidattn.flops("performer", channels=H * d, heads=H, tokens=n, landmarks=m)
    assert f["attention"] == c.macs


def newton_schulz_pinv(c, k2):
    """Nyström's pseudo-inverse: six Newton–Schulz steps from K2ᵀ / max column sum."""
    z, eye = k2.T / k2.sum(0).max(), np.eye(k2.shape[0])
    for _ in range(6):
        kz = c.mm(k2, z)
        t = c.mm(kz, 7 * eye - kz)
        t = c.mm(kz, 15 * eye - t)
        z = 0.25 * c.mm(z, 13 * eye - t)
    return z


def nystrom_counted(c, q, k, v, L):
    """Nyström over one sequence (docs/attention.md): landmarks the means of contiguous segments
    (the last ones one token longer when L does not divide n), three softmax kernels, the middle
    one's pseudo-inverse by six Newton–Schulz steps from K2ᵀ / max column sum."""
    n, d = q.shape
    qs = q / np.sqrt(d)
    segs, extra = divmod(n, L)
    lens = [segs] * (L - extra) + [segs + 1] * extra
    bounds = np.cumsum([0] + lens)
    lq = np.stack([qs[bounds[i]:bounds[i + 1]].mean(0) for i in range(L)])
    lk = np.stack([k[bounds[i]:bounds[i + 1]].mean(0) for i in range(L)])
    k1 = softmax(c.mm(qs, lk.T))
    k2 = softmax(c.mm(lq, lk.T))
    k3 = softmax(c.mm(lq, k.T))
    m = c.mm(k3, v)
    return c.mm(k1, c.mm(newton_schulz_pinv(c, k2), m))


def orthoformer_counted(c, q, k, v, L, start):
    """Orthoformer over one sequence: greedy landmarks (each next query the one whose largest
    |cosine| to those chosen is smallest, from `start`), taken in token order, no inverse."""
    n, d = q.shape
    qs, ks = q * d ** -0.25, k * d ** -0.25
    u = qs / np.maximum(np.linalg.norm(qs, axis=1, keepdims=True), 1e-12)
    best = np.full(n, -np.inf)
    chosen, last = {start}, start
    for _ in range(L - 1):
        best = np.maximum(best, np.abs(c.mm(u, u[last])))
        val = np.where([i in chosen for i in range(n)], 10.0, best)
        last = int(np.argmin(val))
        chosen.add(last)
    lq = qs[sorted(chosen)]
    k1 = softmax(c.mm(qs, lq.T))
    m = c.mm(softmax(c.mm(lq, ks.T)), v)
    return c.mm(k1, m)


@pytest.mark.parametrize("kind", ["nystrom", "orthoformer"])
def test_landmark_mechanisms(kind):
    B, H, n, d, L = 1, 2, 23, 8, 5
    rng = np.random.default_rng(4)
    q, k, v = (rng.standard_normal((B, H, n, d)).astype(np.float32) for _ in range(3))
    c = Counter()
    want = np.empty((B, H, n, d))
    for h in range(H):
        args = [x[0, h].astype(np.float64) for x in (q, k, v)]
        want[0, h] = nystrom_counted(c, *args, L) if kind == "nystrom" else orthoformer_counted(c, *args, L, 2)
    got = attention.nystrom(q, k, v, landmarks=L) if kind == "nystrom" else attention.orthoformer(q, k, v, L, start=2)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-3)
    f = vidattn.flops(kind, channels=H * d, heads=H, tokens=n, landmarks=L)
    assert f["attention"] == c.macs


def trajectory_counted(c, q, k, v, F, wq, wkv, approx, L, omega=None):
    """Trajectory attention with an approximated spatial step (docs/attention.md), one clip:
    CLS over all tokens; per head the factors of step 2 give Ỹ [N, F, d]; proj_q of the own
    frame's Ỹ, proj_kv of all of them, a softmax over the F frames pooling the unprojected Ỹ
    (use_original_code)."""
    _, H, T, d = q.shape
    N, C = T - 1, H * d
    P = N // F
    s = d ** -0.5
    out = np.zeros((T, C))
    traj = np.zeros((N, F, C))
    for h in range(H):
        qh, kh, vh = q[0, h], k[0, h], v[0, h]
        out[0, h * d:(h + 1) * d] = c.mm(softmax(c.mm(qh[:1], kh.T) * s), vh)[0]
        qp, kp, vp = qh[1:], kh[1:], vh[1:]
        frames = [slice(f * P, (f + 1) * P) for f in range(F)]
        if approx == "nystrom":
            qs = qp * s
            order = [f * P + p for p in range(P) for f in range(F)]          # patch-major
            segs, extra = divmod(N, L)
            bounds = np.cumsum([0] + [segs] * (L - extra) + [segs + 1] * extra)
            lq = np.stack([qs[order[bounds[i]:bounds[i + 1]]].mean(0) for i in range(L)])
            lk = np.stack([kp[order[bounds[i]:bounds[i + 1]]].mean(0) for i in range(L)])
            w = softmax(c.mm(qs, lk.T))
            k2 = softmax(c.mm(lq, lk.T))
            m = np.concatenate([c.mm(softmax(c.mm(lq, kp[fr].T)), vp[fr]) for fr in frames], axis=1)
            y = c.mm(w, c.mm(newton_schulz_pinv(c, k2), m)).reshape(N, F, d)
        elif approx == "orthoformer":
            qs, ks = qp * d ** -0.25, kp * d ** -0.25
            u = qs / np.maximum(np.linalg.norm(qs, axis=1, keepdims=True), 1e-12)
            best, chosen, last = np.full(N, -np.inf), {0}, 0
            for _ in range(L - 1):
                best = np.maximum(best, np.abs(c.mm(u, u[last])))
                last = int(np.argmin(np.where([i in chosen for i in range(N)], 10.0, best)))
                chosen.add(last)
            lq = qs[sorted(chosen)]
            w = softmax(c.mm(qs, lq.T))
            m = np.concatenate([c.mm(softmax(c.mm(lq, ks[fr].T)), vp[fr]) for fr in frames], axis=1)
            y = c.mm(w, m).reshape(N, F, d)
        else:
            mf = omega.shape[0]

            def features(x, is_query):
                xs = x * d ** -0.25
                uu = c.mm(xs, omega.T)
                mx = uu.max(-1, keepdims=True) if is_query else uu.max()
                return mf ** -0.5 * (np.exp(uu - 0.5 * (xs * xs).sum(-1, keepdims=True) - mx) + 1e-6)
            w, pk = features(qp, True), features(kp, False)
            m = np.concatenate([c.mm(pk[fr].T, vp[fr]) for fr in frames], axis=1)
            zs = np.stack([pk[fr].sum(0) for fr in frames], axis=1)        # [mf, F]
            y = (c.mm(w, m).reshape(N, F, d)) / c.mm(w, zs)[..., None]
        traj[:, :, h * d:(h + 1) * d] = y
    own = traj[np.arange(N), np.arange(N) // P]                              # [N, C]
    tq = c.mm(own, wq.T)
    tkv = c.mm(traj, wkv.T)                                                   # [N, F, 2C]
    for h in range(H):
        hs = slice(h * d, (h + 1) * d)
        a = softmax(c.mm(tq[:, None, hs], np.swapaxes(tkv[:, :, hs], -1, -2))[:, 0] * s)   # [N, F]
        out[1:, hs] = c.mm(a[:, None, :], traj[:, :, hs])[:, 0]
    return out


@pytest.mark.parametrize("approx", ["nystrom", "orthoformer", "performer"])
def test_trajectory_approximations(approx):
    H, F, P, d, L = 2, 3, 6, 8, 4
    C, T, N = H * d, 1 + F * P, F * P
    rng = np.random.default_rng(5)
    q, k, v = (rng.standard_normal((1, H, T, d)).astype(np.float32) for _ in range(3))
    wq = (rng.standard_normal((C, C)) * C ** -0.5).astype(np.float32)
    wkv = (rng.standard_normal((2 * C, C)) * C ** -0.5).astype(np.float32)
    omega = attention.performer_projection(L, d, seed=2) if approx == "performer" else None
    c = Counter()
    want = trajectory_counted(c, *(x.astype(np.float64) for x in (q, k, v)), F, wq.astype(np.float64),
                              wkv.astype(np.float64), approx, L, None if omega is None else omega.astype(np.float64))
    got = attention.trajectory(q, k, v, F, wq, None, wkv, None, approx=approx, landmarks=L,
                               performer_projection=omega)
    np.testing.assert_allclose(got[0], want, atol=1e-4, rtol=1e-3)
    f = vidattn.flops(f"trajectory_{approx}", channels=C, heads=H, frames=F, patches=P, landmarks=L)
    projections = C * C * N + 2 * C * C * N * F                               # proj_q, proj_kv
    assert f["attention"] == c.macs - projections
    assert f["total"] == c.macs + 4 * C * C * T                               # + qkv and proj
