// bf16 micro-kernels (see ckernels.h for the data layout). Each function carries its own
// target attribute, so the file builds for any x86-64 and the caller picks a kernel the
// CPU has at run time.
#include "ckernels.h"

#include <immintrin.h>
#include <string.h>

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

__attribute__((target("amx-tile")))
void vidattn_amx_begin(void) {
    tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) { cfg.rows[t] = 16; cfg.colsb[t] = 64; }
    _tile_loadconfig(&cfg);
}

__attribute__((target("amx-tile")))
void vidattn_amx_end(void) { _tile_release(); }

// Tiles: 0..3 accumulate C (rows 0-15 / 16-31 × cols 0-15 / 16-31); 4, 5 hold A rows
// 0-15 / 16-31 (32 bf16 of K each); 6, 7 hold B columns 0-15 / 16-31 (16 K pairs each).
__attribute__((target("amx-tile,amx-bf16")))
void vidattn_amx_bf16_32x32(long kp, const uint16_t *a, const uint16_t *b, float *c, long ldc, int accumulate) {
    const long strideC = ldc * 4;
    if (accumulate) {
        _tile_loadd(0, c, strideC);
        _tile_loadd(1, c + 16, strideC);
        _tile_loadd(2, c + 16 * ldc, strideC);
        _tile_loadd(3, c + 16 * ldc + 16, strideC);
    } else {
        _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
    }
    // A and B tiles are each 1 KiB contiguous (64-byte rows). Tile registers are not renamed:
    // each load sits right before the products that need it.
    for (long k = 0; k < kp; k += 32) {
        const uint16_t *ak = a + k * 32, *bk = b + k * 32;
        if (k + 64 < kp) {   // the step after next into L1: 2 KiB of A and 2 KiB of B
            for (int l = 0; l < 32; l++) {
                _mm_prefetch((const char *)(ak + 2048 + l * 32), _MM_HINT_T0);
                _mm_prefetch((const char *)(bk + 2048 + l * 32), _MM_HINT_T0);
            }
        }
        _tile_loadd(4, ak, 64);
        _tile_loadd(6, bk, 128);
        _tile_dpbf16ps(0, 4, 6);
        _tile_loadd(7, bk + 32, 128);
        _tile_dpbf16ps(1, 4, 7);
        _tile_loadd(5, ak + 512, 64);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, c, strideC);
    _tile_stored(1, c + 16, strideC);
    _tile_stored(2, c + 16 * ldc, strideC);
    _tile_stored(3, c + 16 * ldc + 16, strideC);
}

__attribute__((target("avx512f,avx512bf16")))
void vidattn_avx512bf16_32x32(long kp, const uint16_t *a, const uint16_t *b, float *c, long ldc, int accumulate) {
    for (int r0 = 0; r0 < 32; r0 += 8) {
        __m512 acc[16];
        for (int r = 0; r < 8; r++) {
            acc[2 * r] = accumulate ? _mm512_loadu_ps(c + (r0 + r) * ldc) : _mm512_setzero_ps();
            acc[2 * r + 1] = accumulate ? _mm512_loadu_ps(c + (r0 + r) * ldc + 16) : _mm512_setzero_ps();
        }
        for (long kk = 0; kk < kp / 2; kk++) {
            const uint16_t *ar = a + (kk / 16) * 1024 + r0 * 32 + (2 * kk) % 32;
            __m512bh b0 = (__m512bh)_mm512_loadu_si512(b + kk * 64);
            __m512bh b1 = (__m512bh)_mm512_loadu_si512(b + kk * 64 + 32);
#pragma clang loop unroll(full)
            for (int r = 0; r < 8; r++) {
                uint32_t pair;
                memcpy(&pair, ar + r * 32, 4);
                __m512bh av = (__m512bh)_mm512_set1_epi32((int)pair);
                acc[2 * r] = _mm512_dpbf16_ps(acc[2 * r], av, b0);
                acc[2 * r + 1] = _mm512_dpbf16_ps(acc[2 * r + 1], av, b1);
            }
        }
        for (int r = 0; r < 8; r++) {
            _mm512_storeu_ps(c + (r0 + r) * ldc, acc[2 * r]);
            _mm512_storeu_ps(c + (r0 + r) * ldc + 16, acc[2 * r + 1]);
        }
    }
}

static inline float bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

void vidattn_bf16_32x32_ref(long kp, const uint16_t *a, const uint16_t *b, float *c, long ldc, int accumulate) {
    for (int r = 0; r < 32; r++)
        for (int n = 0; n < 32; n++) {
            float s = accumulate ? c[r * ldc + n] : 0;
            for (long kk = 0; kk < kp / 2; kk++) {
                const uint16_t *ap = a + (kk / 16) * 1024 + r * 32 + (2 * kk) % 32;
                float a0 = bf16_to_f32(ap[0]), a1 = bf16_to_f32(ap[1]);
                float b0 = bf16_to_f32(b[(kk * 32 + n) * 2]), b1 = bf16_to_f32(b[(kk * 32 + n) * 2 + 1]);
                s += a0 * b0 + a1 * b1;
            }
            c[r * ldc + n] = s;
        }
}

