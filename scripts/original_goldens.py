#!/usr/bin/env python3
"""Golden outputs from the original repositories' own model code (not from our reading of it).

    python scripts/original_goldens.py --motionformer /path/to/Motionformer.git --aim /path/to/adapt-image-models.git \
        --fasttimesformer /path/to/FastTimeSformer.git [--out tests/fixtures/models]

The original code is read from a git checkout or bare mirror of the repository (`git show` at the
commit named below), written to a temporary folder outside this repository, imported there and run
on random weights; only its outputs and the converted checkpoints are written here. None of its code
is committed. Needs torch, timm, einops, safetensors (a venv outside the repository).

Motionformer, facebookresearch/Motionformer at bf43d50 (slowfast/models/{video_model_builder,
vit_helper,nystrom_helper,orthoformer_helper,performer_helper}.py), with these shims:
  * `slowfast/models/build.py` is replaced by a stub registry (the real one needs fvcore, and only
    registers the class);
  * `torch.randint` returns zeros while the model runs: Orthoformer's first landmark is drawn at
    random, and the checkpoints say `orthoformer_start: 0`;
  * `performer_helper.create_projection_matrix` returns a fixed matrix per layer (the original seeds
    it from the data, which cannot be reproduced outside PyTorch); the matrices are stored in the
    checkpoint as `blocks.{i}.attn.performer_projection`, which vidattn reads;
  * the Nyström and Performer branches of `TrajectoryAttention.forward` crash as released (einops
    patterns for 4-D tensors applied to 3-D ones); the evident-intent fix: the helpers get the
    `[(B·heads), N, d]` tensors they are given (Performer with a singleton head axis), and their
    `[(B·heads), N, F, d]` output is used as it is. Applied as text replacements, listed in NYSTROM_FIX
    and PERFORMER_FIX.
AIM, taoyang1122/adapt-image-models at b3580d2 (mmaction/models/backbones/swin2d_adapter.py,
`SwinTransformer2D_Adapter`), with these shims: `..builder.BACKBONES` is a stub registry and
`mmaction.utils.get_root_logger` a stub (both only register or log). The head is mmaction2's
I3DHead at inference (mean over T'×H×W, then `fc_cls`), written here in three lines since it is
not in that file. The original fixes the spatial size at 224 (its PatchEmbed3D is built with the
default img_size), so the fixtures are 224×224 clips of 4 frames with a narrow model.

FastTimeSformer, adam-mehdi/FastTimeSformer at 43689e0 (fast_timesformer/{model,rotary}.py), run
untouched but for one shim: its Performer draws the random matrix with `torch.qr`, which
PyTorch has removed; `torch.linalg.qr(mode="reduced")` (the documented replacement for
`some=True`) stands in. Regular / fastformer / performer attention, divided and joint, with and
without rotary embeddings; the Performer's projection is the registered buffer of the original
class, stored in the checkpoint. vidattn runs these in its `parity` mode (the repository's
computations, docs/models.md).

The Motionformer logits are read from the `head` layer (the eval-mode model returns their softmax), and the
last hidden state from the final `norm` layer, by forward hooks. Inputs are not stored: they are
`numpy.random.default_rng(seed).standard_normal(shape, dtype=float32)`, reproducible without torch.
"""
import argparse
import importlib
import json
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

MOTIONFORMER_COMMIT = "bf43d50"
MF_FILES = ["video_model_builder", "vit_helper", "nystrom_helper", "orthoformer_helper", "performer_helper"]

