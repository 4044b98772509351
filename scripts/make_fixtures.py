#!/usr/bin/env python3
"""Golden outputs from the PyTorch reference implementations.

Run by a developer (needs torch), not by CI; the outputs are committed under
tests/fixtures/ and checked by tests/python without PyTorch.

    /path/to/venv/bin/python scripts/make_fixtures.py [kernels]
"""
import argparse
from pathlib import Path

import sys

import numpy as np
import torch
import torch.nn.functional as F

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
sys.path.insert(0, str(Path(__file__).resolve().parent))


def kernels():
    """Kernel-level fixtures: torch's SDPA, gelu, layer_norm, softmax, linear."""
    g = torch.Generator().manual_seed(1234)
    r = lambda *s, scale=1.0: (torch.randn(*s, generator=g) * scale).float()
    f = {}
    # SDPA: plain, with a per-head bias broadcast over the batch, with a key mask.
    q, k, v = r(2, 3, 77, 40), r(2, 3, 61, 40), r(2, 3, 61, 40)
    f["sdpa_q"], f["sdpa_k"], f["sdpa_v"] = q, k, v
    f["sdpa_out"] = F.scaled_dot_product_attention(q, k, v)
    bias = r(3, 77, 61)
    mask = torch.rand(2, 61, generator=g) > 0.25
    am = bias[None].expand(2, 3, 77, 61).masked_fill(~mask[:, None, None, :], float("-inf"))
    f["sdpa_bias"], f["sdpa_mask"] = bias, mask
    f["sdpa_bias_mask_out"] = F.scaled_dot_product_attention(q, k, v, attn_mask=am)
    f["sdpa_scale_out"] = F.scaled_dot_product_attention(q, k, v, scale=0.05)
    probs = torch.softmax(q @ k.transpose(-1, -2) / 40 ** 0.5 + am, dim=-1)
    f["sdpa_bias_mask_probs"] = probs
    # Elementwise.
    x = r(1000, scale=4.0)
    f["act_x"] = x
    f["gelu"] = F.gelu(x)
    f["gelu_tanh"] = F.gelu(x, approximate="tanh")
    f["tanh"] = torch.tanh(x)
    ln_x, ln_w, ln_b = r(7, 96, scale=3.0) + 2, r(96), r(96)
    f["ln_x"], f["ln_w"], f["ln_b"] = ln_x, ln_w, ln_b
    f["ln_out_1e-6"] = F.layer_norm(ln_x, (96,), ln_w, ln_b, eps=1e-6)
    f["ln_out_1e-5"] = F.layer_norm(ln_x, (96,), ln_w, ln_b, eps=1e-5)
    sm_x = r(9, 50, scale=5.0)
    f["softmax_x"], f["softmax_out"] = sm_x, torch.softmax(sm_x, dim=-1)
    # Linear + GELU (the ViT MLP's first half) and Linear + residual.
    lx, lw, lb, lres = r(50, 96), r(384, 96), r(384), r(50, 384)
    f["lin_x"], f["lin_w"], f["lin_b"], f["lin_res"] = lx, lw, lb, lres
    f["lin_gelu_out"] = F.gelu(F.linear(lx, lw, lb))
    f["lin_res_out"] = F.linear(lx, lw, lb) + lres
    arrays = {k: v.detach().numpy() for k, v in f.items()}
    np.savez_compressed(OUT / "kernels.npz", torch_version=np.array(torch.__version__), **arrays)
    print("wrote", OUT / "kernels.npz")


