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
} vidattn_cpu_info;

/// Detects the features once per process (thread-safe; asks for the AMX permission
/// the first time, only if the CPU has AMX and the OS enables its state).
const vidattn_cpu_info *vidattn_cpu_detect(void);

// MARK: - Peak probes (benchmarks)

/// Runs `iters` steps of 24 independent AVX-512 FMA chains (16 lanes each) and
/// returns the floating-point operations done (2 per lane per FMA). Needs AVX-512F.
double vidattn_fma_probe_avx512(long iters);
/// The same with 12 AVX2 (8-lane) chains. Needs AVX2 and FMA.
double vidattn_fma_probe_avx2(long iters);

#ifdef __cplusplus
}
#endif
#endif
