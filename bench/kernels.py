#!/usr/bin/env python3
"""Kernel benchmarks: vidattn against numpy (OpenBLAS) and PyTorch, same machine, same run.

    make bench PYTHON=/path/to/venv/bin/python      # a Python with numpy (and torch, if available)
    python bench/kernels.py [--threads 1 2] [--reps 7] [--markdown]

Each thread count runs in its own subprocess with OPENBLAS_NUM_THREADS, OMP_NUM_THREADS,
VIDATTN_NUM_THREADS and torch.set_num_threads all equal. Times are medians of --reps runs
after one warm-up. Peak memory is measured in fresh subprocesses: the peak RSS (VmHWM, reset through
/proc/self/clear_refs) during one call minus the RSS before it, inputs and output touched.

Unset OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE (make bench does) or numpy runs Haswell kernels.
"""
import argparse
import ctypes
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples" / "python"))
# bench/machine.py: Python puts a script's own folder on sys.path
from machine import StealMeter, percent_text  # noqa: E402


def race(fns, reps, rounds=None):
    """Median seconds of each function. The functions take turns in blocks, for `rounds`
    rounds, so that slow drifts of the machine hit all of them alike. A block is a pause
    (another library's spinning worker threads, OpenBLAS or OpenMP, settle), one untimed call,
    then reps/rounds timed calls back to back. The untimed call comes after the pause, not
    before it: on the Emerald Rapids VM the first call after ~30 ms idle ran cold for both
    libraries (torch 1568x768->768 at 2 threads 277 -> 220 GFLOP/s, vidattn 256 -> 175-190),
    and timing it measured the idle gap rather than the kernel (docs/benchmarking.md)."""
    return block_medians(race_blocks(fns, reps, rounds))


def block_medians(blocks):
    """Median seconds of each function over all its blocks from `race_blocks`."""
    return {name: statistics.median(t for block in bs for t in block) for name, bs in blocks.items()}


