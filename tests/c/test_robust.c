/* test_robust.c — resources and concurrency through the C API.
 *
 *   test_robust oom MODELS IO MODEL...
 *       Counts the buffer allocations of one load + forward, then makes each of them fail in
 *       turn (vidattn_debug_fail_allocation): every run must return VIDATTN_ERR_OUT_OF_MEMORY
 *       with a message, leave no buffer behind (vidattn_debug_live_allocations), and afterwards
 *       the model must load and give bit-identical results. The same for preprocessing and for
 *       each attention mechanism called on its own (trajectory with every approximation,
 *       divided, joint, Performer, Nystrom, Orthoformer, Fastformer, Swin).
 *   test_robust threads MODELS IO MODEL...
 *       8 pthreads share one loaded model and run forwards on 8 different inputs, while the
 *       main thread changes the thread-count setting: every result is bit-identical to the
 *       sequential run of the same input.
 *   test_robust soak MODELS IO MODEL CYCLES
 *       CYCLES load/forward/free cycles: resident memory after the last cycle is within 4 MiB
 *       of that after the first 10% (leaks themselves are reported by LeakSanitizer in
 *       `make test-asan`).
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <vidattn.h>

#include "common.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

typedef struct { array px, want; char path[1024]; } fixture;

static int load_fixture(const char *models, const char *io, const char *name, fixture *f) {
    char p[1024];
    snprintf(f->path, sizeof f->path, "%s/%s", models, name);
    snprintf(p, sizeof p, "%s/%s/pixel_values.bin", io, name);
    int ok = read_array(p, &f->px) && f->px.ndim == 5;
    snprintf(p, sizeof p, "%s/%s/logits.bin", io, name);
    ok = ok && read_array(p, &f->want);
    CHECK(ok, "%s: cannot read its io files under %s", name, io);
    return ok;
}

/* One forward of `px` (any [B, T, C, H, W] buffer of the fixture's shape); the last hidden
 * state (or the logits if the model has none) is copied into a new buffer *res of *n floats. */
static vidattn_status forward_with(const vidattn_model *m, const fixture *f, const float *px,
                                   const vidattn_forward_params *fp, float **res, int64_t *n) {
    vidattn_output *out = NULL;
    const int64_t *d = f->px.dims;
    vidattn_status st = vidattn_model_forward(m, px, d[0], d[1], d[2], d[3], d[4], fp, &out);
    *res = NULL;
    *n = 0;
    if (st != VIDATTN_OK) return st;
    vidattn_output_kind kind = vidattn_output_count(out, VIDATTN_OUT_LAST_HIDDEN) ? VIDATTN_OUT_LAST_HIDDEN
                                                                                  : VIDATTN_OUT_LOGITS;
    int64_t shape[8], count = 1;
    int nd = 0;
    st = vidattn_output_shape(out, kind, 0, shape, &nd);
    for (int i = 0; i < nd; i++) count *= shape[i];
    if (st == VIDATTN_OK) {
        *res = malloc(sizeof(float) * (size_t)count);
        st = vidattn_output_copy(out, kind, 0, *res, count);
        *n = count;
    }
    vidattn_output_free(out);
    return st;
}

static vidattn_status forward(const vidattn_model *m, const fixture *f, const float *px, float **res, int64_t *n) {
    return forward_with(m, f, px, NULL, res, n);
}

static int same_bits(const float *a, const float *b, int64_t n) { return memcmp(a, b, sizeof(float) * (size_t)n) == 0; }

/* The library's buffers once its scratch cache is given back: around a failed call it must
 * not change (a buffer allocated before the failure and not freed is a leak). */
static int64_t live_buffers(void) {
    vidattn_release_cached_memory();
    return vidattn_debug_live_allocations();
}

/* ---- Allocation failures ---------------------------------------------------------- */