def divided():
    """Divided space-time attention, lucidrains scheme, from timesformer-pytorch's own
    Attention module (to_out set to the identity so the mechanism itself is compared)."""
    from timesformer_pytorch.timesformer_pytorch import Attention
    torch.manual_seed(7)
    B, H, dh, F_, hp, wp = 2, 3, 24, 4, 3, 5
    P = hp * wp
    dim = H * dh
    att = Attention(dim, dim_head=dh, heads=H).eval()
    with torch.no_grad():
        att.to_out[0].weight.copy_(torch.eye(dim))
        att.to_out[0].bias.zero_()
    x = torch.randn(B, 1 + F_ * P, dim)
    mask = torch.tensor([[True, True, True, True], [True, True, False, False]])
    q, k, v = att.to_qkv(x).chunk(3, dim=-1)
    heads = lambda t: t.reshape(B, -1, H, dh).permute(0, 2, 1, 3).contiguous()
    f = {"q": heads(q), "k": heads(k), "v": heads(v), "frame_mask": mask}
    # Masks exactly as TimeSformer.forward builds them.
    mask_with_cls = F.pad(mask, (1, 0), value=True)
    frame_mask = mask_with_cls.repeat_interleave(H * P, dim=0)[:, None, :]
    cls_mask = F.pad(mask.repeat_interleave(H, dim=0).repeat_interleave(P, dim=1)[:, None, :], (1, 0), value=True)
    with torch.no_grad():
        f["time_out"] = heads(att(x, "b (f n) d", "(b n) f d", n=P))
        f["space_out"] = heads(att(x, "b (f n) d", "(b f) n d", f=F_))
        f["time_masked_out"] = heads(att(x, "b (f n) d", "(b n) f d", n=P, mask=frame_mask, cls_mask=cls_mask))
        f["space_masked_out"] = heads(att(x, "b (f n) d", "(b f) n d", f=F_, cls_mask=cls_mask))
    arrays = {k: v.detach().numpy() for k, v in f.items()}
    np.savez_compressed(OUT / "divided.npz", frames=F_, patches=P, **arrays)
    print("wrote", OUT / "divided.npz")


def trajectory():
    """Motionformer trajectory attention and its approximations, from the spec-based
    torch re-implementation in scripts/spec_reference.py (no package exists)."""
    import spec_reference as R
    g = torch.Generator().manual_seed(11)
    # float32 values, computed on in float64.
    rnd = lambda *s, scale=1.0: (torch.randn(*s, generator=g) * scale).double()
    f = {}
    # Two shapes: a small one with N % L != 0 and an odd head dim, and a 4-frame 7x7 grid.
    for name, (B, H, F_, P, d, L) in {"a": (2, 2, 3, 10, 12, 7), "b": (1, 3, 4, 49, 16, 20)}.items():
        C = H * d
        q, k, v = rnd(B, H, 1 + F_ * P, d), rnd(B, H, 1 + F_ * P, d), rnd(B, H, 1 + F_ * P, d)
        Wq, bq = rnd(C, C, scale=C ** -0.5), rnd(C, scale=0.1)
        Wkv, bkv = rnd(2 * C, C, scale=C ** -0.5), rnd(2 * C, scale=0.1)
        omega = rnd(24, d)
        start = 3
        f.update({f"{name}_q": q, f"{name}_k": k, f"{name}_v": v, f"{name}_wq": Wq, f"{name}_bq": bq,
                  f"{name}_wkv": Wkv, f"{name}_bkv": bkv, f"{name}_omega": omega,
                  f"{name}_shape": torch.tensor([B, H, F_, P, d, L, start])})
        args = (q, k, v, Wq, bq, Wkv, bkv, F_, P)
        f[f"{name}_none_orig"] = R.trajectory_attention(*args, use_original_code=True)
        f[f"{name}_none_fixed"] = R.trajectory_attention(*args, use_original_code=False)
        f[f"{name}_nystrom"] = R.trajectory_attention(
            *args, spatial=lambda q_, k_, v_, F__, P__: R.spatial_nystrom(q_, k_, v_, F__, P__, L))
        f[f"{name}_orthoformer"] = R.trajectory_attention(
            *args, spatial=lambda q_, k_, v_, F__, P__: R.spatial_orthoformer(q_, k_, v_, F__, P__, L, start))
        f[f"{name}_performer"] = R.trajectory_attention(
            *args, spatial=lambda q_, k_, v_, F__, P__: R.spatial_performer(q_, k_, v_, F__, P__, omega))
    # Generic (single-frame) landmark attentions on [B, H, n, d].
    q, k, v = rnd(2, 2, 45, 16), rnd(2, 2, 45, 16), rnd(2, 2, 45, 16)
    flat = lambda t: t.reshape(4, 45, 16)
    f.update({"g_q": q, "g_k": k, "g_v": v})
    f["g_nystrom"] = R.spatial_nystrom(flat(q), flat(k), flat(v), 1, 45, 8).reshape(2, 2, 45, 16)
    f["g_orthoformer"] = R.spatial_orthoformer(flat(q), flat(k), flat(v), 1, 45, 8, 5).reshape(2, 2, 45, 16)
    # Inputs stored as float32; references computed in float64 from exactly those values.
    arrays = {k: (v.float().numpy() if v.is_floating_point() else v.numpy()) for k, v in f.items()}
    np.savez_compressed(OUT / "trajectory.npz", **arrays)
    print("wrote", OUT / "trajectory.npz")


