#!/usr/bin/env python3
"""Attention mechanisms against N: vidattn's exact, Performer, Nyström, Orthoformer and
Fastformer, and PyTorch's SDPA, performer-pytorch FastAttention and nystrom-attention, at
12 heads x 64, batch 1, in one run.

    python bench/attention.py [--threads 2] [--reps 5] [--sizes 393 785 1569 3137 6273 12545]

Times are medians (implementations take turns in blocks, see bench/kernels.py); peak memory
is the extra VmHWM of the first call at that size in a fresh process (after a tiny warm-up
call), so it includes the output array and all scratch memory. All rows are the attention alone:
nystrom-attention's module is given the same q, k, v through a stand-in for its qkv
projection and an identity output projection (its depthwise-conv residual, part of its
algorithm, stays). Its algorithm differs from vidattn's Nyström (docs/attention.md, trajectory attention).
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples" / "python"))
sys.path.insert(0, str(ROOT / "bench"))
from kernels import race  # noqa: E402

H, D, M, L = 12, 64, 256, 128


def make_fns(N, which):
    import numpy as np
    import vidattn
    from vidattn import attention as A, kernels as K
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, H, N, D), dtype=np.float32) * 0.5 for _ in range(3))
    proj = A.performer_projection(M, D, seed=1)
    wq, wk = rng.standard_normal(D, dtype=np.float32), rng.standard_normal(D, dtype=np.float32)
    fns = {}
    if "vidattn" in which:
        fns["exact"] = lambda: A.exact(q, k, v)
        fns["performer"] = lambda: A.performer(q, k, v, proj)
        fns["nystrom"] = lambda: A.nystrom(q, k, v, L)
        fns["orthoformer"] = lambda: A.orthoformer(q, k, v, L)
        fns["fastformer"] = lambda: A.fastformer(q, k, v, wq, wk)
    if "torch" in which:
        import torch
        import torch.nn.functional as F
        from nystrom_attention import NystromAttention
        from performer_pytorch import FastAttention
        tq, tk, tv = (torch.from_numpy(t) for t in (q, k, v))
        fa = FastAttention(dim_heads=D, nb_features=M, causal=False)
        ny = NystromAttention(dim=H * D, dim_head=D, heads=H, num_landmarks=L, pinv_iterations=6).eval()
        # Attention only: the module's qkv projection returns the same q, k, v as the other
        # rows and its output projection is the identity (its depthwise-conv residual stays).
        qkv_flat = torch.cat([t.transpose(1, 2).reshape(1, N, H * D) for t in (tq, tk, tv)], dim=-1)
        qkv_flat = F.pad(qkv_flat, (0, 0, (L - N % L) % L, 0))  # the module pads x at the front

        class Given(torch.nn.Module):
            def forward(self, x):
                return qkv_flat
        ny.to_qkv = Given()
        ny.to_out = torch.nn.Identity()
        tx = torch.zeros(1, N, H * D)

        def wrap(f):
            def g():
                with torch.inference_mode():
                    return f()
            return g
        fns["torch sdpa"] = wrap(lambda: F.scaled_dot_product_attention(tq, tk, tv))
        fns["torch performer"] = wrap(lambda: fa(tq, tk, tv))
        fns["torch nystrom-attention"] = wrap(lambda: ny(tx))
    return fns


def worker(args):
    import vidattn
    vidattn.set_num_threads(args.threads)
    try:
        import torch
        torch.set_num_threads(args.threads)
    except ImportError:
        pass
    if args.memory:
        impl, name = args.memory
        make_fns(256, [impl])[name]()    # load libraries and code paths on a tiny problem first
        fn = make_fns(args.sizes[0], [impl])[name]

        def status(key):
            with open("/proc/self/status") as f:
                return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))
        before = status("VmRSS")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        fn()
        print(json.dumps({"extra_mib": (status("VmHWM") - before) / 1024}))
        return
    out = {}
    for N in args.sizes:
        which = ["vidattn"] + (["torch"] if args.torch else [])
        out[N] = race(make_fns(N, which), args.reps)
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--sizes", type=int, nargs="+", default=[393, 785, 1569, 3137, 6273, 12545])
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--memory-only", action="store_true")
    ap.add_argument("--plot", metavar="PNG", help="also draw time vs tokens (log-log) into this PNG (needs matplotlib)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--torch", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--memory", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        worker(a)
        return
    try:
        import torch, performer_pytorch, nystrom_attention  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
    env = dict(os.environ, VIDATTN_NUM_THREADS=str(a.threads), OMP_NUM_THREADS=str(a.threads),
               MKL_NUM_THREADS=str(a.threads), OPENBLAS_NUM_THREADS=str(a.threads))
    env.pop("OPENBLAS_CORETYPE", None); env.pop("OPENBLAS_L2_SIZE", None)

    def run(extra):
        r = subprocess.run([sys.executable, __file__, "--worker", "--threads", str(a.threads)] + extra,
                           env=env, capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError(r.stderr)
        return json.loads(r.stdout.strip().splitlines()[-1])
    sizes = [str(s) for s in a.sizes]
    if a.memory_only:
        return memory_table(a, sizes, have_torch, run)
    times = run(["--reps", str(a.reps), "--sizes", *sizes] + (["--torch"] if have_torch else []))
    names = list(next(iter(times.values())).keys())
    print(f"# attention mechanisms, [1, {H}, N, {D}], {a.threads} threads, median of {a.reps} (ms)\n")
    print("| N | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for N in sizes:
        print(f"| {N} | " + " | ".join(f"{times[N][n] * 1e3:.1f}" for n in names) + " |")
    if have_torch:
        print("\nratios (PyTorch time / vidattn time):")
        for N in sizes:
            t = times[N]
            print(f"- N={N}: SDPA/exact {t['torch sdpa'] / t['exact']:.2f}x, "
                  f"performer-pytorch/performer {t['torch performer'] / t['performer']:.2f}x, "
                  f"nystrom-attention/nystrom {t['torch nystrom-attention'] / t['nystrom']:.2f}x")
    print("\ncrossover (smallest N where the approximation beats vidattn's exact attention):")
    for n in ["performer", "nystrom", "orthoformer", "fastformer"]:
        win = [N for N in sizes if times[N][n] < times[N]["exact"]]
        print(f"- {n}: {'N = ' + win[0] if win else 'not within the sizes measured'}")
    if a.plot:
        plot(a, sizes, names, times)
    if not a.no_memory:
        memory_table(a, sizes, have_torch, run)


def plot(a, sizes, names, times):
    """Time per call against the token count, log-log: vidattn solid, PyTorch dashed."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7.5, 5), dpi=120)
    xs = [int(N) for N in sizes]
    for n in names:
        ax.plot(xs, [times[N][n] * 1e3 for N in sizes], "--" if n.startswith("torch") else "-", marker="o",
                markersize=3, label=n)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(xs, [str(x) for x in xs])
    ax.set_xlabel("tokens N")
    ax.set_ylabel("time per call (ms)")
    ax.set_title(f"attention [1, {H}, N, {D}], fp32, {a.threads} threads (vidattn solid, PyTorch dashed)", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(a.plot)
    print(f"\nplot: {a.plot}")


def memory_table(a, sizes, have_torch, run):
    print(f"\n## extra peak RSS of one call (MiB), {a.threads} threads\n")
    mem_names = [("vidattn", n) for n in ["exact", "performer", "nystrom", "orthoformer", "fastformer"]]
    if have_torch:
        mem_names += [("torch", n) for n in ["torch sdpa", "torch performer"]]
    print("| N | " + " | ".join(n for _, n in mem_names) + " |")
    print("|---" * (len(mem_names) + 1) + "|")
    for N in sizes:
        row = [run(["--sizes", N, "--memory", impl, n])["extra_mib"] for impl, n in mem_names]
        print(f"| {N} | " + " | ".join(f"{x:.1f}" for x in row) + " |")


if __name__ == "__main__":
    main()
