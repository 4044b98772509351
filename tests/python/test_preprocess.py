"""Preprocessing per preprocessor_config.json, against a numpy transcription of the pipeline
(shortest-edge bilinear resize with PyTorch's align_corners=False arithmetic, centre crop,
rescale, normalise). Tolerance 1e-5."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import vidattn

MODELS = Path(__file__).resolve().parents[1] / "fixtures" / "models"


def reference(frames, short, crop, rescale, offset, mean, std):
    T, H, W, _ = frames.shape
    rh, rw = (short, int(short * W / H)) if H <= W else (int(short * H / W), short)
    ct, cl = int(round((rh - crop) / 2)), int(round((rw - crop) / 2))
    out = np.empty((T, 3, crop, crop))
    for y in range(crop):
        fy = max((y + ct + 0.5) * H / rh - 0.5, 0)
        y0 = min(int(fy), H - 1); y1 = min(y0 + 1, H - 1); ly = fy - y0
        for x in range(crop):
            fx = max((x + cl + 0.5) * W / rw - 0.5, 0)
            x0 = min(int(fx), W - 1); x1 = min(x0 + 1, W - 1); lx = fx - x0
            v = ((1 - ly) * ((1 - lx) * frames[:, y0, x0] + lx * frames[:, y0, x1])
                 + ly * ((1 - lx) * frames[:, y1, x0] + lx * frames[:, y1, x1]))
            v = v * rescale - (1 if offset else 0)
            out[:, :, y, x] = (v - mean) / std
    return out[None]


def test_torchvision_preset(tmp_path):
    """The converters' torchvision preset: float bilinear without antialiasing, no rounding."""
    d = tmp_path / "m"
    shutil.copytree(MODELS / "swin3d", d)
    (d / "preprocessor_config.json").write_text(json.dumps({
        "processor": "torchvision_video_classification", "resize_size": [36], "crop_size": [32, 32],
        "mean": [0.45, 0.45, 0.45], "std": [0.225, 0.225, 0.225]}))
    frames = np.random.default_rng(0).integers(0, 256, size=(4, 48, 64, 3), dtype=np.uint8)
    with vidattn.load(d) as m:
        got = m.preprocess(frames)
    want = reference(frames.astype(np.float64), 36, 32, 1 / 255, False, 0.45, 0.225)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_vivit_offset_rescale(tmp_path):
    d = tmp_path / "v"
    shutil.copytree(MODELS / "vivit", d)
    (d / "preprocessor_config.json").write_text(json.dumps({
        "processor": "torchvision_video_classification", "resize_size": [32], "crop_size": [32, 32],
        "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}))
    frames = np.random.default_rng(1).integers(0, 256, size=(9, 40, 32, 3), dtype=np.uint8)
    with vidattn.load(d) as m:
        assert m.num_frames == 4
        got = m.preprocess(frames)
        idx = [int((i + 0.5) * 9 / 4) for i in range(4)]
        want = reference(frames[idx].astype(np.float64), 32, 32, 1 / 255, False, 0.5, 0.5)
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
        top = m.classify(frames, top=3)
        assert len(top) == 3 and top[0][1] >= top[1][1] >= top[2][1] and top[0][0].startswith("label_")


def test_preprocess_errors():
    with vidattn.load(MODELS / "vivit") as m:
        with pytest.raises(ValueError, match="uint8"):
            m.preprocess(np.zeros((4, 32, 32, 3), np.float32))
        assert m.label(3) == "label_3" and m.label(99) is None


HF = np.load(Path(__file__).resolve().parents[1] / "fixtures" / "preprocess.npz")


@pytest.mark.parametrize("name,model", [("videomae_down", "timesformer_divided"), ("videomae_up", "timesformer_divided"),
                                        ("vivit", "vivit")])
def test_matches_hf_image_processors(tmp_path, name, model):
    """HF's slow processors (PIL bilinear resize, antialiased, 8-bit) reproduced: the
    processor's own to_dict() is the preprocessor_config.json. Tolerance 1e-5."""
    d = tmp_path / "m"
    shutil.copytree(MODELS / model, d)
    (d / "preprocessor_config.json").write_text(json.dumps(json.loads(str(HF["configs"]))[name]))
    with vidattn.load(d) as m:
        got = m.preprocess(HF[f"{name}_frames"], sample=False)
    np.testing.assert_allclose(got, HF[f"{name}_out"], atol=1e-5, rtol=0)