/* `spec` is a fixture name, optionally with "@bf16" or "@int8": the precision it is loaded at. */
static void oom_sweep(const char *models, const char *io, const char *spec) {
    char name[256];
    snprintf(name, sizeof name, "%s", spec);
    vidattn_model_params params = vidattn_model_default_params();
    char *at = strchr(name, '@');
    if (at) {
        *at = 0;
        if (strcmp(at + 1, "bf16") == 0) params.precision = VIDATTN_PRECISION_BF16;
        else if (strcmp(at + 1, "int8") == 0) params.precision = VIDATTN_PRECISION_INT8;
        else { CHECK(0, "%s: unknown precision suffix", spec); return; }
    }
    fixture f;
    if (!load_fixture(models, io, name, &f)) return;
    vidattn_set_num_threads(1);   /* one allocation order, so every index is reached */
    vidattn_model *m = NULL;
    float *ref = NULL, *res = NULL;
    int64_t nref = 0, n = 0;

    vidattn_release_cached_memory();
    vidattn_debug_fail_allocation(INT64_MAX / 2);   /* armed far away: counts */
    vidattn_status st = vidattn_model_load(f.path, &params, &m);
    if (st == VIDATTN_OK) st = forward(m, &f, f.px.data, &ref, &nref);
    int64_t total = vidattn_debug_allocation_count();
    vidattn_debug_fail_allocation(-1);
    vidattn_model_free(m);
    CHECK(st == VIDATTN_OK && total > 0, "%s: counting run (status %d, %lld allocations)", spec, st, (long long)total);

    int oom = 0, other = 0, silent = 0, leaked = 0;
    for (int64_t i = 0; i < total; i++) {
        const int64_t live = live_buffers();
        vidattn_debug_fail_allocation(i);
        m = NULL;
        st = vidattn_model_load(f.path, &params, &m);
        if (st == VIDATTN_OK) {
            CHECK(m != NULL, "%s: load OK without a model", spec);
            st = forward(m, &f, f.px.data, &res, &n);
            free(res);
            vidattn_model_free(m);
        } else {
            CHECK(m == NULL, "%s: a failed load returned a model", spec);
        }
        vidattn_debug_fail_allocation(-1);
        if (st == VIDATTN_ERR_OUT_OF_MEMORY && vidattn_last_error()[0]) oom++;
        else if (st == VIDATTN_OK) silent++;
        else { other++; printf("  allocation %lld: status %d: %s\n", (long long)i, st, vidattn_last_error()); }
        const int64_t after = live_buffers();
        if (after != live) { leaked++; printf("  allocation %lld: %lld buffers leaked\n", (long long)i, (long long)(after - live)); }
    }
    CHECK(oom == total && other == 0 && silent == 0,
          "%s: of %lld failed allocations, %d reported out of memory, %d another status, %d went unnoticed",
          spec, (long long)total, oom, other, silent);
    CHECK(leaked == 0, "%s: %d of %lld failed allocations leaked buffers", spec, leaked, (long long)total);

    /* Nothing is left broken: the same load + forward gives the same bits. */
    vidattn_release_cached_memory();
    m = NULL;
    st = vidattn_model_load(f.path, &params, &m);
    if (st == VIDATTN_OK) st = forward(m, &f, f.px.data, &res, &n);
    CHECK(st == VIDATTN_OK && n == nref && res && ref && same_bits(res, ref, n), "%s: result after the sweep", spec);
    printf("%-28s %lld allocations, each failure reported as out of memory\n", spec, (long long)total);
    free(res); free(ref);
    vidattn_model_free(m);
    free(f.px.data); free(f.want.data);
    vidattn_set_num_threads(2);
}

/* ---- Allocation failures in preprocessing ------------------------------------------ */

/* vidattn_model_preprocess of 4 frames of 50×40 with a model whose preprocessor_config.json is
 * an HF image processor (the antialiased resize and its buffers): every failed allocation
 * reported as out of memory, the same pixels after the sweep. */
