#!/usr/bin/env python3
"""Converts a Motionformer checkpoint (.pyth, a torch pickle with "model_state") into a vidattn
checkpoint directory. The config fields are Motionformer's cfg keys lower-cased. Needs torch
and safetensors; run by users, not by the library.

    python tools/convert_motionformer.py motionformer_16x4.pyth out_dir \\
        [--num-frames 16 --img-size 224 --num-classes 400 --attn-layer trajectory \\
         --approx-attn-type none --approx-attn-dim 128 --use-original-code 1]

Released checkpoints: embed_dim 768, depth 12, 12 heads, patch 16, patch_size_temp 2,
use_mlp true, head_act tanh, qkv_bias true; temporal_resolution = frames / 2. The "HR" models
take --img-size 336: their pos_embed stays at the 224 grid (197 rows) and vidattn resizes it
as the original does. pos_embed "joint" is recognised by an st_embed tensor.
"""
import argparse
import json
from pathlib import Path


def write_checkpoint(state_dict, out_dir, cfg, extra_tensors=None):
    import torch
    from safetensors.torch import save_file
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k.removeprefix("module."): v.detach().to(torch.float32).contiguous() for k, v in state_dict.items()}
    tensors.update(extra_tensors or {})
    save_file(tensors, out / "model.safetensors", metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps({"model_type": "motionformer", **cfg}, indent=2) + "\n")
    pre = {"processor": "motionformer", "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5],
           "crop_size": cfg.get("img_size", 224), "resize_short_side": cfg.get("img_size", 224)}
    (out / "preprocessor_config.json").write_text(json.dumps(pre, indent=2) + "\n")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("out_dir")
    ap.add_argument("--num-frames", type=int, default=16)
    ap.add_argument("--img-size", type=int, default=224)
    ap.add_argument("--num-classes", type=int, default=400)
    ap.add_argument("--attn-layer", default="trajectory", choices=["trajectory", "joint", "divided"])
    ap.add_argument("--approx-attn-type", default="none", choices=["none", "nystrom", "orthoformer", "performer"])
    ap.add_argument("--approx-attn-dim", type=int, default=128)
    ap.add_argument("--use-original-code", type=int, default=1)
    a = ap.parse_args()
    import torch
    ck = torch.load(a.checkpoint, map_location="cpu", weights_only=False)
    sd = ck.get("model_state", ck)
    cfg = dict(embed_dim=768, depth=12, num_heads=12, mlp_ratio=4.0, patch_size=16, patch_size_temp=2,
               temporal_resolution=a.num_frames // 2, img_size=a.img_size, in_chans=3, num_classes=a.num_classes,
               attn_layer=a.attn_layer, approx_attn_type=a.approx_attn_type, approx_attn_dim=a.approx_attn_dim,
               use_original_code=bool(a.use_original_code), use_mlp=True, head_act="tanh", qkv_bias=True,
               pos_embed="joint" if "st_embed" in sd else "separate")
    write_checkpoint(sd, a.out_dir, cfg)
    print("wrote", a.out_dir)


if __name__ == "__main__":
    main()
