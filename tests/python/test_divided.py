"""Divided space-time attention: the lucidrains scheme against timesformer-pytorch's own
Attention module (fixtures), the HF per-frame-CLS scheme against a numpy transcription of
docs/models.md Tolerance 1e-5 absolute (fp32)."""
from pathlib import Path

import numpy as np
import pytest

from vidattn import attention
import vidattn

FIX = np.load(Path(__file__).resolve().parents[1] / "fixtures" / "divided.npz")


def test_lucidrains_time_and_space():
    q, k, v, F = FIX["q"], FIX["k"], FIX["v"], int(FIX["frames"])
    np.testing.assert_allclose(attention.divided(q, k, v, F, grouping="time"), FIX["time_out"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(attention.divided(q, k, v, F, grouping="space"), FIX["space_out"], atol=1e-5, rtol=0)


def test_lucidrains_frame_mask():
    q, k, v, F, m = FIX["q"], FIX["k"], FIX["v"], int(FIX["frames"]), FIX["frame_mask"]
    got = attention.divided(q, k, v, F, grouping="time", frame_mask=m)
    np.testing.assert_allclose(got, FIX["time_masked_out"], atol=1e-5, rtol=0)
    got = attention.divided(q, k, v, F, grouping="space", frame_mask=m)
    np.testing.assert_allclose(got, FIX["space_masked_out"], atol=1e-5, rtol=0)


def softmax_attn(q, k, v, scale):
    s = q.astype(np.float64) @ k.astype(np.float64).swapaxes(-1, -2) * scale
    s -= s.max(-1, keepdims=True)
    p = np.exp(s)
    return (p / p.sum(-1, keepdims=True)) @ v


def hf_reference(q, k, v, F, grouping):
    B, H, T, d = q.shape
    P = (T - 1) // F
    out = np.zeros((B, H, T, d))
    pq, pk, pv = (x[:, :, 1:].reshape(B, H, F, P, d) for x in (q, k, v))
    if grouping == "time":
        tq, tk, tv = (x.transpose(0, 1, 3, 2, 4) for x in (pq, pk, pv))  # [B, H, P, F, d]
        o = softmax_attn(tq, tk, tv, d ** -0.5).transpose(0, 1, 3, 2, 4)
        out[:, :, 1:] = o.reshape(B, H, F * P, d)
    else:
        cls = lambda x: np.broadcast_to(x[:, :, :1, None], (B, H, F, 1, d))
        sq, sk, sv = (np.concatenate([cls(x), px], axis=3) for x, px in ((q, pq), (k, pk), (v, pv)))
        o = softmax_attn(sq, sk, sv, d ** -0.5)  # [B, H, F, 1+P, d]
        out[:, :, 0] = o[:, :, :, 0].mean(axis=2)
        out[:, :, 1:] = o[:, :, :, 1:].reshape(B, H, F * P, d)
    return out


@pytest.mark.parametrize("grouping", ["time", "space"])
@pytest.mark.parametrize("B,H,F,P,d", [(2, 3, 4, 15, 24), (1, 2, 8, 49, 64), (1, 1, 1, 1, 16), (1, 2, 16, 4, 40)])
def test_hf_per_frame_scheme(grouping, B, H, F, P, d):
    rng = np.random.default_rng(F * 100 + P)
    q, k, v = (rng.standard_normal((B, H, 1 + F * P, d), dtype=np.float32) for _ in range(3))
    got = attention.divided(q, k, v, F, grouping=grouping, cls="per_frame")
    np.testing.assert_allclose(got, hf_reference(q, k, v, F, grouping), atol=1e-5, rtol=0)


def test_divided_errors():
    q = np.zeros((1, 2, 1 + 4 * 3, 8), np.float32)
    with pytest.raises(ValueError, match="frames"):
        attention.divided(q, q, q, 5, grouping="time")
    with pytest.raises(ValueError, match="grouping"):
        attention.divided(q, q, q, 4, grouping="diagonal")
    with pytest.raises(vidattn.Unsupported, match="frame masks"):
        attention.divided(q, q, q, 4, grouping="time", cls="per_frame", frame_mask=np.ones((1, 4), bool))


def test_joint_is_exact_attention():
    rng = np.random.default_rng(3)
    q, k, v = (rng.standard_normal((2, 3, 50, 32), dtype=np.float32) for _ in range(3))
    np.testing.assert_allclose(attention.joint(q, k, v), softmax_attn(q, k, v, 32 ** -0.5), atol=1e-5, rtol=0)
