#!/usr/bin/env python3
"""Converts a FastTimeSformer state dict (adam-mehdi/FastTimeSformer) into a vidattn checkpoint
directory. Needs torch and safetensors; run by users, not by the library.

    python tools/convert_fasttimesformer.py model.pt out_dir --frames 8 --height 224 --width 224 \\
        --num-classes 10 [--channels 3 --dim 128 --patch-size 16 --depth 12 --dim-head 64 \\
        --attn-mechanism fastformer --attn-type divided --no-rotary-emb --intended]

--intended sets parity false (the computations the repository intended, see README); the
default reproduces the repository's outputs. A performer model's projection_matrix buffers
are kept (they are the Omegas of the intended mode).
"""
import argparse
import json
from pathlib import Path


def write_checkpoint(state_dict, out_dir, **cfg):
    import torch
    from safetensors.torch import save_file
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to(torch.float32).contiguous() for k, v in state_dict.items()
               if not (k.endswith("inv_freqs") or k.endswith(".scales"))}
    save_file(tensors, out / "model.safetensors", metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps({"model_type": "fasttimesformer", **cfg}, indent=2) + "\n")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("out_dir")
    for name, kind, default in [("frames", int, None), ("height", int, None), ("width", int, None),
                                ("num-classes", int, None), ("channels", int, 3), ("dim", int, 128),
                                ("patch-size", int, 16), ("depth", int, 12), ("dim-head", int, 64),
                                ("attn-mechanism", str, "fastformer"), ("attn-type", str, "divided")]:
        ap.add_argument(f"--{name}", type=kind, default=default, required=default is None)
    ap.add_argument("--no-rotary-emb", action="store_true")
    ap.add_argument("--intended", action="store_true")
    a = ap.parse_args()
    import torch
    sd = torch.load(a.checkpoint, map_location="cpu", weights_only=True)
    sd = sd.get("state_dict", sd)
    write_checkpoint(sd, a.out_dir, frames=a.frames, channels=a.channels, height=a.height, width=a.width,
                     num_classes=a.num_classes, dim=a.dim, patch_size=a.patch_size, depth=a.depth,
                     dim_head=a.dim_head, rotary_emb=not a.no_rotary_emb, attn_mechanism=a.attn_mechanism,
                     attn_type=a.attn_type, parity=not a.intended)
    print("wrote", a.out_dir)


if __name__ == "__main__":
    main()