NYSTROM_FIX = [
    ("""            q_, k_, v_ = map(
                lambda t: rearrange(t, f'b h p d -> (b h) p d', h=h), (q_, k_, v_))
            x = nystrom_helper""", """            x = nystrom_helper"""),
    ("""            x = rearrange(x, f'(b h) p f d -> b h p f d', f=F, h=h)
        elif approx == "orthoformer":""", """        elif approx == "orthoformer":"""),
]
PERFORMER_FIX = [
    ("""            q_, k_ = map(lambda t: rearrange(t, f'b h p d -> b p h d'), (q_, k_))""",
     """            q_, k_ = map(lambda t: t.unsqueeze(2), (q_, k_))"""),
    ("""            v_ = rearrange(v_, 'b h (f n) d -> b h f n d', f=F)""",
     """            v_ = rearrange(v_.unsqueeze(1), 'b h (f n) d -> b h f n d', f=F)"""),
    ("""            x = qkv / normaliser.unsqueeze(-1)""", """            x = (qkv / normaliser.unsqueeze(-1)).squeeze(1)"""),
]


def git_show(repo, commit, path):
    return subprocess.run(["git", "-C", str(repo), "show", f"{commit}:{path}"], check=True,
                          capture_output=True, text=True).stdout


def import_motionformer(repo, tmp):
    pkg = Path(tmp) / "mf_original" / "slowfast"
    (pkg / "models").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "models" / "__init__.py").write_text("")
    (pkg / "models" / "build.py").write_text(
        "class _Registry:\n    def register(self):\n        return lambda cls: cls\nMODEL_REGISTRY = _Registry()\n")
    for name in MF_FILES:
        text = git_show(repo, MOTIONFORMER_COMMIT, f"slowfast/models/{name}.py")
        if name == "vit_helper":
            for old, new in NYSTROM_FIX + PERFORMER_FIX:
                assert text.count(old) == 1, f"fix target not found once in vit_helper.py: {old[:60]!r}"
                text = text.replace(old, new)
        (pkg / "models" / f"{name}.py").write_text(text)
    sys.path.insert(0, str(pkg.parent))
    return (importlib.import_module("slowfast.models.video_model_builder"),
            importlib.import_module("slowfast.models.performer_helper"))


def mf_cfg(crop, attn, approx, pos, original, tres, dim, depth, heads, classes, landmarks, use_mlp=True, head_act="tanh"):
    ns = types.SimpleNamespace
    return ns(
        DATA=ns(TRAIN_CROP_SIZE=crop),
        TRAIN=ns(DATASET="kinetics"),
        MODEL=ns(NUM_CLASSES=classes),
        VIT=ns(PATCH_SIZE=16, PATCH_SIZE_TEMP=2, CHANNELS=3, EMBED_DIM=dim, DEPTH=depth, NUM_HEADS=heads,
               MLP_RATIO=2.0, QKV_BIAS=True, DROP=0.0, DROP_PATH=0.0, HEAD_DROPOUT=0.0, VIDEO_INPUT=True,
               TEMPORAL_RESOLUTION=tres, USE_MLP=use_mlp, HEAD_ACT=head_act, POS_EMBED=pos, POS_DROPOUT=0.0,
               ATTN_DROPOUT=0.0, ATTN_LAYER=attn, USE_ORIGINAL_TRAJ_ATTN_CODE=original,
               APPROX_ATTN_TYPE=approx, APPROX_ATTN_DIM=landmarks))


