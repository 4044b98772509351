/* test_capi.c — the C ABI of libvidattn.so: results against plain C
 * references and the error contract (status codes, messages, no crashes).
 * Prints "N passed, N failed" and exits nonzero on any failure. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vidattn.h>

static int passed, failed;
#define CHECK(cond, ...) do { if (cond) passed++; else { failed++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
    printf(__VA_ARGS__); printf("\n"); } } while (0)

static float frand(void) { return (float)((double)rand() / RAND_MAX) * 2 - 1; }
static float *randv(int64_t n) { float *p = malloc(sizeof(float) * (n ? n : 1)); for (int64_t i = 0; i < n; i++) p[i] = frand(); return p; }

static void test_version(void) {
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", VIDATTN_VERSION_MAJOR, VIDATTN_VERSION_MINOR, VIDATTN_VERSION_PATCH);
    CHECK(strcmp(vidattn_version(), want) == 0, "version %s != %s", vidattn_version(), want);
    CHECK(strcmp(vidattn_version(), VIDATTN_VERSION_STRING) == 0, "version string macro");
    CHECK(strcmp(vidattn_status_string(VIDATTN_OK), "success") == 0, "status string ok");
    CHECK(strcmp(vidattn_status_string((vidattn_status)-999), "unknown status") == 0, "unknown status");
}

static void test_threads(void) {
    int n0 = vidattn_get_num_threads();
    CHECK(n0 >= 1, "default thread count %d", n0);
    CHECK(vidattn_set_num_threads(0) == VIDATTN_ERR_INVALID_ARGUMENT, "set 0 threads rejected");
    CHECK(strstr(vidattn_last_error(), "thread count") != NULL, "message names the thread count: %s", vidattn_last_error());
    CHECK(vidattn_set_num_threads(1) == VIDATTN_OK && vidattn_get_num_threads() == 1, "set 1 thread");
    CHECK(vidattn_set_num_threads(n0) == VIDATTN_OK, "restore");
}

/* The AMX tile probe runs exactly where bf16 runs on AMX (vidattn_cpu_features' bf16=amx;
 * VIDATTN_MAX_ISA can cap it). (The FMA probe is not timed here: under qemu, which runs this
 * file too, it takes minutes and measures the emulator.) */
static void test_probes(void) {
    const double tile = vidattn_tile_peak_gflops(1);
    const int amx = strstr(vidattn_cpu_features(), "bf16=amx") != NULL;
    CHECK(amx ? tile > 100 : tile == 0, "tile probe %g with bf16=amx %d", tile, amx);
}

static void test_sgemm(void) {
    const int64_t m = 37, n = 45, k = 70;
    float *a = randv(m * k), *b = randv(n * k), *bias = randv(n), *c = randv(m * n), *res = randv(m * n);
    for (int tb = 0; tb < 2; tb++) {
        vidattn_status st = vidattn_sgemm_fused(0, tb, m, n, k, 1.0f, a, k, b, tb ? k : n, 0.0f, c, n,
                                                bias, VIDATTN_ACT_GELU, res, n);
        CHECK(st == VIDATTN_OK, "sgemm_fused status %d", st);
        double err = 0;
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double s = bias[j];
                for (int64_t p = 0; p < k; p++) s += (double)a[i * k + p] * (tb ? b[j * k + p] : b[p * n + j]);
                s = 0.5 * s * (1 + erf(s / sqrt(2.0))) + res[i * n + j];
                err = fmax(err, fabs(s - c[i * n + j]));
            }
        CHECK(err < 1e-4, "sgemm_fused trans_b=%d error %g", tb, err);
    }
    CHECK(vidattn_sgemm(0, 0, m, n, k, 1, NULL, k, b, n, 0, c, n) == VIDATTN_ERR_NULL_POINTER, "NULL a");
    CHECK(strstr(vidattn_last_error(), "a is NULL") != NULL, "message: %s", vidattn_last_error());
    CHECK(vidattn_sgemm(0, 0, m, n, k, 1, a, k - 1, b, n, 0, c, n) == VIDATTN_ERR_INVALID_ARGUMENT, "small lda");
    CHECK(strstr(vidattn_last_error(), "lda") != NULL, "message names lda: %s", vidattn_last_error());
    CHECK(vidattn_sgemm(0, 0, -1, n, k, 1, a, k, b, n, 0, c, n) == VIDATTN_ERR_INVALID_ARGUMENT, "negative m");
    CHECK(vidattn_sgemm(0, 0, 0, n, k, 1, NULL, k, NULL, n, 0, NULL, n) == VIDATTN_OK, "empty product is a no-op");
    CHECK(vidattn_sgemm_fused(0, 0, m, n, k, 1, a, k, b, n, 0, c, n, NULL, (vidattn_activation)42, NULL, 0)
          == VIDATTN_ERR_INVALID_ARGUMENT, "unknown activation");
    CHECK(vidattn_sgemm(0, 0, INT64_MAX / 2, 3, 3, 1, a, 3, b, 3, 0, c, 3) == VIDATTN_ERR_INVALID_ARGUMENT,
          "overflowing size rejected");
    free(a); free(b); free(bias); free(c); free(res);
}

