// Table lookups (dst[i] = table[index[i]]) with AVX-512 gathers, which Swift cannot emit.
#include "ckernels.h"

#include <immintrin.h>

__attribute__((target("avx512f")))
static void gather_avx512(const float *table, const int32_t *index, long n, float *dst) {
    long i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(dst + i, _mm512_i32gather_ps(_mm512_loadu_si512(index + i), table, 4));
    for (; i < n; i++) dst[i] = table[index[i]];
}

static void gather_scalar(const float *table, const int32_t *index, long n, float *dst) {
    for (long i = 0; i < n; i++) dst[i] = table[index[i]];
}

void vidattn_gather_f32_path(const float *table, const int32_t *index, long n, float *dst, int path) {
    if (path) gather_avx512(table, index, n, dst); else gather_scalar(table, index, n, dst);
}