# name: (crop, attn_layer, approx, pos_embed, use_original_code)
MF_VARIANTS = {
    "traj_80": (80, "trajectory", "none", "separate", True),
    "traj_224": (224, "trajectory", "none", "separate", True),
    "traj_336": (336, "trajectory", "none", "separate", True),
    "traj_new_336": (336, "trajectory", "none", "separate", False),
    "traj_new_80": (80, "trajectory", "none", "separate", False),
    "nystrom_336": (336, "trajectory", "nystrom", "separate", True),
    "nystrom_80": (80, "trajectory", "nystrom", "separate", True),
    "orthoformer_336": (336, "trajectory", "orthoformer", "separate", True),
    "orthoformer_80": (80, "trajectory", "orthoformer", "separate", True),
    "performer_336": (336, "trajectory", "performer", "separate", True),
    "performer_80": (80, "trajectory", "performer", "separate", True),
    "joint_80": (80, "joint", "none", "separate", True),
    "joint_336": (336, "joint", "none", "separate", True),
    "divided_80": (80, "divided", "none", "separate", True),
    "divided_336": (336, "divided", "none", "separate", True),
    # The original adds st_embed as it is, sized for a 224 crop: the joint table runs only there.
    "traj_posjoint_224": (224, "trajectory", "none", "joint", True),
    "joint_posjoint_224": (224, "joint", "none", "joint", True),
    "divided_posjoint_224": (224, "divided", "none", "joint", False),
    # The head variants: no pre_logits layer, and GELU / ReLU in it.
    "traj_nomlp_80": (80, "trajectory", "none", "separate", True, False, "tanh"),
    "traj_gelu_80": (80, "trajectory", "none", "separate", True, True, "gelu"),
    "traj_relu_80": (80, "trajectory", "none", "separate", True, True, "relu"),
}


def motionformer(repo, out_root):
    import torch
    from convert_motionformer import write_checkpoint
    with tempfile.TemporaryDirectory() as tmp:
        vmb, ph = import_motionformer(repo, tmp)
        for i, (name, variant) in enumerate(MF_VARIANTS.items()):
            crop, attn, approx, pos, original = variant[:5]
            use_mlp, head_act = variant[5:] if len(variant) > 5 else (True, "tanh")
            tres, dim, depth, heads, classes, landmarks = 2, 16, 2, 2, 5, 8
            torch.manual_seed(100 + i)
            cfg = mf_cfg(crop, attn, approx, pos, original, tres, dim, depth, heads, classes, landmarks, use_mlp, head_act)
            model = vmb.VisionTransformer(cfg).eval()
            with torch.no_grad():   # random weights everywhere (the init zeroes some of them)
                for p in model.parameters():
                    p.copy_(torch.randn_like(p) * 0.3)
                for n_, p in model.named_parameters():
                    if n_.endswith("norm1.weight") or n_.endswith("norm2.weight") or n_.endswith("norm3.weight") \
                            or n_ == "norm.weight":
                        p.add_(1.0)
            d = dim // heads
            projections = [torch.randn(256, d, generator=torch.Generator().manual_seed(7 + b)) for b in range(depth)]
            calls = []

            def fixed_projection(m, d_, seed=0, scaling=0, struct_mode=False, device=None, dtype=None):
                mat = projections[len(calls) % depth]
                calls.append(1)
                return mat.to(dtype=dtype or torch.float32)
            ph.create_projection_matrix = fixed_projection
            seen = {}
            model.head.register_forward_hook(lambda m, a, o: seen.__setitem__("logits", o.detach().clone()))
            model.norm.register_forward_hook(lambda m, a, o: seen.__setitem__("last", o.detach().clone()))
            shape = (1, 2 * tres, 3, crop, crop)
            seed = 1000 + i
            px = np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)
            real_randint = torch.randint
            torch.randint = lambda high, size, **kw: torch.zeros(size, dtype=torch.long, device=kw.get("device"))
            try:
                with torch.no_grad():
                    probs = model([torch.from_numpy(px).permute(0, 2, 1, 3, 4).contiguous()])
            finally:
                torch.randint = real_randint
            assert torch.allclose(probs, torch.softmax(seen["logits"], -1), atol=1e-6)
            extra = {}
            if approx == "performer":
                extra = {f"blocks.{b}.attn.performer_projection": projections[b].float().contiguous() for b in range(depth)}
            vcfg = dict(embed_dim=dim, depth=depth, num_heads=heads, mlp_ratio=2.0, patch_size=16, patch_size_temp=2,
                        temporal_resolution=tres, img_size=crop, in_chans=3, num_classes=classes,
                        approx_attn_type=approx, approx_attn_dim=landmarks, use_original_code=original, use_mlp=use_mlp,
                        head_act=head_act, qkv_bias=True, pos_embed=pos, orthoformer_start=0, attn_layer=attn)
            out = write_checkpoint(model.state_dict(), Path(out_root) / f"motionformer_orig_{name}", vcfg, extra)
            np.savez_compressed(out / "io.npz", seed=np.int64(seed), shape=np.array(shape, np.int64),
                                logits=seen["logits"].numpy(), last_hidden_state=seen["last"].numpy(),
                                probabilities=probs.numpy())
            print("wrote", out, "logits", seen["logits"].numpy().round(4).tolist())