static void oom_preprocess(const char *models, const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", models, name);
    vidattn_model *m = NULL;
    CHECK(vidattn_model_load(path, NULL, &m) == VIDATTN_OK, "%s: load: %s", name, vidattn_last_error());
    if (!m) return;
    enum { Tf = 4, Hf = 50, Wf = 40 };
    static uint8_t rgb[Tf * Hf * Wf * 3];
    for (int i = 0; i < Tf * Hf * Wf * 3; i++) rgb[i] = (uint8_t)(i * 37 % 251);
    int64_t oh = 0, ow = 0;
    CHECK(vidattn_model_input_size(m, Hf, Wf, &oh, &ow) == VIDATTN_OK, "%s: input size", name);
    const int64_t n = Tf * 3 * oh * ow;
    float *ref = malloc(sizeof(float) * (size_t)n), *px = malloc(sizeof(float) * (size_t)n);
    vidattn_set_num_threads(1);
    vidattn_debug_fail_allocation(INT64_MAX / 2);
    vidattn_status st = vidattn_model_preprocess(m, rgb, Tf, Hf, Wf, ref, n);
    int64_t total = vidattn_debug_allocation_count();
    vidattn_debug_fail_allocation(-1);
    CHECK(st == VIDATTN_OK && total > 0, "%s preprocess: counting run (status %d, %lld allocations)", name, st,
          (long long)total);
    int oom = 0, leaked = 0;
    for (int64_t a = 0; a < total; a++) {
        const int64_t live = live_buffers();
        vidattn_debug_fail_allocation(a);
        st = vidattn_model_preprocess(m, rgb, Tf, Hf, Wf, px, n);
        vidattn_debug_fail_allocation(-1);
        if (st == VIDATTN_ERR_OUT_OF_MEMORY && vidattn_last_error()[0]) oom++;
        if (live_buffers() != live) leaked++;
    }
    st = vidattn_model_preprocess(m, rgb, Tf, Hf, Wf, px, n);
    CHECK(oom == total, "%s preprocess: %d of %lld failed allocations reported as out of memory", name, oom,
          (long long)total);
    CHECK(leaked == 0, "%s preprocess: %d of %lld failed allocations leaked buffers", name, leaked, (long long)total);
    CHECK(st == VIDATTN_OK && same_bits(px, ref, n), "%s preprocess: same pixels after the sweep", name);
    printf("%-28s %lld allocations, each failure reported as out of memory\n", "preprocess", (long long)total);
    free(ref); free(px);
    vidattn_model_free(m);
    vidattn_set_num_threads(2);
}

/* ---- Allocation failures in the mechanisms ---------------------------------------- */

enum { B = 1, H = 2, F = 4, P = 36, D = 16, C = H * D, T = 1 + F * P };
static float *q, *k, *v, *wq, *wkv, *out, *omega, *swin_x, *swin_qkv, *swin_proj, *swin_table;

static float *noise(int64_t n, unsigned seed) {
    float *x = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) { seed = seed * 1103515245u + 12345u; x[i] = (float)((seed >> 8) % 2001) / 2000.0f - 0.5f; }
    return x;
}