def performer():
    """performer-pytorch 1.1.4 FastAttention (non-causal softmax kernel), its own projection."""
    from performer_pytorch import FastAttention
    torch.manual_seed(3)
    f = {}
    for name, (B, H, nq, d, m) in {"a": (2, 3, 50, 32, 64), "b": (1, 2, 197, 64, 256)}.items():
        fa = FastAttention(dim_heads=d, nb_features=m, causal=False)
        q, k, v = (torch.randn(B, H, nq, d) for _ in range(3))
        with torch.no_grad():
            f.update({f"{name}_q": q, f"{name}_k": k, f"{name}_v": v,
                      f"{name}_projection": fa.projection_matrix.clone(), f"{name}_out": fa(q, k, v)})
    np.savez_compressed(OUT / "performer.npz", **{k: v.numpy() for k, v in f.items()})
    print("wrote", OUT / "performer.npz")


def swin():
    """torchvision's ShiftedWindowAttention3d and PatchMerging on regular and odd sizes
    (padding, window clamping with the top-left index quirk, the -100 shift mask)."""
    from torchvision.models.swin_transformer import PatchMerging
    from torchvision.models.video.swin_transformer import ShiftedWindowAttention3d
    torch.manual_seed(5)
    f = {}
    cases = {  # name: (input shape [B, T, H, W, C], heads, window, shift)
        "regular": ((1, 8, 14, 14, 32), 2, [4, 7, 7], [2, 3, 3]),
        "unshifted": ((1, 8, 14, 14, 32), 2, [4, 7, 7], [0, 0, 0]),
        "odd": ((2, 5, 9, 11, 24), 3, [8, 7, 7], [4, 3, 3]),
        "clamped": ((1, 3, 4, 6, 16), 2, [8, 7, 7], [4, 3, 3]),
    }
    for name, (shape, heads, window, shift) in cases.items():
        C = shape[-1]
        m = ShiftedWindowAttention3d(C, window, shift, heads).eval()
        with torch.no_grad():
            m.relative_position_bias_table.normal_(0, 0.5)
            x = torch.randn(*shape)
            f.update({f"{name}_x": x, f"{name}_qkv_w": m.qkv.weight.clone(), f"{name}_qkv_b": m.qkv.bias.clone(),
                      f"{name}_proj_w": m.proj.weight.clone(), f"{name}_proj_b": m.proj.bias.clone(),
                      f"{name}_table": m.relative_position_bias_table.clone(),
                      f"{name}_cfg": torch.tensor([heads] + window + shift), f"{name}_y": m(x)})
    pm = PatchMerging(24).eval()
    with torch.no_grad():
        pm.norm.weight.normal_(1, 0.2); pm.norm.bias.normal_(0, 0.2)
        x = torch.randn(2, 3, 7, 10, 24)
        f.update({"pm_x": x, "pm_norm_w": pm.norm.weight.clone(), "pm_norm_b": pm.norm.bias.clone(),
                  "pm_reduction": pm.reduction.weight.clone(), "pm_y": pm(x)})
    np.savez_compressed(OUT / "swin.npz", **{k: v.detach().numpy() for k, v in f.items()})
    print("wrote", OUT / "swin.npz")


def positional():
    """timesformer-pytorch's rotary tables, apply_rot_emb, PreTokenShift and FeedForward."""
    from timesformer_pytorch.rotary import AxialRotaryEmbedding, RotaryEmbedding, apply_rot_emb
    from timesformer_pytorch.timesformer_pytorch import FeedForward, PreTokenShift
    torch.manual_seed(9)
    f = {}
    ts, tc = RotaryEmbedding(32)(6, device="cpu")
    f["time_sin"], f["time_cos"] = ts[0], tc[0]
    is_, ic = AxialRotaryEmbedding(32)(3, 5, device="cpu")
    f["image_sin"], f["image_cos"] = is_[0], ic[0]
    q, k = torch.randn(4, 6, 40), torch.randn(4, 6, 40)       # [(b n), f, d], d > rot dim 32
    rq, rk = apply_rot_emb(q, k, (ts, tc))
    f.update({"rot_q": q, "rot_k": k, "rot_q_out": rq, "rot_k_out": rk})
    x = torch.randn(2, 1 + 4 * 3, 20)                          # C=20: chunks 6, 6, 6, 2
    f["shift_x"] = x
    f["shift_y"] = PreTokenShift(4, lambda t: t)(x)
    ff = FeedForward(16, mult=4).eval()
    xf = torch.randn(7, 16)
    with torch.no_grad():
        f.update({"ff_x": xf, "ff_w1": ff.net[0].weight.clone(), "ff_b1": ff.net[0].bias.clone(),
                  "ff_w2": ff.net[3].weight.clone(), "ff_b2": ff.net[3].bias.clone(), "ff_y": ff(xf)})
    np.savez_compressed(OUT / "positional.npz", **{k: v.detach().numpy() for k, v in f.items()})
    print("wrote", OUT / "positional.npz")