static void test_attention(void) {
    const int64_t B = 2, H = 3, nq = 41, nk = 53, d = 24;
    float *q = randv(B * H * nq * d), *k = randv(B * H * nk * d), *v = randv(B * H * nk * d);
    float *o = malloc(sizeof(float) * B * H * nq * d), *p = malloc(sizeof(float) * B * H * nq * nk);
    float *bias = randv(H * nq * nk);
    uint8_t *mask = malloc(B * nk);
    for (int64_t i = 0; i < B * nk; i++) mask[i] = (i % 4) != 1;
    int64_t strides[3] = {0, nq * nk, nk};
    float scale = 0.3f;
    vidattn_status st = vidattn_attention(B, H, nq, nk, d, q, k, v, o, scale, bias, strides, mask, p);
    CHECK(st == VIDATTN_OK, "attention status %d (%s)", st, vidattn_last_error());
    double err = 0, perr = 0;
    double *s = malloc(sizeof(double) * nk);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < nq; i++) {
                const float *qi = q + ((b * H + h) * nq + i) * d;
                double mx = -INFINITY, sum = 0;
                for (int64_t j = 0; j < nk; j++) {
                    const float *kj = k + ((b * H + h) * nk + j) * d;
                    double t = 0;
                    for (int64_t c = 0; c < d; c++) t += (double)qi[c] * kj[c];
                    t = t * scale + bias[(h * nq + i) * nk + j];
                    s[j] = mask[b * nk + j] ? t : -INFINITY;
                    if (s[j] > mx) mx = s[j];
                }
                for (int64_t j = 0; j < nk; j++) { s[j] = exp(s[j] - mx); sum += s[j]; }
                for (int64_t j = 0; j < nk; j++)
                    perr = fmax(perr, fabs(s[j] / sum - p[((b * H + h) * nq + i) * nk + j]));
                for (int64_t c = 0; c < d; c++) {
                    double acc = 0;
                    for (int64_t j = 0; j < nk; j++) acc += s[j] * v[((b * H + h) * nk + j) * d + c];
                    err = fmax(err, fabs(acc / sum - o[((b * H + h) * nq + i) * d + c]));
                }
            }
    CHECK(err < 1e-5, "attention error %g", err);
    CHECK(perr < 1e-6, "probs error %g", perr);
    CHECK(vidattn_attention(B, H, nq, nk, d, q, NULL, v, o, 0, NULL, NULL, NULL, NULL) == VIDATTN_ERR_NULL_POINTER,
          "NULL k");
    CHECK(strstr(vidattn_last_error(), "k is NULL") != NULL, "message: %s", vidattn_last_error());
    CHECK(vidattn_attention(B, H, nq, nk, 0, q, k, v, o, 0, NULL, NULL, NULL, NULL) == VIDATTN_ERR_INVALID_ARGUMENT,
          "d = 0");
    CHECK(vidattn_attention(B, -H, nq, nk, d, q, k, v, o, 0, NULL, NULL, NULL, NULL) == VIDATTN_ERR_INVALID_ARGUMENT,
          "negative heads");
    CHECK(vidattn_attention(B, H, nq, nk, d, q, k, v, o, NAN, NULL, NULL, NULL, NULL) == VIDATTN_ERR_INVALID_ARGUMENT,
          "NaN scale");
    free(q); free(k); free(v); free(o); free(p); free(bias); free(mask); free(s);
}

