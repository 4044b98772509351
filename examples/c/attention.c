/* attention.c — one standalone call of vidattn's fused attention, checked
 * against a plain C implementation. Build: make examples (or see README). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <vidattn.h>

static void naive(int64_t n, int64_t d, const float *q, const float *k, const float *v, float *o) {
    double *s = malloc(sizeof(double) * n);
    for (int64_t i = 0; i < n; i++) {
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < n; j++) {
            double t = 0;
            for (int64_t c = 0; c < d; c++) t += (double)q[i * d + c] * k[j * d + c];
            s[j] = t / sqrt((double)d);
            if (s[j] > mx) mx = s[j];
        }
        for (int64_t j = 0; j < n; j++) { s[j] = exp(s[j] - mx); sum += s[j]; }
        for (int64_t c = 0; c < d; c++) {
            double acc = 0;
            for (int64_t j = 0; j < n; j++) acc += s[j] * v[j * d + c];
            o[i * d + c] = (float)(acc / sum);
        }
    }
    free(s);
}

int main(void) {
    const int64_t heads = 4, n = 197, d = 64, size = heads * n * d;
    float *q = malloc(size * sizeof(float)), *k = malloc(size * sizeof(float));
    float *v = malloc(size * sizeof(float)), *o = malloc(size * sizeof(float));
    float *ref = malloc(size * sizeof(float));
    srand(1);
    for (int64_t i = 0; i < size; i++) {
        q[i] = (float)((double)rand() / RAND_MAX) - 0.5f;
        k[i] = (float)((double)rand() / RAND_MAX) - 0.5f;
        v[i] = (float)((double)rand() / RAND_MAX) - 0.5f;
    }
    vidattn_status st = vidattn_attention(1, heads, n, n, d, q, k, v, o, 0.0f, NULL, NULL, NULL, NULL);
    if (st != VIDATTN_OK) {
        fprintf(stderr, "vidattn_attention: %s: %s\n", vidattn_status_string(st), vidattn_last_error());
        return 1;
    }
    double err = 0;
    for (int64_t h = 0; h < heads; h++) naive(n, d, q + h * n * d, k + h * n * d, v + h * n * d, ref + h * n * d);
    for (int64_t i = 0; i < size; i++) err = fmax(err, fabs(o[i] - ref[i]));
    printf("vidattn %s, %d threads: attention [%lld heads, %lld tokens, d=%lld], max |error| = %.2e\n",
           vidattn_version(), vidattn_get_num_threads(), (long long)heads, (long long)n, (long long)d, err);
    free(q); free(k); free(v); free(o); free(ref);
    return err < 1e-5 ? 0 : 1;
}