def motionformer_temporal_resize(repo, out_root):
    """A tres = 2 checkpoint run on 10 frames (5 time steps; 2 → 3 would not tell PyTorch's
    align_corners=False from True: both give [t0, (t0 + t1)/2, t1]). The original cannot take another
    frame count; vidattn resizes the time table linearly (PyTorch's interpolate, align_corners
    False). The golden: the original class built for 3 time steps with the checkpoint's weights
    and its temp_embed interpolated by torch.nn.functional.interpolate, so the resize comes
    from PyTorch and everything after it from the original code."""
    import torch
    from convert_motionformer import write_checkpoint
    with tempfile.TemporaryDirectory() as tmp:
        vmb, _ = import_motionformer(repo, tmp)
        crop, dim, depth, heads, classes, landmarks = 80, 16, 2, 2, 5, 8
        torch.manual_seed(150)
        small = vmb.VisionTransformer(mf_cfg(crop, "trajectory", "none", "separate", True, 2, dim, depth, heads,
                                             classes, landmarks)).eval()
        with torch.no_grad():
            for n_, p in small.named_parameters():
                p.copy_(torch.randn_like(p) * 0.3)
                if n_.endswith(("norm1.weight", "norm2.weight", "norm3.weight")) or n_ == "norm.weight":
                    p.add_(1.0)
        sd = small.state_dict()
        big = vmb.VisionTransformer(mf_cfg(crop, "trajectory", "none", "separate", True, 5, dim, depth, heads,
                                           classes, landmarks)).eval()
        resized = dict(sd)
        resized["temp_embed"] = torch.nn.functional.interpolate(
            sd["temp_embed"].permute(0, 2, 1), size=5, mode="linear", align_corners=False).permute(0, 2, 1)
        big.load_state_dict(resized)
        seen = {}
        big.head.register_forward_hook(lambda m, a, o: seen.__setitem__("logits", o.detach().clone()))
        big.norm.register_forward_hook(lambda m, a, o: seen.__setitem__("last", o.detach().clone()))
        shape, seed = (1, 10, 3, crop, crop), 1150
        px = np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)
        with torch.no_grad():
            big([torch.from_numpy(px).permute(0, 2, 1, 3, 4).contiguous()])
        vcfg = dict(embed_dim=dim, depth=depth, num_heads=heads, mlp_ratio=2.0, patch_size=16, patch_size_temp=2,
                    temporal_resolution=2, img_size=crop, in_chans=3, num_classes=classes, approx_attn_type="none",
                    approx_attn_dim=landmarks, use_original_code=True, use_mlp=True, head_act="tanh", qkv_bias=True,
                    pos_embed="separate", orthoformer_start=0, attn_layer="trajectory")
        out = write_checkpoint(sd, Path(out_root) / "motionformer_orig_traj_tres2_at5_80", vcfg)
        np.savez_compressed(out / "io.npz", seed=np.int64(seed), shape=np.array(shape, np.int64),
                            logits=seen["logits"].numpy(), last_hidden_state=seen["last"].numpy())
        print("wrote", out, "logits", seen["logits"].numpy().round(4).tolist())


