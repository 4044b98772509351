"""One contract: the Python package's constants agree with the C header's enums (parsed from
include/vidattn_types.h here), and the library names every status it can return."""
import re
from pathlib import Path

import vidattn
from vidattn import errors, model
from vidattn._lib import lib

HEADER = (Path(__file__).resolve().parents[2] / "include" / "vidattn_types.h").read_text()


def enum(name):
    body = re.search(r"typedef enum %s \{(.*?)\} %s;" % (name, name), HEADER, re.S).group(1)
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    return {k: int(v) for k, v in re.findall(r"(VIDATTN_\w+)\s*=\s*(-?\d+)", body)}


def test_output_kinds():
    kinds = enum("vidattn_output_kind")
    assert kinds == {"VIDATTN_OUT_LOGITS": model.LOGITS, "VIDATTN_OUT_LAST_HIDDEN": model.LAST_HIDDEN,
                     "VIDATTN_OUT_HIDDEN_STATE": model.HIDDEN_STATE, "VIDATTN_OUT_ATTENTION": model.ATTENTION,
                     "VIDATTN_OUT_POOLED_CLS": model.POOLED_CLS, "VIDATTN_OUT_POOLED_MEAN": model.POOLED_MEAN}


def test_statuses_and_exceptions():
    statuses = enum("vidattn_status")
    by_name = {"VIDATTN_ERR_INVALID_ARGUMENT": errors.InvalidArgument, "VIDATTN_ERR_NULL_POINTER": errors.NullPointer,
               "VIDATTN_ERR_OUT_OF_MEMORY": errors.OutOfMemory, "VIDATTN_ERR_SHAPE_MISMATCH": errors.ShapeMismatch,
               "VIDATTN_ERR_IO": errors.IOFailure, "VIDATTN_ERR_BAD_FORMAT": errors.BadFormat,
               "VIDATTN_ERR_UNSUPPORTED": errors.Unsupported, "VIDATTN_ERR_INTERNAL": errors.InternalError,
               "VIDATTN_ABORTED": errors.Aborted}
    assert set(statuses) == set(by_name) | {"VIDATTN_OK"} and statuses["VIDATTN_OK"] == 0
    for name, cls in by_name.items():
        assert cls.status == statuses[name], name
        assert lib.vidattn_status_string(statuses[name]).decode() not in ("", "unknown status")


def test_precisions():
    assert enum("vidattn_precision") == {"VIDATTN_PRECISION_FP32": model.Model.PRECISIONS["fp32"],
                                         "VIDATTN_PRECISION_BF16": model.Model.PRECISIONS["bf16"],
                                         "VIDATTN_PRECISION_INT8": model.Model.PRECISIONS["int8"]}
    assert vidattn.cpu_features()["bf16"] in ("amx", "avx512_bf16", "emulated")
