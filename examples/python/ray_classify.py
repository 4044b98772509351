#!/usr/bin/env python3
"""Classify many videos with Ray Data: one vidattn model per actor, videos streamed through
`map_batches`, results written as JSON lines.

    python examples/python/ray_classify.py MODEL_DIR videos.txt -o results.jsonl [--actors 2] [--threads 1]

videos.txt lists one path per line (or give a directory). On one machine this starts a local
Ray instance; on a cluster, start Ray on every node (`ray start --head` on one,
`ray start --address=HEAD:6379` on the others), make the model directory and the videos
readable at the same paths on every node (a shared file system), and run the same script on
the head node with RAY_ADDRESS=auto: each actor loads the model once on its node and
classifies the videos Ray hands it. Set --actors to the total number of model copies and
--threads to the cores each one uses.
"""
import argparse
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


class Classifier:
    """A Ray Data callable class: the model is loaded once per actor."""

    def __init__(self, model_dir, threads, top, clips, crops):
        import vidattn
        vidattn.set_num_threads(threads)
        self.model = vidattn.load(model_dir)
        self.top, self.clips, self.crops = top, clips, crops

    def __call__(self, batch):
        import numpy as np
        results = []
        for path in batch["path"]:
            try:
                top = self.model.classify(path, top=self.top, clips=self.clips, crops=self.crops)
                results.append(json.dumps({"video": path, "top": [{"label": l, "probability": p} for l, p in top]}))
            except Exception as e:   # a bad file is a result, not the end of the job
                results.append(json.dumps({"video": path, "error": str(e)}))
        return {"result": np.array(results, dtype=object)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("videos", help="a file listing videos, or a directory")
    ap.add_argument("-o", "--output", required=True, help="results, one JSON line per video")
    ap.add_argument("--actors", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="threads per model copy")
    ap.add_argument("--top", type=int, default=5)
    ap.add_argument("--clips", type=int, default=1)
    ap.add_argument("--crops", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=4)
    a = ap.parse_args()
    src = Path(a.videos)
    if src.is_dir():
        paths = sorted(str(p) for p in src.iterdir() if p.is_file() and not p.name.startswith("."))
    else:
        paths = [l.strip() for l in src.read_text().splitlines() if l.strip() and not l.startswith("#")]
    import ray
    # Workers import vidattn from this folder (or from an installed wheel).
    ray.init(address=os.environ.get("RAY_ADDRESS"), include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(HERE)}})
    ds = ray.data.from_items([{"path": p} for p in paths])
    out = ds.map_batches(Classifier, fn_constructor_args=(a.model, a.threads, a.top, a.clips, a.crops),
                         batch_size=a.batch_size, concurrency=a.actors, num_cpus=a.threads)
    rows = [r["result"] for r in out.iter_rows()]
    Path(a.output).write_text("\n".join(rows) + "\n")
    failed = sum("error" in json.loads(r) for r in rows)
    print(f"classified {len(rows) - failed} of {len(paths)} videos with {a.actors} actors -> {a.output}")
    ray.shutdown()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
