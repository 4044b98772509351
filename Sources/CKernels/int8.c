// int8 micro-kernels and row quantization (see ckernels.h for the data layout). Each
// function carries its own target attribute; the caller picks one the CPU has.
#include "ckernels.h"
#include "amx_tiles.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

// Tiles (configured by vidattn_amx_begin: 16 rows × 64 bytes each): 0..3 accumulate C
// (rows 0-15 / 16-31 × cols 0-15 / 16-31, int32); 4, 5 hold A rows 0-15 / 16-31 (64 int8 of
// K each); 6, 7 hold B columns 0-15 / 16-31 (16 groups of 4 K values each).
__attribute__((target("amx-tile,amx-int8")))
void vidattn_amx_s8_32x32(long kp, const int8_t *a, const int8_t *b, int32_t *c, long ldc, int accumulate) {
    amx_c_begin(c, ldc, accumulate, NULL);
    for (long k = 0; k < kp; k += 64) {
        const int8_t *ak = a + k * 32, *bk = b + k * 32;
        // The A and B tiles of two K steps ahead asked for in L1 (as bf16.c). Measured on
        // Sapphire Rapids (`bench/ab.py`, 2 threads, 15 rounds, against plain loads with B
        // through the non-temporal hint): int8 forwards of TimeSformer-B 0.926 of the time,
        // swin3d_t 0.969, ViViT-B 0.946.
        _tile_loadd(4, ak, 64);
        _tile_loadd(6, bk, 64);
        amx_prefetch_2k(ak + 4096);
        amx_prefetch_2k(bk + 4096);
        _tile_dpbssd(0, 4, 6);
        _tile_loadd(7, bk + 1024, 64);
        _tile_dpbssd(1, 4, 7);
        _tile_loadd(5, ak + 1024, 64);
        _tile_dpbssd(2, 5, 6);
        _tile_dpbssd(3, 5, 7);
    }
    amx_c_end(c, ldc);
}

// Dequantization of a 32-column block row by row (the separate pass below and the fused VNNI
// kernel share it, so both give the same bits): acc − 128 · Σ_k q_w (VNNI's offset; none
// without column sums), times row scale · column scale, onto C when accumulating, then a bias.
typedef struct { __mmask16 m0, m1; __m512 s0, s1; __m512i o0, o1; } dq_columns;

__attribute__((target("avx512f"), always_inline))
static inline dq_columns dq_setup(int nr, const float *col_scale, const int32_t *col_sums) {
    dq_columns k;
    k.m0 = nr >= 16 ? 0xFFFF : (__mmask16)((1u << nr) - 1);
    k.m1 = nr >= 32 ? 0xFFFF : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1) : 0;
    k.s0 = _mm512_maskz_loadu_ps(k.m0, col_scale);
    k.s1 = _mm512_maskz_loadu_ps(k.m1, col_scale + 16);
    k.o0 = col_sums ? _mm512_slli_epi32(_mm512_maskz_loadu_epi32(k.m0, col_sums), 7) : _mm512_setzero_si512();
    k.o1 = col_sums ? _mm512_slli_epi32(_mm512_maskz_loadu_epi32(k.m1, col_sums + 16), 7) : _mm512_setzero_si512();
    return k;
}

__attribute__((target("avx512f"), always_inline))
static inline void dq_row(const dq_columns *k, __m512i a0, __m512i a1, float row_scale, float *cr, int accumulate,
                          const float *bias) {
    const __m512 sa = _mm512_set1_ps(row_scale);
    __m512 v0 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(a0, k->o0)), _mm512_mul_ps(sa, k->s0));
    __m512 v1 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(a1, k->o1)), _mm512_mul_ps(sa, k->s1));
    if (accumulate) {
        v0 = _mm512_add_ps(_mm512_maskz_loadu_ps(k->m0, cr), v0);
        v1 = _mm512_add_ps(_mm512_maskz_loadu_ps(k->m1, cr + 16), v1);
    }
    if (bias) {
        v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(k->m0, bias));
        v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(k->m1, bias + 16));
    }
    _mm512_mask_storeu_ps(cr, k->m0, v0);
    _mm512_mask_storeu_ps(cr + 16, k->m1, v1);
}

