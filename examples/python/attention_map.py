#!/usr/bin/env python3
"""Save a PNG of the CLS token's attention over the patches of each frame.

    python examples/python/attention_map.py VIDEO MODEL_DIR out.png [--layer -1]

Works with checkpoints whose forward returns attention maps (HF ViViT and HF TimeSformer).
The image shows, for each sampled frame, the frame itself above a heat map of the last
layer's CLS attention (averaged over heads) on that frame's patches.
"""
import argparse
import struct
import sys
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vidattn  # noqa: E402
from classify_video import decode  # noqa: E402


def write_png(path, rgb):
    """rgb uint8 [H, W, 3] -> PNG file (no dependencies)."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))
    def chunk(kind, data):
        c = kind + data
        return struct.pack(">I", len(data)) + c + struct.pack(">I", zlib.crc32(c) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def heat(values):
    """[h, w] in [0, 1] -> uint8 RGB (black-red-yellow-white)."""
    v = np.clip(values, 0, 1)
    return (np.stack([np.clip(3 * v, 0, 1), np.clip(3 * v - 1, 0, 1), np.clip(3 * v - 2, 0, 1)], -1) * 255).astype(np.uint8)


def cls_maps(model, out, frames, grid):
    """Per-frame CLS attention [T', gh, gw] from the chosen layer's probabilities."""
    gh, gw = grid
    a = out.attentions[-1]
    if model.model_type == "vivit":                    # [1, H, 1+N, 1+N], tokens (t, i, j)
        row = a[0].mean(0)[0, 1:]
        return row.reshape(-1, gh, gw)
    if model.model_type == "timesformer":              # spatial attention [T, H, 1+P, 1+P]
        return a.mean(1)[:, 0, 1:].reshape(-1, gh, gw)
    raise SystemExit(f"{model.model_type} does not return attention maps")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("video")
    ap.add_argument("model")
    ap.add_argument("out")
    a = ap.parse_args()
    frames = decode(a.video)
    with vidattn.load(a.model) as model:
        px = model.preprocess(frames)
        out = model.forward(px, output_attentions=True)
        cfg = model.config
        patch = cfg.get("patch_size") or cfg.get("tubelet_size", [1, 16, 16])[1]
        H, W = px.shape[3], px.shape[4]
        maps = cls_maps(model, out, px.shape[1], (H // patch, W // patch))
    # Show the sampled input frames (de-normalised roughly to 0..255) above their maps.
    shown = px[0].transpose(0, 2, 3, 1)
    shown = ((shown - shown.min()) / max(shown.max() - shown.min(), 1e-6) * 255).astype(np.uint8)
    step = max(1, len(shown) // len(maps))
    tiles = []
    for t, m in enumerate(maps):
        m = m / max(m.max(), 1e-12)
        big = np.kron(heat(m), np.ones((H // m.shape[0], W // m.shape[1], 1), np.uint8))
        big = np.pad(big, ((0, H - big.shape[0]), (0, W - big.shape[1]), (0, 0)))
        tiles.append(np.concatenate([shown[min(t * step, len(shown) - 1)], big], axis=0))
    img = np.concatenate(tiles, axis=1)
    zoom = max(1, 256 // img.shape[0])                  # small models: enlarge for viewing
    write_png(a.out, np.kron(img, np.ones((zoom, zoom, 1), np.uint8)))
    print(f"wrote {a.out}: {len(tiles)} frames, CLS attention of the last layer")


if __name__ == "__main__":
    main()
