"""Locates libvidattn.so and declares the C signatures (include/vidattn.h)."""
import ctypes
import os
from pathlib import Path

_here = Path(__file__).resolve().parent

c_float_p = ctypes.POINTER(ctypes.c_float)
c_int64_p = ctypes.POINTER(ctypes.c_int64)
c_uint8_p = ctypes.POINTER(ctypes.c_uint8)


def _candidates():
    env = os.environ.get("VIDATTN_LIB")
    if env:
        yield Path(env)
    yield _here / "libvidattn.so"
    # The repository's release build folder (examples/python/vidattn -> repo root).
    repo = _here.parent.parent.parent
    yield repo / ".build" / "release" / "libvidattn.so"


def _load():
    tried = []
    for p in _candidates():
        tried.append(str(p))
        if p.is_file():
            # A wheel carries libsleef next to the library: load it first, so that
            # libvidattn's dependency on it resolves by soname without LD_LIBRARY_PATH.
            for dep in sorted(p.parent.glob("libsleef.so*")):
                ctypes.CDLL(str(dep), mode=ctypes.RTLD_GLOBAL)
            return ctypes.CDLL(str(p))
    raise OSError("libvidattn.so not found; set VIDATTN_LIB or build with `make`. Tried: " + ", ".join(tried))


lib = _load()

class TrajectoryParams(ctypes.Structure):
    """vidattn_trajectory_params (include/vidattn_types.h)."""
    _fields_ = [("struct_size", ctypes.c_size_t), ("use_original_code", ctypes.c_int), ("approx", ctypes.c_int),
                ("landmarks", ctypes.c_int64), ("orthoformer_start", ctypes.c_int64),
                ("performer_projection", c_float_p), ("performer_features", ctypes.c_int64),
                ("performer_seed", ctypes.c_uint64), ("scale", ctypes.c_float)]


class MechanismShape(ctypes.Structure):
    """vidattn_mechanism_shape (include/vidattn_types.h)."""
    _fields_ = [("struct_size", ctypes.c_size_t), ("channels", ctypes.c_int64), ("heads", ctypes.c_int64),
                ("frames", ctypes.c_int64), ("patches", ctypes.c_int64), ("tokens", ctypes.c_int64),
                ("landmarks", ctypes.c_int64), ("window", ctypes.c_int64 * 3), ("grid", ctypes.c_int64 * 3)]


class MACs(ctypes.Structure):
    _fields_ = [("attention", ctypes.c_double), ("total", ctypes.c_double)]


class ModelParams(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("precision", ctypes.c_int)]


PROGRESS = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int)


class ForwardParams(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("output_hidden_states", ctypes.c_int),
                ("output_attentions", ctypes.c_int), ("frame_mask", ctypes.POINTER(ctypes.c_uint8)),
                ("progress", PROGRESS), ("progress_user_data", ctypes.c_void_p)]