// One group of four K values for rows r0..r0+7 (A row r at ar + r · 64) × 32 columns (B at
// bg, columns 16-31 1 KiB further), added to acc[16] (two vectors per row).
__attribute__((target("avx512f,avx512bw,avx512vnni"), always_inline))
static inline void vnni_group8(const uint8_t *ar, const int8_t *bg, __m512i acc[16]) {
    const __m512i b0 = _mm512_loadu_si512(bg), b1 = _mm512_loadu_si512(bg + 1024);
#pragma clang loop unroll(full)
    for (int r = 0; r < 8; r++) {
        int32_t quad;
        memcpy(&quad, ar + r * 64, 4);
        const __m512i av = _mm512_set1_epi32(quad);
        acc[2 * r] = _mm512_dpbusd_epi32(acc[2 * r], av, b0);
        acc[2 * r + 1] = _mm512_dpbusd_epi32(acc[2 * r + 1], av, b1);
    }
}

// Rows r0..r0+7 × 32 columns over the first kq values of K (a multiple of 4: whole K blocks of
// 64, then the groups of a partial one, so the zero padding of the last block is skipped),
// added to acc[16]. The block and group loops are separate so that the addresses are a base
// plus constants (one loop over groups spent its time on splitting the group index).
__attribute__((target("avx512f,avx512bw,avx512vnni"), always_inline))
static inline void vnni_rows8(long kq, const uint8_t *a, const int8_t *b, int r0, __m512i acc[16]) {
    const long blocks = kq / 64, rest = (kq % 64) / 4;
    const uint8_t *ar = a + r0 * 64;
    for (long kb = 0; kb < blocks; kb++, ar += 2048, b += 2048) {
#pragma clang loop unroll(full)
        for (int g = 0; g < 16; g++) vnni_group8(ar + g * 4, b + g * 64, acc);
    }
    for (long g = 0; g < rest; g++) vnni_group8(ar + g * 4, b + g * 64, acc);
}

__attribute__((target("avx512f,avx512bw,avx512vnni")))
void vidattn_avx512vnni_u8s8_32x32(long kq, const uint8_t *a, const int8_t *b, int32_t *c, long ldc, int accumulate) {
    for (int r0 = 0; r0 < 32; r0 += 8) {
        __m512i acc[16];
#pragma clang loop unroll(full)
        for (int r = 0; r < 8; r++) {
            acc[2 * r] = accumulate ? _mm512_loadu_si512(c + (r0 + r) * ldc) : _mm512_setzero_si512();
            acc[2 * r + 1] = accumulate ? _mm512_loadu_si512(c + (r0 + r) * ldc + 16) : _mm512_setzero_si512();
        }
        vnni_rows8(kq, a, b, r0, acc);
#pragma clang loop unroll(full)
        for (int r = 0; r < 8; r++) {
            _mm512_storeu_si512(c + (r0 + r) * ldc, acc[2 * r]);
            _mm512_storeu_si512(c + (r0 + r) * ldc + 16, acc[2 * r + 1]);
        }
    }
}

__attribute__((target("avx512f,avx512bw,avx512vnni")))
void vidattn_avx512vnni_u8s8_32x32_dq(long kq, const uint8_t *a, const int8_t *b, const int32_t *partial,
                                       float *c, long ldc, int mr, int nr, const float *row_scale,
                                       const float *col_scale, const int32_t *col_sums, const float *bias,
                                       int accumulate) {
    const dq_columns cols = dq_setup(nr, col_scale, col_sums);
    for (int r0 = 0; r0 < mr; r0 += 8) {
        // Every index into acc a constant (loops unrolled, the row limit a test per row), so the
        // sums stay in registers: with the limit in the loop condition they went through the stack.
        __m512i acc[16];
#pragma clang loop unroll(full)
        for (int r = 0; r < 8; r++) {
            acc[2 * r] = partial ? _mm512_loadu_si512(partial + (r0 + r) * 32) : _mm512_setzero_si512();
            acc[2 * r + 1] = partial ? _mm512_loadu_si512(partial + (r0 + r) * 32 + 16) : _mm512_setzero_si512();
        }
        vnni_rows8(kq, a, b, r0, acc);
#pragma clang loop unroll(full)
        for (int r = 0; r < 8; r++) {
            if (r0 + r < mr)
                dq_row(&cols, acc[2 * r], acc[2 * r + 1], row_scale[r0 + r], c + (r0 + r) * ldc, accumulate, bias);
        }
    }
}

void vidattn_s8_32x32_ref(long kp, const int8_t *a, const int8_t *b, int32_t *c, long ldc, int accumulate) {
    for (int r = 0; r < 32; r++)
        for (int n = 0; n < 32; n++) {
            int32_t s = accumulate ? c[r * ldc + n] : 0;
            for (long k = 0; k < kp; k++)
                s += (int32_t)a[(k / 64) * 2048 + r * 64 + k % 64] * (int32_t)b[vidattn_int8_panel_index(k, n)];
            c[r * ldc + n] = s;
        }
}