static vidattn_status traj(vidattn_traj_approx approx) {
    vidattn_trajectory_params tp = vidattn_trajectory_default_params();
    tp.approx = approx;
    tp.landmarks = 8;
    tp.performer_features = 32;
    return vidattn_attn_trajectory(B, H, F, P, D, q, k, v, wq, NULL, wkv, NULL, out, &tp);
}
static vidattn_status m_traj_exact(void) { return traj(VIDATTN_APPROX_NONE); }
static vidattn_status m_traj_nystrom(void) { return traj(VIDATTN_APPROX_NYSTROM); }
static vidattn_status m_traj_ortho(void) { return traj(VIDATTN_APPROX_ORTHOFORMER); }
static vidattn_status m_traj_performer(void) { return traj(VIDATTN_APPROX_PERFORMER); }
static vidattn_status m_divided_time(void) {
    return vidattn_attn_divided(B, H, F, P, D, q, k, v, out, VIDATTN_GROUP_TIME, VIDATTN_CLS_ALL_KEYS, 0, NULL);
}
static vidattn_status m_divided_space(void) {
    return vidattn_attn_divided(B, H, F, P, D, q, k, v, out, VIDATTN_GROUP_SPACE, VIDATTN_CLS_PER_FRAME, 0, NULL);
}
static vidattn_status m_joint(void) { return vidattn_attn_joint(B, H, T, D, q, k, v, out, 0, NULL); }
static vidattn_status m_performer(void) { return vidattn_attn_performer(B, H, T, T, D, q, k, v, omega, 32, 1e-4f, out); }
static vidattn_status m_nystrom(void) { return vidattn_attn_landmark(VIDATTN_APPROX_NYSTROM, B, H, T - 1, D, q, k, v, 8, 0, out); }
static vidattn_status m_ortho(void) { return vidattn_attn_landmark(VIDATTN_APPROX_ORTHOFORMER, B, H, T, D, q, k, v, 8, 0, out); }
static vidattn_status m_fastformer(void) {
    return vidattn_attn_fastformer(B, H, T, D, q, k, v, wq, wq + D, VIDATTN_FASTFORMER_PAPER, 0, out);
}
static vidattn_status m_window3d(void) {
    const int64_t window[3] = {2, 4, 4}, shift[3] = {1, 2, 2};
    return vidattn_attn_window3d(B, 4, 6, 6, C, H, window, shift, swin_x, swin_qkv, NULL, swin_proj, NULL, swin_table, out);
}
static vidattn_status m_attention(void) {   /* the fused kernel with bias, key mask and probabilities */
    static uint8_t mask[T];
    for (int i = 0; i < T; i++) mask[i] = (uint8_t)(i % 5 != 2);
    const int64_t strides[3] = {0, 0, 0};
    return vidattn_attention(B, H, T, T, D, q, k, v, out, 0, wkv, strides, mask, NULL);
}
static vidattn_status m_temporal_aim(void) {
    return vidattn_attn_temporal_aim(B * P, F, C, H, swin_x, swin_qkv, NULL, swin_proj, NULL, wq, out);
}
static vidattn_status m_patch_merging(void) {
    return vidattn_patch_merging(B, 4, 6, 6, C / 2, swin_x, NULL, NULL, swin_qkv, 1e-5f, out);
}
static vidattn_status m_geglu(void) { return vidattn_geglu_ff(T, C, C, C, q, wkv, NULL, wq, NULL, out); }
static vidattn_status m_token_shift(void) { return vidattn_token_shift(B, F, P, C, q, out); }
static vidattn_status m_rotary(void) {
    vidattn_status st = vidattn_rotary_image_table(6, 6, D, 10.0f, out, out + 36 * D);
    return st == VIDATTN_OK ? vidattn_rotary_apply(36, D, k, out, out + 36 * D, 36, D, NULL) : st;
}
static vidattn_status m_performer_projection(void) { return vidattn_performer_projection(32, D, 7, out); }
static vidattn_status m_rotary_time(void) { return vidattn_rotary_time_table(F, D, 1, out, out + F * D); }
static vidattn_status m_sgemm_fused(void) {   /* packs B per call, epilogue fused */
    return vidattn_sgemm_fused(0, 1, T, C, C, 1, q, C, wq, C, 0, out, C, wq, VIDATTN_ACT_GELU, NULL, 0);
}
static vidattn_status m_softmax(void) {   /* in place on a copy of q */
    memcpy(out, q, sizeof(float) * T * C);
    return vidattn_softmax(T, C, out, C, 0.5f, NULL, 0);
}
static vidattn_status m_layer_norm(void) { return vidattn_layer_norm(T, C, q, out, wq, wq + C, 1e-5f); }
static vidattn_status m_activation(void) { return vidattn_activation_apply(VIDATTN_ACT_GELU, q, out, T * C); }
static vidattn_status m_sgemm(void) {   /* B not pre-packed: the packing buffer is scratch */
    return vidattn_sgemm(0, 1, T, C, C, 1, q, C, wq, C, 0, out, C);
}

