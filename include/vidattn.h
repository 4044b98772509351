/*
 * vidattn — video-transformer inference on the CPU.
 *
 * Overview
 *   libvidattn.so is a self-contained shared library (the Swift runtime is
 *   linked in; it needs only libsleef, libstdc++, libm, libgcc_s and libc).
 *   Every function returns a vidattn_status (0 = success, negative = error,
 *   positive = stopped on request) or a plain value; on error a message naming
 *   the problem is available from vidattn_last_error() on the same thread.
 *   Nothing in the library aborts the host process on bad input.
 *
 *   All tensors are float32, row-major, owned by the caller. Thread safety:
 *   every compute function may be called from several threads at once; each
 *   call uses its own scratch memory.
 *
 * Example: classify a preprocessed clip (pixel_values [1, 8, 3, 224, 224])
 *
 *   #include <stdio.h>
 *   #include <vidattn.h>
 *
 *   int classify(const char *dir, const float *pixels) {
 *       vidattn_model *model = NULL;
 *       vidattn_output *out = NULL;
 *       float logits[1000];
 *       vidattn_status s = vidattn_model_load(dir, NULL, &model);
 *       if (s == VIDATTN_OK) s = vidattn_model_forward(model, pixels, 1, 8, 3, 224, 224, NULL, &out);
 *       if (s == VIDATTN_OK) s = vidattn_output_copy(out, VIDATTN_OUT_LOGITS, 0, logits, 1000);
 *       if (s != VIDATTN_OK) fprintf(stderr, "%s: %s\n", vidattn_status_string(s), vidattn_last_error());
 *       else printf("logit 0 (%s): %f\n", vidattn_model_label(model, 0), logits[0]);
 *       vidattn_output_free(out);
 *       vidattn_model_free(model);
 *       return s == VIDATTN_OK ? 0 : 1;
 *   }
 *
 * Kernels and attention mechanisms work on caller-owned buffers the same way, e.g.
 * vidattn_attention(1, 12, 3137, 3137, 64, q, k, v, out, 0.0f, NULL, NULL, NULL, NULL).
 * Complete programs: examples/c/classify.c (decoded frames -> top-5) and attention.c.
 *
 *   cc example.c $(pkg-config --cflags --libs vidattn)
 */
#ifndef VIDATTN_H
#define VIDATTN_H

#include <stddef.h>
#include <stdint.h>

#include "vidattn_types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VIDATTN_VERSION_MAJOR 0
#define VIDATTN_VERSION_MINOR 1
#define VIDATTN_VERSION_PATCH 0
#define VIDATTN_VERSION_STRING "0.1.0"

/* Library version, "MAJOR.MINOR.PATCH". Static string; thread-safe. */
const char *vidattn_version(void);

/* Short English name of a status. Static string; thread-safe. */
const char *vidattn_status_string(vidattn_status status);

/* Message describing the last error on the calling thread ("" if none).
 * Valid until the next vidattn call on this thread. */
const char *vidattn_last_error(void);

/* ---- Threads ----------------------------------------------------------- */

/* Worker threads used by each compute call. Default: VIDATTN_NUM_THREADS if
 * set, else the number of online cores. May be changed between calls. */
int vidattn_get_num_threads(void);
/* n >= 1; returns VIDATTN_ERR_INVALID_ARGUMENT otherwise. */
vidattn_status vidattn_set_num_threads(int n);

/* ---- CPU ----------------------------------------------------------------- */

/* What the library detected on this machine, one line of "key=value" pairs separated by
 * "; ": cpu=<brand>; flags=<cpuinfo names: avx2 fma avx512f avx512_bf16 amx_tile ...>;
 * l1d=<bytes>; l2=<bytes>; l3=<bytes>; amx_permitted=0|1; fp32=avx2|avx512 (the fp32
 * kernels chosen at run time); baseline=avx2|avx512 (what the rest of the library was
 * compiled for: avx2 in the portable default build); bf16=amx|avx512_bf16|fma|emulated
 * (the unit VIDATTN_PRECISION_BF16 runs on; fma: the fp32 kernels on bf16-rounded weights
 * because this CPU's AVX512-BF16 is slower than its FMA, Intel without AMX; emulated: no unit); int8=amx|avx512_vnni|emulated (the unit of
 * VIDATTN_PRECISION_INT8); max_isa=<the VIDATTN_MAX_ISA cap>.
 * Static string; thread-safe. */
