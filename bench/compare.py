#!/usr/bin/env python3
"""End-to-end model benchmarks: the same randomly initialised models in PyTorch and in
vidattn, from one checkpoint directory, in the same run.

    python bench/compare.py [--threads 2] [--reps 5] [--only vivit timesformer swin3d_t ...] [--no-onnx]

For each workload: build the PyTorch model (transformers / torchvision / timesformer-pytorch,
or the spec-based torch model for Motionformer), save it as a vidattn checkpoint directory in
a temporary folder, check that the logits agree, and time both: one warm-up, then the median
of --reps forwards, the two sides alternating (torch.inference_mode, same thread count). Peak RSS of each side is
measured in separate processes (VmHWM of a process that loads the model and runs one
forward). Batch 1, fp32. When onnxruntime is importable, the HF models (ViViT, TimeSformer)
are also exported to ONNX (TorchScript exporter, opset 18) and timed in onnxruntime's CPU
provider with the same thread count, as a third side.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples" / "python"))
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tools"))
# bench/machine.py: Python puts a script's own folder on sys.path
from machine import StealMeter, percent_text  # noqa: E402

WORKLOADS = ["vivit", "timesformer", "swin3d_t", "motionformer", "motionformer_nystrom", "motionformer_orthoformer",
             "motionformer_performer", "timesformer_pytorch"]


def HFLogits(m):
    """A module returning the logits of an HF video classifier (exportable to ONNX)."""
    import torch

    class Logits(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = m

        def forward(self, pixel_values):
            return self.m(pixel_values=pixel_values).logits
    return Logits().eval()


def build(name, out_dir):
    """Returns (torch_fn(video [B,T,C,H,W]) -> logits, video, checkpoint dir)."""
    import torch
    torch.manual_seed(0)
    d = Path(out_dir) / name
    if name == "vivit":
        from transformers import VivitConfig, VivitForVideoClassification
        m = VivitForVideoClassification(VivitConfig(num_labels=400)).eval()
        m.save_pretrained(d)
        return HFLogits(m), torch.randn(1, 32, 3, 224, 224), d
    if name == "timesformer":
        from transformers import TimesformerConfig, TimesformerForVideoClassification
        m = TimesformerForVideoClassification(TimesformerConfig(num_labels=400)).eval()
        m.save_pretrained(d)
        return HFLogits(m), torch.randn(1, 8, 3, 224, 224), d
    if name == "swin3d_t":
        import torchvision
        from convert_torchvision_swin3d import write_checkpoint
        m = torchvision.models.video.swin3d_t().eval()
        write_checkpoint(m.state_dict(), d, patch_size=[2, 4, 4], embed_dim=96, depths=[2, 2, 6, 2],
                         num_heads=[3, 6, 12, 24], window_size=[8, 7, 7])
        return lambda v: m(v.transpose(1, 2)), torch.randn(1, 16, 3, 224, 224), d
    if name.startswith("motionformer"):
        import spec_reference as R
        from convert_motionformer import write_checkpoint
        approx = name.split("_")[1] if "_" in name else "none"
        cfg = dict(embed_dim=768, depth=12, num_heads=12, mlp_ratio=4.0, patch_size=16, patch_size_temp=2,
                   temporal_resolution=8, img_size=224, in_chans=3, num_classes=400, approx_attn_type=approx,
                   approx_attn_dim=128 if approx != "performer" else 256, use_original_code=True, use_mlp=True,
                   head_act="tanh", qkv_bias=True, pos_embed="separate", orthoformer_start=0, attn_layer="trajectory")
        m = R.MotionformerRef(cfg).eval()
        write_checkpoint(m.state_dict(), d, cfg)
        return m, torch.randn(1, 16, 3, 224, 224), d
    if name == "timesformer_pytorch":
        from convert_timesformer_pytorch import write_checkpoint
        from timesformer_pytorch import TimeSformer
        ctor = dict(dim=512, num_frames=8, num_classes=400, image_size=224, patch_size=16, channels=3, depth=12,
                    heads=8, dim_head=64, rotary_emb=True, shift_tokens=False)
        m = TimeSformer(**ctor).eval()
        write_checkpoint(m.state_dict(), d, **ctor)
        return m, torch.randn(1, 8, 3, 224, 224), d
    raise ValueError(name)


def median_times(fns, reps):
    """Medians of each function, run alternately (one warm-up each, then reps rounds of one
    call each, 0.1 s apart so that spinning OpenMP workers settle): slow drifts of the
    machine's speed then hit both sides alike. Returns the medians and the share of CPU time
    the hypervisor stole during the timed rounds (text for the table's steal column)."""
    for fn in fns:
        fn()
    ts = [[] for _ in fns]
    with StealMeter() as steal:
        for _ in range(reps):
            for i, fn in enumerate(fns):
                time.sleep(0.1)
                t0 = time.perf_counter()
                fn()
                ts[i].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in ts], percent_text(steal.percent)


