// CKernels: the few things Swift cannot spell. Floating-point control (MXCSR),
// CPU feature detection (CPUID, XCR0, the AMX permission) and micro-kernels for
// instructions Swift does not emit (AMX tiles, vdpbf16ps, VNNI). Blocking,
// threading and everything else stay in Swift (Sources/Kernels).
#ifndef VIDATTN_CKERNELS_H
#define VIDATTN_CKERNELS_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// MARK: - Floating-point mode

/// MXCSR bits: flush-to-zero (results) and denormals-are-zero (inputs).
#define VIDATTN_MXCSR_FTZ 0x8000u
#define VIDATTN_MXCSR_DAZ 0x0040u

/// The calling thread's MXCSR.
static inline uint32_t vidattn_mxcsr_get(void) { return __builtin_ia32_stmxcsr(); }
/// Sets the calling thread's MXCSR.
static inline void vidattn_mxcsr_set(uint32_t v) { __builtin_ia32_ldmxcsr(v); }

// MARK: - Prefetch

/// Asks for the cache line at `p` in L1 (prefetcht0); never faults, so `p` may lie past the
/// end of a buffer. Swift has no spelling for it; being static inline, it is inlined into the
/// Swift loops that call it.
static inline void vidattn_prefetch_l1(const void *p) { __builtin_prefetch(p, 0, 3); }
/// Asks for the cache line at `p` in L1 for writing (prefetchw where the CPU has it).
static inline void vidattn_prefetch_l1w(void *p) { __builtin_prefetch(p, 1, 3); }

// MARK: - CPU features

/// What the CPU and the OS allow (each 0 or 1).
typedef struct vidattn_cpu_info {
    int avx2, fma, f16c;
    int avx512f, avx512bw, avx512vl, avx512dq;
    int avx512_bf16, avx512_vnni, avx_vnni;
    int amx_tile, amx_bf16, amx_int8;
    /// The OS saves the AVX (XCR0 bits 1-2), AVX-512 (5-7) and AMX tile (17-18) states.
    int os_avx, os_avx512, os_amx;
    /// arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA) granted (checked with ARCH_GET_XCOMP_PERM).
    int amx_permitted;
    /// Cache sizes in bytes (0 when unknown), from CPUID leaf 4.
    long l1d, l2, l3;
    char brand[64];
    /// CPUID leaf 0 says "GenuineIntel" (its cores run vdpbf16ps at half the FMA rate).
    int vendor_intel;
} vidattn_cpu_info;

/// Detects the features once per process (thread-safe; asks for the AMX permission
/// the first time, only if the CPU has AMX and the OS enables its state).
const vidattn_cpu_info *vidattn_cpu_detect(void);

// MARK: - bf16 micro-kernels
//
// A 32×32 fp32 block of C = A · B, with
//   A: 32 rows of bf16 (uint16) in K blocks of 32: block kb holds rows 0..31 × 32 values,
//      element (r, k) at (k / 32) · 1024 + r · 32 + k % 32 (each 16-row half is one 1 KiB
//      tile); K padded to kp (a multiple of 32) with zeros;
//   B: one packed panel of 32 columns, pair-interleaved ("VNNI" layout, read by both
//      tdpbf16ps and vdpbf16ps), in K blocks of 32 of two compact 1 KiB tiles (columns
//      0-15, then 16-31): element (k, n) at vidattn_bf16_panel_index(k, n);
//   C: 32 rows of 32 floats at row stride ldc, overwritten, or added to when accumulate;
//   bias (32 floats, or NULL): when not accumulating, every row of the sum starts from it
//   instead of 0 (so a Linear's bias costs no pass of its own).

/// Index of element (k, n) in a packed bf16 B panel: K block k / 32 (1024 values), tile
/// n / 16 (512 values), K pair (k % 32) / 2 (16 columns of 2 values), column n % 16, k % 2.
static inline long vidattn_bf16_panel_index(long k, long n) {
    return (k >> 5) * 1024 + (n >> 4) * 512 + (((k & 31) >> 1) * 16 + (n & 15)) * 2 + (k & 1);
}