const char *vidattn_cpu_features(void);

/* Measures this machine's fp32 FMA peak in GFLOP/s on `threads` threads (chains of
 * independent FMAs in registers, AVX-512 where present, else AVX2; best of 5 runs of
 * ~50 ms). For benchmarks: efficiency is a percentage of it. threads >= 1. */
double vidattn_fma_peak_gflops(int threads);

/* Measures the AMX bf16 tile-product throughput in GFLOP/s (four independent tdpbf16ps on
 * resident tiles) on `threads` of the library's worker threads at once: the sum over them,
 * best of 3 runs of ~10-30 ms. Returns 0 where bf16 does not run on AMX (no AMX, tile state
 * refused by the OS, or VIDATTN_MAX_ISA below amx). For benchmarks: on shared machines the
 * tile unit's throughput can change within seconds, so report it beside AMX timings.
 * threads >= 1. */
double vidattn_tile_peak_gflops(int threads);

/* ---- Memory -------------------------------------------------------------- */

/* Returns the scratch buffers the library keeps between calls (at most 6 buffers,
 * 512 MiB) to the system. Loaded models keep their weights. Thread-safe. */
void vidattn_release_cached_memory(void);

/* Testing aid: the n-th buffer allocation from now on (0-based, counted across all
 * threads) fails once, as if memory were exhausted, and the call that needed it
 * returns VIDATTN_ERR_OUT_OF_MEMORY; n < 0 disarms. vidattn_debug_allocation_count()
 * tells how many allocations were requested since it was armed, so a test can arm it
 * with a large n, count one call's allocations, then fail each in turn. */
void vidattn_debug_fail_allocation(int64_t n);
int64_t vidattn_debug_allocation_count(void);

/* Testing aid: the library's buffers allocated and not yet freed (always counted). After
 * freeing every model and output and vidattn_release_cached_memory(), a call that failed must
 * leave it where it was: the allocation-failure sweeps check that nothing leaks. */
int64_t vidattn_debug_live_allocations(void);

/* ---- Kernels ------------------------------------------------------------- */

/* C = alpha * op(A) * op(B) + beta * C, row-major with leading dimensions
 * (row strides) lda, ldb, ldc. op(A) is m x k (A stored k x m when trans_a),
 * op(B) is k x n (B stored n x k when trans_b, the layout of PyTorch Linear
 * weights). C (m x n) is read when beta != 0 and written. */
vidattn_status vidattn_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                             float alpha, const float *a, int64_t lda,
                             const float *b, int64_t ldb,
                             float beta, float *c, int64_t ldc);

/* As vidattn_sgemm, with a fused epilogue:
 *   C = act(alpha * op(A) * op(B) + beta * C + bias) + residual
 * bias: n floats or NULL; residual: m x n with row stride ldr, or NULL. */
vidattn_status vidattn_sgemm_fused(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                                   float alpha, const float *a, int64_t lda,
                                   const float *b, int64_t ldb,
                                   float beta, float *c, int64_t ldc,
                                   const float *bias, vidattn_activation act,
                                   const float *residual, int64_t ldr);

/* Fused exact attention, out = softmax(scale * q k^T + bias) v, computed
 * flash-style (online softmax over key blocks; no nq x nk buffer).
 *   q:   [batch, heads, nq, d]      k, v: [batch, heads, nk, d]
 *   out: [batch, heads, nq, d]      (all contiguous)
 *   scale: 0 selects 1/sqrt(d).
 *   bias: additive, or NULL. bias_strides = {batch, head, row} strides in
 *         floats (0 broadcasts; keys are contiguous), or NULL for a contiguous
 *         [batch, heads, nq, nk] bias.
 *   key_mask: [batch, nk] bytes, nonzero = attend, or NULL. A query with every
 *         key masked gets an all-zero output row.
 *   probs: [batch, heads, nq, nk] output of the attention probabilities, or
 *         NULL (they cost a second pass over the scores). */
