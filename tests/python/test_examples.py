"""The Python examples on a real encoded video, and `pip install examples/python`."""
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "tests" / "fixtures" / "models"


@pytest.fixture(scope="module")
def video(encoded_video):
    return encoded_video(1)


def test_classify_video(video):
    r = subprocess.run([sys.executable, ROOT / "examples/python/classify_video.py", video, MODELS / "vivit", "--top", "2"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0].split()[1].startswith("label_") and lines[1].split()[1].startswith("label_")
    assert "10 frames decoded" in lines[2]


@pytest.mark.parametrize("model", ["vivit", "timesformer_divided"])
def test_attention_map_png(video, tmp_path, model):
    out = tmp_path / "map.png"
    r = subprocess.run([sys.executable, ROOT / "examples/python/attention_map.py", video, MODELS / model, out],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", data[16:24])
    assert w > 0 and h % 64 == 0 and h >= 64      # frame above its map, 32 px each, then enlarged
    assert zlib.crc32(data[12:29]) & 0xFFFFFFFF == struct.unpack(">I", data[29:33])[0]


def test_pip_install(tmp_path):
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                        "--target", target, ROOT / "examples/python"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # The library under test ($VIDATTN_LIB: make test-asan points it at the ASan build).
    lib = os.environ.get("VIDATTN_LIB", str(ROOT / ".build/release/libvidattn.so"))
    env = dict(os.environ, PYTHONPATH=str(target), VIDATTN_LIB=lib)
    code = "import vidattn, sys; print(vidattn.__file__); print(vidattn.version())"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert str(target) in r.stdout and r.stdout.strip().endswith("0.1.0")
