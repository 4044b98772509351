#!/usr/bin/env python3
"""Writes model.safetensors beside the pytorch_model.bin of a Hugging Face checkpoint directory,
so that vidattn (which never reads PyTorch pickles) can load it. Needs torch and safetensors,
once; the library itself never needs PyTorch.

    python tools/convert_pytorch_bin.py DIR [--force]

A sharded checkpoint (pytorch_model.bin.index.json + pytorch_model-0000X-of-0000N.bin) becomes
one model.safetensors. Tensors are written as they are stored (F32, F16 or BF16), contiguous;
tensors that share storage (tied weights) are copied apart. The pickle is loaded with
torch.load(weights_only=True), which refuses arbitrary code.
"""
import argparse
import json
import sys
from pathlib import Path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--force", action="store_true", help="overwrite an existing model.safetensors")
    a = ap.parse_args()
    d = Path(a.dir)
    out = d / "model.safetensors"
    if out.exists() and not a.force:
        sys.exit(f"{out} exists (use --force to overwrite)")
    index = d / "pytorch_model.bin.index.json"
    if index.exists():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    elif (d / "pytorch_model.bin").exists():
        files = ["pytorch_model.bin"]
    else:
        sys.exit(f"{d}: no pytorch_model.bin or pytorch_model.bin.index.json")
    import torch
    from safetensors.torch import save_file
    tensors = {}
    for f in files:
        sd = torch.load(d / f, map_location="cpu", weights_only=True)
        sd = sd.get("state_dict", sd) if isinstance(sd, dict) else sd
        for k, v in sd.items():
            if isinstance(v, torch.Tensor):
                tensors[k] = v.detach().clone().contiguous()
    if not tensors:
        sys.exit(f"{d}: no tensors found in {', '.join(files)}")
    save_file(tensors, out, metadata={"format": "pt"})
    print(f"wrote {out}: {len(tensors)} tensors from {', '.join(files)}")


if __name__ == "__main__":
    main()