FTS_COMMIT = "43689e0"
# name: (attn_mechanism, attn_type, rotary_emb)
FTS_VARIANTS = {
    "regular_divided": ("regular", "divided", True), "regular_joint": ("regular", "joint", True),
    "fastformer_divided": ("fastformer", "divided", True), "fastformer_joint": ("fastformer", "joint", True),
    "performer_divided": ("performer", "divided", True), "performer_joint": ("performer", "joint", True),
    "regular_divided_norotary": ("regular", "divided", False),
    "fastformer_divided_norotary": ("fastformer", "divided", False),
}


def fasttimesformer(repo, out_root):
    import torch
    from convert_fasttimesformer import write_checkpoint
    with tempfile.TemporaryDirectory() as tmp:
        pkg = Path(tmp) / "fts_original" / "fast_timesformer"
        pkg.mkdir(parents=True)
        for name in ["__init__", "model", "rotary"]:
            (pkg / f"{name}.py").write_text(git_show(repo, FTS_COMMIT, f"fast_timesformer/{name}.py"))
        sys.path.insert(0, str(pkg.parent))
        from fast_timesformer import FastTimeSformer
        # Shim: the Performer's random matrix calls torch.qr, removed from PyTorch (2.x);
        # torch.linalg.qr with mode "reduced" is its documented replacement for some=True.
        if not hasattr(torch, "_vidattn_qr_shim"):
            torch.qr = lambda a, some=True: torch.linalg.qr(a, mode="reduced" if some else "complete")
            torch._vidattn_qr_shim = True
        for i, (name, (mech, kind, rotary)) in enumerate(FTS_VARIANTS.items()):
            torch.manual_seed(400 + i)
            cfg = dict(frames=4, channels=3, height=32, width=32, num_classes=5, dim=32, patch_size=8, depth=2,
                       dim_head=16, rotary_emb=rotary, attn_mechanism=mech, attn_type=kind)
            m = FastTimeSformer(**cfg, drop_path=0.0).eval()
            with torch.no_grad():
                for n_, p in m.named_parameters():
                    if "norm" in n_ and n_.endswith("weight"):
                        p.add_(torch.randn_like(p) * 0.3)
                    elif "norm" in n_ or n_.endswith("bias"):
                        p.add_(torch.randn_like(p) * 0.3)
            shape = (2, 4, 3, 32, 32)
            seed = 3000 + i
            px = np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)
            with torch.no_grad():
                logits = m(torch.from_numpy(px))
            out = write_checkpoint(m.state_dict(), Path(out_root) / f"fasttimesformer_orig_{name}", **cfg, parity=True)
            np.savez_compressed(out / "io.npz", seed=np.int64(seed), shape=np.array(shape, np.int64), logits=logits.numpy())
            print("wrote", out, "logits", logits.numpy()[0].round(4).tolist())


AIM_COMMIT = "b3580d2"

# name: (embed_dim, depths, heads, num_frames, t_relative)
AIM_VARIANTS = {
    "aim_swin": (8, [2, 2, 2, 2], [1, 2, 2, 4], 4, True),
    "aim_swin_temporal_embedding": (8, [2, 2, 2, 2], [2, 2, 4, 4], 6, False),
}


def import_aim(repo, tmp):
    root = Path(tmp) / "aim_original"
    (root / "mmaction" / "models" / "backbones").mkdir(parents=True)
    (root / "mmaction" / "__init__.py").write_text("")
    (root / "mmaction" / "utils.py").write_text(
        "import logging\ndef get_root_logger(*a, **k):\n    return logging.getLogger('aim')\n")
    (root / "mmaction" / "models" / "__init__.py").write_text("")
    (root / "mmaction" / "models" / "builder.py").write_text(
        "class _Registry:\n    def register_module(self, *a, **k):\n        return lambda cls: cls\nBACKBONES = _Registry()\n")
    (root / "mmaction" / "models" / "backbones" / "__init__.py").write_text("")
    text = git_show(repo, AIM_COMMIT, "mmaction/models/backbones/swin2d_adapter.py")
    (root / "mmaction" / "models" / "backbones" / "swin2d_adapter.py").write_text(text)
    sys.path.insert(0, str(root))
    return importlib.import_module("mmaction.models.backbones.swin2d_adapter")


