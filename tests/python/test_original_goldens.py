"""Motionformer, AIM Swin and FastTimeSformer against goldens made by the original repositories' own code
(scripts/original_goldens.py: facebookresearch/Motionformer bf43d50 run untouched but for the
documented shims), at crops 80, 224 and 336 with the released 224-grid position table, every
attention kind and approximation, and both position-table kinds. Tolerance 1e-4 absolute on the
logits and on the last hidden state (the final LayerNorm over every token). AIM Swin
(taoyang1122/adapt-image-models b3580d2, SwinTransformer2D_Adapter + the I3DHead mean and fc):
relative temporal bias and the learned temporal embedding variant, 224×224 as the original fixes.
motionformer_orig_traj_tres2_at5_80: a checkpoint for 2 time steps run on 5, which vidattn allows
by resizing the time table; its golden is the original class built for 5 time steps with the table
resized by torch.nn.functional.interpolate (linear, align_corners=False)."""
import json
import struct
from pathlib import Path

import numpy as np
import pytest

import vidattn

MODELS = Path(__file__).resolve().parents[1] / "fixtures" / "models"

NAMES = sorted(p.name for p in MODELS.iterdir() if p.name.startswith("motionformer_orig_"))
AIM = ["aim_swin", "aim_swin_temporal_embedding"]
FTS = sorted(p.name for p in MODELS.iterdir() if p.name.startswith("fasttimesformer_orig_"))


def seeded_input(io):
    return np.random.default_rng(int(io["seed"])).standard_normal(tuple(io["shape"]), dtype=np.float32)


def test_every_variant_is_present():
    kinds = {"traj", "traj_new", "nystrom", "orthoformer", "performer", "joint", "divided"}
    for kind in kinds:
        for crop in (80, 336):
            assert f"motionformer_orig_{kind}_{crop}" in NAMES, (kind, crop)
    assert {"motionformer_orig_traj_224", "motionformer_orig_traj_posjoint_224", "motionformer_orig_joint_posjoint_224",
            "motionformer_orig_divided_posjoint_224"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES + AIM + FTS)
def test_matches_original_code(name):
    io = np.load(MODELS / name / "io.npz")
    with vidattn.load(MODELS / name) as m:
        out = m.forward(seeded_input(io))
    np.testing.assert_allclose(out.logits, io["logits"], atol=1e-4, rtol=0)
    if "last_hidden_state" in io.files:   # FastTimeSformer's original exposes only logits
        np.testing.assert_allclose(out.last_hidden_state, io["last_hidden_state"], atol=1e-4, rtol=0)


def test_fasttimesformer_variants_present():
    want = {f"fasttimesformer_orig_{m}_{k}" for m in ("regular", "fastformer", "performer") for k in ("divided", "joint")}
    assert want | {"fasttimesformer_orig_regular_divided_norotary"} <= set(FTS)


def test_released_position_table_is_resized_not_refused():
    # The 336 checkpoints keep pos_embed at the 224 grid (1 + 14² rows).
    raw = (MODELS / "motionformer_orig_traj_336" / "model.safetensors").read_bytes()
    header = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])
    assert header["pos_embed"]["shape"] == [1, 197, 16]
    assert json.loads((MODELS / "motionformer_orig_traj_336" / "config.json").read_text())["img_size"] == 336


def test_joint_table_at_another_crop_is_a_clear_error():
    io = np.load(MODELS / "motionformer_orig_traj_posjoint_224" / "io.npz")
    px = seeded_input(io)[:, :, :, :160, :160]
    with vidattn.load(MODELS / "motionformer_orig_traj_posjoint_224") as m:
        with pytest.raises(vidattn.VidAttnError, match="st_embed"):
            m(px)


def test_probabilities_option_matches_eval_mode(tmp_path):
    import shutil
    src = MODELS / "motionformer_orig_traj_80"
    dst = tmp_path / "m"
    shutil.copytree(src, dst)
    cfg = json.loads((dst / "config.json").read_text())
    cfg["eval_softmax"] = True
    (dst / "config.json").write_text(json.dumps(cfg))
    io = np.load(src / "io.npz")
    with vidattn.load(dst) as m:
        np.testing.assert_allclose(m(seeded_input(io)), io["probabilities"], atol=1e-5, rtol=0)


def test_aim_swin_refuses_other_sizes_and_counts_flops():
    import subprocess
    io = np.load(MODELS / "aim_swin" / "io.npz")
    px = seeded_input(io)
    with vidattn.load(MODELS / "aim_swin") as m:
        with pytest.raises(vidattn.VidAttnError, match="224"):
            m(px[:, :, :, :112, :112])
        assert m.model_type == "aim_swin"
    from conftest import cli_env, cli_path
    cli = cli_path()
    r = subprocess.run([str(cli), "flops", str(MODELS / "aim_swin"), "--json"], capture_output=True, text=True,
                       env=cli_env())
    assert r.returncode == 0, r.stderr
    f = json.loads(r.stdout)
    # Attention matmuls, as the AIM flops() counts them (x2 for multiply-adds): per even block
    # 2·C·H·W·T² (temporal) and per block 2·C·H·W·ws²·T (windows); 2 blocks per stage.
    T, ws, total = 2, 7, 0
    for i, C in enumerate([8, 16, 32, 64]):
        hw = (56 >> i) ** 2
        w = min(ws, 56 >> i)
        total += 2 * C * hw * T * T + 2 * (2 * C * hw * w * w * T)
    assert f["attention"] == 2 * total, (f, 2 * total)