static void test_elementwise(void) {
    const int64_t rows = 5, cols = 77;
    float *x = randv(rows * cols), *y = malloc(sizeof(float) * rows * cols);
    memcpy(y, x, sizeof(float) * rows * cols);
    CHECK(vidattn_softmax(rows, cols, y, cols, 2.0f, NULL, 0) == VIDATTN_OK, "softmax");
    double err = 0;
    for (int64_t r = 0; r < rows; r++) {
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < cols; j++) mx = fmax(mx, 2.0 * x[r * cols + j]);
        for (int64_t j = 0; j < cols; j++) sum += exp(2.0 * x[r * cols + j] - mx);
        for (int64_t j = 0; j < cols; j++) err = fmax(err, fabs(exp(2.0 * x[r * cols + j] - mx) / sum - y[r * cols + j]));
    }
    CHECK(err < 1e-6, "softmax error %g", err);
    CHECK(vidattn_layer_norm(rows, cols, x, y, NULL, NULL, 1e-5f) == VIDATTN_OK, "layer_norm");
    err = 0;
    for (int64_t r = 0; r < rows; r++) {
        double mean = 0, var = 0;
        for (int64_t j = 0; j < cols; j++) mean += x[r * cols + j];
        mean /= cols;
        for (int64_t j = 0; j < cols; j++) var += (x[r * cols + j] - mean) * (x[r * cols + j] - mean);
        var /= cols;
        for (int64_t j = 0; j < cols; j++) err = fmax(err, fabs((x[r * cols + j] - mean) / sqrt(var + 1e-5) - y[r * cols + j]));
    }
    CHECK(err < 1e-5, "layer_norm error %g", err);
    CHECK(vidattn_layer_norm(rows, cols, NULL, y, NULL, NULL, 1e-5f) == VIDATTN_ERR_NULL_POINTER, "layer_norm NULL x");
    CHECK(vidattn_activation_apply(VIDATTN_ACT_GELU_TANH, x, y, rows * cols) == VIDATTN_OK, "gelu_tanh");
    err = 0;
    for (int64_t i = 0; i < rows * cols; i++) {
        double t = x[i];
        err = fmax(err, fabs(0.5 * t * (1 + tanh(0.7978845608028654 * (t + 0.044715 * t * t * t))) - y[i]));
    }
    CHECK(err < 1e-6, "gelu_tanh error %g", err);
    CHECK(vidattn_activation_apply((vidattn_activation)99, x, y, 4) == VIDATTN_ERR_INVALID_ARGUMENT, "bad activation");
    free(x); free(y);
}

/* Mechanisms through the C API: joint = exact on CLS+patches; divided with the
 * per-frame CLS scheme on one frame equals joint attention; trajectory parameters. */
static void test_mechanisms(void) {
    const int64_t B = 1, H = 2, F = 1, P = 6, d = 8, T = 1 + F * P, C = H * d;
    float *q = randv(B * H * T * d), *k = randv(B * H * T * d), *v = randv(B * H * T * d);
    float *o1 = malloc(sizeof(float) * B * H * T * d), *o2 = malloc(sizeof(float) * B * H * T * d);
    CHECK(vidattn_attn_joint(B, H, T, d, q, k, v, o1, 0, NULL) == VIDATTN_OK, "joint");
    CHECK(vidattn_attn_divided(B, H, F, P, d, q, k, v, o2, VIDATTN_GROUP_SPACE, VIDATTN_CLS_PER_FRAME, 0, NULL)
          == VIDATTN_OK, "divided space, per-frame CLS");
    double err = 0;
    for (int64_t i = 0; i < B * H * T * d; i++) err = fmax(err, fabs(o1[i] - o2[i]));
    CHECK(err < 1e-6, "one-frame divided space attention equals joint attention (error %g)", err);
    CHECK(vidattn_attn_divided(B, H, F, P, d, q, k, v, o2, (vidattn_grouping)7, VIDATTN_CLS_ALL_KEYS, 0, NULL)
          == VIDATTN_ERR_INVALID_ARGUMENT, "bad grouping");

    vidattn_trajectory_params p = vidattn_trajectory_default_params();
    CHECK(p.struct_size == sizeof p && p.use_original_code == 1 && p.approx == VIDATTN_APPROX_NONE &&
          p.landmarks == 128 && p.performer_features == 256, "trajectory defaults");
    float *wq = randv(C * C), *wkv = randv(2 * C * C), *out = malloc(sizeof(float) * B * T * C);
    CHECK(vidattn_attn_trajectory(B, H, F, P, d, q, k, v, wq, NULL, wkv, NULL, out, &p) == VIDATTN_OK,
          "trajectory (%s)", vidattn_last_error());
    /* One frame, original code: the temporal softmax has one point, so the patch outputs are
     * plain attention of the patch queries over the patch keys (no CLS key), heads merged. */
    err = 0;
    for (int64_t h = 0; h < H; h++)
        for (int64_t i = 1; i < T; i++) {
            double s[16], mx = -INFINITY, sum = 0;
            for (int64_t j = 1; j < T; j++) {
                double t = 0;
                for (int64_t c = 0; c < d; c++) t += (double)q[(h * T + i) * d + c] * k[(h * T + j) * d + c];
                s[j] = t / sqrt((double)d);
                if (s[j] > mx) mx = s[j];
            }
            for (int64_t j = 1; j < T; j++) { s[j] = exp(s[j] - mx); sum += s[j]; }
            for (int64_t c = 0; c < d; c++) {
                double acc = 0;
                for (int64_t j = 1; j < T; j++) acc += s[j] * v[(h * T + j) * d + c];
                err = fmax(err, fabs(acc / sum - out[i * C + h * d + c]));
            }
        }
    CHECK(err < 1e-5, "one-frame trajectory attention (error %g)", err);
    p.struct_size = 8;
    CHECK(vidattn_attn_trajectory(B, H, F, P, d, q, k, v, wq, NULL, wkv, NULL, out, &p) == VIDATTN_ERR_INVALID_ARGUMENT,
          "short struct_size rejected");
    p = vidattn_trajectory_default_params();
    p.approx = VIDATTN_APPROX_NYSTROM; p.landmarks = 100;
    CHECK(vidattn_attn_trajectory(B, H, F, P, d, q, k, v, wq, NULL, wkv, NULL, out, &p) == VIDATTN_ERR_INVALID_ARGUMENT,
          "too many landmarks rejected");
    CHECK(strstr(vidattn_last_error(), "landmark") != NULL, "message names the landmarks: %s", vidattn_last_error());

    vidattn_mechanism_shape sh = vidattn_mechanism_default_shape();
    vidattn_macs m;
    CHECK(vidattn_flops(VIDATTN_MECH_JOINT, &sh, &m) == VIDATTN_OK && m.attention == 2.0 * 768 * 1569 * 1569,
          "joint MACs %g", m.attention);
    CHECK(vidattn_flops(VIDATTN_MECH_JOINT, NULL, &m) == VIDATTN_ERR_NULL_POINTER, "flops NULL shape");
    free(q); free(k); free(v); free(o1); free(o2); free(wq); free(wkv); free(out);
}