def _save_io(d, model, pixel_values, **kw):
    """Runs `model` (HF) on pixel_values and stores inputs and outputs next to the checkpoint."""
    model.set_attn_implementation("eager")   # SDPA returns no attention maps
    with torch.no_grad():
        out = model(pixel_values=pixel_values, output_hidden_states=True, output_attentions=True, **kw)
    # last_hidden_state: the base model's output (classifier outputs do not carry it).
    with torch.no_grad():
        base = getattr(model, model.base_model_prefix)(pixel_values=pixel_values, **kw)
    arrays = {"pixel_values": pixel_values, "logits": out.logits, "last_hidden_state": base.last_hidden_state}
    for i, h in enumerate(out.hidden_states):
        arrays[f"hidden_{i}"] = h
    for i, a in enumerate(out.attentions or []):
        arrays[f"attention_{i}"] = a
    np.savez_compressed(d / "io.npz", **{k: v.numpy() for k, v in arrays.items() if v is not None})


def models():
    """Small randomly initialised HF checkpoints (transformers' own save_pretrained), with
    their outputs: ViViT (Hub 4.x key names, 5.x names, bf16, sharded) and TimeSformer
    (divided_space_time, joint_space_time, space_only)."""
    import json
    import shutil
    from safetensors.torch import load_file, save_file
    from transformers import (TimesformerConfig, TimesformerForVideoClassification, VivitConfig,
                              VivitForVideoClassification)
    root = OUT / "models"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    labels = {i: f"label_{i}" for i in range(5)}
    torch.manual_seed(21)
    cfg = VivitConfig(image_size=32, num_frames=4, tubelet_size=[2, 8, 8], hidden_size=32, num_hidden_layers=2,
                      num_attention_heads=4, intermediate_size=64, num_labels=5, id2label=labels,
                      label2id={v: k for k, v in labels.items()})
    m = VivitForVideoClassification(cfg).eval()
    with torch.no_grad():  # make the tables and norms non-trivial
        for name, p in m.named_parameters():
            if "position" in name or "cls_token" in name or "layernorm" in name:
                p.add_(torch.randn_like(p) * 0.5)
    px = torch.randn(2, 4, 3, 32, 32)
    d = root / "vivit"
    m.save_pretrained(d)
    _save_io(d, m, px)
    # transformers 5.x in-memory names.
    d5 = root / "vivit_v5names"
    d5.mkdir()
    shutil.copy(d / "config.json", d5)
    sd = load_file(d / "model.safetensors")
    ren = {}
    for k, v in sd.items():
        n = (k.replace("encoder.layer.", "layers.").replace("attention.attention.query", "attention.q_proj")
             .replace("attention.attention.key", "attention.k_proj").replace("attention.attention.value", "attention.v_proj")
             .replace("attention.output.dense", "attention.o_proj").replace("intermediate.dense", "mlp.fc1")
             .replace("output.dense", "mlp.fc2"))
        ren[n] = v
    save_file(ren, d5 / "model.safetensors", metadata={"format": "pt"})
    # bf16 weights: the reference runs the same bf16-rounded weights in fp32.
    db = root / "vivit_bf16"
    db.mkdir()
    shutil.copy(d / "config.json", db)
    save_file({k: v.to(torch.bfloat16) for k, v in sd.items()}, db / "model.safetensors", metadata={"format": "pt"})
    mb = VivitForVideoClassification.from_pretrained(db, dtype=torch.float32).eval()
    assert all(p.dtype == torch.float32 for p in mb.parameters())
    _save_io(db, mb, px)
    # Another input size: the table resized per frame (bicubic) and over time (linear), by torch.
    pos = m.vivit.embeddings.position_embeddings.detach()
    C = pos.shape[-1]
    grid = pos[0, 1:].reshape(2, 4, 4, C).permute(0, 3, 1, 2)                       # [T', C, h, w]
    grid = torch.nn.functional.interpolate(grid, size=(6, 5), mode="bicubic", align_corners=False)
    grid = grid.permute(2, 3, 1, 0).reshape(30 * C, 1, 2)                             # [(h w C), 1, T']
    grid = torch.nn.functional.interpolate(grid, size=3, mode="linear", align_corners=False)
    table = torch.cat([pos[0, :1], grid.reshape(6, 5, C, 3).permute(3, 0, 1, 2).reshape(90, C)])[None]
    cfg2 = VivitConfig(**{**cfg.to_dict(), "image_size": [48, 40], "num_frames": 6})
    m2 = VivitForVideoClassification(cfg2).eval()
    sd2 = {k: v for k, v in m.state_dict().items() if "position_embeddings" not in k}
    sd2["vivit.embeddings.position_embeddings"] = table
    m2.load_state_dict(sd2)
    px2 = torch.randn(1, 6, 3, 48, 40)
    with torch.no_grad():
        resized = {"pixel_values": px2, "logits": m2(pixel_values=px2).logits}
    np.savez_compressed(d / "io_resized.npz", **{k: v.numpy() for k, v in resized.items()})
    # Sharded.
    ds = root / "vivit_sharded"
    m.save_pretrained(ds, max_shard_size="60KB")
    assert (ds / "model.safetensors.index.json").exists()
    for at in ["divided_space_time", "joint_space_time", "space_only"]:
        torch.manual_seed(22)
        tc = TimesformerConfig(image_size=32, patch_size=8, num_frames=4, hidden_size=32, num_hidden_layers=2,
                               num_attention_heads=4, intermediate_size=64, num_labels=5, attention_type=at,
                               id2label=labels, label2id={v: k for k, v in labels.items()})
        tm = TimesformerForVideoClassification(tc).eval()
        with torch.no_grad():
            for name, p in tm.named_parameters():
                if "embeddings" in name or "layernorm" in name or "temporal_dense" in name:
                    p.add_(torch.randn_like(p) * 0.5)
        dt = root / f"timesformer_{at.split('_')[0]}"
        tm.save_pretrained(dt)
        _save_io(dt, tm, torch.randn(2, 4, 3, 32, 32))
    # torchvision Video Swin, small, through the converter in tools/.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
    from convert_torchvision_swin3d import write_checkpoint
    from torchvision.models.video.swin_transformer import SwinTransformer3d
    torch.manual_seed(23)
    kw = dict(patch_size=[2, 4, 4], embed_dim=16, depths=[2, 2, 2], num_heads=[2, 2, 4], window_size=[4, 7, 7])
    sw = SwinTransformer3d(**kw, stochastic_depth_prob=0.0, num_classes=5).eval()
    with torch.no_grad():
        for name, p in sw.named_parameters():
            if "relative_position_bias_table" in name or "norm" in name:
                p.add_(torch.randn_like(p) * 0.3)
    d = write_checkpoint(sw.state_dict(), root / "swin3d", id2label=labels, **kw)
    arrays = {}
    for tag, shape in {"regular": (1, 8, 3, 56, 56), "odd": (1, 5, 3, 50, 70)}.items():
        px = torch.randn(*shape)
        with torch.no_grad():
            arrays[f"{tag}_pixel_values"] = px
            arrays[f"{tag}_logits"] = sw(px.permute(0, 2, 1, 3, 4))      # torchvision takes [B, C, T, H, W]
    np.savez_compressed(d / "io.npz", **{k: v.numpy() for k, v in arrays.items()})

    # lucidrains TimeSformer-pytorch, through tools/convert_timesformer_pytorch.py.
    from convert_timesformer_pytorch import write_checkpoint as write_lucid
    from timesformer_pytorch import TimeSformer
    for tag, extra in {"rotary": {}, "learned": {"rotary_emb": False}, "shift": {"shift_tokens": True}}.items():
        torch.manual_seed(24)
        ctor = dict(dim=32, num_frames=4, num_classes=5, image_size=32, patch_size=8, channels=3, depth=2, heads=2,
                    dim_head=16, rotary_emb=True, shift_tokens=False)
        ctor.update(extra)
        tm = TimeSformer(**ctor).eval()
        d = write_lucid(tm.state_dict(), root / f"timesformer_pytorch_{tag}", **ctor)
        video = torch.randn(2, 4, 3, 32, 32)
        mask = torch.tensor([[True, True, True, True], [True, True, True, False]])
        with torch.no_grad():
            arrays = {"pixel_values": video, "logits": tm(video), "mask": mask, "masked_logits": tm(video, mask=mask)}
        np.savez_compressed(d / "io.npz", **{k: v.numpy() for k, v in arrays.items()})

    # Motionformer (no package: the spec-based torch model of scripts/spec_reference.py),
    # through tools/convert_motionformer.py. One trajectory checkpoint serves every
    # approximation (config-only changes); its performer_projection buffers are the Omegas.
    import spec_reference as R
    from convert_motionformer import write_checkpoint as write_mf
    base = dict(embed_dim=32, depth=2, num_heads=2, mlp_ratio=4.0, patch_size=8, patch_size_temp=2,
                temporal_resolution=4, img_size=32, in_chans=3, num_classes=5, approx_attn_type="none",
                approx_attn_dim=8, use_original_code=True, use_mlp=True, head_act="tanh", qkv_bias=True,
                pos_embed="separate", orthoformer_start=0)
    video = torch.randn(2, 8, 3, 32, 32)
    for kind in ["trajectory", "joint", "divided"]:
        torch.manual_seed(25)
        cfg = dict(base, attn_layer=kind)
        mf = R.MotionformerRef(cfg).eval()
        d = write_mf(mf.state_dict(), root / f"motionformer_{kind}", cfg)
        arrays = {"pixel_values": video}
        variants = {"logits": {}}
        if kind == "trajectory":
            variants.update({"fixed_logits": {"use_original_code": False}, "nystrom_logits": {"approx_attn_type": "nystrom"},
                             "orthoformer_logits": {"approx_attn_type": "orthoformer"},
                             "performer_logits": {"approx_attn_type": "performer"}})
        for key, change in variants.items():
            mf.cfg = dict(cfg, **change)
            with torch.no_grad():
                arrays[key] = mf(video)
        mf.cfg = cfg
        arrays["resized_pixel_values"] = torch.randn(1, 8, 3, 48, 40)                 # 6x5 patches per frame
        with torch.no_grad():
            arrays["resized_logits"] = mf(arrays["resized_pixel_values"])
        np.savez_compressed(d / "io.npz", **{k: v.numpy() for k, v in arrays.items()})

    # FastTimeSformer (no installable package: the spec-based torch model), through
    # tools/convert_fasttimesformer.py; each mechanism in parity and intended mode.
    from convert_fasttimesformer import write_checkpoint as write_ft
    video = torch.randn(2, 4, 3, 32, 32)
    for mech in ["regular", "fastformer", "performer"]:
        for kind in (["divided", "joint"] if mech == "fastformer" else ["divided"]):
            torch.manual_seed(26)
            cfg = dict(frames=4, channels=3, height=32, width=32, num_classes=5, dim=32, patch_size=8, depth=2,
                       dim_head=16, rotary_emb=True, attn_mechanism=mech, attn_type=kind, parity=True)
            ft = R.FastTimeSformerRef(cfg).eval()
            d = write_ft(ft.state_dict(), root / f"fasttimesformer_{mech}_{kind}", **cfg)
            arrays = {"pixel_values": video}
            ft = ft.double()     # float64 goldens: parity "performer" divides by near-zero q·Σk
            with torch.no_grad():
                arrays["logits"] = ft(video.double()).float()
                ft.cfg = dict(cfg, parity=False)
                arrays["intended_logits"] = ft(video.double()).float()
            np.savez_compressed(d / "io.npz", **{k: v.numpy() for k, v in arrays.items()})
    print("wrote", root)


