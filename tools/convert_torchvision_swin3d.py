#!/usr/bin/env python3
"""Converts a torchvision Video Swin checkpoint (swin3d_t / swin3d_s / swin3d_b) into a vidattn
checkpoint directory (config.json + model.safetensors). Needs torch and safetensors; run by
users, not by the library.

    python tools/convert_torchvision_swin3d.py swin3d_t-7615ae03.pth out_dir --variant swin3d_t
    python tools/convert_torchvision_swin3d.py --pretrained swin3d_t out_dir   # torchvision weights, if cached

The .pth is a plain state dict (torch.save(model.state_dict())). Buffers that vidattn
recomputes (relative_position_index) are dropped.
"""
import argparse
import json
from pathlib import Path

VARIANTS = {
    "swin3d_t": dict(embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24]),
    "swin3d_s": dict(embed_dim=96, depths=[2, 2, 18, 2], num_heads=[3, 6, 12, 24]),
    "swin3d_b": dict(embed_dim=128, depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32]),
}


def write_checkpoint(state_dict, out_dir, *, patch_size, embed_dim, depths, num_heads, window_size,
                     mlp_ratio=4.0, id2label=None):
    """Writes config.json + model.safetensors for a SwinTransformer3d state dict."""
    import torch
    from safetensors.torch import save_file
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to(torch.float32).contiguous() for k, v in state_dict.items()
               if not k.endswith("relative_position_index")}
    num_classes = tensors["head.weight"].shape[0]
    cfg = {"model_type": "torchvision_swin3d", "patch_size": list(patch_size), "embed_dim": embed_dim,
           "depths": list(depths), "num_heads": list(num_heads), "window_size": list(window_size),
           "mlp_ratio": mlp_ratio, "num_classes": num_classes}
    if id2label:
        cfg["id2label"] = {str(k): v for k, v in id2label.items()}
    save_file(tensors, out / "model.safetensors", metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    # torchvision's VideoClassification preset for these weights.
    pre = {"processor": "torchvision_video_classification", "resize_size": [256], "crop_size": [224, 224],
           "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "interpolation": "bilinear"}
    (out / "preprocessor_config.json").write_text(json.dumps(pre, indent=2) + "\n")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", nargs="?", help="state-dict .pth")
    ap.add_argument("out_dir")
    ap.add_argument("--variant", choices=sorted(VARIANTS), default="swin3d_t")
    ap.add_argument("--pretrained", choices=sorted(VARIANTS), help="load torchvision's KINETICS400_V1 weights instead")
    a = ap.parse_args()
    import torch
    labels = None
    if a.pretrained:
        import torchvision.models.video as V
        weights = getattr(V, {"swin3d_t": "Swin3D_T_Weights", "swin3d_s": "Swin3D_S_Weights",
                              "swin3d_b": "Swin3D_B_Weights"}[a.pretrained]).KINETICS400_V1
        sd = getattr(V, a.pretrained)(weights=weights).state_dict()
        labels = dict(enumerate(weights.meta["categories"]))
        variant = a.pretrained
    else:
        if not a.checkpoint:
            ap.error("give a checkpoint or --pretrained")
        sd = torch.load(a.checkpoint, map_location="cpu", weights_only=True)
        sd = sd.get("state_dict", sd) if isinstance(sd, dict) else sd
        variant = a.variant
    v = VARIANTS[variant]
    write_checkpoint(sd, a.out_dir, patch_size=[2, 4, 4], window_size=[8, 7, 7], id2label=labels, **v)
    print("wrote", a.out_dir)


if __name__ == "__main__":
    main()