vidattn_status vidattn_attention(int64_t batch, int64_t heads, int64_t nq, int64_t nk, int64_t d,
                                 const float *q, const float *k, const float *v, float *out,
                                 float scale, const float *bias, const int64_t *bias_strides,
                                 const uint8_t *key_mask, float *probs);

/* Row softmax of a rows x cols matrix (row stride ld), in place:
 * x = softmax(scale * x + bias), bias: rows x cols (row stride ld_bias, 0 =
 * one row for all) or NULL. */
vidattn_status vidattn_softmax(int64_t rows, int64_t cols, float *x, int64_t ld, float scale,
                               const float *bias, int64_t ld_bias);

/* LayerNorm over rows of cols floats: y = (x - mean)/sqrt(var + eps)*gamma + beta
 * (biased variance). gamma and beta may be NULL; x and y may be the same. */
vidattn_status vidattn_layer_norm(int64_t rows, int64_t cols, const float *x, float *y,
                                  const float *gamma, const float *beta, float eps);

/* y[i] = act(x[i]) for n floats; x and y may be the same. */
vidattn_status vidattn_activation_apply(vidattn_activation act, const float *x, float *y, int64_t n);

/* Nonzero forces the scalar reference implementation of every kernel (slow;
 * for parity checks). Also set by the environment variable VIDATTN_REFERENCE=1. */
void vidattn_set_reference_kernels(int enable);

/* ---- Models ----------------------------------------------------------------
 * A checkpoint directory holds config.json and model.safetensors (or a sharded
 * model.safetensors.index.json); config.json's model_type picks the architecture:
 *   "vivit"               HF ViViT (Hub 4.x or transformers 5.x key names)
 *   "timesformer"         HF TimeSformer (divided / joint / space-only)
 *   "videomae"            HF VideoMAE for video classification (mean or first-token pooling)
 *   "torchvision_swin3d"  torchvision swin3d_t/s/b (tools/convert_torchvision_swin3d.py)
 *   "aim_swin"            AIM's Swin with adapters and temporal attention (tools/convert_aim_swin.py)
 *   "timesformer_pytorch" lucidrains TimeSformer-pytorch (tools/convert_timesformer_pytorch.py)
 *   "motionformer"        Motionformer, any crop incl. the 336-pixel HR models (tools/convert_motionformer.py)
 *   "fasttimesformer"     FastTimeSformer (tools/convert_fasttimesformer.py)
 * A directory with only pytorch_model.bin is refused with VIDATTN_ERR_UNSUPPORTED and a
 * message naming tools/convert_pytorch_bin.py, which writes model.safetensors beside it.
 * pixel_values are float32 [batch, frames, channels, height, width], preprocessed. */

/* Defaults for vidattn_model_load(). */
vidattn_model_params vidattn_model_default_params(void);

/* Loads a checkpoint directory. params NULL = defaults. On success *out owns the
 * model (free with vidattn_model_free); on error *out is NULL and the status and
 * vidattn_last_error() say why (missing tensor, wrong shape, unknown model_type,
 * truncated file, ...). */
vidattn_status vidattn_model_load(const char *path, const vidattn_model_params *params, vidattn_model **out);

/* Frees a model; NULL is ignored. Not while another thread uses it. */
void vidattn_model_free(vidattn_model *model);

/* Facts about a loaded model. Strings live as long as the model. */
const char *vidattn_model_type(const vidattn_model *model);
const char *vidattn_model_config_json(const vidattn_model *model);   /* config.json as loaded */
int64_t vidattn_model_num_labels(const vidattn_model *model);
int64_t vidattn_model_hidden_size(const vidattn_model *model);
int64_t vidattn_model_parameter_count(const vidattn_model *model);