def preprocess():
    """HF's slow image processors (PIL resize) on small synthetic clips: VideoMAEImageProcessor
    (TimeSformer checkpoints) downscaling and upscaling, VivitImageProcessor with its offset."""
    import json
    from transformers import VideoMAEImageProcessor, VivitImageProcessor
    rng = np.random.default_rng(7)
    f = {}
    cases = {
        "videomae_down": (VideoMAEImageProcessor(size={"shortest_edge": 36}, crop_size={"height": 32, "width": 32},
                                                 image_mean=[0.45] * 3, image_std=[0.225] * 3), (48, 64)),
        "videomae_up": (VideoMAEImageProcessor(size={"shortest_edge": 40}, crop_size={"height": 32, "width": 32},
                                               image_mean=[0.45] * 3, image_std=[0.225] * 3), (21, 30)),
        "vivit": (VivitImageProcessor(size={"shortest_edge": 40}, crop_size={"height": 32, "width": 32}), (50, 70)),
    }
    configs = {}
    for name, (proc, (h, w)) in cases.items():
        frames = rng.integers(0, 256, size=(4, h, w, 3), dtype=np.uint8)
        out = proc(list(frames), return_tensors="np")["pixel_values"]
        f[f"{name}_frames"], f[f"{name}_out"] = frames, out.astype(np.float32)
        configs[name] = proc.to_dict()
    np.savez_compressed(OUT / "preprocess.npz", configs=np.array(json.dumps(configs)), **f)
    print("wrote", OUT / "preprocess.npz")