/// Loads the tile configuration this library uses (8 tiles of 16 rows × 64 bytes) on the
/// calling thread. Call before vidattn_amx_bf16_32x32 on each thread; vidattn_amx_end after.
void vidattn_amx_begin(void);
/// Releases the calling thread's tile state.
void vidattn_amx_end(void);
/// The block on AMX (tdpbf16ps, four 16×16 accumulator tiles). Needs AMX-BF16 and the
/// permission (vidattn_cpu_detect()->amx_permitted) and vidattn_amx_begin on this thread.
void vidattn_amx_bf16_32x32(long kp, const uint16_t *a, const uint16_t *b, float *c, long ldc, int accumulate,
                            const float *bias);
/// The same block with AVX512-BF16 (vdpbf16ps, four 8-row passes of 16 zmm accumulators).
void vidattn_avx512bf16_32x32(long kp, const uint16_t *a, const uint16_t *b, float *c, long ldc, int accumulate,
                              const float *bias);
/// Rows 0..<rows of nb 32×32 fp32 blocks (block b at slot + b·1024, row-major) to C (row r of
/// block b at c + r·ldc + 32·b) with streaming stores, which write memory without reading it
/// first and leave the caches alone, then an sfence; c and ldc·4 multiples of 64. AVX-512 only.
void vidattn_store_blocks_nt(const float *slot, int nb, float *c, long ldc, int rows);
/// Scores of one attention step: block b of s (32 queries × 32 keys, fp32, row-major, at
/// s + b·1024) = Q · K_bᵀ for b < nb, with Q an A strip of 32 rows × dp (dp a multiple of 32)
/// and K_b the B panel at k + b·dp·32 (keys as columns, d the reduction axis). unit: 2 = AMX
/// (vidattn_amx_begin on this thread first; with dp = 32 the strip stays in tiles for the
/// whole step), 1 = AVX512-BF16, 0 = the scalar emulation. The sums of blocks b < nbias start
/// from a block of fp32 bias instead of zero: rows r < 32 at bias + r·bstride + 32·b (the
/// scores' bias, added as the products accumulate: on AMX the accumulator tiles are loaded
/// from it, so no pass over the scores adds it); bias NULL: none.
void vidattn_bf16_scores(int unit, long dp, const uint16_t *q, const uint16_t *k, int nb, float *s, const float *bias,
                         long bstride, int nbias);
/// K and V of one attention head ([n, d] rows at strides ldk, ldv floats) rounded to bf16 as B
/// panels: key panel p (32 keys, d the reduction axis, d padded to dp with zeros) at
/// kpan + p·dp·32 holding element (i, key) at vidattn_bf16_panel_index(i, key % 32); d panel c
/// (32 of V's columns, keys the reduction axis, padded to nkp with zeros) at vpan + c·nkp·32
/// holding element (key, col) at vidattn_bf16_panel_index(key, col % 32). dp and nkp are
/// multiples of 32, at least d and n. Every element of both is written.
void vidattn_pack_kv_bf16(const float *k, long ldk, const float *v, long ldv, long n, long d, long dp, long nkp,
                          uint16_t *kpan, uint16_t *vpan);
/// The same through a given path (tests): 0 = scalar, 1 = AVX-512 (AVX512-BF16).
void vidattn_pack_kv_bf16_path(const float *k, long ldk, const float *v, long ldv, long n, long d, long dp,
                               long nkp, uint16_t *kpan, uint16_t *vpan, int path);
