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


def safetensors_shapes(path):
    """{name: shape} from a safetensors file's header (no safetensors package needed)."""
    import json
    import struct
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    return {k: v["shape"] for k, v in header.items() if k != "__metadata__"}


def safetensors_numel(path):
    import math
    return sum(math.prod(s) for s in safetensors_shapes(path).values())


def cli_path():
    """The vidattn CLI the tests run: $VIDATTN_CLI (make test-asan points it at the ASan build),
    else the release build."""
    import os
    env = os.environ.get("VIDATTN_CLI")
    return Path(env) if env else Path(__file__).resolve().parents[2] / ".build" / "release" / "vidattn-cli"


def c_program(name):
    """A C example or test program: from $VIDATTN_C_BUILD (make test-asan points it at the ASan
    build's c/ folder), else the release build's."""
    import os
    env = os.environ.get("VIDATTN_C_BUILD")
    return (Path(env) if env else Path(__file__).resolve().parents[2] / ".build" / "release" / "c") / name


def cli_env():
    """The environment for running the CLI: without LD_PRELOAD (under make test-asan the Python
    process preloads clang's ASan runtime, and the ASan CLI carries its own)."""
    import os
    return {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