/* Frames the model expects per clip (config num_frames / frames; 0 if any count works). */
int64_t vidattn_model_num_frames(const vidattn_model *model);

/* Label of class `index` from config.json id2label, or NULL. Lives as long as the model. */
const char *vidattn_model_label(const vidattn_model *model, int64_t index);

/* Size of preprocessed frames for input frames of height x width (after the checkpoint's
 * resize and centre crop). */
vidattn_status vidattn_model_input_size(const vidattn_model *model, int64_t height, int64_t width,
                                        int64_t *out_height, int64_t *out_width);

/* Preprocesses decoded frames per the checkpoint's preprocessor_config.json (shortest-edge
 * resize, bilinear; centre crop; rescale; normalise): rgb [frames, height, width, 3] bytes
 * -> pixel_values [frames, 3, H, W] (H, W from vidattn_model_input_size); capacity in floats.
 * Sample the frames first (the model wants vidattn_model_num_frames of them). */
vidattn_status vidattn_model_preprocess(const vidattn_model *model, const uint8_t *rgb, int64_t frames,
                                        int64_t height, int64_t width, float *pixel_values, int64_t capacity);

/* Defaults for vidattn_model_forward(). */
vidattn_forward_params vidattn_forward_default_params(void);

/* One forward pass. Thread-safe on a shared model (each call has its own scratch).
 * params NULL = defaults. On success *out owns the outputs (vidattn_output_free). */
vidattn_status vidattn_model_forward(const vidattn_model *model, const float *pixel_values,
                                     int64_t batch, int64_t frames, int64_t channels, int64_t height, int64_t width,
                                     const vidattn_forward_params *params, vidattn_output **out);

/* Number of tensors of a kind in an output (hidden states: layers + 1; 0 if not kept). */
int64_t vidattn_output_count(const vidattn_output *out, vidattn_output_kind kind);

/* Shape of tensor `index` of a kind: writes up to 8 dims into shape, their count into *ndim. */
vidattn_status vidattn_output_shape(const vidattn_output *out, vidattn_output_kind kind, int64_t index,
                                    int64_t shape[8], int *ndim);

/* Copies tensor `index` of a kind into dst (capacity floats; too small is an error). */
vidattn_status vidattn_output_copy(const vidattn_output *out, vidattn_output_kind kind, int64_t index,
                                   float *dst, int64_t capacity);

/* Frees outputs; NULL is ignored. */
void vidattn_output_free(vidattn_output *out);

/* ---- Attention mechanisms ------------------------------------------------
 * Tensors are [batch, heads, tokens, d] float32, contiguous, caller-owned.
 * Video token order: CLS first, then patches frame-major (token 1 + f*P + p).
 * scale 0 selects 1/sqrt(d). */

/* Joint space-time attention (ViViT): exact softmax attention over all
 * tokens; key_mask [batch, tokens] bytes (nonzero = attend) or NULL. */
vidattn_status vidattn_attn_joint(int64_t batch, int64_t heads, int64_t tokens, int64_t d,
                                  const float *q, const float *k, const float *v, float *out,
                                  float scale, const uint8_t *key_mask);

/* Divided space-time attention (TimeSformer): one grouping per call.
 * q, k, v, out: [batch, heads, 1 + frames*patches, d].
 * frame_mask: [batch, frames] bytes, nonzero = real frame, or NULL; with
 * VIDATTN_CLS_ALL_KEYS padded frames are never attended (time groups and the
 * CLS query); VIDATTN_CLS_PER_FRAME rejects masks (VIDATTN_ERR_UNSUPPORTED). */
vidattn_status vidattn_attn_divided(int64_t batch, int64_t heads, int64_t frames, int64_t patches, int64_t d,
                                    const float *q, const float *k, const float *v, float *out,
                                    vidattn_grouping grouping, vidattn_cls_scheme cls, float scale,
                                    const uint8_t *frame_mask);

/* Default trajectory options (see vidattn_trajectory_params). Thread-safe. */
vidattn_trajectory_params vidattn_trajectory_default_params(void);

