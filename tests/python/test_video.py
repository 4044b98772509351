"""Reading videos and classifying files from Python: only the sampled frames are decoded, and
they are the frames a full decode gives; classify/embed take paths with multi-view testing;
Model pickles by path (for Ray, Dask, multiprocessing); labels, id2label and errors."""
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import vidattn
from vidattn.video import probe, sample_indices

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "models" / "demo"
CLIP = ROOT / "examples" / "data" / "left.mp4"


def all_frames(path):
    info = probe(path)
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, info["height"], info["width"], 3)


def test_read_video_gives_the_sampled_frames_of_a_full_decode():
    full = all_frames(CLIP)
    info = probe(CLIP)
    assert info["frames"] == len(full)
    v = vidattn.read_video(CLIP, num_frames=8)
    idx = sample_indices(len(full), 8)[0]
    assert v.shape == (1, 8) + full.shape[1:] and v.dtype == np.uint8
    np.testing.assert_array_equal(v[0], full[idx])
    # Three clips, each spread over its third of the video; a stride; a time range.
    v3 = vidattn.read_video(CLIP, num_frames=4, clips=3)
    for c, clip_idx in enumerate(sample_indices(len(full), 4, 3)):
        np.testing.assert_array_equal(v3[c], full[clip_idx])
        assert all(len(full) * c // 3 <= i < len(full) * (c + 1) // 3 + 1 for i in clip_idx)
    vs = vidattn.read_video(CLIP, num_frames=3, stride=2)
    i0 = sample_indices(len(full), 3, stride=2)[0]
    assert i0[1] - i0[0] == 2 and i0[2] - i0[1] == 2
    np.testing.assert_array_equal(vs[0], full[i0])
    fps = info["fps"]
    vr = vidattn.read_video(CLIP, num_frames=2, start=2 / fps, end=6 / fps)
    assert all(2 <= i < 6 for i in sample_indices(len(full), 2, 1, 2, 6)[0])
    np.testing.assert_array_equal(vr[0], full[sample_indices(len(full), 2, 1, 2, 6)[0]])


def test_read_video_errors(tmp_path):
    with pytest.raises(vidattn.IOFailure, match="no such file"):
        vidattn.read_video(tmp_path / "missing.mp4")
    with pytest.raises(vidattn.InvalidArgument, match="directory"):
        vidattn.read_video(tmp_path)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video")
    with pytest.raises(vidattn.VidAttnError):
        vidattn.read_video(junk)
    png = tmp_path / "still.png"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=red:s=32x32", "-frames:v", "1", str(png)],
                   check=True)
    with pytest.raises(vidattn.InvalidArgument, match="still image"):
        vidattn.read_video(png)
    with pytest.raises(vidattn.InvalidArgument):
        vidattn.read_video(CLIP, num_frames=0)


def test_classify_and_embed_paths_and_views(encoded_video):
    with vidattn.load(DEMO) as m:
        by_path = m.classify(CLIP, top=5)
        by_frames = m.classify(all_frames(CLIP), top=5)
        assert by_path[0][0] == "left"
        for (a, pa), (b, pb) in zip(by_path, by_frames):
            assert a == b and abs(pa - pb) < 1e-6
        multi = m.classify(CLIP, top=1, clips=2, crops=3)
        assert multi[0][0] == "left"
        e = m.embed_video(CLIP, clips=2, crops=3)
        assert e.shape == (6, m.hidden_size)
        # On a 64x48 clip the three 48x48 crops (x = 0, 8, 16) give three different embeddings.
        wide = m.embed_video(encoded_video(1.5), crops=3)
        assert wide.shape == (3, m.hidden_size)
        assert not np.allclose(wide[0], wide[1]) and not np.allclose(wide[1], wide[2])
        np.testing.assert_allclose(m.embed(CLIP), m.embed_video(CLIP), atol=0)
        with pytest.raises(vidattn.InvalidArgument, match="crops"):
            m.classify(CLIP, crops=2)


def test_model_pickles_by_path_into_another_process():
    m = vidattn.load(DEMO, precision="bf16")
    blob = pickle.dumps(m)
    assert len(blob) < 1000          # the path and options, not the weights
    code = ("import pickle, sys; m = pickle.loads(sys.stdin.buffer.read()); "
            f"print(m.precision, m.classify({str(CLIP)!r}, top=1)[0][0])")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "examples" / "python"))
    r = subprocess.run([sys.executable, "-c", code], input=blob, capture_output=True, env=env)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().split() == ["bf16", "left"]


def test_labels_id2label_version_and_errors():
    assert vidattn.__version__ == vidattn.version() and vidattn.__version__.count(".") == 2
    with vidattn.load(DEMO) as m:
        names = json.loads((DEMO / "config.json").read_text())["id2label"]
        assert m.labels == [names[str(i)] for i in range(len(names))]
        assert m.config["id2label"][0] == names["0"] and m.config["id2label"]["0"] == names["0"]
        assert 1 in m.config["id2label"] and m.config["id2label"].get(4) == names["4"]
        with pytest.raises(vidattn.InvalidArgument, match="B, T, C, H, W"):
            m(np.zeros((4, 3, 32, 32), np.float32))
    with pytest.raises(vidattn.InvalidArgument):
        vidattn.set_num_threads(0)
