"""Rotary tables and application, token shift and GEGLU against timesformer-pytorch's own
modules (fixtures). Tolerance 1e-5 absolute; the consistent RoPE is checked for its defining
property (scores depend on the time offset only)."""
from pathlib import Path

import numpy as np

from vidattn import positional as P

FIX = np.load(Path(__file__).resolve().parents[1] / "fixtures" / "positional.npz")


def test_time_table_matches_lucidrains():
    s, c = P.rotary_time_table(6, 32)
    np.testing.assert_allclose(s, FIX["time_sin"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(c, FIX["time_cos"], atol=1e-5, rtol=0)


def test_image_table_matches_lucidrains():
    s, c = P.rotary_image_table(3, 5, 32)
    np.testing.assert_allclose(s, FIX["image_sin"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(c, FIX["image_cos"], atol=1e-5, rtol=0)


def test_apply_matches_apply_rot_emb():
    s, c = FIX["time_sin"], FIX["time_cos"]
    q = FIX["rot_q"]                                  # [4, 6 frames, 40]
    pos = np.tile(np.arange(6), 4)
    np.testing.assert_allclose(P.apply_rotary(q, s, c, pos), FIX["rot_q_out"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(P.apply_rotary(FIX["rot_k"], s, c, pos), FIX["rot_k_out"], atol=1e-5, rtol=0)


def test_consistent_rope_is_relative_and_lucidrains_is_not():
    rng = np.random.default_rng(0)
    q, k = rng.standard_normal(32).astype(np.float32), rng.standard_normal(32).astype(np.float32)

    def score(table, t, s):
        sn, cs = table
        return P.apply_rotary(q[None], sn, cs, [t]) @ P.apply_rotary(k[None], sn, cs, [s]).T
    cons = P.rotary_time_table(8, 32, consistent=True)
    np.testing.assert_allclose(score(cons, 5, 3), score(cons, 2, 0), atol=1e-4)
    quirk = P.rotary_time_table(8, 32)
    assert abs(score(quirk, 5, 3).item() - score(quirk, 2, 0).item()) > 1e-3


def test_token_shift_matches_pretokenshift():
    np.testing.assert_array_equal(P.token_shift(FIX["shift_x"], 4), FIX["shift_y"])


def test_geglu_matches_feedforward():
    y = P.geglu_ff(FIX["ff_x"], FIX["ff_w1"], FIX["ff_b1"], FIX["ff_w2"], FIX["ff_b2"])
    np.testing.assert_allclose(y, FIX["ff_y"], atol=1e-5, rtol=0)
