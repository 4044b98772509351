// Shared by the AMX block kernels (bf16.c, int8.c): the 32×32 result block C (4-byte
// elements, row stride ldc) into accumulator tiles 0..3 — loaded when accumulating, else
// every row set to `bias` (32 values, a tile load with row stride 0) when given, else zeroed —
// and back.
#pragma once
#include <immintrin.h>

__attribute__((target("amx-tile")))
static inline void amx_c_begin(const void *c, long ldc, int accumulate, const void *bias) {
    const char *p = (const char *)c;
    const long stride = ldc * 4;
    if (!accumulate && bias) {
        const char *q = (const char *)bias;
        _tile_loadd(0, q, 0);
        _tile_loadd(1, q + 64, 0);
        _tile_loadd(2, q, 0);
        _tile_loadd(3, q + 64, 0);
    } else if (accumulate) {
        _tile_loadd(0, p, stride);
        _tile_loadd(1, p + 64, stride);
        _tile_loadd(2, p + 16 * stride, stride);
        _tile_loadd(3, p + 16 * stride + 64, stride);
    } else {
        _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
    }
}

__attribute__((target("amx-tile")))
static inline void amx_c_end(void *c, long ldc) {
    char *p = (char *)c;
    const long stride = ldc * 4;
    _tile_stored(0, p, stride);
    _tile_stored(1, p + 64, stride);
    _tile_stored(2, p + 16 * stride, stride);
    _tile_stored(3, p + 16 * stride + 64, stride);
}

// Asks for the 2 KiB at p (two tiles: a K step of an A strip or a B panel) in L1, one
// prefetcht0 per line; a K step of the block kernels runs four tile products meanwhile.
static inline void amx_prefetch_2k(const void *p) {
    const char *q = (const char *)p;
    for (int l = 0; l < 32; l++) _mm_prefetch(q + 64 * l, _MM_HINT_T0);
}