// Row quantization: scale = max|x| / 127, q = round_half_even(x / scale) (x · 127 / max|x|),
// saturated to [-127, 127]; an all-zero row gets scale 0 and zeros. NaN/inf are the caller's
// to refuse. `flip` stores q + 128 as uint8 (q XOR 0x80), the unsigned operand of vpdpbusd.

// max |x[i]| over k values: four independent maxima (one chain of dependent vmaxps, four
// cycles each, was the quantizer's hottest spot in perf).
__attribute__((target("avx512f"), always_inline))
static inline float absmax_avx512(const float *x, long k) {
    __m512 m0 = _mm512_setzero_ps(), m1 = m0, m2 = m0, m3 = m0;
    long i = 0;
    for (; i + 64 <= k; i += 64) {
        m0 = _mm512_max_ps(m0, _mm512_abs_ps(_mm512_loadu_ps(x + i)));
        m1 = _mm512_max_ps(m1, _mm512_abs_ps(_mm512_loadu_ps(x + i + 16)));
        m2 = _mm512_max_ps(m2, _mm512_abs_ps(_mm512_loadu_ps(x + i + 32)));
        m3 = _mm512_max_ps(m3, _mm512_abs_ps(_mm512_loadu_ps(x + i + 48)));
    }
    for (; i + 16 <= k; i += 16) m0 = _mm512_max_ps(m0, _mm512_abs_ps(_mm512_loadu_ps(x + i)));
    float m = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3)));
    for (; i < k; i++) m = fmaxf(m, fabsf(x[i]));
    return m;
}

__attribute__((target("avx512f,avx512bw")))
static float quantize_avx512(const float *x, long k, int8_t *dst, int flip) {
    float m = absmax_avx512(x, k);
    if (!(m > 0)) { memset(dst, flip ? 0x80 : 0, (size_t)k); return 0; }
    const float inv = 127.0f / m;
    const __m512 vinv = _mm512_set1_ps(inv);
    const __m128i x80 = _mm_set1_epi8((char)0x80);
    long i = 0;
    for (; i + 16 <= k; i += 16) {
        __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + i), vinv));   // nearest even
        __m128i b = _mm512_cvtsepi32_epi8(q);
        if (flip) b = _mm_xor_si128(b, x80);
        _mm_storeu_si128((__m128i *)(dst + i), b);
    }
    for (; i < k; i++) {
        float v = nearbyintf(x[i] * inv);
        int q = v > 127 ? 127 : v < -127 ? -127 : (int)v;
        dst[i] = (int8_t)(flip ? (q ^ 0x80) : q);
    }
    return m / 127.0f;
}

static float quantize_scalar(const float *x, long k, int8_t *dst, int flip) {
    float m = 0;
    for (long i = 0; i < k; i++) m = fmaxf(m, fabsf(x[i]));
    if (!(m > 0)) { memset(dst, flip ? 0x80 : 0, (size_t)k); return 0; }
    const float inv = 127.0f / m;
    for (long i = 0; i < k; i++) {
        float v = nearbyintf(x[i] * inv);
        int q = v > 127 ? 127 : v < -127 ? -127 : (int)v;
        dst[i] = (int8_t)(flip ? (q ^ 0x80) : q);
    }
    return m / 127.0f;
}

float vidattn_quantize_row_s8(const float *x, long k, int8_t *dst, int flip) {
    const vidattn_cpu_info *i = vidattn_cpu_detect();   // detected once, then a pointer
    return i->avx512f && i->avx512bw ? quantize_avx512(x, k, dst, flip) : quantize_scalar(x, k, dst, flip);
}

float vidattn_quantize_row_s8_path(const float *x, long k, int8_t *dst, int flip, int path) {
    return path ? quantize_avx512(x, k, dst, flip) : quantize_scalar(x, k, dst, flip);
}