def demo():
    """The bundled demo model on the bundled clips: frames decoded by ffmpeg, pixel_values from
    transformers' own processor, logits from transformers' model (models/demo/clips.npz)."""
    import subprocess
    from transformers import AutoModelForVideoClassification, VideoMAEImageProcessor
    root = Path(__file__).resolve().parent.parent
    d = root / "models" / "demo"
    model = AutoModelForVideoClassification.from_pretrained(d).eval()
    proc = VideoMAEImageProcessor.from_pretrained(d)
    arrays = {}
    for clip in sorted((root / "examples" / "data").glob("*.mp4")):
        raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(clip), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                             capture_output=True, check=True).stdout
        frames = np.frombuffer(raw, np.uint8).reshape(-1, 96, 96, 3)
        n = model.config.num_frames
        idx = [min(len(frames) - 1, int((i + 0.5) * len(frames) / n)) for i in range(n)]
        px = proc(list(frames[idx]), return_tensors="pt")["pixel_values"]
        with torch.no_grad():
            arrays[f"{clip.stem}_pixel_values"] = px
            arrays[f"{clip.stem}_logits"] = model(pixel_values=px).logits
    np.savez_compressed(d / "clips.npz", **{k: v.numpy() for k, v in arrays.items()})
    print("wrote", d / "clips.npz")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("which", nargs="*", help="fixture sets (default: all): " + ", ".join(SETS))
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    for w in args.which or SETS:
        globals()[w]()


