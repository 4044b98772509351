"""The bundled demo model (models/demo, trained by tools/train_demo_model.py) classifies every
bundled clip (examples/data/<label>.mp4) correctly through the Python, C and CLI paths, and its
logits match transformers' on them (models/demo/clips.npz; 1e-4 absolute)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import vidattn

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "models" / "demo"
CLIPS = sorted((ROOT / "examples" / "data").glob("*.mp4"))
sys.path.insert(0, str(ROOT / "examples" / "python"))
from classify_video import decode  # noqa: E402


def test_bundle_is_complete():
    labels = set(json.loads((DEMO / "config.json").read_text())["id2label"].values())
    assert {c.stem for c in CLIPS} == labels and len(labels) == 5
    log = (DEMO / "training_log.txt").read_text()
    assert float(log.strip().split()[-1]) >= 0.95          # the held-out accuracy it was trained to


@pytest.mark.parametrize("clip", CLIPS, ids=lambda c: c.stem)
def test_python_path(clip):
    with vidattn.load(DEMO) as m:
        assert m.classify(decode(clip), top=1)[0][0] == clip.stem


@pytest.mark.parametrize("clip", CLIPS, ids=lambda c: c.stem)
def test_cli_path(clip):
    r = subprocess.run([ROOT / ".build/release/vidattn-cli", "classify", DEMO, clip, "--json", "--top", "3"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["top"][0]["label"] == clip.stem


@pytest.mark.parametrize("clip", CLIPS, ids=lambda c: c.stem)
def test_c_path(clip, tmp_path):
    raw = tmp_path / "frames.rgb"
    subprocess.run(["ffmpeg", "-v", "error", "-i", clip, "-f", "rawvideo", "-pix_fmt", "rgb24", raw], check=True)
    r = subprocess.run([ROOT / ".build/release/c/example_classify", DEMO, raw, "96", "96", "1"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[1].split()[1] == clip.stem


@pytest.mark.parametrize("clip", CLIPS, ids=lambda c: c.stem)
def test_logits_match_transformers(clip):
    ref = np.load(DEMO / "clips.npz")
    with vidattn.load(DEMO) as m:
        got = m(ref[f"{clip.stem}_pixel_values"])
    np.testing.assert_allclose(got, ref[f"{clip.stem}_logits"], atol=1e-4, rtol=0)
