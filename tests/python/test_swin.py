"""Video Swin window attention and patch merging against torchvision's own modules
(fixtures): regular, unshifted, odd sizes (padding and the shift mask) and a clamped
window (the top-left relative-index quirk). Tolerance 1e-5 absolute (fp32)."""
from pathlib import Path

import numpy as np
import pytest

from vidattn import attention

FIX = np.load(Path(__file__).resolve().parents[1] / "fixtures" / "swin.npz")


@pytest.mark.parametrize("name", ["regular", "unshifted", "odd", "clamped"])
def test_window_attention_matches_torchvision(name):
    g = lambda k: FIX[f"{name}_{k}"]
    cfg = [int(v) for v in g("cfg")]
    heads, window, shift = cfg[0], cfg[1:4], cfg[4:7]
    y = attention.window3d(g("x"), g("qkv_w"), g("qkv_b"), g("proj_w"), g("proj_b"), g("table"),
                           heads=heads, window=window, shift=shift)
    np.testing.assert_allclose(y, g("y"), atol=1e-5, rtol=0)


def test_patch_merging_matches_torchvision():
    y = attention.patch_merging(FIX["pm_x"], FIX["pm_norm_w"], FIX["pm_norm_b"], FIX["pm_reduction"])
    np.testing.assert_allclose(y, FIX["pm_y"], atol=1e-5, rtol=0)


def test_window_errors():
    x = FIX["regular_x"]
    g = lambda k: FIX[f"regular_{k}"]
    with pytest.raises(ValueError, match="relative_position_table"):
        attention.window3d(x, g("qkv_w"), g("qkv_b"), g("proj_w"), g("proj_b"), g("table")[:-1],
                           heads=2, window=[4, 7, 7])
    with pytest.raises(ValueError, match="B, T, H, W, C"):
        attention.window3d(x[0], g("qkv_w"), g("qkv_b"), g("proj_w"), g("proj_b"), g("table"),
                           heads=2, window=[4, 7, 7])