// The same quantization straight into the block layout of the A strips: chunk kb of 64
// values (zeros past k, i.e. 0x80 with flip) at dst + kb * stride, for kb < kp / 64.
__attribute__((target("avx512f,avx512bw")))
static float quantize_blocks_avx512(const float *x, long k, long kp, int8_t *dst, long stride, int flip) {
    float m = absmax_avx512(x, k);
    const float inv = m > 0 ? 127.0f / m : 0;
    const __m512 vinv = _mm512_set1_ps(inv);
    const __m512i x80 = _mm512_set1_epi8((char)(flip ? 0x80 : 0));
    // The two saturating packs work per 128-bit lane: lane i ends up with dwords (a_i, b_i, c_i,
    // d_i), four values each; the permutation puts a_0..a_3 first, then b, c, d.
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    for (long kb = 0; kb < kp / 64; kb++) {
        __m512i v[4];
        for (int q = 0; q < 4; q++) {
            const long j = kb * 64 + q * 16;
            const long left = k - j > 0 ? k - j : 0;
            const __mmask16 mk = left >= 16 ? 0xFFFF : (__mmask16)((1u << left) - 1);
            v[q] = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(mk, x + j), vinv));   // nearest even
        }
        const __m512i packed = _mm512_packs_epi16(_mm512_packs_epi32(v[0], v[1]), _mm512_packs_epi32(v[2], v[3]));
        _mm512_storeu_si512(dst + kb * stride, _mm512_xor_si512(_mm512_permutexvar_epi32(order, packed), x80));
    }
    return m > 0 ? m / 127.0f : 0;
}

static float quantize_blocks_scalar(const float *x, long k, long kp, int8_t *dst, long stride, int flip) {
    float m = 0;
    for (long i = 0; i < k; i++) m = fmaxf(m, fabsf(x[i]));
    const float inv = m > 0 ? 127.0f / m : 0;
    for (long j = 0; j < kp; j++) {
        int q = 0;
        if (j < k && m > 0) {
            float v = nearbyintf(x[j] * inv);
            q = v > 127 ? 127 : v < -127 ? -127 : (int)v;
        }
        dst[(j / 64) * stride + j % 64] = (int8_t)(flip ? (q ^ 0x80) : q);
    }
    return m > 0 ? m / 127.0f : 0;
}

float vidattn_quantize_row_s8_blocks(const float *x, long k, long kp, int8_t *dst, long stride, int flip) {
    const vidattn_cpu_info *i = vidattn_cpu_detect();
    return vidattn_quantize_row_s8_blocks_path(x, k, kp, dst, stride, flip, i->avx512f && i->avx512bw);
}

float vidattn_quantize_row_s8_blocks_path(const float *x, long k, long kp, int8_t *dst, long stride, int flip, int path) {
    return path ? quantize_blocks_avx512(x, k, kp, dst, stride, flip) : quantize_blocks_scalar(x, k, kp, dst, stride, flip);
}

__attribute__((target("amx-tile,amx-int8")))
double vidattn_amx_int8_probe(long iters) {
    static int8_t buf[16 * 64] __attribute__((aligned(64)));
    _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
    _tile_loadd(4, buf, 64); _tile_loadd(5, buf, 64); _tile_loadd(6, buf, 64); _tile_loadd(7, buf, 64);
    for (long i = 0; i < iters; i++) {
        _tile_dpbssd(0, 4, 6);
        _tile_dpbssd(1, 4, 7);
        _tile_dpbssd(2, 5, 6);
        _tile_dpbssd(3, 5, 7);
    }
    int32_t sink[16 * 16];
    _tile_stored(0, sink, 64);
    return (double)iters * 4 * 16 * 16 * 64 * 2;
}

// Dequantization of a 32×32 int32 block into fp32 C (see ckernels.h).
__attribute__((target("avx512f")))
static void dequant_avx512(const int32_t *tile, float *c, long ldc, int mr, int nr, const float *row_scale,
                           const float *col_scale, const int32_t *col_sums, int accumulate) {
    const dq_columns cols = dq_setup(nr, col_scale, col_sums);
    for (int r = 0; r < mr; r++)
        dq_row(&cols, _mm512_loadu_si512(tile + r * 32), _mm512_loadu_si512(tile + r * 32 + 16), row_scale[r],
               c + r * ldc, accumulate, NULL);
}

static void dequant_scalar(const int32_t *tile, float *c, long ldc, int mr, int nr, const float *row_scale,
                           const float *col_scale, const int32_t *col_sums, int accumulate) {
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nr; j++) {
            int32_t acc = tile[r * 32 + j] - (col_sums ? col_sums[j] * 128 : 0);
            float v = (float)acc * (row_scale[r] * col_scale[j]);
            c[r * ldc + j] = accumulate ? c[r * ldc + j] + v : v;
        }
}

void vidattn_dequant_i32_32x32(const int32_t *tile, float *c, long ldc, int mr, int nr, const float *row_scale,
                               const float *col_scale, const int32_t *col_sums, int accumulate) {
    if (vidattn_cpu_detect()->avx512f)
        dequant_avx512(tile, c, ldc, mr, nr, row_scale, col_scale, col_sums, accumulate);
    else
        dequant_scalar(tile, c, ldc, mr, nr, row_scale, col_scale, col_sums, accumulate);
}
