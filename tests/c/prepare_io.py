#!/usr/bin/env python3
"""Writes the fixtures' inputs and expected logits as raw files for the C model test:
<out>/<model>/{pixel_values,logits}.bin = int64 ndim, int64 dims[ndim], float32 data."""
import json
import sys
from pathlib import Path

import numpy as np

MODELS = Path(__file__).resolve().parents[1] / "fixtures" / "models"
SHARES = {"vivit_v5names": "vivit", "vivit_sharded": "vivit"}   # same weights, other layouts
PAIRS = {"pixel_values": ["pixel_values", "regular_pixel_values"], "logits": ["logits", "regular_logits"]}


def seeded_input(z):
    """A fixture input stored as its seed and shape (scripts/original_goldens.py)."""
    return np.random.default_rng(int(z["seed"])).standard_normal(tuple(z["shape"]), dtype=np.float32)


def write(path, a):
    a = np.ascontiguousarray(a, dtype=np.float32)
    with open(path, "wb") as f:
        f.write(np.array([a.ndim, *a.shape], dtype=np.int64).tobytes())
        f.write(a.tobytes())


def main(out):
    out = Path(out)
    n = 0
    for d in sorted(MODELS.iterdir()):
        src_dir = MODELS / SHARES.get(d.name, d.name)
        if not (src_dir / "io.npz").exists():
            continue
        z = dict(np.load(src_dir / "io.npz"))
        if "seed" in z and "pixel_values" not in z:   # inputs regenerated from their seed (no torch)
            z["pixel_values"] = seeded_input(z)
        names = {k: next((c for c in cands if c in z), None) for k, cands in PAIRS.items()}
        if None in names.values():
            continue
        (out / d.name).mkdir(parents=True, exist_ok=True)
        for k, src in names.items():
            write(out / d.name / f"{k}.bin", z[src])
        if "last_hidden_state" in z and src_dir.name != "timesformer_space":
            # The reference's last hidden state and the pooled embeddings expected from it:
            # token 0, and the mean over the patch tokens (CLS left out where there is one).
            h = z["last_hidden_state"]
            cfg = json.loads((src_dir / "config.json").read_text())
            first = 1 if cfg["model_type"] in ("vivit", "timesformer", "motionformer", "timesformer_pytorch",
                                               "fasttimesformer") else 0
            write(out / d.name / "last_hidden_state.bin", h)
            write(out / d.name / "pooled_cls.bin", h[:, 0])
            write(out / d.name / "pooled_mean.bin", h[:, first:].mean(1))
        n += 1
    print(f"prepared {n} models in {out}")


if __name__ == "__main__":
    main(sys.argv[1])
