// The AMX bf16 GEMM loop of the library (Sources/Kernels/ReducedGEMM.swift: chunks of B panels
// sized to half of L2, every 32-row A strip, the library's 32x32 block kernel over all of K) on
// one core, with six ways to write the result (BENCHMARKS.md, session 9) and a seventh that
// writes like the first but runs the block kernel as it was before session 21 (no software
// prefetch, B tiles through the non-temporal hint), alternated call by call (21 rounds): times
// as multiples of the first way's, GFLOP/s as a share of the tile-product peak measured at the
// end. A and B are bf16 already: no conversion of A is timed.
//
// Build from the repository's root (one command; clang comes with the Swift toolchain):
//   clang -O2 -march=native -ISources/CKernels/include -o /tmp/amx_gemm_loop bench/amx_gemm_loop.c
//       Sources/CKernels/bf16.c Sources/CKernels/cpu.c -lpthread -lm
//   /tmp/amx_gemm_loop 1568 768 2304          (M K N; CH=<KiB> sets the B chunk, default 1024)
#include "ckernels.h"

#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

// C[32x32] (row stride ldc floats) = A strip (32 x kp) * B panel (kp x 32): the library's block.
static void block(long kp, const uint16_t *a, const uint16_t *b, float *c, long ldc) {
    vidattn_amx_bf16_32x32(kp, a, b, c, ldc, 0, NULL);
}

// The block kernel before session 21: the same tile order, no prefetch, B with the hint.
__attribute__((target("amx-tile,amx-bf16"), noinline))
static void block_unprefetched(long kp, const uint16_t *a, const uint16_t *b, float *c, long ldc) {
    _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
    for (long k = 0; k < kp; k += 32) {
        const uint16_t *ak = a + k * 32, *bk = b + k * 32;
        _tile_loadd(4, ak, 64);
        _tile_stream_loadd(6, bk, 64);
        _tile_dpbf16ps(0, 4, 6);
        _tile_stream_loadd(7, bk + 512, 64);
        _tile_dpbf16ps(1, 4, 7);
        _tile_loadd(5, ak + 512, 64);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    const long s = ldc * 4;
    char *p = (char *)c;
    _tile_stored(0, p, s); _tile_stored(1, p + 64, s); _tile_stored(2, p + 16 * s, s); _tile_stored(3, p + 16 * s + 64, s);
}

// A 32x32 block from the slot to C: fp32 with plain or non-temporal stores.
__attribute__((target("avx512f"), noinline)) static void flush32(const float *slot, float *c, long ldc, int nt) {
    for (int r = 0; r < 32; r++) {
        const __m512 x = _mm512_load_ps(slot + r * 32), y = _mm512_load_ps(slot + r * 32 + 16);
        if (nt) { _mm512_stream_ps(c + r * ldc, x); _mm512_stream_ps(c + r * ldc + 16, y); }
        else { _mm512_store_ps(c + r * ldc, x); _mm512_store_ps(c + r * ldc + 16, y); }
    }
}

// The same rounded to bf16.
__attribute__((target("avx512f,avx512bw,avx512bf16"), noinline))
static void flush16(const float *slot, uint16_t *c, long ldc, int nt) {
    for (int r = 0; r < 32; r++) {
        const __m512 x = _mm512_load_ps(slot + r * 32), y = _mm512_load_ps(slot + r * 32 + 16);
        const __m512i v = (__m512i)_mm512_cvtne2ps_pbh(y, x);
        if (nt) _mm512_stream_si512((__m512i *)(c + r * ldc), v);
        else _mm512_store_si512(c + r * ldc, v);
    }
}

enum { WAYS = 7, ROUNDS = 21 };
static const char *names[WAYS] = {"direct fp32", "slot+fp32", "slot+fp32 NT", "slot+bf16", "slot+bf16 NT",
                                  "slot only", "direct, unpref."};
static int M, K, N, strips, panels, chunk;
static uint16_t *A, *B, *C16;
static float *C, *slot;

static void run(int way) {
    for (int c0 = 0; c0 < panels; c0 += chunk) {
        const int c1 = c0 + chunk < panels ? c0 + chunk : panels;
        for (int s = 0; s < strips; s++) {
            for (int j = c0; j < c1; j++) {
                const uint16_t *a = A + (long)s * 32 * K, *b = B + (long)j * 32 * K;
                const long at = (long)s * 32 * N + j * 32;
                if (way == 0) { block(K, a, b, C + at, N); continue; }
                if (way == 6) { block_unprefetched(K, a, b, C + at, N); continue; }
                block(K, a, b, slot, 32);
                if (way == 1 || way == 2) flush32(slot, C + at, N, way == 2);
                else if (way == 3 || way == 4) flush16(slot, C16 + at, N, way == 4);
            }
        }
    }
}

static int cmp(const void *x, const void *y) {
    const double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: %s M K N\n", argv[0]); return 2; }
    if (!vidattn_cpu_detect()->amx_permitted) {   // asks the kernel for the tile state
        fprintf(stderr, "AMX not available or not permitted\n");
        return 1;
    }
    vidattn_amx_begin();
    M = atoi(argv[1]) / 32 * 32; K = atoi(argv[2]) / 32 * 32; N = atoi(argv[3]) / 32 * 32;
    strips = M / 32; panels = N / 32;
    const char *ch = getenv("CH");
    chunk = (ch ? atoi(ch) * 1024 : 1 << 20) / (64 * K);
    if (chunk < 1) chunk = 1;
    A = aligned_alloc(64, 2l * M * K); B = aligned_alloc(64, 2l * N * K);
    C = aligned_alloc(64, 4l * M * N); C16 = aligned_alloc(64, 2l * M * N); slot = aligned_alloc(64, 4096);
    for (long i = 0; i < (long)M * K; i++) A[i] = 0x3F80;   // 1.0
    for (long i = 0; i < (long)N * K; i++) B[i] = 0x3F80;
    memset(C, 0, 4l * M * N);
    memset(C16, 0, 2l * M * N);
    static double t[WAYS][ROUNDS];
    for (int r = 0; r < ROUNDS; r++)
        for (int w = 0; w < WAYS; w++) { const double t0 = now(); run(w); t[w][r] = now() - t0; }
    const double t0 = now(), flops = vidattn_amx_probe(400000), peak = flops / (now() - t0) / 1e9;
    for (int w = 0; w < WAYS; w++) {
        double ratio[ROUNDS], gf[ROUNDS];
        for (int r = 0; r < ROUNDS; r++) { ratio[r] = t[w][r] / t[0][r]; gf[r] = 2.0 * M * N * K / t[w][r] / 1e9; }
        qsort(ratio, ROUNDS, sizeof(double), cmp);
        qsort(gf, ROUNDS, sizeof(double), cmp);
        printf("%-15s time/direct %.2f [%.2f..%.2f]  GF/s median %.0f (%.0f%% of the probe)\n", names[w],
               ratio[ROUNDS / 2], ratio[ROUNDS / 4], ratio[3 * ROUNDS / 4], gf[ROUNDS / 2],
               100 * gf[ROUNDS / 2] / peak);
    }
    printf("tile-product probe: %.0f GF/s\n", peak);
    return 0;
}