static void oom_mechanisms(void) {
    q = noise(B * H * T * D, 1); k = noise(B * H * T * D, 2); v = noise(B * H * T * D, 3);
    wq = noise(C * C, 4); wkv = noise(2 * C * C, 5); out = malloc(sizeof(float) * B * T * C * 2);
    omega = malloc(sizeof(float) * 32 * D);
    vidattn_performer_projection(32, D, 7, omega);
    swin_x = noise(B * 4 * 6 * 6 * C, 8); swin_qkv = noise(3 * C * C, 9); swin_proj = noise(C * C, 10);
    swin_table = noise(3 * 7 * 7 * H, 11);
    struct { const char *name; vidattn_status (*fn)(void); int64_t n; } mechs[] = {
        {"trajectory exact", m_traj_exact, B * T * C}, {"trajectory nystrom", m_traj_nystrom, B * T * C},
        {"trajectory orthoformer", m_traj_ortho, B * T * C}, {"trajectory performer", m_traj_performer, B * T * C},
        {"divided time", m_divided_time, B * T * C}, {"divided space", m_divided_space, B * T * C},
        {"joint", m_joint, B * T * C}, {"performer", m_performer, B * T * C}, {"nystrom", m_nystrom, B * (T - 1) * C},
        {"orthoformer", m_ortho, B * T * C}, {"fastformer", m_fastformer, B * T * C},
        {"window3d", m_window3d, B * 4 * 6 * 6 * C}, {"sgemm", m_sgemm, T * C},
        {"attention", m_attention, B * H * T * D}, {"temporal_aim", m_temporal_aim, B * P * F * C},
        {"patch_merging", m_patch_merging, B * 4 * 3 * 3 * C}, {"geglu", m_geglu, T * C},
        {"token_shift", m_token_shift, B * T * C}, {"rotary", m_rotary, 2 * 36 * D},
        {"rotary time table", m_rotary_time, 2 * F * D}, {"performer_projection", m_performer_projection, 32 * D},
        {"sgemm_fused", m_sgemm_fused, T * C}, {"softmax", m_softmax, T * C}, {"layer_norm", m_layer_norm, T * C},
        {"activation", m_activation, T * C},
    };
    vidattn_set_num_threads(1);
    for (size_t i = 0; i < sizeof mechs / sizeof mechs[0]; i++) {
        vidattn_release_cached_memory();
        vidattn_debug_fail_allocation(INT64_MAX / 2);
        vidattn_status st = mechs[i].fn();
        int64_t total = vidattn_debug_allocation_count();
        vidattn_debug_fail_allocation(-1);
        CHECK(st == VIDATTN_OK, "%s: %s", mechs[i].name, vidattn_last_error());
        /* A sweep over no allocation would pass untested: the mechanisms all allocate scratch
         * or their tables; the row kernels and the token shift work in place and may not (they
         * are run here so that a future allocation in them is swept too). */
        int may_skip = !strcmp(mechs[i].name, "token_shift") || !strcmp(mechs[i].name, "softmax") ||
                       !strcmp(mechs[i].name, "layer_norm") || !strcmp(mechs[i].name, "activation");
        CHECK(total > 0 || may_skip, "%s: the sweep reached no allocation (memory not from the counted allocator)",
              mechs[i].name);
        float *ref = malloc(sizeof(float) * (size_t)mechs[i].n);
        memcpy(ref, out, sizeof(float) * (size_t)mechs[i].n);
        int oom = 0, leaked = 0;
        for (int64_t a = 0; a < total; a++) {
            const int64_t live = live_buffers();
            vidattn_debug_fail_allocation(a);
            st = mechs[i].fn();
            vidattn_debug_fail_allocation(-1);
            if (st == VIDATTN_ERR_OUT_OF_MEMORY && vidattn_last_error()[0]) oom++;
            else printf("  %s, allocation %lld: status %d\n", mechs[i].name, (long long)a, st);
            if (live_buffers() != live) leaked++;
        }
        CHECK(leaked == 0, "%s: %d of %lld failed allocations leaked buffers", mechs[i].name, leaked, (long long)total);
        memset(out, 0, sizeof(float) * (size_t)mechs[i].n);
        st = mechs[i].fn();
        CHECK(oom == total, "%s: %d of %lld failed allocations reported as out of memory", mechs[i].name, oom,
              (long long)total);
        CHECK(st == VIDATTN_OK && same_bits(out, ref, mechs[i].n), "%s: same result after the sweep", mechs[i].name);
        printf("%-28s %lld allocations, each failure reported as out of memory\n", mechs[i].name, (long long)total);
        free(ref);
    }
    vidattn_set_num_threads(2);
    free(q); free(k); free(v); free(wq); free(wkv); free(out); free(omega);
    free(swin_x); free(swin_qkv); free(swin_proj); free(swin_table);
}

