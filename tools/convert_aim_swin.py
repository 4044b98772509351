#!/usr/bin/env python3
"""Converts an AIM Swin checkpoint (taoyang1122/adapt-image-models, mmaction2 layout:
`backbone.*` for SwinTransformer2D_Adapter and `cls_head.fc_cls.*` for the I3DHead) into a
vidattn checkpoint directory (model_type "aim_swin"). Needs torch and safetensors; run once.

    python tools/convert_aim_swin.py aim_swin_base.pth out_dir --variant base --num-frames 32 --num-classes 400

--variant base: embed_dim 128, depths 2,2,18,2, heads 4,8,16,32 (the released config);
--variant tiny: 96, 2,2,6,2, 3,6,12,24 (the class defaults); or give --embed-dim, --depths,
--num-heads. window_size 7, patch (2,4,4), img_size 224 (fixed by the original code), mlp_ratio 4.
"""
import argparse
import json
from pathlib import Path

VARIANTS = {"base": (128, [2, 2, 18, 2], [4, 8, 16, 32]), "tiny": (96, [2, 2, 6, 2], [3, 6, 12, 24])}


def write_checkpoint(state_dict, out_dir, cfg):
    """state_dict: the mmaction2 recognizer's (backbone.* and cls_head.*) or the bare backbone's
    plus cls_head.fc_cls.*; buffers (relative_position_index, t_relative_coords, attn_mask) dropped."""
    import torch
    from safetensors.torch import save_file
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    skip = ("relative_position_index", "t_relative_coords", "attn_mask")
    tensors = {}
    for k, v in state_dict.items():
        k = k.removeprefix("module.").removeprefix("backbone.")
        if k.endswith(skip):
            continue
        tensors[k] = v.detach().to(torch.float32).contiguous()
    save_file(tensors, out / "model.safetensors", metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps({"model_type": "aim_swin", **cfg}, indent=2) + "\n")
    # mmaction2's test pipeline: short side 224, centre crop 224, mean/std on 0-255 RGB
    # ([123.675, 116.28, 103.53] / [58.395, 57.12, 57.375]), written here on the 0-1 scale.
    pre = {"processor": "mmaction", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
           "crop_size": cfg.get("img_size", 224), "resize_short_side": 224}
    (out / "preprocessor_config.json").write_text(json.dumps(pre, indent=2) + "\n")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("out_dir")
    ap.add_argument("--variant", choices=sorted(VARIANTS), default="base")
    ap.add_argument("--embed-dim", type=int)
    ap.add_argument("--depths", type=int, nargs=4)
    ap.add_argument("--num-heads", type=int, nargs=4)
    ap.add_argument("--num-frames", type=int, default=32)
    ap.add_argument("--num-classes", type=int, default=400)
    a = ap.parse_args()
    dim, depths, heads = VARIANTS[a.variant]
    import torch
    ck = torch.load(a.checkpoint, map_location="cpu", weights_only=False)
    sd = ck.get("state_dict", ck.get("model", ck))
    cfg = dict(embed_dim=a.embed_dim or dim, depths=a.depths or depths, num_heads=a.num_heads or heads,
               window_size=7, patch_size=[2, 4, 4], img_size=224, num_frames=a.num_frames, mlp_ratio=4.0,
               t_relative="temporal_embedding" not in {k.removeprefix("backbone.") for k in sd},
               patch_norm=True, num_classes=a.num_classes)
    write_checkpoint(sd, a.out_dir, cfg)
    print("wrote", a.out_dir)


if __name__ == "__main__":
    main()
