// SLEEF's vector math, imported into Swift. sleef.h guards its AVX-512 and
// AVX2 declarations by the target's feature macros, so what Swift sees depends
// on the -Xcc -march flag the importing target is compiled with.
#include <sleef.h>