_S = ctypes.c_int  # vidattn_status
_sigs = {
    "vidattn_version": (ctypes.c_char_p, []),
    "vidattn_cpu_features": (ctypes.c_char_p, []),
    "vidattn_fma_peak_gflops": (ctypes.c_double, [ctypes.c_int]),
    "vidattn_tile_peak_gflops": (ctypes.c_double, [ctypes.c_int]),
    "vidattn_status_string": (ctypes.c_char_p, [ctypes.c_int]),
    "vidattn_last_error": (ctypes.c_char_p, []),
    "vidattn_get_num_threads": (ctypes.c_int, []),
    "vidattn_set_num_threads": (_S, [ctypes.c_int]),
    "vidattn_set_reference_kernels": (None, [ctypes.c_int]),
    "vidattn_sgemm": (_S, [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
                           ctypes.c_float, c_float_p, ctypes.c_int64, c_float_p, ctypes.c_int64,
                           ctypes.c_float, c_float_p, ctypes.c_int64]),
    "vidattn_sgemm_fused": (_S, [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
                                 ctypes.c_float, c_float_p, ctypes.c_int64, c_float_p, ctypes.c_int64,
                                 ctypes.c_float, c_float_p, ctypes.c_int64,
                                 c_float_p, ctypes.c_int, c_float_p, ctypes.c_int64]),
    "vidattn_attention": (_S, [ctypes.c_int64] * 5 + [c_float_p] * 4 +
                          [ctypes.c_float, c_float_p, c_int64_p, c_uint8_p, c_float_p]),
    "vidattn_attn_joint": (_S, [ctypes.c_int64] * 4 + [c_float_p] * 4 + [ctypes.c_float, c_uint8_p]),
    "vidattn_attn_divided": (_S, [ctypes.c_int64] * 5 + [c_float_p] * 4 +
                             [ctypes.c_int, ctypes.c_int, ctypes.c_float, c_uint8_p]),
    "vidattn_trajectory_default_params": (TrajectoryParams, []),
    "vidattn_attn_trajectory": (_S, [ctypes.c_int64] * 5 + [c_float_p] * 8 + [ctypes.POINTER(TrajectoryParams)]),
    "vidattn_attn_performer": (_S, [ctypes.c_int64] * 5 + [c_float_p] * 4 + [ctypes.c_int64, ctypes.c_float, c_float_p]),
    "vidattn_performer_projection": (_S, [ctypes.c_int64, ctypes.c_int64, ctypes.c_uint64, c_float_p]),
    "vidattn_attn_fastformer": (_S, [ctypes.c_int64] * 4 + [c_float_p] * 5 + [ctypes.c_int, ctypes.c_float, c_float_p]),
    "vidattn_attn_window3d": (_S, [ctypes.c_int64] * 6 + [c_int64_p, c_int64_p] + [c_float_p] * 7),
    "vidattn_patch_merging": (_S, [ctypes.c_int64] * 5 + [c_float_p] * 4 + [ctypes.c_float, c_float_p]),
    "vidattn_rotary_time_table": (_S, [ctypes.c_int64, ctypes.c_int64, ctypes.c_int, c_float_p, c_float_p]),
    "vidattn_rotary_image_table": (_S, [ctypes.c_int64] * 3 + [ctypes.c_float, c_float_p, c_float_p]),
    "vidattn_rotary_apply": (_S, [ctypes.c_int64, ctypes.c_int64, c_float_p, c_float_p, c_float_p,
                                  ctypes.c_int64, ctypes.c_int64, c_int64_p]),
    "vidattn_token_shift": (_S, [ctypes.c_int64] * 4 + [c_float_p, c_float_p]),
    "vidattn_geglu_ff": (_S, [ctypes.c_int64] * 4 + [c_float_p] * 6),
    "vidattn_attn_landmark": (_S, [ctypes.c_int] + [ctypes.c_int64] * 4 + [c_float_p] * 3 +
                              [ctypes.c_int64, ctypes.c_int64, c_float_p]),
    "vidattn_attn_temporal_aim": (_S, [ctypes.c_int64] * 4 + [c_float_p] * 7),
    "vidattn_mechanism_default_shape": (MechanismShape, []),
    "vidattn_flops": (_S, [ctypes.c_int, ctypes.POINTER(MechanismShape), ctypes.POINTER(MACs)]),
    "vidattn_model_default_params": (ModelParams, []),
    "vidattn_model_load": (_S, [ctypes.c_char_p, ctypes.POINTER(ModelParams), ctypes.POINTER(ctypes.c_void_p)]),
    "vidattn_model_free": (None, [ctypes.c_void_p]),
    "vidattn_model_type": (ctypes.c_char_p, [ctypes.c_void_p]),
    "vidattn_model_config_json": (ctypes.c_char_p, [ctypes.c_void_p]),
    "vidattn_model_num_labels": (ctypes.c_int64, [ctypes.c_void_p]),
    "vidattn_model_hidden_size": (ctypes.c_int64, [ctypes.c_void_p]),
    "vidattn_model_parameter_count": (ctypes.c_int64, [ctypes.c_void_p]),
    "vidattn_forward_default_params": (ForwardParams, []),
    "vidattn_model_num_frames": (ctypes.c_int64, [ctypes.c_void_p]),
    "vidattn_model_label": (ctypes.c_char_p, [ctypes.c_void_p, ctypes.c_int64]),
    "vidattn_model_input_size": (_S, [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, c_int64_p, c_int64_p]),
    "vidattn_model_preprocess": (_S, [ctypes.c_void_p, c_uint8_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
                                      c_float_p, ctypes.c_int64]),
    "vidattn_model_forward": (_S, [ctypes.c_void_p, c_float_p] + [ctypes.c_int64] * 5 +
                              [ctypes.POINTER(ForwardParams), ctypes.POINTER(ctypes.c_void_p)]),
    "vidattn_output_count": (ctypes.c_int64, [ctypes.c_void_p, ctypes.c_int]),
    "vidattn_output_shape": (_S, [ctypes.c_void_p, ctypes.c_int, ctypes.c_int64, c_int64_p,
                                  ctypes.POINTER(ctypes.c_int)]),
    "vidattn_output_copy": (_S, [ctypes.c_void_p, ctypes.c_int, ctypes.c_int64, c_float_p, ctypes.c_int64]),
    "vidattn_output_free": (None, [ctypes.c_void_p]),
    "vidattn_softmax": (_S, [ctypes.c_int64, ctypes.c_int64, c_float_p, ctypes.c_int64, ctypes.c_float,
                             c_float_p, ctypes.c_int64]),
    "vidattn_layer_norm": (_S, [ctypes.c_int64, ctypes.c_int64, c_float_p, c_float_p, c_float_p, c_float_p,
                                ctypes.c_float]),
    "vidattn_activation_apply": (_S, [ctypes.c_int, c_float_p, c_float_p, ctypes.c_int64]),
}
for _name, (_res, _args) in _sigs.items():
    _f = getattr(lib, _name)
    _f.restype = _res
    _f.argtypes = _args