def timesformer_resized():
    """io_resized.npz for the HF TimeSformer fixtures: transformers' own model at another image
    size (32×48 for 32×32; it resizes the position table itself, nearest) and, where transformers
    can run it, another frame count (6 for 4; its time table resized, nearest): joint and space
    only. The divided layer reshapes by config.num_frames and by the configured patch rows, so
    transformers runs it only at the trained frame count and image height. Reads the
    checkpoints `models` wrote; writes only the new files."""
    from transformers import TimesformerForVideoClassification
    for at in ["divided", "joint", "space"]:
        d = OUT / "models" / f"timesformer_{at}"
        tm = TimesformerForVideoClassification.from_pretrained(d).eval()
        torch.manual_seed(23)
        arrays = {}
        for tag, shape in {"size": (1, 4, 3, 32, 48), "frames": (1, 6, 3, 32, 48)}.items():
            if tag == "frames" and at == "divided":
                continue
            px = torch.randn(*shape)
            with torch.no_grad():
                arrays[f"{tag}_pixel_values"], arrays[f"{tag}_logits"] = px, tm(pixel_values=px).logits
        np.savez_compressed(d / "io_resized.npz", **{k: v.numpy() for k, v in arrays.items()})
        print("wrote", d / "io_resized.npz", sorted(arrays))


def consistent_rope():
    """timesformer_pytorch_rotary_consistent: lucidrains' TimeSformer with its RotaryEmbedding
    patched (the one shim) to repeat each angle for its adjacent pair, [f0, f0, f1, f1, …],
    instead of concatenating the halves [f0, f1, …, f0, f1, …]: what vidattn's
    `consistent_rope: true` computes, so this golden comes from lucidrains' attention, axial
    table and application code with only the time table's layout changed."""
    from einops import rearrange, repeat
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
    from convert_timesformer_pytorch import write_checkpoint as write_lucid
    from timesformer_pytorch import TimeSformer
    from timesformer_pytorch import rotary

    def paired(self, n, device):
        freqs = torch.einsum("i, j -> i j", torch.arange(n, device=device), self.inv_freqs)
        freqs = rearrange(repeat(freqs, "n d -> n (d j)", j=2), "n d -> () n d")
        return freqs.sin(), freqs.cos()

    original = rotary.RotaryEmbedding.forward
    rotary.RotaryEmbedding.forward = paired
    try:
        torch.manual_seed(25)
        ctor = dict(dim=32, num_frames=4, num_classes=5, image_size=32, patch_size=8, channels=3, depth=2, heads=2,
                    dim_head=16, rotary_emb=True, shift_tokens=False)
        tm = TimeSformer(**ctor).eval()
        d = write_lucid(tm.state_dict(), OUT / "models" / "timesformer_pytorch_rotary_consistent", **ctor,
                        consistent_rope=True)
        video = torch.randn(2, 4, 3, 32, 32)
        mask = torch.tensor([[True, True, True, True], [True, True, False, False]])
        with torch.no_grad():
            arrays = {"pixel_values": video, "logits": tm(video), "mask": mask, "masked_logits": tm(video, mask=mask)}
    finally:
        rotary.RotaryEmbedding.forward = original
    np.savez_compressed(d / "io.npz", **{k: v.numpy() for k, v in arrays.items()})
    print("wrote", d)


