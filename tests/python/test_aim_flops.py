"""AIM temporal attention against a numpy transcription of docs/models.md, and the
MAC counters against hand-computed formulas. Tolerance 1e-5 absolute (fp32)."""
import numpy as np
import pytest

import vidattn
from vidattn import attention


def aim_temporal_ref(z, wqkv, bqkv, wp, bp, table, heads):
    G, T, C = z.shape
    d = C // heads
    qkv = z.astype(np.float64) @ wqkv.T + bqkv
    q, k, v = (qkv[..., i * C:(i + 1) * C].reshape(G, T, heads, d).transpose(0, 2, 1, 3) for i in range(3))
    i, j = np.meshgrid(np.arange(T), np.arange(T), indexing="ij")
    bias = table[i - j + T - 1].transpose(2, 0, 1)                    # [heads, T, T]
    s = q @ k.transpose(0, 1, 3, 2) * d ** -0.5 + bias
    s = np.exp(s - s.max(-1, keepdims=True))
    o = (s / s.sum(-1, keepdims=True)) @ v
    return o.transpose(0, 2, 1, 3).reshape(G, T, C) @ wp.T + bp


@pytest.mark.parametrize("G,T,C,heads", [(6, 8, 32, 2), (3, 16, 48, 3), (2, 1, 16, 1)])
def test_temporal_aim(G, T, C, heads):
    rng = np.random.default_rng(G * T)
    z = rng.standard_normal((G, T, C), dtype=np.float32)
    wqkv = rng.standard_normal((3 * C, C), dtype=np.float32) * C ** -0.5
    bqkv = rng.standard_normal(3 * C, dtype=np.float32) * 0.1
    wp = rng.standard_normal((C, C), dtype=np.float32) * C ** -0.5
    bp = rng.standard_normal(C, dtype=np.float32) * 0.1
    table = rng.standard_normal((2 * T - 1, heads), dtype=np.float32)
    got = attention.temporal_aim(z, wqkv, bqkv, wp, bp, table, heads=heads)
    np.testing.assert_allclose(got, aim_temporal_ref(z, wqkv, bqkv, wp, bp, table, heads), atol=1e-5, rtol=0)


def test_flops_formulas():
    C, F, P = 768, 8, 196
    N, T = F * P, 1 + F * P
    f = vidattn.flops("joint", channels=C, frames=F, patches=P)
    assert f["attention"] == 2 * C * T * T
    assert f["total"] == 2 * C * T * T + 4 * C * C * T
    f = vidattn.flops("divided_time_hf", channels=C, frames=F, patches=P)
    assert f["attention"] == 2 * C * N * F
    f = vidattn.flops("divided_space_hf", channels=C, frames=F, patches=P)
    assert f["attention"] == 2 * C * F * (1 + P) ** 2
    f = vidattn.flops("trajectory", channels=C, frames=F, patches=P)
    assert f["attention"] == 2 * C * T + 2 * C * N * N + 2 * C * N * F
    assert f["total"] - f["attention"] == 4 * C * C * T + C * C * N + 2 * C * C * N * F


def test_flops_aim_block_matches_the_reference_formula():
    # AIM Block.flops() for a temporal block at stage 1 of Swin-B (C=128, 56x56, T'=16, ws=7):
    # nW * (2*C*ws^2*T^2) + nW * (2*C*ws^4*T) with nW = 56*56/49.
    C, H, W, T, ws = 128, 56, 56, 16, 7
    nW = H * W / ws ** 2
    want = nW * 2 * C * ws * ws * T * T + nW * 2 * C * ws ** 4 * T
    got = vidattn.flops("aim_block", channels=C, heads=4, frames=T, grid=(T, H, W), window=(1, ws, ws))
    assert got["attention"] == pytest.approx(want, rel=1e-12)
    t = vidattn.flops("temporal_aim", channels=C, heads=4, frames=T, grid=(T, H, W))
    assert t["attention"] == 2 * C * H * W * T * T


def test_flops_window3d_counts_padded_windows():
    f = vidattn.flops("window3d", channels=96, heads=3, window=(8, 7, 7), grid=(8, 50, 50))
    rows = 8 * 56 * 56                      # 50 padded to 56
    assert f["attention"] == 2 * 96 * rows * 8 * 7 * 7


def test_flops_errors():
    with pytest.raises(ValueError, match="unknown mechanism"):
        vidattn.flops("linformer")
    with pytest.raises(vidattn.InvalidArgument, match="multiple of heads"):
        vidattn.flops("joint", channels=100, heads=12)
    with pytest.raises(TypeError):
        vidattn.flops("joint", depth=12)