/* ---- Threads ---------------------------------------------------------------------- */

enum { WORKERS = 8, ROUNDS = 3 };

typedef struct {
    const vidattn_model *m;
    const fixture *f;
    const float *px;
    const float *ref;
    int64_t nref;
    int mismatches, errors;
} job;

static void *worker(void *arg) {
    job *j = arg;
    for (int r = 0; r < ROUNDS; r++) {
        float *res = NULL;
        int64_t n = 0;
        if (forward(j->m, j->f, j->px, &res, &n) != VIDATTN_OK) j->errors++;
        else if (n != j->nref || !same_bits(res, j->ref, n)) j->mismatches++;
        free(res);
    }
    return NULL;
}

static atomic_int hold_entered, hold_release;

static int hold_at_layer_one(void *user, int layer, int layers) {
    (void)user; (void)layers;
    if (layer == 1) {
        atomic_store(&hold_entered, 1);
        while (!atomic_load(&hold_release)) sched_yield();
    }
    return 1;
}

typedef struct {
    const vidattn_model *m;
    const fixture *f;
    const float *px;
    float *res;
    int64_t n;
    vidattn_status st;
} held_job;

static void *held_worker(void *arg) {
    held_job *j = arg;
    vidattn_forward_params fp = vidattn_forward_default_params();
    fp.progress = hold_at_layer_one;
    j->st = forward_with(j->m, j->f, j->px, &fp, &j->res, &j->n);
    return NULL;
}

static void threads(const char *models, const char *io, const char *name) {
    fixture f;
    if (!load_fixture(models, io, name, &f)) return;
    vidattn_model *m = NULL;
    CHECK(vidattn_model_load(f.path, NULL, &m) == VIDATTN_OK, "%s: load: %s", name, vidattn_last_error());
    if (!m) return;
    float *inputs[WORKERS], *refs[WORKERS];
    int64_t nrefs[WORKERS];
    job jobs[WORKERS];
    for (int w = 0; w < WORKERS; w++) {   /* a different input per thread */
        inputs[w] = malloc(sizeof(float) * (size_t)f.px.count);
        for (int64_t i = 0; i < f.px.count; i++) inputs[w][i] = f.px.data[i] + 0.05f * (float)((i * (w + 3)) % 7 - 3);
        CHECK(forward(m, &f, inputs[w], &refs[w], &nrefs[w]) == VIDATTN_OK, "%s: sequential forward %d", name, w);
    }
    CHECK(!same_bits(refs[0], refs[1], nrefs[0]), "%s: the inputs give different results", name);
    pthread_t tid[WORKERS];
    for (int w = 0; w < WORKERS; w++) {
        jobs[w] = (job){m, &f, inputs[w], refs[w], nrefs[w], 0, 0};
        CHECK(pthread_create(&tid[w], NULL, worker, &jobs[w]) == 0, "pthread_create");
    }
    for (int k = 0; k < 20; k++) {   /* the setting changes while forwards run (likely, not certain) */
        vidattn_set_num_threads(1 + k % 2);
        nanosleep(&(struct timespec){0, 2000000}, NULL);
    }
    int mismatches = 0, errors = 0;
    for (int w = 0; w < WORKERS; w++) {
        pthread_join(tid[w], NULL);
        mismatches += jobs[w].mismatches;
        errors += jobs[w].errors;
    }
    CHECK(errors == 0 && mismatches == 0, "%s: %d threads x %d forwards: %d errors, %d results differ from sequential",
          name, WORKERS, ROUNDS, errors, mismatches);
    printf("%-28s %d threads x %d forwards bit-identical to sequential\n", name, WORKERS, ROUNDS);
    /* Certain overlap: a forward held inside its progress callback (after layer 0) while the
     * thread count flips, then released; its result must still match the sequential one. */
    held_job hj = {m, &f, inputs[0], NULL, 0, VIDATTN_OK};
    atomic_store(&hold_entered, 0);
    atomic_store(&hold_release, 0);
    pthread_t ht;
    CHECK(pthread_create(&ht, NULL, held_worker, &hj) == 0, "pthread_create");
    while (!atomic_load(&hold_entered)) sched_yield();
    for (int k = 0; k < 10; k++) vidattn_set_num_threads(1 + k % 2);
    int flipped_during = !atomic_load(&hold_release);
    atomic_store(&hold_release, 1);
    pthread_join(ht, NULL);
    CHECK(flipped_during && hj.st == VIDATTN_OK && hj.n == nrefs[0] && same_bits(hj.res, refs[0], hj.n),
          "%s: a forward during which the thread count changed gives the sequential result", name);
    free(hj.res);
    for (int w = 0; w < WORKERS; w++) { free(inputs[w]); free(refs[w]); }
    vidattn_model_free(m);
    vidattn_set_num_threads(2);
    free(f.px.data); free(f.want.data);
}