/* Trajectory attention (Motionformer), up to but excluding the final proj.
 * q, k, v: [batch, heads, 1 + frames*patches, d] (the heads-split qkv output);
 * proj_q_weight [C, C], proj_kv_weight [2C, C] (PyTorch Linear layout, C =
 * heads*d), biases [C] / [2C] or NULL; out: [batch, 1 + frames*patches, C].
 * params NULL = defaults. Memory: tiles of 48 query tokens; the trajectory
 * tensor [N, frames, C] is never held whole. */
vidattn_status vidattn_attn_trajectory(int64_t batch, int64_t heads, int64_t frames, int64_t patches, int64_t d,
                                       const float *q, const float *k, const float *v,
                                       const float *proj_q_weight, const float *proj_q_bias,
                                       const float *proj_kv_weight, const float *proj_kv_bias,
                                       float *out, const vidattn_trajectory_params *params);

/* Performer softmax-kernel attention (performer-pytorch FastAttention, non-causal).
 * q [batch, heads, nq, d], k, v [batch, heads, nk, d], projection [features, d]
 * (the Gaussian orthogonal matrix Omega), out [batch, heads, nq, d]. eps is the
 * feature stabiliser (1e-4 in performer-pytorch); the key max is taken per
 * (batch, head). Cost O((nq + nk) * features * d). */
vidattn_status vidattn_attn_performer(int64_t batch, int64_t heads, int64_t nq, int64_t nk, int64_t d,
                                      const float *q, const float *k, const float *v,
                                      const float *projection, int64_t features, float eps, float *out);

/* Fills projection [features, d] with a seeded Gaussian orthogonal random matrix
 * (orthonormal blocks of d rows scaled by chi(d) row norms). Deterministic per
 * seed on every platform; not PyTorch's stream. */
vidattn_status vidattn_performer_projection(int64_t features, int64_t d, uint64_t seed, float *projection);

typedef enum vidattn_fastformer_form {
    VIDATTN_FASTFORMER_PAPER       = 0, /* global key vector: u_i = kbar (*) v_i */
    VIDATTN_FASTFORMER_IMPLEMENTED = 1  /* FastTimeSformer's code: u_i = beta_i <qbar, k_i> v_i */
} vidattn_fastformer_form;

/* Fastformer additive attention per head. q, k, v, out: [batch, heads, n, d];
 * wq, wk: [d] (Linear(d -> 1) weights shared by the heads); scale 0 = 1/sqrt(d).
 * out receives u (before to_out and the query residual). */
vidattn_status vidattn_attn_fastformer(int64_t batch, int64_t heads, int64_t n, int64_t d,
                                       const float *q, const float *k, const float *v,
                                       const float *wq, const float *wk, vidattn_fastformer_form form,
                                       float scale, float *out);

/* 3-D shifted-window attention (Video Swin; torchvision shifted_window_attention_3d),
 * qkv and proj included. x, y: [batch, t, h, w, channels] (x already layer-normed).
 * window[3], shift[3]: configured (t, h, w) window and shift; both are clamped
 * per axis where the input is not larger than the window (shift 0 there).
 * qkv_weight [3C, C], proj_weight [C, C] (PyTorch Linear layout), biases or NULL,
 * relative_position_table [(2Wt-1)(2Wh-1)(2Ww-1), heads]. Padded tokens are zero
 * before qkv and take part in attention, as in the reference; shifted windows
 * add -100 between tokens of different regions. */
vidattn_status vidattn_attn_window3d(int64_t batch, int64_t t, int64_t h, int64_t w, int64_t channels, int64_t heads,
                                     const int64_t window[3], const int64_t shift[3], const float *x,
                                     const float *qkv_weight, const float *qkv_bias,
                                     const float *proj_weight, const float *proj_bias,
                                     const float *relative_position_table, float *y);

/* Swin patch merging: x [batch, t, h, w, c] -> y [batch, t, ceil(h/2), ceil(w/2), 2c]
 * = reduction(LayerNorm([x(2i,2j), x(2i+1,2j), x(2i,2j+1), x(2i+1,2j+1)])), zero-padded
 * to even h, w; reduction_weight [2c, 4c] (no bias); norm weight/bias [4c] or NULL. */
