"""Reading videos: only the frames in use are decoded and kept (ffmpeg executables)."""
import json
import os
import shutil
import subprocess

import numpy as np

from .errors import IOFailure, InvalidArgument, Unsupported

# Files with at most this many frames are decoded in one pass that keeps the sampled frames;
# longer ones by one accurate seek per sampled frame (memory bounded by the frames in use).
ONE_PASS_LIMIT = 600


def _run(args, what):
    if shutil.which(args[0]) is None:
        raise Unsupported(f"{args[0]} not found: install ffmpeg to read videos")
    r = subprocess.run(args, capture_output=True)
    if r.returncode != 0:
        last = r.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise IOFailure(f"{what}: not a video or unreadable ({args[0]}: {last[0]})")
    return r.stdout


def probe(path):
    """{'width', 'height', 'frames', 'fps', 'duration'} of the first video stream."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise IOFailure(f"{path}: no such file")
    if os.path.isdir(path):
        raise InvalidArgument(f"{path}: is a directory, not a video")
    out = _run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                "stream=width,height,nb_frames,avg_frame_rate,r_frame_rate,duration:format=duration,format_name",
                "-of", "json", path], path)
    info = json.loads(out or b"{}")
    fmt = info.get("format", {})
    name = fmt.get("format_name", "")
    if "image2" in name or name.endswith("_pipe"):
        raise InvalidArgument(f"{path}: a still image ({name}), not a video")
    streams = info.get("streams") or []
    if not streams or not streams[0].get("width"):
        raise InvalidArgument(f"{path}: not a video (no video stream)")
    s = streams[0]

    def rate(v):
        try:
            a, b = (float(x) for x in str(v).split("/"))
            return a / b if a > 0 and b > 0 else None
        except (ValueError, ZeroDivisionError):
            return None
    fps = rate(s.get("avg_frame_rate")) or rate(s.get("r_frame_rate")) or 25.0
    duration = float(s.get("duration") or fmt.get("duration") or 0)
    frames = int(s["nb_frames"]) if str(s.get("nb_frames", "")).isdigit() else int(duration * fps)
    if frames <= 0:
        raise InvalidArgument(f"{path}: not a video (no frames)")
    return {"width": int(s["width"]), "height": int(s["height"]), "frames": frames, "fps": fps, "duration": duration}


def sample_indices(available, count, clips=1, start=0, end=None, stride=None):
    """Frame indices [clips, count]: `clips` uniform temporal clips over [start, end) (frames),
    each `count` frames, evenly spread (centre of each segment) or every `stride` frames."""
    end = available if end is None else min(end, available)
    if not 0 <= start < end:
        raise InvalidArgument(f"empty frame range [{start}, {end}) of a {available}-frame video")
    span = end - start
    out = []
    for c in range(clips):
        lo = start + span * c // clips
        hi = start + span * (c + 1) // clips
        if stride:
            mid = (lo + hi) // 2
            first = max(lo, mid - stride * count // 2)
            idx = [min(end - 1, first + stride * i) for i in range(count)]
        else:
            n = max(hi - lo, 1)
            idx = [min(end - 1, lo + int((i + 0.5) * n / count)) for i in range(count)]
        out.append(idx)
    return out


def read_video(path, num_frames=16, clips=1, start=None, end=None, stride=None):
    """uint8 RGB frames [clips, num_frames, H, W, 3] of a video file, decoding only those frames.

    clips: uniform temporal clips over the video (or over [start, end) in seconds);
    stride: frames between samples (default: spread evenly over each clip's span). Frames past
    the end repeat the last one (a warning is the caller's: compare with probe(path)["frames"])."""
    if int(num_frames) < 1 or int(clips) < 1:
        raise InvalidArgument("num_frames and clips must be at least 1")
    if stride is not None and int(stride) < 1:
        raise InvalidArgument("stride must be at least 1")
    path = os.fspath(path)
    info = probe(path)
    f0 = int((start or 0) * info["fps"])
    f1 = None if end is None else int(end * info["fps"])
    idx = sample_indices(info["frames"], int(num_frames), int(clips), f0, f1, stride)
    wanted = sorted({i for clip in idx for i in clip})
    w, h = info["width"], info["height"]
    size = w * h * 3
    frames = {}
    if info["frames"] <= ONE_PASS_LIMIT:
        expr = "+".join(f"eq(n\\,{i})" for i in wanted)
        raw = _run(["ffmpeg", "-v", "error", "-i", path, "-vf", f"select='{expr}'", "-fps_mode", "passthrough",
                    "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], path)
        got = len(raw) // size
        if got == 0:
            raise IOFailure(f"{path}: no frames decoded")
        arr = np.frombuffer(raw[:got * size], np.uint8).reshape(got, h, w, 3)
        for k, i in enumerate(wanted):
            frames[i] = arr[min(k, got - 1)]
    else:
        for i in wanted:
            raw = _run(["ffmpeg", "-v", "error", "-ss", f"{i / info['fps']:.6f}", "-i", path, "-frames:v", "1",
                        "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], path)
            if len(raw) >= size:
                frames[i] = np.frombuffer(raw[:size], np.uint8).reshape(h, w, 3)
        if not frames:
            raise IOFailure(f"{path}: no frames decoded")
        last = frames[max(frames)]
        for i in wanted:
            frames.setdefault(i, last)
    return np.stack([np.stack([frames[i] for i in clip]) for clip in idx])


def spatial_crops(frames, crops):
    """1 (the whole frame) or 3 square crops along the long side (start, centre, end), as the
    papers' 3-crop testing does after resizing the short side; frames [..., H, W, 3]."""
    if crops == 1:
        return [frames]
    if crops != 3:
        raise InvalidArgument(f"crops must be 1 or 3, got {crops}")
    h, w = frames.shape[-3], frames.shape[-2]
    s = min(h, w)
    if w >= h:
        offs = [0, (w - s) // 2, w - s]
        return [np.ascontiguousarray(frames[..., :, o:o + s, :]) for o in offs]
    offs = [0, (h - s) // 2, h - s]
    return [np.ascontiguousarray(frames[..., o:o + s, :, :]) for o in offs]