/// fp32 -> bf16 (round to nearest even, NaN stays NaN, subnormals become signed zero) of n
/// values through a given path (tests): 0 = AVX2 integer rounding, 1 = vcvtne2ps2bf16.
void vidattn_f32_to_bf16_path(const float *src, uint16_t *dst, long n, int path);
/// fp32 -> fp32 rounded to a bf16 value (the same rule), n values: the inputs of the bf16
/// emulation on fp32 kernels.
/// dst may be src.
void vidattn_round_to_bf16_f32(const float *src, float *dst, long n);
/// The same through a given path (tests): 0 = scalar, 1 = AVX2 (scalar in place), 2 = AVX-512.
void vidattn_round_to_bf16_f32_path(const float *src, float *dst, long n, int path);
/// fp32 → bf16 as above, straight into the A-strip layout of the block kernels: chunk kb of
/// 32 values at dst + kb · stride for kb < kp / 32 (kp a multiple of 32), zeros past k.
void vidattn_f32_to_bf16_blocks(const float *src, long k, long kp, uint16_t *dst, long stride);
/// A 32×32 fp32 block (row r at tile + r·32) as one 32×32 block of a bf16 A strip (row r at
/// dst + r·32): rows below `rows` rounded like vidattn_f32_to_bf16_blocks (columns from nr on
/// zero), the rest zero. One call per block instead of one per row.
void vidattn_f32_block_to_bf16(const float *tile, int rows, int nr, uint16_t *dst);
/// The same through a given path (tests): 0 = AVX2, 1 = AVX512-BF16.
void vidattn_f32_to_bf16_blocks_path(const float *src, long k, long kp, uint16_t *dst, long stride, int path);
/// One online-softmax step of the bf16 attention over 32 query rows and nb blocks of 32 keys:
/// s holds the scores as nb row-major 32×32 blocks (block b at s + b·1024); m, l (32 each) are
/// the running row maxima and sums, updated; alpha (32) receives each row's rescale factor for
/// the output, exp(m_old − m_new) (0 while a row has seen only −inf); p receives
/// bf16(exp(s − m_new)) in the same block layout (the A strip of P·V). P: 2^((s − m)·log2 e)
/// by a degree-5 polynomial for 2^f, |f| <= 1/2 (relative error below 3e-7), exactly 0 where
/// the result would fall below 2^−125; alpha: a degree-6 polynomial after Cody–Waite
/// reduction, exactly 0 below ln(FLT_MIN). AVX-512 with vcvtne2ps2bf16 where the CPU has
/// AVX512-BF16, the same arithmetic in scalar code otherwise.
void vidattn_softmax_step_bf16(float *s, int nb, float *m, float *l, float *alpha, uint16_t *p);
/// The same through a given path (tests): 0 = scalar, 1 = AVX-512.
void vidattn_softmax_step_bf16_path(float *s, int nb, float *m, float *l, float *alpha, uint16_t *p, int path);
/// Scalar emulation of the same contract (bf16 products summed in fp32, pair by pair): the
/// reference that checks the data layout on machines without AMX.
void vidattn_bf16_32x32_ref(long kp, const uint16_t *a, const uint16_t *b, float *c, long ldc, int accumulate,
                            const float *bias);

// MARK: - Lookups

/// dst[i] = table[index[i]] for i < n (indices non-negative, within the table): path 1 AVX-512
/// gathers, 0 scalar (the caller, Kernels' `gatherFloats`, picks by CPU and ISA cap).
void vidattn_gather_f32_path(const float *table, const int32_t *index, long n, float *dst, int path);

// MARK: - int8 micro-kernels
//
// A 32×32 int32 block of C = A · B, with
//   A: 32 rows of int8 (uint8 = int8 + 128 for the VNNI kernel) in K blocks of 64: element
//      (r, k) at (k / 64) · 2048 + r · 64 + k % 64 (each 16-row half one 1 KiB tile); K padded
//      to kp (a multiple of 64) with zeros (0x80 in the uint8 form);
//   B: one packed panel of 32 columns, groups of four K values ("VNNI" layout, read by both
//      tdpbssd and vpdpbusd), in K blocks of 64 of two compact 1 KiB tiles (columns 0-15,
//      then 16-31): element (k, n) at vidattn_int8_panel_index(k, n);
//   C: 32 rows of 32 int32 at row stride ldc, overwritten (accumulate = 0) or added to.

/// Index of element (k, n) in a packed int8 B panel: K block k / 64 (2048 values), tile
/// n / 16 (1024 values), group (k % 64) / 4 (16 columns of 4 values), column n % 16, k % 4.
static inline long vidattn_int8_panel_index(long k, long n) {
    return (k >> 6) * 2048 + (n >> 4) * 1024 + (((k & 63) >> 2) * 16 + (n & 15)) * 4 + (k & 3);
}