def aim(repo, out_root):
    import torch
    from convert_aim_swin import write_checkpoint
    with tempfile.TemporaryDirectory() as tmp:
        mod = import_aim(repo, tmp)
        for i, (name, (dim, depths, heads, frames, t_rel)) in enumerate(AIM_VARIANTS.items()):
            torch.manual_seed(300 + i)
            bb = mod.SwinTransformer2D_Adapter(patch_size=(2, 4, 4), num_frames=frames, embed_dim=dim, depths=depths,
                                               num_heads=heads, window_size=7, drop_path_rate=0.0,
                                               t_relative=t_rel)
            bb.eval()   # its train() override returns None, so not chained
            fc = torch.nn.Linear(dim * 8, 5)
            with torch.no_grad():   # random weights everywhere (the adapters' fc2 start at zero)
                for n_, p in list(bb.named_parameters()) + list(fc.named_parameters()):
                    p.copy_(torch.randn_like(p) * (0.2 if p.dim() > 1 else 0.5))
                    if n_.endswith("norm1.weight") or n_.endswith("norm2.weight") or n_.endswith("norm.weight"):
                        p.add_(1.0)
            shape = (1, frames, 3, 224, 224)
            seed = 2000 + i
            px = np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)
            seen = {}
            bb.norm.register_forward_hook(lambda m, a, o: seen.__setitem__("last", o.detach().clone()))
            with torch.no_grad():
                feat = bb(torch.from_numpy(px).permute(0, 2, 1, 3, 4).contiguous())   # [B, C, T', H', W']
                logits = fc(feat.mean(dim=(2, 3, 4)))                                  # I3DHead at inference
            sd = {f"backbone.{k}": v for k, v in bb.state_dict().items()}
            sd.update({"cls_head.fc_cls.weight": fc.weight, "cls_head.fc_cls.bias": fc.bias})
            cfg = dict(embed_dim=dim, depths=depths, num_heads=heads, window_size=7, patch_size=[2, 4, 4],
                       img_size=224, num_frames=frames, mlp_ratio=4.0, t_relative=t_rel, patch_norm=True, num_classes=5)
            out = write_checkpoint(sd, Path(out_root) / name, cfg)
            # last_hidden_state: the final norm's output, tokens (t, h, w) per clip.
            last = seen["last"].reshape(1, -1, dim * 8)
            np.savez_compressed(out / "io.npz", seed=np.int64(seed), shape=np.array(shape, np.int64),
                                logits=logits.numpy(), last_hidden_state=last.numpy())
            print("wrote", out, "logits", logits.numpy().round(4).tolist())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--motionformer", help="git directory of facebookresearch/Motionformer")
    ap.add_argument("--aim", help="git directory of taoyang1122/adapt-image-models")
    ap.add_argument("--fasttimesformer", help="git directory of adam-mehdi/FastTimeSformer")
    ap.add_argument("--out", default=str(ROOT / "tests" / "fixtures" / "models"))
    ap.add_argument("--only-temporal-resize", action="store_true",
                    help="with --motionformer: write only the temporal-resize golden")
    a = ap.parse_args()
    if not (a.motionformer or a.aim or a.fasttimesformer):
        ap.error("give --motionformer, --aim and/or --fasttimesformer")
    if a.motionformer:
        if not a.only_temporal_resize:
            motionformer(a.motionformer, a.out)
        motionformer_temporal_resize(a.motionformer, a.out)
    if a.aim:
        aim(a.aim, a.out)
    if a.fasttimesformer:
        fasttimesformer(a.fasttimesformer, a.out)


if __name__ == "__main__":
    main()