/* The caller's floating-point mode survives every call (the library sets FTZ/DAZ only
 * while it works), and a −100-masked softmax produces exact zeros, never subnormals. */
static unsigned get_mxcsr(void) { return __builtin_ia32_stmxcsr(); }
static void set_mxcsr(unsigned v) { __builtin_ia32_ldmxcsr(v); }

static void test_float_mode(void) {
    const int64_t B = 1, H = 2, n = 97, d = 16;
    float *q = randv(B * H * n * d), *k = randv(B * H * n * d), *v = randv(B * H * n * d);
    float *o = malloc(sizeof(float) * B * H * n * d), *p = malloc(sizeof(float) * B * H * n * n);
    float *bias = malloc(sizeof(float) * n * n);
    for (int64_t i = 0; i < n * n; i++) bias[i] = ((i / n) % 3 == (i % n) % 3) ? 0.0f : -100.0f;  /* region mask */
    for (int64_t i = 0; i < B * H * n * d; i++) q[i] *= 3.0f;
    int64_t strides[3] = {0, 0, n};
    /* Caller modes: the default, round-toward-zero with a sticky flag, and FTZ already on. */
    unsigned modes[3] = {0x1F80, 0x1F80 | 0x6000 | 0x20, 0x1F80 | 0x8040};
    for (int m = 0; m < 3; m++) {
        set_mxcsr(modes[m]);
        vidattn_status st = vidattn_attention(B, H, n, n, d, q, k, v, o, 0.25f, bias, strides, NULL, p);
        unsigned after = get_mxcsr();
        set_mxcsr(0x1F80);
        CHECK(st == VIDATTN_OK, "attention status %d", st);
        CHECK(after == modes[m], "caller MXCSR %#x changed to %#x by a forward", modes[m], after);
        int64_t subnormal = 0, zeros = 0;
        for (int64_t i = 0; i < B * H * n * n; i++) {
            if (p[i] != 0 && fabsf(p[i]) < FLT_MIN) subnormal++;
            if (p[i] == 0) zeros++;
        }
        CHECK(subnormal == 0, "%lld subnormal probabilities (mode %#x)", (long long)subnormal, modes[m]);
        CHECK(zeros > 0, "masked probabilities underflow to exact zeros (mode %#x)", modes[m]);
        set_mxcsr(modes[m]);
        st = vidattn_softmax(n, n, bias, n, 1.0f, NULL, 0);
        after = get_mxcsr();
        set_mxcsr(0x1F80);
        CHECK(st == VIDATTN_OK && after == modes[m], "softmax keeps MXCSR %#x (got %#x)", modes[m], after);
        for (int64_t i = 0; i < n * n; i++)
            if (bias[i] != 0 && fabsf(bias[i]) < FLT_MIN) { subnormal++; }
        CHECK(subnormal == 0, "softmax: no subnormal (mode %#x)", modes[m]);
        for (int64_t i = 0; i < n * n; i++) bias[i] = ((i / n) % 3 == (i % n) % 3) ? 0.0f : -100.0f;
    }
    free(q); free(k); free(v); free(o); free(p); free(bias);
}

#define RUN(test) do { fprintf(stderr, "== %s\n", #test); test(); } while (0)

int main(void) {
    srand(7);
    RUN(test_version);
    RUN(test_threads);
    RUN(test_probes);
    RUN(test_sgemm);
    RUN(test_attention);
    RUN(test_elementwise);
    RUN(test_mechanisms);
    RUN(test_float_mode);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