def race_blocks(fns, reps, rounds=None):
    """The timed calls of `race`, per function a list of blocks (one per round), so that a
    caller can pair the functions' blocks of the same round (`paired_ratio`)."""
    blocks = {name: [] for name in fns}
    rounds = rounds or max(1, reps // 2)
    per = max(1, reps // rounds)
    for r in range(rounds):
        order = list(fns.items()) if r % 2 == 0 else list(fns.items())[::-1]
        for name, fn in order:
            time.sleep(0.1)
            fn()
            block = []
            for _ in range(per):
                t0 = time.perf_counter()
                fn()
                block.append(time.perf_counter() - t0)
            blocks[name].append(block)
    return blocks


def paired_ratio(blocks, num, den):
    """Median and quartiles over rounds of median(num's block) / median(den's block): a speed-up
    of `den` over `num` measured within each round, which the machine's slow phases (seconds
    long on the VMs of BENCHMARKS.md) move far less than a ratio of overall medians."""
    rs = sorted(statistics.median(a) / statistics.median(b) for a, b in zip(blocks[num], blocks[den]))
    q = statistics.quantiles(rs, n=4) if len(rs) > 1 else [rs[0]] * 3
    return q[1], q[0], q[2]


def run_worker(threads, reps):
    """`timed_worker`'s results with the hypervisor's steal share of its CPU time (per cent)."""
    with StealMeter() as steal:
        res = timed_worker(threads, reps)
    res["steal"] = steal.percent
    return res


def timed_worker(threads, reps):
    """Medians of the SGEMM and attention calls of vidattn, numpy and torch on `threads` threads."""
    import numpy as np
    import vidattn
    from vidattn._lib import lib, c_float_p
    vidattn.set_num_threads(threads)
    try:
        import torch
        torch.set_num_threads(threads)
    except ImportError:
        torch = None
    res = {"threads": threads, "torch": torch.__version__ if torch else None, "numpy": np.__version__}
    rng = np.random.default_rng(0)
    P = lambda a: a.ctypes.data_as(c_float_p)

    # SGEMM: ViT-B MLP up-projection, M=3136 tokens, K=768, N=3072, weight [N, K].
    m, k, n = 3136, 768, 3072
    a = rng.standard_normal((m, k), dtype=np.float32)
    w = rng.standard_normal((n, k), dtype=np.float32)
    c = np.empty((m, n), np.float32)
    flops = 2 * m * n * k
    wt = np.ascontiguousarray(w.T)
    fns = {"sgemm_vidattn": lambda: lib.vidattn_sgemm(0, 1, m, n, k, 1.0, P(a), k, P(w), k, 0.0, P(c), n),
           "sgemm_numpy": lambda: np.matmul(a, wt, out=c)}
    if torch:
        ta, tw, tc = torch.from_numpy(a), torch.from_numpy(w), torch.from_numpy(c)
        fns["sgemm_torch"] = lambda: torch.matmul(ta, tw.T, out=tc)
    res.update(race(fns, reps))
    res["sgemm_gflop"] = flops / 1e9

    # Attention: 12 heads x 3137 tokens x 64 (ViT-B on 16 frames of 14x14 patches + CLS).
    h, N, d = 12, 3137, 64
    q, kk, v = (rng.standard_normal((1, h, N, d), dtype=np.float32) for _ in range(3))
    o = np.empty_like(q)
    fns = {"attn_vidattn": lambda: lib.vidattn_attention(1, h, N, N, d, P(q), P(kk), P(v), P(o), 0.0,
                                                         None, None, None, None)}
    if torch:
        import torch.nn.functional as F
        tq, tk, tv = (torch.from_numpy(x) for x in (q, kk, v))

        def sdpa():
            with torch.inference_mode():
                return F.scaled_dot_product_attention(tq, tk, tv)
        fns["attn_torch"] = sdpa
    res.update(race(fns, reps))
    if torch:
        res["attn_maxdiff"] = float(np.abs(sdpa().numpy() - o).max())
    res["attn_gflop"] = 4 * h * N * N * d / 1e9
    return res


def run_memory(impl, N, threads):
    """Extra peak RSS (MiB) of one attention call at [12, N, 64]."""
    import numpy as np
    h, d = 12, 64
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, h, N, d), dtype=np.float32) for _ in range(3))
    o = np.zeros_like(q)
    if impl == "vidattn":
        import vidattn
        from vidattn._lib import lib, c_float_p
        vidattn.set_num_threads(threads)
        P = lambda a: a.ctypes.data_as(c_float_p)
        call = lambda: lib.vidattn_attention(1, h, N, N, d, P(q), P(k), P(v), P(o), 0.0, None, None, None, None)
    else:
        import torch
        import torch.nn.functional as F
        torch.set_num_threads(threads)
        tq, tk, tv = (torch.from_numpy(x) for x in (q, k, v))
        F.scaled_dot_product_attention(tq[:, :, :8], tk[:, :, :8], tv[:, :, :8])  # load kernels first

        def call():
            with torch.inference_mode():
                F.scaled_dot_product_attention(tq, tk, tv)
    o.fill(1.0)  # touch the output pages first

    def status(key):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))
    before = status("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:  # reset the peak (VmHWM) to the current RSS
        f.write("5")
    t0 = time.perf_counter()
    call()
    t = time.perf_counter() - t0
    after = status("VmHWM")
    return {"impl": impl, "N": N, "extra_mib": (after - before) / 1024, "seconds": t}


def sub(args):
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)
    t = str(args[args.index("--threads") + 1]) if "--threads" in args else "2"
    env.update(OPENBLAS_NUM_THREADS=t, OMP_NUM_THREADS=t, MKL_NUM_THREADS=t, VIDATTN_NUM_THREADS=t)
    out = subprocess.run([sys.executable, __file__] + args, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--memory", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(run_worker(a.threads[0], a.reps)))
        return
    if a.memory:
        print(json.dumps(run_memory(a.memory[0], int(a.memory[1]), a.threads[0])))
        return
    try:
        import torch  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
    import numpy as np
    print(f"# vidattn kernel benchmarks ({os.uname().machine}, {os.cpu_count()} cores), median of {a.reps}")
    for t in a.threads:
        r = sub(["--worker", "--threads", str(t), "--reps", str(a.reps)])
        gf, af = r["sgemm_gflop"], r["attn_gflop"]
        print(f"\n## {t} thread(s)   numpy {r['numpy']}   torch {r['torch']}")
        print("| workload | vidattn | numpy | torch | numpy/vidattn | torch/vidattn |")
        print("|---|---|---|---|---|---|")
        sn, st = r["sgemm_numpy"], r.get("sgemm_torch")
        fmt = lambda s: f"{s * 1e3:.1f} ms ({gf / s:.0f} GF/s)"
        print(f"| sgemm 3136x768 · 768x3072 | {fmt(r['sgemm_vidattn'])} | {fmt(sn)} | "
              f"{fmt(st) if st else '-'} | {sn / r['sgemm_vidattn']:.2f}x | "
              f"{(st / r['sgemm_vidattn']) if st else float('nan'):.2f}x |")
        at = r.get("attn_torch")
        fa = lambda s: f"{s * 1e3:.1f} ms ({af / s:.0f} GF/s)"
        print(f"| attention [12, 3137, 64] | {fa(r['attn_vidattn'])} | - | {fa(at) if at else '-'} | - | "
              f"{(at / r['attn_vidattn']) if at else float('nan'):.2f}x |")
        if at:
            print(f"\nattention max |vidattn - torch| = {r['attn_maxdiff']:.2e}")
        print(f"hypervisor steal during the worker (setup and calls): {percent_text(r.get('steal'))} of CPU time "
              "(bench/machine.py)")
    if not a.no_memory:
        print("\n## extra peak RSS of one attention call, [12, N, 64], 2 threads")
        print("| N | vidattn | torch SDPA |")
        print("|---|---|---|")
        for N in (3137, 12545):
            v = sub(["--memory", "vidattn", str(N), "--threads", "2"])
            tt = sub(["--memory", "torch", str(N), "--threads", "2"]) if have_torch else None
            tts = f"{tt['extra_mib']:.1f} MiB ({tt['seconds']:.2f} s)" if tt else "-"
            print(f"| {N} | {v['extra_mib']:.1f} MiB ({v['seconds']:.2f} s) | {tts} |")


if __name__ == "__main__":
    main()
