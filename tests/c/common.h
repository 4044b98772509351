/* common.h — the C tests' check macro and raw-array reader (see prepare_io.py). */
#ifndef VIDATTN_TEST_COMMON_H
#define VIDATTN_TEST_COMMON_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static int passed, failed;
#define CHECK(cond, ...) do { if (cond) passed++; else { failed++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
    printf(__VA_ARGS__); printf("\n"); } } while (0)

/* <file> = int64 ndim, int64 dims[ndim], float32 data */
typedef struct { int64_t ndim, dims[8], count; float *data; } array;

static int read_array(const char *path, array *a) {
    FILE *f = fopen(path, "rb");
    a->data = NULL;
    if (!f) return 0;
    int ok = fread(&a->ndim, 8, 1, f) == 1 && a->ndim > 0 && a->ndim <= 8 &&
             fread(a->dims, 8, (size_t)a->ndim, f) == (size_t)a->ndim;
    a->count = 1;
    for (int64_t i = 0; ok && i < a->ndim; i++) a->count *= a->dims[i];
    a->data = ok ? malloc(sizeof(float) * (size_t)a->count) : NULL;
    ok = ok && a->data && fread(a->data, 4, (size_t)a->count, f) == (size_t)a->count;
    fclose(f);
    return ok;
}
#endif
