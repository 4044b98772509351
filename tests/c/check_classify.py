#!/usr/bin/env python3
"""Runs examples/c/classify on synthetic raw RGB frames with two fixture checkpoints and
checks its output: exit status, the top-K lines with labels from config.json, and that the
printed probabilities are a valid ranking; a missing file and bad arguments fail cleanly."""
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

MODELS = Path(__file__).resolve().parents[1] / "fixtures" / "models"


def main(exe):
    failures = 0
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        frames = Path(tmp) / "frames.rgb"
        rng.integers(0, 256, size=(10, 40, 50, 3), dtype=np.uint8).tofile(frames)   # 10 frames of 50x40
        for model in ["vivit", "timesformer_divided"]:
            r = subprocess.run([exe, str(MODELS / model), str(frames), "50", "40", "3"], capture_output=True, text=True)
            lines = r.stdout.strip().splitlines()
            rows = [re.match(r"\s*(\d)\. (label_\d)\s+([\d.]+)%", l) for l in lines[1:]]
            probs = [float(m.group(3)) for m in rows if m]
            ok = r.returncode == 0 and len(rows) == 3 and all(rows) and probs == sorted(probs, reverse=True)
            print(("ok  " if ok else "FAIL"), model, r.stdout.strip().replace("\n", " | "), r.stderr.strip())
            failures += not ok
        r = subprocess.run([exe, str(MODELS / "vivit"), str(Path(tmp) / "missing.rgb"), "50", "40"], capture_output=True)
        failures += r.returncode == 0
        r = subprocess.run([exe, str(MODELS / "vivit"), str(frames), "0", "40"], capture_output=True)
        failures += r.returncode != 2
    print(f"{5 - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
