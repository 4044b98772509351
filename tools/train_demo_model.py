#!/usr/bin/env python3
"""Trains the demo model: a small HF TimeSformer that tells which way a textured object moves
or rotates (tools/demo_clips.py), then saves a real HF checkpoint directory under models/demo
(config.json with id2label, model.safetensors, preprocessor_config.json) with its training
log (earlier 7-class attempts with turns: held-out accuracy 0.88-0.89, turn direction ~50 %), and renders the bundled example clips (examples/data/*.mp4, seeds never used in training).
Run once by a developer (needs torch and transformers), not by CI:

    python tools/train_demo_model.py [--steps 3000] [--threads 2]
"""
import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from demo_clips import FRAMES, LABELS, batch, render  # noqa: E402

MEAN = STD = 0.5
TRAIN_SEED, HELDOUT_SEED, CLIP_SEED = 1, 2_000_000, 3_000_000


def to_pixels(clips):
    """uint8 [B, T, H, W, 3] -> float32 [B, T, 3, H, W] as the checkpoint's processor does."""
    x = clips.astype(np.float32) / 255
    return ((x - MEAN) / STD).transpose(0, 1, 4, 2, 3)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "models" / "demo"))
    a = ap.parse_args()
    import torch
    from transformers import TimesformerConfig, TimesformerForVideoClassification
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = TimesformerConfig(image_size=32, patch_size=8, num_frames=FRAMES, hidden_size=64, num_hidden_layers=3,
                            num_attention_heads=4, intermediate_size=128, num_labels=len(LABELS),
                            id2label=dict(enumerate(LABELS)), label2id={l: i for i, l in enumerate(LABELS)})
    model = TimesformerForVideoClassification(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=a.steps, pct_start=0.1)
    rng = np.random.default_rng(TRAIN_SEED)
    held_rng = np.random.default_rng(HELDOUT_SEED)
    held_x, held_y = batch(held_rng, 700)
    log = []

    def evaluate():
        model.eval()
        with torch.no_grad():
            logits = torch.cat([model(pixel_values=torch.from_numpy(to_pixels(held_x[i:i + 100]))).logits
                                for i in range(0, len(held_x), 100)])
        model.train()
        return float((logits.argmax(1).numpy() == held_y).mean())

    t0 = time.time()
    for step in range(1, a.steps + 1):
        x, y = batch(rng, a.batch)
        out = model(pixel_values=torch.from_numpy(to_pixels(x)), labels=torch.from_numpy(y))
        opt.zero_grad()
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 250 == 0 or step == a.steps:
            acc = evaluate()
            line = f"step {step:5d}  loss {out.loss.item():.4f}  held-out accuracy {acc:.4f}  ({time.time() - t0:.0f} s)"
            print(line, flush=True)
            log.append(line)
    acc = evaluate()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.save_pretrained(out)
    pre = {"image_processor_type": "VideoMAEImageProcessor", "do_resize": True, "size": {"shortest_edge": 32},
           "resample": 2, "do_center_crop": True, "crop_size": {"height": 32, "width": 32}, "do_rescale": True,
           "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": [MEAN] * 3, "image_std": [STD] * 3}
    (out / "preprocessor_config.json").write_text(json.dumps(pre, indent=2) + "\n")
    (out / "training_log.txt").write_text(
        f"HF TimesformerForVideoClassification, {sum(p.numel() for p in model.parameters())} parameters, "
        f"{a.steps} steps of {a.batch} clips, AdamW + one-cycle lr 1e-3, seed {TRAIN_SEED}\n"
        + "\n".join(log) + f"\nfinal held-out accuracy on 700 clips (seed {HELDOUT_SEED}): {acc:.4f}\n")
    print("final held-out accuracy", acc)
    # Bundled clips: one per class, rendered at 96x96 (the processor downscales them), seeds never used above.
    data = ROOT / "examples" / "data"
    data.mkdir(parents=True, exist_ok=True)
    crng = np.random.default_rng(CLIP_SEED)
    for label in LABELS:
        frames = render(label, crng, size=96)
        frames = np.repeat(frames, 2, axis=0)            # 16 frames at 8 fps: the model samples 8
        path = data / f"{label}.mp4"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "96x96",
                        "-r", "8", "-i", "-", "-c:v", "libx264", "-crf", "12", "-pix_fmt", "yuv444p", str(path)],
                       input=frames.tobytes(), check=True)
        print("wrote", path)


if __name__ == "__main__":
    main()
