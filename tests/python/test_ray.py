"""examples/python/ray_classify.py on a local Ray instance: Ray Data's map_batches with one
vidattn model per actor (2 actors) classifies every bundled clip correctly, and a bad file is
reported as a row with its error (exit status 1). Ray comes from PyPI (make deps)."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import ray  # noqa: F401  (a missing Ray fails this test: it is a test dependency)

ROOT = Path(__file__).resolve().parents[2]


def test_ray_data_classifies_the_clips(tmp_path):
    vids = tmp_path / "vids"
    vids.mkdir()
    for c in (ROOT / "examples" / "data").glob("*.mp4"):
        shutil.copy(c, vids / c.name)
    (vids / "zz_broken.mp4").write_bytes(b"not a video")
    out = tmp_path / "results.jsonl"
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "python" / "ray_classify.py"), str(ROOT / "models" / "demo"),
                        str(vids), "-o", str(out), "--actors", "2", "--top", "1"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "classified 5 of 6 videos with 2 actors" in r.stdout
    rows = {Path(x["video"]).stem: x for x in map(json.loads, out.read_text().splitlines())}
    assert len(rows) == 6
    for name, row in rows.items():
        if name == "zz_broken":
            assert "error" in row
        else:
            assert row["top"][0]["label"] == name and row["top"][0]["probability"] > 0.9
