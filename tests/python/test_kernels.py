"""Kernels through the Python binding, against PyTorch golden outputs
(tests/fixtures/kernels.npz, made by scripts/make_fixtures.py) and numpy.

Tolerances (fp32): 1e-5 absolute for attention, softmax and LayerNorm,
2e-6 for elementwise activations, 1e-4 for GEMMs with K <= 800."""
from pathlib import Path

import numpy as np
import pytest

import vidattn
from vidattn import attention, kernels

FIX = np.load(Path(__file__).resolve().parents[1] / "fixtures" / "kernels.npz")


def test_version_and_threads():
    assert vidattn.version().count(".") == 2
    n = vidattn.get_num_threads()
    vidattn.set_num_threads(1)
    assert vidattn.get_num_threads() == 1
    with pytest.raises(vidattn.InvalidArgument, match="thread count"):
        vidattn.set_num_threads(0)
    vidattn.set_num_threads(n)


def test_sdpa_matches_torch():
    out = attention.exact(FIX["sdpa_q"], FIX["sdpa_k"], FIX["sdpa_v"])
    np.testing.assert_allclose(out, FIX["sdpa_out"], atol=1e-5, rtol=0)
    out = attention.exact(FIX["sdpa_q"], FIX["sdpa_k"], FIX["sdpa_v"], scale=0.05)
    np.testing.assert_allclose(out, FIX["sdpa_scale_out"], atol=1e-5, rtol=0)