def peak(args):
    """Subprocess: load one side and run one forward; print VmHWM in MiB."""
    import numpy as np
    side, name, ckpt, video, threads = args
    if side == "torch":
        import torch
        torch.set_num_threads(int(threads))
        with tempfile.TemporaryDirectory() as tmp:
            fn, _, _ = build(name, tmp)
        v = torch.from_numpy(np.load(video))
        with torch.inference_mode():
            fn(v)
    else:
        import vidattn
        vidattn.set_num_threads(int(threads))
        with vidattn.load(ckpt) as m:
            m(np.load(video))
    with open("/proc/self/status") as f:
        print(next(int(l.split()[1]) for l in f if l.startswith("VmHWM:")) / 1024)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--only", nargs="+", choices=WORKLOADS, default=WORKLOADS)
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--no-onnx", action="store_true", help="skip the onnxruntime side")
    ap.add_argument("--precision", choices=["fp32", "bf16", "int8"], default="fp32",
                    help="bf16: PyTorch fp32 and bf16 autocast against vidattn fp32 and bf16 (4 sides); "
                         "int8: PyTorch fp32 and quantize_dynamic int8 against vidattn fp32, bf16 and int8 (5 sides)")
    ap.add_argument("--peak", nargs=5, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.peak:
        return peak(a.peak)
    if a.precision == "bf16":
        return bf16_table(a)
    if a.precision == "int8":
        return int8_table(a)
    import numpy as np
    import torch
    import vidattn
    torch.set_num_threads(a.threads)
    vidattn.set_num_threads(a.threads)
    print(f"# end-to-end forward, batch 1, fp32, {a.threads} threads, median of {a.reps} (torch {torch.__version__})\n")
    print("| workload | PyTorch | onnxruntime | vidattn | speed-up vs PyTorch | vs onnxruntime | vidattn GFLOP/s "
          "| max logit diff | peak RSS torch | peak RSS vidattn | steal |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.only:
            fn, video, ckpt = build(name, tmp)
            vnp = video.numpy()
            m = vidattn.load(ckpt)

            def torch_fn():
                with torch.inference_mode():
                    return fn(video)
            ort_fn = None if a.no_onnx else onnx_session(name, fn, video, tmp, a.threads)
            fns = [torch_fn, lambda: m(vnp)] + ([ort_fn] if ort_fn else [])
            times, steal = median_times(fns, a.reps)
            t_torch, t_va = times[0], times[1]
            t_ort = times[2] if ort_fn else None
            ref = torch_fn().numpy()
            if ort_fn:
                diff_ort = float(np.abs(ort_fn() - ref).max())
                assert diff_ort < 1e-3, f"onnxruntime disagrees with PyTorch by {diff_ort}"
            diff = float(np.abs(m(vnp) - ref).max())
            flops = gflops(name, m)
            m.close()
            mem = ("-", "-")
            if not a.no_memory:
                vpath = Path(tmp) / f"{name}.npy"
                np.save(vpath, vnp)
                env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), VIDATTN_NUM_THREADS=str(a.threads))
                mem = tuple(f"{float(subprocess.run([sys.executable, __file__, '--peak', side, name, str(ckpt), str(vpath), str(a.threads)], env=env, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]):.0f} MiB"
                            for side in ("torch", "vidattn"))
            gf = f"{flops / t_va:.0f}" if flops else "-"
            ort = (f"{t_ort:.2f} s", f"{t_ort / t_va:.2f}x") if t_ort else ("-", "-")
            print(f"| {name} | {t_torch:.2f} s | {ort[0]} | {t_va:.2f} s | {t_torch / t_va:.2f}x | {ort[1]} | {gf} | {diff:.1e} "
                  f"| {mem[0]} | {mem[1]} | {steal} |", flush=True)


