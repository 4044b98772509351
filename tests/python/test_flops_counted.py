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