vidattn_status vidattn_patch_merging(int64_t batch, int64_t t, int64_t h, int64_t w, int64_t c, const float *x,
                                     const float *norm_weight, const float *norm_bias,
                                     const float *reduction_weight, float eps, float *y);

/* Landmark attention over all keys (the Motionformer helpers with one frame).
 * kind: VIDATTN_APPROX_NYSTROM (K1 pinv6(K2) K3 V, contiguous segment-mean landmarks) or
 * VIDATTN_APPROX_ORTHOFORMER (greedy orthogonal landmarks from token `start`).
 * q, k, v, out: [batch, heads, n, d]; scale is 1/sqrt(d). */
vidattn_status vidattn_attn_landmark(vidattn_traj_approx kind, int64_t batch, int64_t heads, int64_t n, int64_t d,
                                     const float *q, const float *k, const float *v, int64_t landmarks,
                                     int64_t start, float *out);

/* AIM temporal attention: y = proj(softmax(q k^T / sqrt(d) + Bt) v) over the frames of
 * each group, qkv/proj shared with the spatial window attention. z, y: [groups, frames, C];
 * qkv_weight [3C, C], proj_weight [C, C], biases or NULL; temporal_table
 * [2*frames - 1, heads] with Bt[h, i, j] = table[i - j + frames - 1, h]. */
vidattn_status vidattn_attn_temporal_aim(int64_t groups, int64_t frames, int64_t channels, int64_t heads,
                                         const float *z, const float *qkv_weight, const float *qkv_bias,
                                         const float *proj_weight, const float *proj_bias,
                                         const float *temporal_table, float *y);

/* ---- FLOPs ------------------------------------------------------------------ */

/* Default shape for vidattn_flops(). */
vidattn_mechanism_shape vidattn_mechanism_default_shape(void);

/* Multiply-accumulates of one clip through `mechanism`, both ways (see vidattn_macs);
 * multiply by 2 for FLOPs. */
vidattn_status vidattn_flops(vidattn_mechanism mechanism, const vidattn_mechanism_shape *shape, vidattn_macs *out);

/* ---- Positional pieces (TimeSformer-pytorch) ------------------------------ */

/* Rotary time table [frames, dim] into sin and cos (caller-owned). consistent = 0
 * reproduces lucidrains' layout (halves concatenated, so an adjacent pair mixes two
 * angles); 1 repeats each angle for its pair (a proper RoPE). */
vidattn_status vidattn_rotary_time_table(int64_t frames, int64_t dim, int consistent, float *sin, float *cos);

/* Axial rotary image table [h*w, dim] (AxialRotaryEmbedding, max_freq 10 there). */
vidattn_status vidattn_rotary_image_table(int64_t h, int64_t w, int64_t dim, float max_freq, float *sin, float *cos);

/* In place on x [rows, d]: channels < table_dim become x*cos + rotate_every_two(x)*sin
 * with row i using table row positions[i] (positions NULL: row i). */
vidattn_status vidattn_rotary_apply(int64_t rows, int64_t d, float *x, const float *sin, const float *cos,
                                    int64_t table_rows, int64_t table_dim, const int64_t *positions);

/* Token shift: x, y [batch, 1 + frames*patches, channels], must not overlap. */
vidattn_status vidattn_token_shift(int64_t batch, int64_t frames, int64_t patches, int64_t channels,
                                   const float *x, float *y);

/* GEGLU feed-forward: y [rows, out] = W2 (a * gelu(g)) + b2, [a | g] = W1 x + b1;
 * w1 [2*hidden, dim], w2 [out, hidden] (Linear layout), biases or NULL. */
vidattn_status vidattn_geglu_ff(int64_t rows, int64_t dim, int64_t hidden, int64_t out, const float *x,
                                const float *w1, const float *b1, const float *w2, const float *b2, float *y);

#ifdef __cplusplus
}
#endif

#endif /* VIDATTN_H */
