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
