"""Loading checkpoints and running models."""
import contextlib
import ctypes
import json
import os
import threading
import weakref

import numpy as np

from ._lib import lib, ModelParams, ForwardParams, PROGRESS
from ._arrays import f32, fptr, u8ptr
from .errors import InvalidArgument, check

# vidattn_output_kind (include/vidattn_types.h); tests/python/test_contract.py checks them.
LOGITS, LAST_HIDDEN, HIDDEN_STATE, ATTENTION, POOLED_CLS, POOLED_MEAN = range(6)


class Labels(dict):
    """config["id2label"]: string keys as in config.json, and int keys accepted too."""

    def _key(self, k):
        return str(k) if isinstance(k, (int, np.integer)) else k

    def __getitem__(self, k):
        return super().__getitem__(self._key(k))

    def __contains__(self, k):
        return super().__contains__(self._key(k))

    def get(self, k, default=None):
        return super().get(self._key(k), default)


class ModelOutput:
    """Outputs of Model.forward: logits, last_hidden_state, hidden_states (tuple or None),
    attentions (tuple or None), pooled_cls and pooled_mean (the library's pooled embeddings:
    token 0, and the mean over the patch tokens with the CLS token left out) as numpy float32
    arrays."""

    def __init__(self, logits, last_hidden_state, hidden_states, attentions, pooled_cls=None, pooled_mean=None):
        self.logits = logits
        self.last_hidden_state = last_hidden_state
        self.hidden_states = hidden_states
        self.attentions = attentions
        self.pooled_cls = pooled_cls
        self.pooled_mean = pooled_mean

    def __repr__(self):
        return f"ModelOutput(logits={self.logits.shape}, last_hidden_state={self.last_hidden_state.shape})"


def _fetch(handle, kind, index):
    shape = (ctypes.c_int64 * 8)()
    nd = ctypes.c_int()
    check(lib.vidattn_output_shape(handle, kind, index, shape, ctypes.byref(nd)))
    arr = np.empty(tuple(shape[i] for i in range(nd.value)), np.float32)
    check(lib.vidattn_output_copy(handle, kind, index, fptr(arr), arr.size))
    return arr