/// The block on AMX (tdpbssd, int8 × int8). Needs AMX-INT8, the permission and
/// vidattn_amx_begin on this thread.
void vidattn_amx_s8_32x32(long kp, const int8_t *a, const int8_t *b, int32_t *c, long ldc, int accumulate);
/// The block with AVX512-VNNI (vpdpbusd, uint8 × int8: A holds int8 + 128, so the caller
/// subtracts 128 · Σ_k B(k, n) per column). These two take kq, any multiple of 4 up to kp: the
/// first kq values of K (the groups after the real K are padding and may be left out).
void vidattn_avx512vnni_u8s8_32x32(long kq, const uint8_t *a, const int8_t *b, int32_t *c, long ldc, int accumulate);
/// The same block, finished in fp32: the int32 sums (started from `partial`, a 32×32 block of
/// the earlier K chunks at row stride 32, or from 0 when NULL) dequantized as
/// vidattn_dequant_i32_32x32 does with the VNNI offset, then `bias` (32 floats, or NULL)
/// added, into rows 0..mr-1, columns 0..nr-1 of C (added to C when accumulate). Rows from mr
/// on are not computed. No int32 block goes through memory.
void vidattn_avx512vnni_u8s8_32x32_dq(long kq, const uint8_t *a, const int8_t *b, const int32_t *partial,
                                       float *c, long ldc, int mr, int nr, const float *row_scale,
                                       const float *col_scale, const int32_t *col_sums, const float *bias,
                                       int accumulate);
/// Scalar int8 × int8 reference of the same layout (checks the layout where AMX is absent).
void vidattn_s8_32x32_ref(long kp, const int8_t *a, const int8_t *b, int32_t *c, long ldc, int accumulate);
/// Quantizes k floats symmetrically: returns scale = max|x| / 127 and stores
/// round_half_even(x / scale) in [-127, 127] (all zeros and scale 0 for a zero row); with
/// flip, stores q XOR 0x80 (q + 128 as uint8). Runs under the library's MXCSR (round to
/// nearest even).
float vidattn_quantize_row_s8(const float *x, long k, int8_t *dst, int flip);
/// The same through a given path (tests): 0 = scalar, 1 = AVX-512.
float vidattn_quantize_row_s8_path(const float *x, long k, int8_t *dst, int flip, int path);
/// The same quantization straight into the A-strip layout of the block kernels: chunk kb of
/// 64 values at dst + kb · stride for kb < kp / 64 (kp a multiple of 64), zeros (0x80 with
/// flip) past k. Returns the scale.
float vidattn_quantize_row_s8_blocks(const float *x, long k, long kp, int8_t *dst, long stride, int flip);
/// The same through a given path (tests): 0 = scalar, 1 = AVX-512.
float vidattn_quantize_row_s8_blocks_path(const float *x, long k, long kp, int8_t *dst, long stride, int flip, int path);
/// C[r][j] = (accumulate ? C[r][j] : 0) + (tile[r][j] − 128 · col_sums[j]) · (row_scale[r] · col_scale[j])
/// for r < mr, j < nr (tile: 32 int32 per row; col_sums NULL: no offset, the int8 × int8
/// kernels). AVX-512 where the CPU has it; the same arithmetic in scalar code otherwise.
void vidattn_dequant_i32_32x32(const int32_t *tile, float *c, long ldc, int mr, int nr, const float *row_scale,
                               const float *col_scale, const int32_t *col_sums, int accumulate);
/// `iters` steps of four independent tdpbssd on resident tiles (16×16×64 each); returns
/// the integer operations done. Needs AMX-INT8 and vidattn_amx_begin.
double vidattn_amx_int8_probe(long iters);

// MARK: - Peak probes (benchmarks)

/// Runs `iters` steps of 24 independent AVX-512 FMA chains (16 lanes each) and
/// returns the floating-point operations done (2 per lane per FMA). Needs AVX-512F.
double vidattn_fma_probe_avx512(long iters);
/// The same with 12 AVX2 (8-lane) chains. Needs AVX2 and FMA.
double vidattn_fma_probe_avx2(long iters);
/// `iters` steps of four independent tdpbf16ps on resident tiles (16×16×32 each); returns
/// the floating-point operations done. Needs AMX-BF16 and vidattn_amx_begin.
double vidattn_amx_probe(long iters);

#ifdef __cplusplus
}
#endif
#endif