def bf16_table(a):
    """PyTorch eager fp32 and torch.autocast("cpu", bfloat16) against vidattn fp32 and bf16,
    the four sides alternating in one run."""
    import numpy as np
    import torch
    import vidattn
    torch.set_num_threads(a.threads)
    vidattn.set_num_threads(a.threads)
    feats = vidattn.cpu_features()
    print(f"# end-to-end forward, batch 1, {a.threads} threads, median of {a.reps} (torch {torch.__version__}); "
          f"cpu: {feats['cpu']}; vidattn bf16 unit: {feats['bf16']}\n")
    print(TILE_NOTE)
    print("| workload | PyTorch fp32 | PyTorch bf16 autocast | vidattn fp32 | vidattn bf16 | bf16 vs PyTorch bf16 "
          "| bf16 vs vidattn fp32 | max logit diff bf16 vs fp32 | top-1 same | tile probe before / after | steal |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.only:
            fn, video, ckpt = build(name, tmp)
            vnp = video.numpy()
            m32, m16 = vidattn.load(ckpt), vidattn.load(ckpt, precision="bf16")

            def torch32():
                with torch.inference_mode():
                    return fn(video)

            def torch16():
                with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
                    return fn(video)
            p0 = tile_probe(a.threads)
            t, steal = median_times([torch32, torch16, lambda: m32(vnp), lambda: m16(vnp)], a.reps)
            p1 = tile_probe(a.threads)
            l32, l16 = m32(vnp), m16(vnp)
            diff = float(np.abs(l32 - l16).max())
            same = bool((l32.argmax(-1) == l16.argmax(-1)).all())
            print(f"| {name} | {t[0]:.2f} s | {t[1]:.2f} s | {t[2]:.2f} s | {t[3]:.2f} s | {t[1] / t[3]:.2f}x "
                  f"| {t[2] / t[3]:.2f}x | {diff:.1e} | {same} | {p0} / {p1} | {steal} |", flush=True)
            m32.close(); m16.close()


TILE_NOTE = ("Tile probe: AMX bf16 tile products in GFLOP/s summed over the threads, measured by the library "
             "right before and after each workload's timed runs (`-` without AMX); on a shared machine a drop "
             "means the tile unit was shared while the row was measured.\n")


def tile_probe(threads):
    """The library's AMX tile-product probe on `threads` workers, as text ('-' without AMX)."""
    import vidattn
    p = vidattn.tile_peak_gflops(threads)
    return f"{p:.0f}" if p > 0 else "-"


def int8_table(a):
    """PyTorch eager fp32 and torch.ao.quantization.quantize_dynamic (qint8 Linear layers)
    against vidattn fp32, bf16 and int8, the five sides alternating in one run. Where PyTorch's
    dynamic quantization fails on a model, its column says so."""
    import copy
    import numpy as np
    import torch
    import vidattn
    torch.set_num_threads(a.threads)
    vidattn.set_num_threads(a.threads)
    feats = vidattn.cpu_features()
    print(f"# end-to-end forward, batch 1, {a.threads} threads, median of {a.reps} (torch {torch.__version__}); "
          f"cpu: {feats['cpu']}; vidattn units: bf16 {feats['bf16']}, int8 {feats['int8']}\n")
    print(TILE_NOTE)
    print("| workload | PyTorch fp32 | PyTorch int8 dynamic | vidattn fp32 | vidattn bf16 | vidattn int8 "
          "| int8 vs PyTorch int8 | int8 vs vidattn fp32 | max logit diff int8 vs fp32 | top-1 same "
          "| tile probe before / after | steal |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.only:
            fn, video, ckpt = build(name, tmp)
            vnp = video.numpy()
            m32, m16, m8 = (vidattn.load(ckpt, precision=p) for p in ("fp32", "bf16", "int8"))

            def torch32():
                with torch.inference_mode():
                    return fn(video)
            tq = None
            try:
                q = torch.ao.quantization.quantize_dynamic(copy.deepcopy(fn), {torch.nn.Linear}, torch.qint8)

                def tq():
                    with torch.inference_mode():
                        return q(video)
                tq()
            except Exception as e:   # noqa: BLE001 - reported in the table
                print(f"<!-- {name}: PyTorch quantize_dynamic failed: {type(e).__name__}: {e} -->")
                tq = None
            sides = [torch32] + ([tq] if tq else []) + [lambda: m32(vnp), lambda: m16(vnp), lambda: m8(vnp)]
            p0 = tile_probe(a.threads)
            t, steal = median_times(sides, a.reps)
            p1 = tile_probe(a.threads)
            tt32, tq8 = t[0], (t[1] if tq else None)
            v32, v16, v8 = t[-3:]
            l32, l8 = m32(vnp), m8(vnp)
            diff = float(np.abs(l32 - l8).max())
            same = bool((l32.argmax(-1) == l8.argmax(-1)).all())
            tqs = f"{tq8:.2f} s" if tq8 else "fails"
            ratio = f"{tq8 / v8:.2f}x" if tq8 else "-"
            print(f"| {name} | {tt32:.2f} s | {tqs} | {v32:.2f} s | {v16:.2f} s | {v8:.2f} s | {ratio} "
                  f"| {v32 / v8:.2f}x | {diff:.1e} | {same} | {p0} / {p1} | {steal} |", flush=True)
            for m in (m32, m16, m8):
                m.close()


def onnx_session(name, fn, video, tmp, threads):
    """The HF models exported to ONNX and loaded in onnxruntime (CPU), or None."""
    if name not in ("vivit", "timesformer"):
        return None
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    import torch
    path = Path(tmp) / f"{name}.onnx"
    with torch.no_grad():
        torch.onnx.export(fn, (video,), str(path), input_names=["pixel_values"], output_names=["logits"],
                          dynamo=False, opset_version=18)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    x = video.numpy()
    return lambda: sess.run(None, {"pixel_values": x})[0]


def gflops(name, m):
    """Total fp32 GFLOPs of one forward (matmuls only), from the library's MAC counters."""
    import vidattn
    if name == "vivit":
        f = vidattn.flops("joint", channels=768, frames=16, patches=196)["total"] + 3137 * 768 * 3072 * 2
        return 2 * (12 * f + 3136 * 768 * 1536) / 1e9
    if name == "timesformer":
        t = vidattn.flops("divided_time_hf", channels=768, frames=8, patches=196)["total"]
        s = vidattn.flops("divided_space_hf", channels=768, frames=8, patches=196)["total"]
        mlp = 1569 * 768 * 3072 * 2
        return 2 * (12 * (t + s + mlp) + 1568 * 768 * 768) / 1e9
    return None


if __name__ == "__main__":
    main()
