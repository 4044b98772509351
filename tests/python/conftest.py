import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples" / "python"))

import subprocess

import pytest


@pytest.fixture(scope="session")
def encoded_video(tmp_path_factory):
    """make(seconds) -> path of a real H.264 test clip (64x48, 10 fps) made with ffmpeg."""
    made = {}

    def make(seconds):
        if seconds not in made:
            path = tmp_path_factory.mktemp("v") / "clip.mp4"
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10",
                            "-t", str(seconds), "-pix_fmt", "yuv420p", str(path)], check=True)
            made[seconds] = path
        return made[seconds]
    return make
