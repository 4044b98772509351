"""A catalogue of bad inputs: hostile or broken checkpoint files and careless calls. Each must
give a specific error (exception class = status) whose message names the problem; none may
crash the process."""
import json
import math
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

import vidattn
from vidattn import attention

MODELS = Path(__file__).resolve().parents[1] / "fixtures" / "models"


def safetensors_bytes(header, data=b""):
    h = json.dumps(header).encode() if not isinstance(header, bytes) else header
    return struct.pack("<Q", len(h)) + h + data


def good_header():
    return {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
            "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}


def checkpoint(tmp_path, weights: bytes, config=None):
    d = tmp_path / "ck"
    d.mkdir(exist_ok=True)
    (d / "config.json").write_text(json.dumps(config or {"model_type": "vivit"}) if not isinstance(config, str) else config)
    (d / "model.safetensors").write_bytes(weights)
    return d


# name, weights bytes, expected exception, message fragment
FILES = [
    ("empty file", b"", vidattn.BadFormat, "too short"),
    ("header length past the end", struct.pack("<Q", 1000) + b"{}", vidattn.BadFormat, "past the end"),
    ("header length huge", struct.pack("<Q", 1 << 62) + b"{}", vidattn.BadFormat, "header length"),
    ("header length too small", struct.pack("<Q", 1) + b"{", vidattn.BadFormat, "header length"),
    ("header not an object", safetensors_bytes(b"[1, 2]"), vidattn.BadFormat, "start with '{'"),
    ("header truncated JSON", safetensors_bytes(b'{"a": {"dtype": "F32"'), vidattn.BadFormat, "JSON"),
    ("header deeply nested", safetensors_bytes(b'{"a":' + b"[" * 200 + b"]" * 200 + b"}"), vidattn.BadFormat, "nesting"),
    ("header bad UTF-8", safetensors_bytes(b'{"\xff\xfe": 1}'), vidattn.BadFormat, "UTF-8"),
    ("header control character", safetensors_bytes(b'{"a\x01": 1}'), vidattn.BadFormat, "control character"),
    ("trailing garbage in header", safetensors_bytes(b"{} x"), vidattn.BadFormat, "trailing"),
    ("unknown dtype", safetensors_bytes({"a": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}}, bytes(16)),
     vidattn.Unsupported, "dtype F128"),
    ("missing dtype", safetensors_bytes({"a": {"shape": [1], "data_offsets": [0, 4]}}, bytes(4)), vidattn.BadFormat,
     "lacks dtype"),
    ("negative dimension", safetensors_bytes({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, bytes(4)),
     vidattn.BadFormat, "bad shape"),
    ("fractional dimension", safetensors_bytes({"a": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}}, bytes(4)),
     vidattn.BadFormat, "bad shape"),
    ("shape overflow", safetensors_bytes({"a": {"dtype": "F32", "shape": [1 << 40, 1 << 40], "data_offsets": [0, 4]}},
                                         bytes(4)), vidattn.BadFormat, "overflows"),
    ("offsets past the end", safetensors_bytes({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, bytes(8)),
     vidattn.BadFormat, "outside"),
    ("offsets reversed", safetensors_bytes({"a": {"dtype": "F32", "shape": [0], "data_offsets": [8, 4]}}, bytes(8)),
     vidattn.BadFormat, "outside"),
    ("byte length mismatch", safetensors_bytes({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, bytes(8)),
     vidattn.BadFormat, "needs 12"),
    ("overlapping tensors", safetensors_bytes({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                               "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, bytes(12)),
     vidattn.BadFormat, "overlaps"),
    ("gap between tensors", safetensors_bytes({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                                               "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}, bytes(12)),
     vidattn.BadFormat, "gap"),
    ("bytes after the last tensor", safetensors_bytes(good_header(), bytes(16)), vidattn.BadFormat, "after the last"),
    ("valid file, missing tensors", safetensors_bytes(good_header(), bytes(12)), vidattn.BadFormat, "missing tensor"),
]


@pytest.mark.parametrize("name,data,exc,msg", FILES, ids=[f[0] for f in FILES])
def test_bad_weight_files(tmp_path, name, data, exc, msg):
    with pytest.raises(exc, match=msg):
        vidattn.load(checkpoint(tmp_path, data))


CONFIGS = [
    ("config not JSON", "{model_type: vivit", vidattn.BadFormat, "JSON"),
    ("config is an array", "[]", vidattn.BadFormat, "not a JSON object"),
    ("config without model_type", "{}", vidattn.BadFormat, "no model_type"),
    ("unknown model_type", '{"model_type": "bert"}', vidattn.Unsupported, "'bert'"),
    ("field of the wrong type", None, vidattn.BadFormat, "must be an integer"),
    ("negative layer count", None, vidattn.BadFormat, "must be positive"),
    ("heads not dividing the width", None, vidattn.BadFormat, "not a multiple"),
    ("unsupported activation", None, vidattn.Unsupported, "hidden_act"),
]


@pytest.mark.parametrize("name,text,exc,msg", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_bad_configs(tmp_path, name, text, exc, msg):
    d = tmp_path / "v"
    shutil.copytree(MODELS / "vivit", d)
    cfg = json.loads((d / "config.json").read_text())
    if text is None:
        cfg.update({"field of the wrong type": {"hidden_size": "wide"},
                    "negative layer count": {"num_hidden_layers": -1},
                    "heads not dividing the width": {"num_attention_heads": 5},
                    "unsupported activation": {"hidden_act": "swish"}}[name])
        text = json.dumps(cfg)
    (d / "config.json").write_text(text)
    with pytest.raises(exc, match=msg):
        vidattn.load(d)


def test_bad_shards(tmp_path):
    d = tmp_path / "s"
    shutil.copytree(MODELS / "vivit_sharded", d)
    idx = json.loads((d / "model.safetensors.index.json").read_text())
    name = next(iter(idx["weight_map"]))
    idx["weight_map"][name] = "../escape.safetensors"
    (d / "model.safetensors.index.json").write_text(json.dumps(idx))
    with pytest.raises(vidattn.BadFormat, match="shard file name"):
        vidattn.load(d)
    idx["weight_map"][name] = "model-00009-of-00009.safetensors"
    (d / "model.safetensors.index.json").write_text(json.dumps(idx))
    with pytest.raises(vidattn.IOFailure, match="model-00009"):
        vidattn.load(d)


def test_integer_tensor_where_floats_are_needed(tmp_path):
    d = tmp_path / "i"
    shutil.copytree(MODELS / "vivit", d)
    raw = (d / "model.safetensors").read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    header["vivit.layernorm.bias"]["dtype"] = "I32"
    h = json.dumps(header).encode()
    (d / "model.safetensors").write_bytes(struct.pack("<Q", len(h)) + h + raw[8 + n:])
    with pytest.raises(vidattn.Unsupported, match="not a float type"):
        vidattn.load(d)


@pytest.fixture(scope="module")
def model():
    with vidattn.load(MODELS / "timesformer_pytorch_rotary") as m:
        yield m


CALLS = [
    ("pixel_values 4-D", lambda m: m(np.zeros((4, 3, 32, 32), np.float32)), ValueError, "B, T, C, H, W"),
    ("wrong channel count", lambda m: m(np.zeros((1, 4, 1, 32, 32), np.float32)), vidattn.ShapeMismatch, "channels"),
    ("size not a patch multiple", lambda m: m(np.zeros((1, 4, 3, 30, 32), np.float32)), vidattn.ShapeMismatch, "divisible"),
    ("strings as pixels", lambda m: m(np.array([["a"]])), TypeError, "numeric"),
    ("mask of the wrong shape", lambda m: m(np.zeros((1, 4, 3, 32, 32), np.float32), mask=np.ones((1, 3), bool)),
     ValueError, "mask must be"),
    ("bad pooling", lambda m: m.embed(np.zeros((1, 4, 3, 32, 32), np.float32), pooling="max"), ValueError, "pooling"),
]


@pytest.mark.parametrize("name,call,exc,msg", CALLS, ids=[c[0] for c in CALLS])
def test_careless_calls(model, name, call, exc, msg):
    with pytest.raises(exc, match=msg):
        call(model)


def test_nan_inputs_propagate():
    """Documented behaviour: NaN in pixel_values gives NaN logits (no exception, no crash):
    attention mixes the NaN token into every token, so every logit of that clip is NaN, and the
    other clip of the batch stays finite."""
    with vidattn.load(MODELS / "vivit") as m:
        px = np.zeros((2, 4, 3, 32, 32), np.float32)
        px[0, 0, 0, 0, 0] = np.nan
        out = m(px)
        assert np.isnan(out[0]).all() and np.isfinite(out[1]).all()


def test_large_inputs_stay_finite():
    """Softmax and LayerNorm stay finite for inputs of magnitude 1e4."""
    with vidattn.load(MODELS / "vivit") as m:
        px = np.random.default_rng(0).uniform(-1e4, 1e4, (1, 4, 3, 32, 32)).astype(np.float32)
        assert np.isfinite(m(px)).all()
    q = np.full((1, 1, 5, 8), 1e4, np.float32)
    assert np.isfinite(attention.exact(q, q, q)).all()


@pytest.mark.parametrize("kind", ["uniform 1e4", "constant 1e4", "zeros"])
def test_linear_attentions_stay_finite(kind):
    """The approximations never divide by zero: Performer (even with eps = 0, where every
    feature of a row can underflow), Fastformer, Nystrom, Orthoformer, and trajectory
    attention with each approximation, for inputs of magnitude 1e4 and all zeros."""
    shape = (1, 2, 65, 16)
    q = {"uniform 1e4": np.random.default_rng(0).uniform(-1e4, 1e4, shape),
         "constant 1e4": np.full(shape, 1e4), "zeros": np.zeros(shape)}[kind].astype(np.float32)
    proj = attention.performer_projection(32, 16, seed=1)
    ones = np.ones(16, np.float32)
    outs = {"performer": attention.performer(q, q, q, proj), "performer eps=0": attention.performer(q, q, q, proj, eps=0.0),
            "fastformer": attention.fastformer(q, q, q, ones, ones),
            "fastformer implemented": attention.fastformer(q, q, q, ones, ones, form="implemented"),
            "nystrom": attention.nystrom(q[:, :, :64], q[:, :, :64], q[:, :, :64], landmarks=8),
            "orthoformer": attention.orthoformer(q, q, q, landmarks=8)}
    w = np.eye(32, dtype=np.float32)
    for approx in [None, "nystrom", "orthoformer", "performer"]:   # 1 + 4 frames x 16 patches
        outs[f"trajectory {approx}"] = attention.trajectory(
            q, q, q, 4, w, None, np.concatenate([w, w]), None, approx=approx, landmarks=8, performer_features=32)
    bad = [name for name, o in outs.items() if not np.isfinite(o).all()]
    assert not bad, f"non-finite output from {bad}"


def test_thread_count_validation():
    with pytest.raises(vidattn.InvalidArgument, match="thread count"):
        vidattn.set_num_threads(-3)