__attribute__((target("amx-tile,amx-bf16")))
double vidattn_amx_probe(long iters) {
    static uint16_t buf[16 * 32] __attribute__((aligned(64)));
    _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
    _tile_loadd(4, buf, 64); _tile_loadd(5, buf, 64); _tile_loadd(6, buf, 64); _tile_loadd(7, buf, 64);
    for (long i = 0; i < iters; i++) {
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    float sink[16 * 16];
    _tile_stored(0, sink, 64);
    return (double)iters * 4 * 16 * 16 * 32 * 2;
}

// fp32 -> bf16, round to nearest even, NaN kept NaN, subnormals to signed zero (what
// vcvtne2ps2bf16 does). That instruction where the CPU has it.
__attribute__((target("avx512f,avx512bw,avx512bf16")))
static void to_bf16_avx512bf16(const float *src, uint16_t *dst, long n) {
    long i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + i + 16), _mm512_loadu_ps(src + i));
        _mm512_storeu_si512(dst + i, (__m512i)v);
    }
    if (i < n) {
        __mmask32 m = (__mmask32)((1ull << (n - i)) - 1);
        __mmask16 lo = (__mmask16)(m & 0xFFFF), hi = (__mmask16)(m >> 16);
        __m512 a = _mm512_maskz_loadu_ps(lo, src + i), b = _mm512_maskz_loadu_ps(hi, src + i + 16);
        _mm512_mask_storeu_epi16(dst + i, m, (__m512i)_mm512_cvtne2ps_pbh(b, a));
    }
}

static inline uint16_t to_bf16_1(float x) {
    uint32_t bits;
    memcpy(&bits, &x, 4);
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((bits >> 16) | 0x40);
    if ((bits & 0x7F800000u) == 0) return (uint16_t)((bits >> 16) & 0x8000u);   // subnormal -> signed 0
    return (uint16_t)((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

__attribute__((target("avx2")))
static void to_bf16_avx2(const float *src, uint16_t *dst, long n) {
    for (long i = 0; i < n; i++) dst[i] = to_bf16_1(src[i]);   // vectorised by the compiler
}

void vidattn_f32_to_bf16_path(const float *src, uint16_t *dst, long n, int path) {
    if (path == 1) to_bf16_avx512bf16(src, dst, n);
    else to_bf16_avx2(src, dst, n);
}

void vidattn_f32_to_bf16(const float *src, uint16_t *dst, long n) {
    const vidattn_cpu_info *c = vidattn_cpu_detect();
    vidattn_f32_to_bf16_path(src, dst, n, c->avx512_bf16 && c->avx512bw ? 1 : 0);
}

// The same conversion straight into the block layout of the A strips: chunk kb of 32 values
// (zeros past k) at dst + kb * stride, for kb < kp / 32.
__attribute__((target("avx512f,avx512bw,avx512bf16")))
static void to_bf16_blocks_avx512bf16(const float *src, long k, long kp, uint16_t *dst, long stride) {
    for (long kb = 0; kb < kp / 32; kb++) {
        const long i = kb * 32;
        __m512 lo, hi;
        if (i + 32 <= k) {
            lo = _mm512_loadu_ps(src + i); hi = _mm512_loadu_ps(src + i + 16);
        } else {
            const long left = k - i > 0 ? k - i : 0;
            const __mmask32 m = left >= 32 ? 0xFFFFFFFFu : (__mmask32)((1ull << left) - 1);
            lo = _mm512_maskz_loadu_ps((__mmask16)(m & 0xFFFF), src + i);
            hi = _mm512_maskz_loadu_ps((__mmask16)(m >> 16), src + i + 16);
        }
        _mm512_storeu_si512(dst + kb * stride, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
    }
}

__attribute__((target("avx2")))
static void to_bf16_blocks_avx2(const float *src, long k, long kp, uint16_t *dst, long stride) {
    for (long kb = 0; kb < kp / 32; kb++) {
        uint16_t *d = dst + kb * stride;
        if (kb * 32 + 32 <= k) {
            for (int t = 0; t < 32; t++) d[t] = to_bf16_1(src[kb * 32 + t]);   // vectorised
        } else {
            for (int t = 0; t < 32; t++) d[t] = kb * 32 + t < k ? to_bf16_1(src[kb * 32 + t]) : 0;
        }
    }
}

void vidattn_f32_to_bf16_blocks_path(const float *src, long k, long kp, uint16_t *dst, long stride, int path) {
    if (path == 1) to_bf16_blocks_avx512bf16(src, k, kp, dst, stride);
    else to_bf16_blocks_avx2(src, k, kp, dst, stride);
}

void vidattn_f32_to_bf16_blocks(const float *src, long k, long kp, uint16_t *dst, long stride) {
    const vidattn_cpu_info *c = vidattn_cpu_detect();
    if (c->avx512_bf16 && c->avx512bw) to_bf16_blocks_avx512bf16(src, k, kp, dst, stride);
    else to_bf16_blocks_avx2(src, k, kp, dst, stride);
}
