"""The `vidattn` command-line tool on a real encoded video made with ffmpeg in the test:
exit status and output of classify (text and --json), info, flops and bench, and clean
failures on bad input."""
import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / ".build" / "release" / "vidattn-cli"
MODELS = ROOT / "tests" / "fixtures" / "models"


@pytest.fixture(scope="module")
def video(encoded_video):
    return encoded_video(1.5)


def run(*args):
    return subprocess.run([str(CLI), *map(str, args)], capture_output=True, text=True)


def test_classify_text_and_json(video):
    r = run("classify", MODELS / "vivit", video, "--top", "3")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 4 and all(l.split()[1].startswith("label_") for l in lines[:3])
    assert "of 15 frames" in lines[3]
    assert "decoded 15 frames of 64x48" in r.stderr and "layer 2/2" in r.stderr     # progress on stderr
    r = run("classify", MODELS / "timesformer_divided", video, "--json", "--threads", "1")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    probs = [t["probability"] for t in out["top"]]
    assert out["frames_decoded"] == 15 and out["frames_used"] == 4 and len(probs) == 5
    assert probs == sorted(probs, reverse=True) and 0.99 < sum(probs) <= 1.0 + 1e-9


def test_classify_videomae(video):
    r = run("classify", MODELS / "videomae", video, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["frames_used"] == 4 and len(out["top"]) == 4
    assert 0.99 < sum(t["probability"] for t in out["top"]) <= 1.0 + 1e-9


def test_classify_bf16_and_bad_precision(video):
    a = json.loads(run("classify", MODELS / "videomae", video, "--json").stdout)
    r = run("classify", MODELS / "videomae", video, "--json", "--precision", "bf16")
    assert r.returncode == 0, r.stderr
    assert "bf16 on" in r.stderr
    b = json.loads(r.stdout)
    assert a["top"][0]["label"] == b["top"][0]["label"]
    assert abs(a["top"][0]["probability"] - b["top"][0]["probability"]) < 1e-2
    r = run("classify", MODELS / "videomae", video, "--precision", "fp16")
    assert r.returncode != 0 and "--precision" in r.stderr


def test_info_flops_bench():
    r = run("info", MODELS / "swin3d", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    from conftest import safetensors_numel
    n_params = safetensors_numel(MODELS / "swin3d" / "model.safetensors")
    assert info["model_type"] == "torchvision_swin3d" and info["labels"] == 5 and info["parameters"] == n_params
    assert 0 < info["gflops_attention"] < info["gflops_total"]
    r = run("flops", MODELS / "vivit", "--json")
    f = json.loads(r.stdout)
    # ViViT fixture: 2 layers, 33 tokens, C 32, 4 heads: attention matmuls 2 layers * 4*33*33*32 flops.
    assert f["attention"] == 2 * 4 * 33 * 33 * 32
    r = run("bench", MODELS / "timesformer_divided", "--reps", "2", "--json")
    b = json.loads(r.stdout)
    assert r.returncode == 0 and b["median_seconds"] > 0 and b["peak_rss_mib"] > 0
    # --profile: the sections fit in the profiled run, and there is one time per layer.
    r = run("bench", MODELS / "vivit", "--reps", "1", "--profile", "--json")
    p = json.loads(r.stdout)["profile"]
    sections = p["sections"]
    assert set(sections) == {"linear", "attention", "norm"}
    assert all(v > 0 for v in sections.values()) and sum(sections.values()) <= p["total_seconds"]
    assert len(p["layer_seconds"]) == 2 and p["embedding_seconds"] > 0
    assert abs(sum(p["layer_seconds"]) + p["embedding_seconds"] - p["total_seconds"]) < 1e-6


def test_bad_input(video, tmp_path):
    r = run("classify", tmp_path / "nothing", video)
    assert r.returncode != 0 and "config.json" in r.stderr
    r = run("classify", MODELS / "vivit", tmp_path / "missing.mp4")
    assert r.returncode != 0 and "missing.mp4" in r.stderr
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video")
    r = run("classify", MODELS / "vivit", junk)
    assert r.returncode != 0
    r = run("bench", MODELS / "vivit", "--reps", "0")
    assert r.returncode != 0 and "reps" in r.stderr
