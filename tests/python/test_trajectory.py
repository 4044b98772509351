"""Trajectory attention (Motionformer) and its spatial-step approximations against the
spec-based torch re-implementation (scripts/spec_reference.py, computed in float64).
Tolerances (fp32): 1e-5 absolute for the exact and Orthoformer paths, 1e-4 relative
(to the output's scale) for Nyström and Performer."""
from pathlib import Path

import numpy as np
import pytest

import vidattn
from vidattn import attention

FIX = np.load(Path(__file__).resolve().parents[1] / "fixtures" / "trajectory.npz")


def case(name):
    B, H, F, P, d, L, start = (int(x) for x in FIX[f"{name}_shape"])
    g = lambda key: FIX[f"{name}_{key}"]
    return dict(q=g("q"), k=g("k"), v=g("v"), frames=F, proj_q_weight=g("wq"), proj_q_bias=g("bq"),
                proj_kv_weight=g("wkv"), proj_kv_bias=g("bkv")), L, start, g


@pytest.mark.parametrize("name", ["a", "b"])
def test_exact_both_flag_values(name):
    kw, L, start, g = case(name)
    np.testing.assert_allclose(attention.trajectory(**kw), g("none_orig"), atol=1e-5, rtol=0)
    np.testing.assert_allclose(attention.trajectory(**kw, use_original_code=False), g("none_fixed"),
                               atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["a", "b"])
def test_orthoformer(name):
    kw, L, start, g = case(name)
    got = attention.trajectory(**kw, approx="orthoformer", landmarks=L, orthoformer_start=start)
    np.testing.assert_allclose(got, g("orthoformer"), atol=1e-5, rtol=0)


def rel_close(got, want, rel):
    err = np.abs(got - want).max() / np.abs(want).max()
    assert err <= rel, f"max error {err:.2e} relative to the output's scale exceeds {rel}"


@pytest.mark.parametrize("name", ["a", "b"])
def test_nystrom(name):
    kw, L, start, g = case(name)
    rel_close(attention.trajectory(**kw, approx="nystrom", landmarks=L), g("nystrom"), 1e-4)


@pytest.mark.parametrize("name", ["a", "b"])
def test_performer_injected_projection(name):
    kw, L, start, g = case(name)
    rel_close(attention.trajectory(**kw, approx="performer", performer_projection=g("omega")), g("performer"), 1e-4)


def test_performer_seeded_projection():
    kw, L, start, g = case("a")
    a = attention.trajectory(**kw, approx="performer", performer_seed=5, performer_features=64)
    b = attention.trajectory(**kw, approx="performer", performer_seed=5, performer_features=64)
    c = attention.trajectory(**kw, approx="performer", performer_seed=6, performer_features=64)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 0


def test_performer_converges_to_exact():
    """FAVOR+ is an unbiased estimate of the softmax kernel: with moderate q, k norms the
    error against the exact path shrinks as the feature count grows."""
    kw, L, start, g = case("b")
    kw = dict(kw, q=kw["q"] * 0.3, k=kw["k"] * 0.3)
    exact = attention.trajectory(**kw)
    errs = [np.abs(attention.trajectory(**kw, approx="performer", performer_seed=5, performer_features=m)
                   - exact).max() / np.abs(exact).max() for m in (64, 1024)]
    assert errs[1] < errs[0] and errs[1] < 0.1, errs


def test_errors():
    kw, L, start, g = case("a")
    with pytest.raises(vidattn.InvalidArgument, match="landmark"):
        attention.trajectory(**kw, approx="nystrom", landmarks=10_000)
    with pytest.raises(ValueError, match="proj_q_weight"):
        attention.trajectory(**dict(kw, proj_q_weight=kw["proj_q_weight"][:, :3]))
    with pytest.raises(ValueError, match="approx"):
        attention.trajectory(**kw, approx="linformer")


def test_generic_landmark_attentions():
    q, k, v = FIX["g_q"], FIX["g_k"], FIX["g_v"]
    rel_close(attention.nystrom(q, k, v, landmarks=8), FIX["g_nystrom"], 1e-4)
    np.testing.assert_allclose(attention.orthoformer(q, k, v, landmarks=8, start=5), FIX["g_orthoformer"],
                               atol=1e-5, rtol=0)
