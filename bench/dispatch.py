#!/usr/bin/env python3
"""The portable library against a -march=native build, end to end, same run.

    VIDATTN_MARCH=native swift build -c release --build-path .build-native   # once
    /work/venv/bin/python bench/dispatch.py [--rounds 4] [--reps 3] [--only vivit timesformer swin3d_t]

Builds the randomly initialised models of bench/compare.py as checkpoint directories (needs
PyTorch), then runs `vidattn bench` of the two CLIs in turn, --rounds times each (sides
alternating, so drift hits both), and prints the median forward time of each side and their
ratio. Both sides use the thread count of VIDATTN_NUM_THREADS (default: all cores).
Add --isa avx2 to cap the portable side's kernels (VIDATTN_MAX_ISA) for the AVX2 figures.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))


def run(cli, model, reps, env):
    out = subprocess.run([str(cli), "bench", str(model), "--reps", str(reps), "--json"], env=env,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)["median_seconds"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", nargs="+", default=["vivit", "timesformer", "swin3d_t"])
    ap.add_argument("--portable", default=str(ROOT / ".build/release/vidattn-cli"))
    ap.add_argument("--native", default=str(ROOT / ".build-native/release/vidattn-cli"))
    ap.add_argument("--isa", help="VIDATTN_MAX_ISA for the portable side")
    a = ap.parse_args()
    import compare
    env = dict(os.environ)
    penv = dict(env, **({"VIDATTN_MAX_ISA": a.isa} if a.isa else {}))
    print(f"threads={env.get('VIDATTN_NUM_THREADS', os.cpu_count())} rounds={a.rounds} reps={a.reps} "
          f"portable isa cap={a.isa or 'none'}")
    print("| model | portable (dispatch) | -march=native | portable / native |\n|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.only:
            _, _, d = compare.build(name, tmp)
            p, n = [], []
            for _ in range(a.rounds):
                p.append(run(a.portable, d, a.reps, penv))
                n.append(run(a.native, d, a.reps, env))
            mp, mn = statistics.median(p), statistics.median(n)
            print(f"| {name} | {mp:.3f} s | {mn:.3f} s | {mp / mn:.3f} |", flush=True)


if __name__ == "__main__":
    main()
