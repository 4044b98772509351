#!/usr/bin/env python3
"""Writes the fixtures' inputs and expected logits as raw files for the C model test:
<out>/<model>/{pixel_values,logits}.bin = int64 ndim, int64 dims[ndim], float32 data."""
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
        n += 1
    print(f"prepared {n} models in {out}")


if __name__ == "__main__":
    main(sys.argv[1])
