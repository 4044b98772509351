#!/usr/bin/env python3
"""Converts a lucidrains TimeSformer-pytorch state dict into a vidattn checkpoint directory
(config.json with the constructor's arguments + model.safetensors). Needs torch and
safetensors; run by users, not by the library.

    python tools/convert_timesformer_pytorch.py model.pt out_dir --dim 512 --num-frames 8 \\
        --num-classes 10 [--image-size 224 --patch-size 16 --channels 3 --depth 12 --heads 8 \\
        --dim-head 64 --no-rotary-emb --shift-tokens]

The .pt holds `model.state_dict()` (or a dict with it under "state_dict" / "model").
"""
import argparse
import json
from pathlib import Path


def write_checkpoint(state_dict, out_dir, **ctor):
    """Writes config.json + model.safetensors; ctor = TimeSformer's constructor arguments."""
    import torch
    from safetensors.torch import save_file
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # The rotary buffers are recomputed by vidattn from the config.
    tensors = {k: v.detach().to(torch.float32).contiguous() for k, v in state_dict.items()
               if not (k.endswith("inv_freqs") or k.endswith(".scales"))}
    cfg = {"model_type": "timesformer_pytorch", **ctor}
    save_file(tensors, out / "model.safetensors", metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("out_dir")
    ap.add_argument("--dim", type=int, required=True)
    ap.add_argument("--num-frames", type=int, required=True)
    ap.add_argument("--num-classes", type=int, required=True)
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--patch-size", type=int, default=16)
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--depth", type=int, default=12)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--dim-head", type=int, default=64)
    ap.add_argument("--no-rotary-emb", action="store_true")
    ap.add_argument("--shift-tokens", action="store_true")
    a = ap.parse_args()
    import torch
    sd = torch.load(a.checkpoint, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
    write_checkpoint(sd, a.out_dir, dim=a.dim, num_frames=a.num_frames, num_classes=a.num_classes,
                     image_size=a.image_size, patch_size=a.patch_size, channels=a.channels, depth=a.depth,
                     heads=a.heads, dim_head=a.dim_head, rotary_emb=not a.no_rotary_emb, shift_tokens=a.shift_tokens)
    print("wrote", a.out_dir)


if __name__ == "__main__":
    main()