def test_sdpa_bias_mask_probs_match_torch():
    out, probs = attention.exact(FIX["sdpa_q"], FIX["sdpa_k"], FIX["sdpa_v"], bias=FIX["sdpa_bias"],
                                 key_mask=FIX["sdpa_mask"], return_probs=True)
    np.testing.assert_allclose(out, FIX["sdpa_bias_mask_out"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(probs, FIX["sdpa_bias_mask_probs"], atol=1e-6, rtol=0)


def naive_attention(q, k, v, scale, bias=None, mask=None):
    s = np.einsum("bhid,bhjd->bhij", q.astype(np.float64), k.astype(np.float64)) * scale
    if bias is not None:
        s = s + bias
    if mask is not None:
        s = np.where(mask[:, None, None, :], s, -np.inf)
    s = s - s.max(-1, keepdims=True)
    p = np.exp(s)
    p /= p.sum(-1, keepdims=True)
    return np.einsum("bhij,bhjd->bhid", p, v.astype(np.float64))


@pytest.mark.parametrize("B,H,nq,nk,d", [(1, 1, 1, 1, 1), (1, 2, 8, 8, 64), (2, 1, 97, 193, 33),
                                         (1, 3, 200, 7, 16), (1, 1, 5, 500, 100)])
def test_attention_shapes_against_numpy(B, H, nq, nk, d):
    rng = np.random.default_rng(nq * 1000 + nk)
    q = rng.standard_normal((B, H, nq, d), dtype=np.float32)
    k = rng.standard_normal((B, H, nk, d), dtype=np.float32)
    v = rng.standard_normal((B, H, nk, d), dtype=np.float32)
    np.testing.assert_allclose(attention.exact(q, k, v), naive_attention(q, k, v, d ** -0.5), atol=1e-5, rtol=0)


def test_attention_bias_broadcast_forms():
    rng = np.random.default_rng(5)
    B, H, nq, nk, d = 2, 3, 20, 30, 16
    q, k, v = (rng.standard_normal(s, dtype=np.float32) for s in [(B, H, nq, d), (B, H, nk, d), (B, H, nk, d)])
    for shape in [(nk,), (nq, nk), (H, nq, nk), (B, 1, nq, nk), (B, H, nq, nk), (1, H, 1, nk)]:
        bias = rng.standard_normal(shape, dtype=np.float32)
        want = naive_attention(q, k, v, d ** -0.5, np.broadcast_to(bias, (B, H, nq, nk)))
        np.testing.assert_allclose(attention.exact(q, k, v, bias=bias), want, atol=1e-5, rtol=0, err_msg=str(shape))


def test_attention_bad_input():
    q = np.zeros((1, 2, 4, 8), np.float32)
    with pytest.raises(ValueError, match="4-D"):
        attention.exact(q[0], q, q)
    with pytest.raises(ValueError, match="k and v"):
        attention.exact(q, q[:, :1], q)
    with pytest.raises(ValueError, match="key_mask"):
        attention.exact(q, q, q, key_mask=np.ones((1, 5), bool))
    with pytest.raises(ValueError, match="bias"):
        attention.exact(q, q, q, bias=np.ones((3, 4, 4), np.float32))
    with pytest.raises(TypeError):
        attention.exact(q.astype(object), q, q)


def test_activations_match_torch():
    x = FIX["act_x"]
    np.testing.assert_allclose(kernels.activation(x, "gelu"), FIX["gelu"], atol=2e-6, rtol=0)
    np.testing.assert_allclose(kernels.activation(x, "gelu_tanh"), FIX["gelu_tanh"], atol=2e-6, rtol=0)
    np.testing.assert_allclose(kernels.activation(x, "tanh"), FIX["tanh"], atol=2e-6, rtol=0)
    with pytest.raises(ValueError, match="unknown activation"):
        kernels.activation(x, "swish")


def test_layer_norm_matches_torch():
    for eps in ("1e-6", "1e-5"):
        y = kernels.layer_norm(FIX["ln_x"], FIX["ln_w"], FIX["ln_b"], eps=float(eps))
        np.testing.assert_allclose(y, FIX[f"ln_out_{eps}"], atol=1e-5, rtol=0)


def test_softmax_matches_torch():
    np.testing.assert_allclose(kernels.softmax(FIX["softmax_x"]), FIX["softmax_out"], atol=1e-6, rtol=0)


def test_linear_epilogues_match_torch():
    x, w, b = FIX["lin_x"], FIX["lin_w"], FIX["lin_b"]
    y = kernels.sgemm(x, w, trans_b=True, bias=b, activation="gelu")
    np.testing.assert_allclose(y, FIX["lin_gelu_out"], atol=1e-4, rtol=0)
    y = kernels.sgemm(x, w, trans_b=True, bias=b, residual=FIX["lin_res"])
    np.testing.assert_allclose(y, FIX["lin_res_out"], atol=1e-4, rtol=0)


@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (3, 5, 7), (64, 33, 300), (257, 130, 800)])
@pytest.mark.parametrize("ta,tb", [(False, False), (False, True), (True, False), (True, True)])
def test_sgemm_against_numpy(m, n, k, ta, tb):
    rng = np.random.default_rng(m + n + k)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    c = rng.standard_normal((m, n), dtype=np.float32)
    got = kernels.sgemm(a.T.copy() if ta else a, b.T.copy() if tb else b, trans_a=ta, trans_b=tb,
                        alpha=0.5, beta=2.0, c=c)
    want = 0.5 * (a.astype(np.float64) @ b) + 2.0 * c
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


def test_sgemm_shape_errors():
    with pytest.raises(ValueError, match="inner dimensions"):
        kernels.sgemm(np.zeros((2, 3), np.float32), np.zeros((4, 5), np.float32))
    with pytest.raises(ValueError, match="bias"):
        kernels.sgemm(np.zeros((2, 3), np.float32), np.zeros((3, 5), np.float32), bias=np.zeros(4))


def test_reference_kernels_agree():
    rng = np.random.default_rng(9)
    q = rng.standard_normal((1, 2, 50, 32), dtype=np.float32)
    fast = attention.exact(q, q, q)
    vidattn.use_reference_kernels(True)
    try:
        slow = attention.exact(q, q, q)
    finally:
        vidattn.use_reference_kernels(False)
    np.testing.assert_allclose(fast, slow, atol=2e-6, rtol=0)
