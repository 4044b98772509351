/*
 * vidattn_types.h — the enums and structs of the vidattn C API (included by
 * vidattn.h; include that instead). Kept apart so that the library's Swift
 * side can import the exact C layouts.
 */
#ifndef VIDATTN_TYPES_H
#define VIDATTN_TYPES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Status ------------------------------------------------------------ */

typedef enum vidattn_status {
    VIDATTN_OK                   = 0,
    VIDATTN_ERR_INVALID_ARGUMENT = -1, /* a size, stride or option is out of range */
    VIDATTN_ERR_NULL_POINTER     = -2, /* a required pointer is NULL */
    VIDATTN_ERR_OUT_OF_MEMORY    = -3,
    VIDATTN_ERR_SHAPE_MISMATCH   = -4, /* tensors whose shapes do not fit together */
    VIDATTN_ERR_IO               = -5, /* a file could not be opened or read */
    VIDATTN_ERR_BAD_FORMAT       = -6, /* a file is malformed or truncated */
    VIDATTN_ERR_UNSUPPORTED      = -7, /* valid but not supported (e.g. model_type) */
    VIDATTN_ERR_INTERNAL         = -8,
    VIDATTN_ABORTED              = 1   /* the abort callback asked to stop */
} vidattn_status;

/* ---- Kernels ------------------------------------------------------------ */

typedef enum vidattn_activation {
    VIDATTN_ACT_NONE      = 0,
    VIDATTN_ACT_GELU      = 1, /* exact: 0.5 x (1 + erf(x / sqrt 2)) */
    VIDATTN_ACT_GELU_TANH = 2, /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
    VIDATTN_ACT_TANH      = 3,
    VIDATTN_ACT_RELU      = 4
} vidattn_activation;

/* ---- Attention mechanisms ------------------------------------------------ */

typedef enum vidattn_grouping {
    VIDATTN_GROUP_TIME  = 0, /* groups of F tokens: one spatial position across frames */
    VIDATTN_GROUP_SPACE = 1  /* groups of P tokens: one frame */
} vidattn_grouping;

typedef enum vidattn_cls_scheme {
    /* lucidrains TimeSformer-pytorch / Motionformer: the CLS query attends to
     * all 1+F*P keys; each patch query attends to {CLS} + its group. */
    VIDATTN_CLS_ALL_KEYS  = 0,
    /* HF / original TimeSformer: time groups exclude CLS (its output row is 0);
     * space groups are [CLS, frame] and the CLS output is the mean over frames. */
    VIDATTN_CLS_PER_FRAME = 1
} vidattn_cls_scheme;

typedef enum vidattn_traj_approx {
    VIDATTN_APPROX_NONE        = 0, /* exact spatial step */
    VIDATTN_APPROX_NYSTROM     = 1, /* spatial landmarks, 6 Newton-Schulz steps */
    VIDATTN_APPROX_ORTHOFORMER = 2, /* greedy max-min orthogonal landmarks */
    VIDATTN_APPROX_PERFORMER   = 3  /* FAVOR+ per-frame linear attention */
} vidattn_traj_approx;

/* Options of vidattn_attn_trajectory. Get one from
 * vidattn_trajectory_default_params() and change what you need; struct_size
 * lets the struct grow without breaking callers. */
typedef struct vidattn_trajectory_params {
    size_t struct_size;          /* = sizeof(vidattn_trajectory_params) */
    int use_original_code;       /* 1 (default, released checkpoints): temporal values are the
                                    unprojected trajectories; 0: the v half of proj_kv */
    vidattn_traj_approx approx;  /* default VIDATTN_APPROX_NONE */
    int64_t landmarks;           /* Nystrom / Orthoformer landmark count (default 128) */
    int64_t orthoformer_start;   /* first Orthoformer landmark (token index, default 0) */
    const float *performer_projection; /* [performer_features, d]; NULL: generated from performer_seed */
    int64_t performer_features;  /* m (default 256) */
    uint64_t performer_seed;     /* seed for a generated projection (default 0) */
    float scale;                 /* 0: 1/sqrt(d) */
} vidattn_trajectory_params;

/* ---- Models ------------------------------------------------------------------ */

/* A loaded model: immutable after loading, may be shared by threads. */
typedef struct vidattn_model vidattn_model;
/* The outputs of one forward pass (owned by the caller; free with vidattn_output_free). */
typedef struct vidattn_output vidattn_output;

