#!/usr/bin/env python3
"""Two builds of libvidattn.so in one process, alternating call by call.

    python bench/ab.py --base REV|LIB [--new LIB] [--threads 2] [--rounds 15]
                       [--base-env VAR=VALUE ...] [--new-env VAR=VALUE ...]
                       (--model DIR [--precision fp32|bf16|int8] [--frames T] [--size S]
                        | --attention B,H,N,d | --gemm MxKxN) ...

The before/after of a change without a temporary switch in the code: the base library (a
file, or a git revision built once into .build-ab/<sha>) and the new one (default: this
tree's .build/release/libvidattn.so) are loaded side by side (each copied to a file of its
own, so the dynamic loader keeps two images with their own thread pools), and each workload
runs on both, the order swapped every round. Printed per workload: the median time of each,
the median of the per-round ratios new/base with its quartiles, and the largest difference
between the two outputs ("same bits" when there is none), and the share of CPU time the
hypervisor stole during the rounds (bench/machine.py). The Python wrapper of this tree
drives both libraries, so compare builds whose C API agrees. --base-env / --new-env set
environment variables for one side only (before its loads and each of its calls; the library
reads most of its settings once per image, at first use), so one build can be compared with
itself under another setting: `--base LIB --new LIB --new-env VIDATTN_GEMM_KC=512`.
docs/benchmarking.md says why only such alternations decide on the shared VMs of BENCHMARKS.md.
"""
import contextlib
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "examples" / "python"
# bench/machine.py: Python puts a script's own folder on sys.path
from machine import StealMeter  # noqa: E402
DEFAULT_FRAMES = {"vivit": 32, "timesformer": 8, "swin3d": 16}  # by directory name, else num_frames, else 8


def build_revision(rev):
    """libvidattn.so of git revision `rev`, built once into .build-ab/<sha> (a detached worktree)."""
    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", rev + "^{commit}"],
                         capture_output=True, text=True, check=True).stdout.strip()
    out = ROOT / ".build-ab" / sha
    lib = out / "scratch" / "release" / "libvidattn.so"
    if lib.is_file():
        return lib
    tree = out / "tree"
    if not tree.exists():
        out.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), sha], check=True)
    print(f"building {rev} ({sha[:10]}) in {out} ...", flush=True)
    subprocess.run(["swift", "build", "-c", "release", "--package-path", str(tree),
                    "--scratch-path", str(out / "scratch")], check=True)
    return lib


def load_package(lib_path):
    """A fresh instance of the vidattn package bound to `lib_path`. The module cache and
    VIDATTN_LIB are put back afterwards, so an earlier `import vidattn` is left as it was."""
    def ours(name):
        return name == "vidattn" or name.startswith("vidattn.")
    saved = {k: sys.modules.pop(k) for k in list(sys.modules) if ours(k)}
    env = os.environ.get("VIDATTN_LIB")
    os.environ["VIDATTN_LIB"] = str(lib_path)
    if str(PKG) not in sys.path:
        sys.path.insert(0, str(PKG))
    try:
        import vidattn  # noqa: F401 (imported for its side effect on sys.modules)
        fresh = {k: sys.modules.pop(k) for k in list(sys.modules) if ours(k)}
    finally:
        sys.modules.update(saved)
        if env is None:
            os.environ.pop("VIDATTN_LIB", None)
        else:
            os.environ["VIDATTN_LIB"] = env
    return fresh["vidattn"]