def videomae():
    """VideoMAEForVideoClassification (transformers' own save_pretrained): mean pooling + fc_norm
    with the names save_pretrained writes, and first-token pooling after the final LayerNorm at an
    odd size (40 px, 6 frames, patch 8) with the other naming of the q/v biases (4.x `q_bias` /
    5.x `query.bias`); LayerNorms and biases perturbed. Outputs: logits, hidden states, attention
    maps, and last_hidden_state from the base model (VideoMAEModel)."""
    import json
    import shutil
    from safetensors.torch import load_file, save_file
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification, VideoMAEImageProcessor
    root = OUT / "models"
    labels = {i: f"label_{i}" for i in range(4)}
    for name, mean, size, frames, seed in [("videomae", True, 32, 4, 31), ("videomae_first_token", False, 40, 6, 32)]:
        torch.manual_seed(seed)
        cfg = VideoMAEConfig(image_size=size, patch_size=8, num_frames=frames, tubelet_size=2, hidden_size=32,
                             num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, num_labels=4,
                             id2label=labels, label2id={v: k for k, v in labels.items()}, use_mean_pooling=mean)
        m = VideoMAEForVideoClassification(cfg).eval()
        with torch.no_grad():
            for pname, p in m.named_parameters():
                if "norm" in pname or "bias" in pname:
                    p.add_(torch.randn_like(p) * 0.5)
        d = root / name
        shutil.rmtree(d, ignore_errors=True)
        m.save_pretrained(d)
        VideoMAEImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size}).save_pretrained(d)
        px = torch.randn(2, frames, 3, size, size)
        m.set_attn_implementation("eager")
        with torch.no_grad():
            out = m(pixel_values=px, output_hidden_states=True, output_attentions=True)
            last = m.videomae(pixel_values=px).last_hidden_state
        arrays = {"pixel_values": px, "logits": out.logits, "last_hidden_state": last}
        for i, h in enumerate(out.hidden_states):
            arrays[f"hidden_{i}"] = h
        for i, a in enumerate(out.attentions):
            arrays[f"attention_{i}"] = a
        np.savez_compressed(d / "io.npz", **{k: v.numpy() for k, v in arrays.items()})
        if not mean:   # the other spelling of the q/v biases
            sd = load_file(d / "model.safetensors")
            swap = {"attention.attention.q_bias": "attention.attention.query.bias",
                    "attention.attention.v_bias": "attention.attention.value.bias"}
            renamed = {}
            for k, v in sd.items():
                for a, b in swap.items():
                    if a in k:
                        k = k.replace(a, b)
                    elif b in k:
                        k = k.replace(b, a)
                renamed[k] = v
            assert renamed.keys() != sd.keys()
            save_file(renamed, d / "model.safetensors", metadata={"format": "pt"})
        print("wrote", d, sorted(k for k in load_file(d / "model.safetensors") if "layer.0.attention.attention" in k))


def last_hidden_states():
    """Adds the base model's last_hidden_state to the io.npz of the HF fixtures made before
    _save_io recorded it (weights and other arrays untouched)."""
    from transformers import AutoModelForVideoClassification
    for name in ["vivit", "vivit_bf16", "timesformer_divided", "timesformer_joint", "timesformer_space"]:
        d = OUT / "models" / name
        z = dict(np.load(d / "io.npz"))
        m = AutoModelForVideoClassification.from_pretrained(d, torch_dtype=torch.float32).eval()
        with torch.no_grad():
            base = getattr(m, m.base_model_prefix)(pixel_values=torch.from_numpy(z["pixel_values"]))
            logits = m(pixel_values=torch.from_numpy(z["pixel_values"])).logits.numpy()
        assert np.abs(logits - z["logits"]).max() < 1e-5, name
        z["last_hidden_state"] = base.last_hidden_state.numpy()
        np.savez_compressed(d / "io.npz", **z)
        print("added last_hidden_state", z["last_hidden_state"].shape, "to", d)


SETS = ["kernels", "divided", "trajectory", "performer", "swin", "positional", "models", "videomae", "consistent_rope",
        "timesformer_resized", "preprocess", "demo"]

if __name__ == "__main__":
    main()
