#!/usr/bin/env python3
"""Classify a video with a vidattn checkpoint and print the top-5 with timings.

    python examples/python/classify_video.py VIDEO MODEL_DIR [--top 5] [--threads 2]

Decodes with PyAV when it is installed (pip install av), otherwise with the ffmpeg
executable; preprocesses per the checkpoint's preprocessor_config.json.
"""
import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vidattn  # noqa: E402


def decode(path):
    """All frames as uint8 [T, H, W, 3]."""
    try:
        import av
    except ImportError:
        av = None
    if av is not None:
        with av.open(str(path)) as container:
            return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height",
                            "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=True)
    w, h = (int(x) for x in probe.stdout.strip().split(",")[:2])
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("video")
    ap.add_argument("model")
    ap.add_argument("--top", type=int, default=5)
    ap.add_argument("--threads", type=int)
    a = ap.parse_args()
    if a.threads:
        vidattn.set_num_threads(a.threads)
    t0 = time.perf_counter()
    frames = decode(a.video)
    t1 = time.perf_counter()
    with vidattn.load(a.model) as model:
        t2 = time.perf_counter()
        pixels = model.preprocess(frames)
        t3 = time.perf_counter()
        logits = model(pixels)[0].astype(np.float64)
        t4 = time.perf_counter()
        p = np.exp(logits - logits.max())
        p /= p.sum()
        for rank, i in enumerate(np.argsort(-p)[: a.top], 1):
            print(f"{rank:2d}. {model.label(i) or i:<30} {100 * p[i]:6.2f}%")
    print(f"{len(frames)} frames decoded in {t1 - t0:.2f} s, model loaded in {t2 - t1:.2f} s, "
          f"preprocessed {pixels.shape[1]} frames in {t3 - t2:.3f} s, forward {t4 - t3:.3f} s")


if __name__ == "__main__":
    main()