class Model:
    """A loaded checkpoint directory (config.json + model.safetensors).

    Usable as a context manager; freed by close(), by the context manager, or when
    garbage-collected. Thread-safe: several threads may call forward at once, and close()
    from one thread while others run forwards frees the model when the last one returns
    (calls that start after close() raise ValueError)."""

    PRECISIONS = {"fp32": 0, "bf16": 1, "int8": 2}   # vidattn_precision

    def __init__(self, path, precision="fp32"):
        path = os.fspath(path)
        if precision not in self.PRECISIONS:
            from .errors import InvalidArgument
            raise InvalidArgument(f"precision must be one of {sorted(self.PRECISIONS)}, got {precision!r}")
        h = ctypes.c_void_p()
        params = lib.vidattn_model_default_params()
        params.precision = self.PRECISIONS[precision]
        self.precision = precision
        check(lib.vidattn_model_load(path.encode(), ctypes.byref(params), ctypes.byref(h)))
        self._h = h.value
        self._lock = threading.Lock()
        self._active = 0   # calls using the handle now
        self._finalizer = weakref.finalize(self, lib.vidattn_model_free, h.value)
        self.path = path
        self.config = json.loads(lib.vidattn_model_config_json(self._h).decode())
        if isinstance(self.config.get("id2label"), dict):
            self.config["id2label"] = Labels(self.config["id2label"])
        self.model_type = lib.vidattn_model_type(self._h).decode()
        self.num_labels = lib.vidattn_model_num_labels(self._h)
        self.hidden_size = lib.vidattn_model_hidden_size(self._h)
        self.parameter_count = lib.vidattn_model_parameter_count(self._h)

    def close(self):
        """Frees the model (idempotent): now, or when the calls running on other threads end."""
        with self._lock:
            self._h = None
            if self._active == 0:
                self._finalizer()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @contextlib.contextmanager
    def _handle(self):
        """The native handle, kept alive (not freed by a concurrent close) while in use."""
        with self._lock:
            if self._h is None:
                raise InvalidArgument("the model was closed")
            self._active += 1
            h = self._h
        try:
            yield h
        finally:
            with self._lock:
                self._active -= 1
                if self._h is None and self._active == 0:
                    self._finalizer()

    def forward(self, pixel_values, output_hidden_states=False, output_attentions=False, mask=None, progress=None):
        """pixel_values: float32 [B, T, C, H, W] (preprocessed). mask: bool [B, T], True = real
        frame (models that take one). progress(layer, layers) -> bool: return False to stop."""
        px = f32(pixel_values, "pixel_values")
        if px.ndim != 5:
            raise InvalidArgument(f"pixel_values must be [B, T, C, H, W]; got shape {px.shape}")
        p = lib.vidattn_forward_default_params()
        p.output_hidden_states = 1 if output_hidden_states else 0
        p.output_attentions = 1 if output_attentions else 0
        m = None
        if mask is not None:
            m = np.ascontiguousarray(np.asarray(mask), dtype=np.uint8)
            if m.shape != px.shape[:2]:
                raise InvalidArgument(f"mask must be [{px.shape[0]}, {px.shape[1]}]; got {m.shape}")
            p.frame_mask = u8ptr(m)
        cb = None
        if progress is not None:
            cb = PROGRESS(lambda user, layer, layers: 1 if progress(layer, layers) is not False else 0)
            p.progress = cb
        out = ctypes.c_void_p()
        with self._handle() as h:
            check(lib.vidattn_model_forward(h, fptr(px), *px.shape, ctypes.byref(p), ctypes.byref(out)))
        try:
            hs = tuple(_fetch(out, HIDDEN_STATE, i) for i in range(lib.vidattn_output_count(out, HIDDEN_STATE)))
            at = tuple(_fetch(out, ATTENTION, i) for i in range(lib.vidattn_output_count(out, ATTENTION)))
            return ModelOutput(_fetch(out, LOGITS, 0), _fetch(out, LAST_HIDDEN, 0),
                               hs if output_hidden_states else None, at if output_attentions else None,
                               _fetch(out, POOLED_CLS, 0), _fetch(out, POOLED_MEAN, 0))
        finally:
            lib.vidattn_output_free(out)

    def __call__(self, pixel_values, mask=None):
        """Logits [B, num_labels]."""
        return self.forward(pixel_values, mask=mask).logits

    @property
    def num_frames(self):
        """Frames the model expects per clip (0: any)."""
        with self._handle() as h:
            return lib.vidattn_model_num_frames(h)

    def label(self, index):
        """The id2label name of class `index`, or None."""
        with self._handle() as h:
            s = lib.vidattn_model_label(h, int(index))
            return None if s is None else s.decode()

    def preprocess(self, frames, sample=True):
        """uint8 RGB frames [T, H, W, 3] -> pixel_values [1, T', 3, H', W'] per the checkpoint's
        preprocessor_config.json (shortest-edge bilinear resize, centre crop, rescale, normalise).
        With sample=True, T' = num_frames frames are picked uniformly (centre of each segment)."""
        fr = np.ascontiguousarray(frames)
        if fr.dtype != np.uint8 or fr.ndim != 4 or fr.shape[3] != 3:
            raise InvalidArgument(f"frames must be uint8 [T, H, W, 3]; got {fr.dtype} {fr.shape}")
        n = self.num_frames
        if sample and n > 0:
            idx = [min(len(fr) - 1, int((i + 0.5) * len(fr) / n)) for i in range(n)]
            fr = np.ascontiguousarray(fr[idx])
        T, H, W, _ = fr.shape
        oh, ow = ctypes.c_int64(), ctypes.c_int64()
        with self._handle() as h:
            check(lib.vidattn_model_input_size(h, H, W, ctypes.byref(oh), ctypes.byref(ow)))
            out = np.empty((1, T, 3, oh.value, ow.value), np.float32)
            check(lib.vidattn_model_preprocess(h, u8ptr(fr), T, H, W, fptr(out), out.size))
        return out

    @property
    def labels(self):
        """Class names in index order (id2label; the index as a string where a name is missing)."""
        return [self.label(i) or str(i) for i in range(self.num_labels)]

    def _views(self, video, clips, crops):
        """Preprocessed pixel_values, one [1, T, 3, H', W'] per (clip, crop) view."""
        from .video import read_video, spatial_crops
        if int(clips) < 1:
            raise InvalidArgument(f"clips must be at least 1, got {clips}")
        if isinstance(video, (str, os.PathLike)):
            n = self.num_frames or 16
            clip_frames = list(read_video(video, num_frames=n, clips=clips))
            sample = False
        else:
            fr = np.asarray(video)
            if fr.dtype != np.uint8 or fr.ndim != 4 or fr.shape[3] != 3:
                raise InvalidArgument(f"frames must be uint8 [T, H, W, 3] or a video path; got {fr.dtype} {fr.shape}")
            n = self.num_frames or len(fr)
            if clips == 1:
                clip_frames, sample = [fr], True
            else:
                from .video import sample_indices
                clip_frames = [fr[idx] for idx in sample_indices(len(fr), n, clips)]
                sample = False
        return [self.preprocess(view, sample=sample) for c in clip_frames for view in spatial_crops(c, crops)]

    def classify(self, video, top=5, clips=1, crops=1):
        """[(label, probability)] of the top classes for a video file path or uint8 RGB frames
        [T, H, W, 3]. clips: uniform temporal clips; crops: 1 (centre) or 3 (along the long
        side); the softmax scores of the views are averaged (multi-view testing)."""
        probs = []
        for px in self._views(video, clips, crops):
            logits = self(px)[0].astype(np.float64)
            p = np.exp(logits - logits.max())
            probs.append(p / p.sum())
        p = np.mean(probs, axis=0)
        order = np.argsort(-p)[:top]
        return [(self.label(i) or str(i), float(p[i])) for i in order]

    def embed_video(self, video, pooling="cls", clips=1, crops=1):
        """Pooled embeddings [clips * crops, hidden] of a video file path or uint8 frames."""
        return np.concatenate([self.embed(px, pooling=pooling) for px in self._views(video, clips, crops)])

    def __reduce__(self):
        # Pickled by path and options (for Ray, Dask, multiprocessing): the worker reloads it.
        return (Model, (self.path, self.precision))

    def embed(self, pixel_values, pooling="cls", mask=None):
        """Pooled embeddings [B, hidden] from the library: 'cls' (token 0 of the last hidden
        state) or 'mean' (the mean over the patch tokens, the CLS token left out, as timm's
        average pooling; models without a CLS token average every token). A video path or
        uint8 frames go through embed_video."""
        if isinstance(pixel_values, (str, os.PathLike)) or getattr(pixel_values, "dtype", None) == np.uint8:
            return self.embed_video(pixel_values, pooling=pooling)
        if pooling not in ("cls", "mean"):
            raise InvalidArgument(f"pooling must be 'cls' or 'mean', got {pooling!r}")
        out = self.forward(pixel_values, mask=mask)
        return out.pooled_cls if pooling == "cls" else out.pooled_mean

    def __repr__(self):
        return f"Model({self.path!r}, type={self.model_type}, labels={self.num_labels})"


def load(path, precision="fp32"):
    """Loads a checkpoint directory; see Model. precision: "fp32", "bf16" (Linear layers in
    bf16 on AMX / AVX512-BF16, fp32 accumulation) or "int8" (dynamic int8 Linear layers on
    AMX-INT8 / AVX512-VNNI); see vidattn_precision in vidattn.h and docs/precision.md."""
    return Model(path, precision=precision)