/* Precision of a model's Linear layers (qkv, projections, MLP, patch embedding). */
typedef enum vidattn_precision {
    VIDATTN_PRECISION_FP32 = 0,   /* default */
    /* Weights converted to bf16 at load, activations rounded to bf16 (nearest even) as they
     * enter each Linear, fp32 accumulation; LayerNorm, softmax, GELU, attention and the
     * residual stream stay fp32. Runs on AMX where present, else AVX512-BF16; on a CPU with
     * neither, the fp32 kernels run on the rounded weights (same numbers, no speed-up):
     * vidattn_cpu_features() says which ("bf16=amx|avx512_bf16|emulated"). */
    VIDATTN_PRECISION_BF16 = 1,
    /* Dynamic int8: weights quantized per output channel (symmetric) at load, activations
     * per token (symmetric) as they enter each Linear, int32 accumulation, dequantized in
     * fp32 with bias and activation; attention, LayerNorm, softmax and the residual stream
     * stay fp32. AMX-INT8 where present, else AVX512-VNNI; on a CPU with neither, the fp32
     * kernels on the dequantized values ("int8=amx|avx512_vnni|emulated"). Accuracy per
     * model: docs/precision.md. */
    VIDATTN_PRECISION_INT8 = 2
} vidattn_precision;

/* Options for vidattn_model_load(); get them from vidattn_model_default_params(). */
typedef struct vidattn_model_params {
    size_t struct_size;        /* = sizeof(vidattn_model_params) */
    int precision;             /* a vidattn_precision; VIDATTN_PRECISION_FP32 by default */
} vidattn_model_params;

/* Called between layers of a forward pass; return nonzero to continue, 0 to stop
 * (the forward then returns VIDATTN_ABORTED and the model stays usable). */
typedef int (*vidattn_progress_callback)(void *user_data, int layer, int layers);

typedef struct vidattn_forward_params {
    size_t struct_size;        /* = sizeof(vidattn_forward_params) */
    int output_hidden_states;  /* keep every layer's output (memory: (layers+1) x tokens x hidden) */
    int output_attentions;     /* keep attention probabilities (memory: layers x heads x tokens^2) */
    const uint8_t *frame_mask; /* [batch, frames], nonzero = real frame; models that take one */
    vidattn_progress_callback progress;
    void *progress_user_data;
} vidattn_forward_params;

typedef enum vidattn_output_kind {
    VIDATTN_OUT_LOGITS       = 0, /* [batch, labels] ([batch*frames, labels] for HF space_only) */
    VIDATTN_OUT_LAST_HIDDEN  = 1, /* [batch, tokens, hidden], after the final norm */
    VIDATTN_OUT_HIDDEN_STATE = 2, /* index 0..layers: embeddings, then each layer's output */
    VIDATTN_OUT_ATTENTION    = 3, /* index 0..layers-1: [sequences, heads, n, n] */
    VIDATTN_OUT_POOLED_CLS   = 4, /* [batch, hidden]: token 0 of the last hidden state */
    VIDATTN_OUT_POOLED_MEAN  = 5  /* [batch, hidden]: mean over the patch tokens of the last hidden
                                    state (the CLS token left out, as timm's average pooling) */
} vidattn_output_kind;

/* Mechanisms known to vidattn_flops(). */
typedef enum vidattn_mechanism {
    VIDATTN_MECH_JOINT = 0,
    VIDATTN_MECH_DIVIDED_TIME,        /* CLS attends to all keys (lucidrains / Motionformer) */
    VIDATTN_MECH_DIVIDED_SPACE,
    VIDATTN_MECH_DIVIDED_TIME_HF,     /* HF / original TimeSformer CLS scheme */
    VIDATTN_MECH_DIVIDED_SPACE_HF,
    VIDATTN_MECH_TRAJECTORY,
    VIDATTN_MECH_TRAJECTORY_NYSTROM,
    VIDATTN_MECH_TRAJECTORY_ORTHOFORMER,
    VIDATTN_MECH_TRAJECTORY_PERFORMER,
    VIDATTN_MECH_PERFORMER,
    VIDATTN_MECH_NYSTROM,
    VIDATTN_MECH_ORTHOFORMER,
    VIDATTN_MECH_FASTFORMER,
    VIDATTN_MECH_WINDOW3D,
    VIDATTN_MECH_TEMPORAL_AIM,
    VIDATTN_MECH_AIM_BLOCK            /* AIM Block.flops() of a temporal (even) block */
} vidattn_mechanism;

/* Shape for vidattn_flops(); unused fields are ignored. Start from
 * vidattn_mechanism_default_shape() (ViT-B: C 768, 12 heads, 8 frames x 196 patches). */
typedef struct vidattn_mechanism_shape {
    size_t struct_size;
    int64_t channels, heads;
    int64_t frames, patches;   /* F and P (AIM: T' and unused) */
    int64_t tokens;            /* N for generic mechanisms; 0 = 1 + frames*patches */
    int64_t landmarks;         /* landmarks, or Performer features */
    int64_t window[3];         /* Swin window (t, h, w); AIM uses window[1] */
    int64_t grid[3];           /* Swin / AIM token grid (t, h, w) */
} vidattn_mechanism_shape;

/* Multiply-accumulate counts of one clip. */
typedef struct vidattn_macs {
    double attention;          /* the attention matmuls only (AIM / Video Swin flops() convention) */
    double total;              /* every matmul, projections included */
} vidattn_macs;

#ifdef __cplusplus
}
#endif

#endif /* VIDATTN_TYPES_H */
