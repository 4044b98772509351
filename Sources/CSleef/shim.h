// SLEEF's vector math, imported into Swift. sleef.h guards its AVX-512 and
// AVX2 declarations by the target's feature macros, so what Swift sees depends
// on the -Xcc -march flag the importing target is compiled with.
#include <sleef.h>

// Cache hints that Swift cannot spell (clang's _mm_prefetch is a macro).
static inline void vidattn_prefetch_write(const void *p) { __builtin_prefetch(p, 1, 3); }
static inline void vidattn_prefetch_read(const void *p) { __builtin_prefetch(p, 0, 3); }
