"""Performer (against performer-pytorch 1.1.4 FastAttention fixtures) and Fastformer
(against a numpy transcription of docs/models.md). Tolerance 1e-4 relative to the
output's scale for Performer (linear attentions), 1e-5 absolute for Fastformer."""
from pathlib import Path

import numpy as np
import pytest

import vidattn
from vidattn import attention

FIX = np.load(Path(__file__).resolve().parents[1] / "fixtures" / "performer.npz")


@pytest.mark.parametrize("name", ["a", "b"])
def test_performer_matches_performer_pytorch(name):
    g = lambda key: FIX[f"{name}_{key}"]
    got = attention.performer(g("q"), g("k"), g("v"), g("projection"))
    want = g("out")
    assert np.abs(got - want).max() / np.abs(want).max() < 1e-4


def test_performer_projection_shape_and_orthogonality():
    p = attention.performer_projection(128, 64, seed=1)
    assert p.shape == (128, 64)
    blk = p[:64] / np.linalg.norm(p[:64], axis=1, keepdims=True)
    np.testing.assert_allclose(blk @ blk.T, np.eye(64), atol=1e-5)
    np.testing.assert_array_equal(p, attention.performer_projection(128, 64, seed=1))
    with pytest.raises(vidattn.InvalidArgument):
        attention.performer_projection(0, 64)


def fastformer_ref(q, k, v, wq, wk, form):
    q, k, v = (x.astype(np.float64) for x in (q, k, v))
    s = q.shape[-1] ** -0.5

    def softmax(x):
        e = np.exp(x - x.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)
    alpha = softmax(s * q @ wq)                               # [B, H, n]
    qbar = np.einsum("bhn,bhnd->bhd", alpha, q)
    p = qbar[:, :, None] * k
    beta = softmax(s * p @ wk)
    if form == "paper":
        kbar = np.einsum("bhn,bhnd->bhd", beta, p)
        return kbar[:, :, None] * v
    kappa = beta * p.sum(-1)
    return kappa[..., None] * v


@pytest.mark.parametrize("form", ["paper", "implemented"])
@pytest.mark.parametrize("shape", [(2, 2, 17, 64), (1, 3, 1, 8), (1, 1, 200, 40)])
def test_fastformer(form, shape):
    rng = np.random.default_rng(sum(shape))
    q, k, v = (rng.standard_normal(shape, dtype=np.float32) for _ in range(3))
    wq, wk = rng.standard_normal(shape[-1], dtype=np.float32), rng.standard_normal(shape[-1], dtype=np.float32)
    got = attention.fastformer(q, k, v, wq, wk, form=form)
    np.testing.assert_allclose(got, fastformer_ref(q, k, v, wq, wk, form), atol=1e-5, rtol=0)


def test_linear_attention_errors():
    q = np.zeros((1, 1, 4, 8), np.float32)
    with pytest.raises(ValueError, match="projection"):
        attention.performer(q, q, q, np.zeros((16, 7), np.float32))
    with pytest.raises(ValueError, match="form"):
        attention.fastformer(q, q, q, np.zeros(8), np.zeros(8), form="other")
