#!/usr/bin/env python3
"""Every Linear shape of ViViT-B 32x224, TimeSformer-B 8x224 and swin3d_t 16x224: vidattn's SGEMM
against torch.nn.functional.linear (and numpy, when asked) in one run, as GFLOP/s and as a
percentage of this machine's measured fp32 FMA peak.

    python bench/gemm_shapes.py --threads 2 1 [--reps 18] [--rounds 6] [--markdown]

Each thread count runs in its own subprocess (VIDATTN_NUM_THREADS, OMP_NUM_THREADS and
torch.set_num_threads equal). Both sides get x [M, K] and a PyTorch Linear weight [N, K] and
compute x @ w.T + bias per call (vidattn packs w on each call, as torch does). The sides take
turns in blocks (bench/kernels.py `race_blocks`: a pause, an untimed call, then reps/rounds timed
calls), the order swapped each round; GFLOP/s are from the medians of all timed calls, the
speed-up is vidattn's per round (torch's block median over vidattn's), its median and quartiles
over the rounds — slow phases of the machine, seconds long on the VMs of BENCHMARKS.md, hit both
blocks of a round alike. The peak is measured first, on the same thread count, by
vidattn_fma_peak_gflops. The last column is the share of CPU time the hypervisor stole while
the shape's calls ran (bench/machine.py; `n/a` off Linux or without a steal count).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples" / "python"))
sys.path.insert(0, str(ROOT / "bench"))

from machine import StealMeter, percent_text  # noqa: E402

# (model, layer, M, K, N)
SHAPES = [
    ("ViViT-B", "qkv", 3137, 768, 2304), ("ViViT-B", "proj", 3137, 768, 768),
    ("ViViT-B", "fc1", 3137, 768, 3072), ("ViViT-B", "fc2", 3137, 3072, 768),
    ("ViViT-B", "patch", 3136, 1536, 768),
    ("TimeSformer-B", "qkv", 1576, 768, 2304), ("TimeSformer-B", "proj", 1576, 768, 768),
    ("TimeSformer-B", "temporal fc", 1568, 768, 768),
    ("TimeSformer-B", "fc1", 1569, 768, 3072), ("TimeSformer-B", "fc2", 1569, 3072, 768),
    ("swin3d_t", "s1 qkv", 25088, 96, 288), ("swin3d_t", "s1 proj", 25088, 96, 96),
    ("swin3d_t", "s1 fc1", 25088, 96, 384), ("swin3d_t", "s1 fc2", 25088, 384, 96),
    ("swin3d_t", "s2 qkv", 6272, 192, 576), ("swin3d_t", "s2 fc1", 6272, 192, 768),
    ("swin3d_t", "s2 fc2", 6272, 768, 192), ("swin3d_t", "merge1", 6272, 384, 192),
    ("swin3d_t", "s3 qkv", 1568, 384, 1152), ("swin3d_t", "s3 fc1", 1568, 384, 1536),
    ("swin3d_t", "s3 fc2", 1568, 1536, 384), ("swin3d_t", "s4 qkv", 392, 768, 2304),
    ("swin3d_t", "s4 fc2", 392, 3072, 768),
]


def worker(threads, reps, rounds):
    import numpy as np
    import torch
    import vidattn
    from kernels import block_medians, paired_ratio, race_blocks
    vidattn.set_num_threads(threads)
    torch.set_num_threads(threads)
    peak = vidattn.fma_peak_gflops(threads)
    rng = np.random.default_rng(0)
    rows = []
    for model, layer, m, k, n in SHAPES:
        x = rng.standard_normal((m, k), dtype=np.float32)
        w = rng.standard_normal((n, k), dtype=np.float32) * 0.05
        b = rng.standard_normal(n, dtype=np.float32)
        xt, wt, bt = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)
        ours = vidattn.kernels.sgemm(x, w, trans_b=True, bias=b)
        ref = torch.nn.functional.linear(xt, wt, bt).numpy()
        err = float(np.abs(ours - ref).max())
        with torch.inference_mode(), StealMeter() as steal:
            blocks = race_blocks({"vidattn": lambda: vidattn.kernels.sgemm(x, w, trans_b=True, bias=b),
                                  "torch": lambda: torch.nn.functional.linear(xt, wt, bt)}, reps, rounds)
        t = block_medians(blocks)
        ratio, q1, q3 = paired_ratio(blocks, "torch", "vidattn")
        gf = 2.0 * m * n * k / 1e9
        rows.append({"model": model, "layer": layer, "m": m, "k": k, "n": n, "vidattn_gflops": gf / t["vidattn"],
                     "torch_gflops": gf / t["torch"], "ratio": ratio, "ratio_q1": q1, "ratio_q3": q3,
                     "max_abs_diff": err, "steal": steal.percent})
    return {"threads": threads, "peak_gflops": peak, "cpu": vidattn.cpu_features()["cpu"],
            "torch": torch.__version__, "rows": rows}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    ap.add_argument("--reps", type=int, default=18, help="timed calls per side and shape")
    ap.add_argument("--rounds", type=int, default=6, help="blocks per side (the calls split among them)")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--only", help="only the shapes of this model (ViViT-B, TimeSformer-B, swin3d_t)")
    ap.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        if args.only:
            SHAPES[:] = [s for s in SHAPES if s[0] == args.only]
        print(json.dumps(worker(args.worker, args.reps, args.rounds)))
        return
    import vidattn
    feats = vidattn.cpu_features()
    print(f"cpu: {feats['cpu']}; flags: {' '.join(feats['flags'])}")
    for th in args.threads:
        env = dict(os.environ, VIDATTN_NUM_THREADS=str(th), OMP_NUM_THREADS=str(th))
        out = subprocess.run([sys.executable, __file__, "--worker", str(th), "--reps", str(args.reps),
                              "--rounds", str(args.rounds)]
                             + (["--only", args.only] if args.only else []),
                             env=env, capture_output=True, text=True, check=True)
        res = json.loads(out.stdout.strip().splitlines()[-1])
        peak = res["peak_gflops"]
        print(f"\n{th} thread(s), torch {res['torch']}, measured fp32 FMA peak {peak:.0f} GFLOP/s")
        hdr = ("| model | layer | M×K→N | vidattn GF/s (% peak) | torch GF/s (% peak) "
               "| vidattn speed-up per round (quartiles) | steal |")
        print(hdr if args.markdown else hdr.replace("|", " "))
        if args.markdown:
            print("|---|---|---|---|---|---|---|")
        ratios = []
        for r in res["rows"]:
            ratio = r["ratio"]
            ratios.append(ratio)
            line = (f"| {r['model']} | {r['layer']} | {r['m']}×{r['k']}→{r['n']} | "
                    f"{r['vidattn_gflops']:.0f} ({100 * r['vidattn_gflops'] / peak:.0f}%) | "
                    f"{r['torch_gflops']:.0f} ({100 * r['torch_gflops'] / peak:.0f}%) | {ratio:.2f}× ({r['ratio_q1']:.2f}–{r['ratio_q3']:.2f}) | "
                    f"{percent_text(r.get('steal'))} |")
            print(line if args.markdown else line.replace("|", " "))
        print(f"speed-up per round, over the shapes: lowest {min(ratios):.2f}×, median {statistics.median(ratios):.2f}×")


if __name__ == "__main__":
    main()