/* ---- Soak ------------------------------------------------------------------------- */

static double rss_mib(void) {
    long pages = 0, resident = 0;
    FILE *fp = fopen("/proc/self/statm", "r");
    if (!fp) return 0;
    if (fscanf(fp, "%ld %ld", &pages, &resident) != 2) resident = 0;
    fclose(fp);
    return (double)resident * (double)sysconf(_SC_PAGESIZE) / (1 << 20);
}

static void soak(const char *models, const char *io, const char *name, int cycles) {
    fixture f;
    if (!load_fixture(models, io, name, &f)) return;
    double warm = 0;
    int bad = 0;
    for (int c = 0; c < cycles; c++) {
        vidattn_model *m = NULL;
        float *res = NULL;
        int64_t n = 0;
        if (vidattn_model_load(f.path, NULL, &m) != VIDATTN_OK || forward(m, &f, f.px.data, &res, &n) != VIDATTN_OK) bad++;
        free(res);
        vidattn_model_free(m);
        if (c == cycles / 10) warm = rss_mib();
    }
    double end = rss_mib();
    CHECK(bad == 0, "%s: %d of %d cycles failed", name, bad, cycles);
#if SANITIZED
    /* ASan's quarantine keeps freed memory resident; LeakSanitizer checks at exit instead. */
    printf("%-28s RSS not checked under a sanitizer\n", name);
#else
    CHECK(end - warm <= 4.0, "%s: RSS grew from %.1f to %.1f MiB over %d cycles", name, warm, end, cycles);
#endif
    printf("%-28s %d load/forward/free cycles: RSS %.1f MiB after %d, %.1f MiB at the end\n",
           name, cycles, warm, cycles / 10, end);
    free(f.px.data); free(f.want.data);
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s oom|threads|soak MODELS_DIR IO_DIR MODEL... [CYCLES]\n", argv[0]);
        return 2;
    }
    if (!strcmp(argv[1], "oom")) {
        for (int i = 4; i < argc; i++) oom_sweep(argv[2], argv[3], argv[i]);
        oom_mechanisms();
        oom_preprocess(argv[2], "videomae");
    }
    else if (!strcmp(argv[1], "threads")) for (int i = 4; i < argc; i++) threads(argv[2], argv[3], argv[i]);
    else if (!strcmp(argv[1], "soak")) soak(argv[2], argv[3], argv[4], argc > 5 ? atoi(argv[5]) : 1000);
    else { fprintf(stderr, "unknown test %s\n", argv[1]); return 2; }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
