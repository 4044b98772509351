"""One contract: the Python package's constants agree with the C header's enums (parsed from
include/ here), and the library names every status it can return."""
import re
from pathlib import Path

import vidattn
from vidattn import errors, model
from vidattn._lib import lib

INCLUDE = Path(__file__).resolve().parents[2] / "include"
HEADER = (INCLUDE / "vidattn_types.h").read_text() + (INCLUDE / "vidattn.h").read_text()


def enum(name):
    """{constant: value} of a C enum in the header, implicit values (previous + 1) included."""
    body = re.search(r"typedef enum %s \{(.*?)\} %s;" % (name, name), HEADER, re.S).group(1)
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    out, value = {}, -1
    for entry in filter(None, (e.strip() for e in body.split(","))):
        m = re.fullmatch(r"(VIDATTN_\w+)(?:\s*=\s*(-?\d+))?", entry)
        value = int(m.group(2)) if m.group(2) is not None else value + 1
        out[m.group(1)] = value
    return out


def test_enum_reader_counts_implicit_values():
    assert enum("vidattn_mechanism")["VIDATTN_MECH_DIVIDED_TIME"] == 1
    assert enum("vidattn_activation")["VIDATTN_ACT_RELU"] == 4


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
    assert vidattn.cpu_features()["bf16"] in ("amx", "avx512_bf16", "fma", "emulated")


def test_mechanisms():
    mech = enum("vidattn_mechanism")
    assert {"VIDATTN_MECH_" + m.upper(): i for i, m in enumerate(vidattn.MECHANISMS)} == mech


def test_activations_groupings_and_approximations():
    from vidattn import attention, kernels
    acts = {k: v for k, v in kernels.ACTIVATIONS.items() if k}
    assert {"VIDATTN_ACT_" + k.upper(): v for k, v in acts.items()} == enum("vidattn_activation")
    assert {"VIDATTN_GROUP_" + k.upper(): v for k, v in attention._GROUPING.items()} == enum("vidattn_grouping")
    assert {"VIDATTN_CLS_" + k.upper(): v for k, v in attention._CLS.items()} == enum("vidattn_cls_scheme")
    assert {"VIDATTN_FASTFORMER_" + k.upper(): v for k, v in attention._FORMS.items()} == enum("vidattn_fastformer_form")
    approx = {k: v for k, v in attention._APPROX.items() if k}
    assert {"VIDATTN_APPROX_" + k.upper(): v for k, v in approx.items()} == enum("vidattn_traj_approx")