def inlining_warning(lib_path):
    """The check of `make check-inlined`: an out-of-line GELU means a build not worth timing."""
    try:
        syms = subprocess.run(["nm", str(lib_path)], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return None
    if any("GELU" in s and "O5apply" in s for s in syms.splitlines()):
        return f"warning: {lib_path} calls GELU.apply out of line (docs/benchmarking.md); rebuild clean"
    return None


def parse_env(items, flag):
    """{VAR: VALUE} from VAR=VALUE strings."""
    out = {}
    for item in items:
        var, eq, value = item.partition("=")
        if not eq or not var:
            raise SystemExit(f"ab.py: {flag} takes VAR=VALUE, not {item!r}")
        out[var] = value
    return out


@contextlib.contextmanager
def side_env(env):
    """The process environment with `env` set, as it was afterwards."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def workloads(args, pkg):
    """(label, callable returning an ndarray) per requested workload, for one library."""
    rng = np.random.default_rng(0)
    out = []
    for d in args.model:
        m = pkg.load(d, precision=args.precision)
        name, s = Path(d).name, args.size
        t = args.frames or next((v for k, v in DEFAULT_FRAMES.items() if name.startswith(k)), m.num_frames or 8)
        x = rng.standard_normal((1, t, 3, s, s), dtype=np.float32)
        out.append((f"{name} {args.precision} [1, {t}, 3, {s}, {s}]", lambda m=m, x=x: np.asarray(m(x))))
    for spec in args.attention:
        b, h, n, dd = (int(v) for v in spec.split(","))
        q, k, v = (rng.standard_normal((b, h, n, dd), dtype=np.float32) for _ in range(3))
        out.append((f"attention [{b}, {h}, {n}, {dd}]", lambda q=q, k=k, v=v: pkg.attention.exact(q, k, v)))
    for spec in args.gemm:
        m_, k_, n_ = (int(v) for v in spec.split("x"))
        a = rng.standard_normal((m_, k_), dtype=np.float32)
        w = rng.standard_normal((n_, k_), dtype=np.float32)
        out.append((f"sgemm {m_}x{k_}->{n_} (B packed per call)", lambda a=a, w=w: pkg.kernels.sgemm(a, w, trans_b=True)))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help="a libvidattn.so file, or a git revision to build")
    ap.add_argument("--new", default=str(ROOT / ".build" / "release" / "libvidattn.so"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--model", action="append", default=[], help="checkpoint directory (repeatable)")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "int8"])
    ap.add_argument("--frames", type=int, default=0,
                    help="input frames (default: by directory name, else the model's num_frames, else 8)")
    ap.add_argument("--size", type=int, default=224, help="input height and width")
    ap.add_argument("--attention", action="append", default=[], help="B,H,N,d (repeatable)")
    ap.add_argument("--gemm", action="append", default=[], help="MxKxN (repeatable)")
    ap.add_argument("--base-env", action="append", default=[], help="VAR=VALUE for the base side only (repeatable)")
    ap.add_argument("--new-env", action="append", default=[], help="VAR=VALUE for the new side only (repeatable)")
    args = ap.parse_args(argv)
    envs = [parse_env(args.base_env, "--base-env"), parse_env(args.new_env, "--new-env")]
    if not (args.model or args.attention or args.gemm):
        ap.error("name a workload: --model, --attention or --gemm")
    if args.rounds < 1 or args.threads < 1:
        ap.error("--rounds and --threads must be at least 1")

    base = Path(args.base)
    if not base.is_file():
        base = build_revision(args.base)
    new = Path(args.new)
    if not new.is_file():
        ap.error(f"{new} does not exist (build with `make build`)")
    tmp = Path(tempfile.mkdtemp(prefix="vidattn-ab-"))
    try:
        libs = []
        for tag, src in (("base", base), ("new", new)):
            warn = inlining_warning(src)
            if warn:
                print(warn)
            dst = tmp / f"libvidattn-{tag}.so"  # distinct files: two images even for one build
            shutil.copyfile(src, dst)
            libs.append(dst)
        os.environ["VIDATTN_NUM_THREADS"] = str(args.threads)
        # Every call into a side, from its load on, under that side's variables: the library
        # reads some settings once, at their first use (VIDATTN_MAX_ISA fixes the bf16 and int8
        # units when the CPU's features are first asked for).
        pkgs = []
        for p, env in zip(libs, envs):
            with side_env(env):
                pkgs.append(load_package(p))
                pkgs[-1].set_num_threads(args.threads)
        with side_env(envs[1]):
            f = pkgs[1].cpu_features()
            peak = pkgs[1].fma_peak_gflops(args.threads)
        print(f"cpu: {f.get('cpu', '?')}; {args.threads} thread(s); fp32 FMA peak "
              f"{peak:.0f} GFLOP/s; {args.rounds} rounds, order swapped each round")
        for tag, path, env in (("base:", base, envs[0]), ("new: ", new, envs[1])):
            print(f"{tag} {path}" + "".join(f" {k}={v}" for k, v in env.items()))
        sides = []
        for p, env in zip(pkgs, envs):
            with side_env(env):
                sides.append(workloads(args, p))
        for pair in zip(*sides):
            label = pair[0][0]
            outs = [None, None]
            for side in (0, 1):  # warm-up (first-call allocations, packing, settings read)
                with side_env(envs[side]):
                    outs[side] = pair[side][1]()
            times = [[], []]
            with StealMeter() as steal:
                for r in range(args.rounds):
                    for side in ((0, 1) if r % 2 == 0 else (1, 0)):
                        with side_env(envs[side]):
                            t0 = time.perf_counter()
                            outs[side] = pair[side][1]()
                            times[side].append(time.perf_counter() - t0)
            tb, tn = np.array(times[0]), np.array(times[1])
            ratio = tn / tb
            q1, q3 = np.percentile(ratio, [25, 75])
            diff = float(np.max(np.abs(outs[0].astype(np.float64) - outs[1].astype(np.float64))))
            same = "same bits" if np.array_equal(outs[0], outs[1]) else f"max |new - base| {diff:.2e}"
            print(f"{label}: base {np.median(tb) * 1e3:.2f} ms, new {np.median(tn) * 1e3:.2f} ms; "
                  f"new/base per round {np.median(ratio):.3f} (quartiles {q1:.3f}-{q3:.3f}); {steal.text()}; {same}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
