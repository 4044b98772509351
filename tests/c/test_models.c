/* test_models.c — loads each fixture checkpoint through the C API, runs a forward pass and
 * compares the logits with the reference framework's (max abs error <= 1e-4, or the
 * tolerance given as MODEL:TOL), and checks the model API's error contract.
 * Usage: test_models FIXTURE_MODELS_DIR IO_DIR MODEL[:TOL]... */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vidattn.h>

#include "common.h"

static int stop_at_one(void *user, int layer, int layers) { (void)layers; ++*(int *)user; return layer < 1; }

static void check_model(const char *models, const char *io, const char *spec) {
    char name[256];
    double tol = 1e-4;
    snprintf(name, sizeof name, "%s", spec);
    char *colon = strchr(name, ':');
    if (colon) { *colon = 0; tol = atof(colon + 1); }
    char path[1024], px_path[1024], lg_path[1024];
    snprintf(path, sizeof path, "%s/%s", models, name);
    snprintf(px_path, sizeof px_path, "%s/%s/pixel_values.bin", io, name);
    snprintf(lg_path, sizeof lg_path, "%s/%s/logits.bin", io, name);
    array px, want;
    if (!read_array(px_path, &px) || !read_array(lg_path, &want) || px.ndim != 5) {
        CHECK(0, "%s: cannot read its io files", name);
        return;
    }
    vidattn_model *m = NULL;
    vidattn_status st = vidattn_model_load(path, NULL, &m);
    CHECK(st == VIDATTN_OK && m, "%s: load: %s", name, vidattn_last_error());
    if (!m) return;
    vidattn_output *out = NULL;
    st = vidattn_model_forward(m, px.data, px.dims[0], px.dims[1], px.dims[2], px.dims[3], px.dims[4], NULL, &out);
    CHECK(st == VIDATTN_OK, "%s: forward: %s", name, vidattn_last_error());
    if (st == VIDATTN_OK) {
        int64_t shape[8]; int nd = 0;
        CHECK(vidattn_output_shape(out, VIDATTN_OUT_LOGITS, 0, shape, &nd) == VIDATTN_OK && nd == 2 &&
              shape[0] * shape[1] == want.count, "%s: logits shape", name);
        float *got = malloc(sizeof(float) * (size_t)want.count);
        CHECK(vidattn_output_copy(out, VIDATTN_OUT_LOGITS, 0, got, want.count - 1) == VIDATTN_ERR_INVALID_ARGUMENT,
              "%s: a too-small buffer is refused", name);
        CHECK(vidattn_output_copy(out, VIDATTN_OUT_LOGITS, 0, got, want.count) == VIDATTN_OK, "%s: copy", name);
        double err = 0;
        for (int64_t i = 0; i < want.count; i++) err = fmax(err, fabs(got[i] - want.data[i]));
        CHECK(err <= tol, "%s: logits differ from the reference by %g (tolerance %g)", name, err, tol);
        printf("%-28s logits max |error| %.2e\n", name, err);
        /* The last hidden state and both pooled embeddings, where the fixture has the reference's. */
        const char *extra[3] = {"last_hidden_state", "pooled_cls", "pooled_mean"};
        vidattn_output_kind kinds[3] = {VIDATTN_OUT_LAST_HIDDEN, VIDATTN_OUT_POOLED_CLS, VIDATTN_OUT_POOLED_MEAN};
        for (int e = 0; e < 3; e++) {
            char ref_path[1024];
            snprintf(ref_path, sizeof ref_path, "%s/%s/%s.bin", io, name, extra[e]);
            array ref;
            FILE *f = fopen(ref_path, "rb");
            if (!f) continue;
            fclose(f);
            if (!read_array(ref_path, &ref)) { CHECK(0, "%s: cannot read %s", name, ref_path); continue; }
            int64_t shp[8];
            int64_t count = 1;
            int ndims = 0;
            CHECK(vidattn_output_shape(out, kinds[e], 0, shp, &ndims) == VIDATTN_OK, "%s: %s shape", name, extra[e]);
            for (int i = 0; i < ndims; i++) count *= shp[i];
            CHECK(count == ref.count, "%s: %s has %lld values, the reference %lld", name, extra[e], (long long)count,
                  (long long)ref.count);
            if (count == ref.count) {
                float *buf = malloc(sizeof(float) * (size_t)count);
                CHECK(vidattn_output_copy(out, kinds[e], 0, buf, count) == VIDATTN_OK, "%s: copy %s", name, extra[e]);
                double e2 = 0;
                for (int64_t i = 0; i < count; i++) e2 = fmax(e2, fabs(buf[i] - ref.data[i]));
                CHECK(e2 <= 1e-4, "%s: %s differs from the reference by %g", name, extra[e], e2);
                free(buf);
            }
            free(ref.data);
        }
        CHECK(vidattn_output_count(out, VIDATTN_OUT_HIDDEN_STATE) == 0, "%s: no hidden states unless asked", name);
        CHECK(vidattn_output_copy(out, VIDATTN_OUT_HIDDEN_STATE, 0, got, want.count) == VIDATTN_ERR_INVALID_ARGUMENT,
              "%s: absent hidden state refused", name);
        free(got);
        vidattn_output_free(out);
    }
    /* The progress callback stops the forward between layers; the model stays usable. */
    vidattn_forward_params fp = vidattn_forward_default_params();
    int calls = 0;
    fp.progress = stop_at_one; fp.progress_user_data = &calls;
    out = NULL;
    st = vidattn_model_forward(m, px.data, px.dims[0], px.dims[1], px.dims[2], px.dims[3], px.dims[4], &fp, &out);
    CHECK(st == VIDATTN_ABORTED && out == NULL && calls == 2, "%s: abort after one layer (status %d, %d calls)",
          name, st, calls);
    CHECK(vidattn_model_forward(m, NULL, 1, 1, 1, 1, 1, NULL, &out) == VIDATTN_ERR_NULL_POINTER, "%s: NULL pixels", name);
    CHECK(vidattn_model_forward(m, px.data, 0, px.dims[1], px.dims[2], px.dims[3], px.dims[4], NULL, &out)
          == VIDATTN_ERR_INVALID_ARGUMENT, "%s: zero batch", name);
    vidattn_model_free(m);
    free(px.data); free(want.data);
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: %s MODELS_DIR IO_DIR MODEL...\n", argv[0]); return 2; }
    vidattn_model *m = (vidattn_model *)1;
    CHECK(vidattn_model_load(NULL, NULL, &m) == VIDATTN_ERR_NULL_POINTER && m == NULL, "NULL path");
    CHECK(vidattn_model_load("/nonexistent/model", NULL, &m) == VIDATTN_ERR_IO, "missing directory");
    CHECK(strstr(vidattn_last_error(), "config.json") != NULL, "message names config.json: %s", vidattn_last_error());
    vidattn_model_params mp = vidattn_model_default_params();
    mp.struct_size = 1;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", argv[1], "vivit");
    CHECK(vidattn_model_load(path, &mp, &m) == VIDATTN_ERR_INVALID_ARGUMENT, "short params struct");
    mp = vidattn_model_default_params();
    CHECK(mp.precision == VIDATTN_PRECISION_FP32, "fp32 by default");
    mp.precision = 7;
    CHECK(vidattn_model_load(path, &mp, &m) == VIDATTN_ERR_INVALID_ARGUMENT && m == NULL, "unknown precision refused");
    CHECK(strstr(vidattn_last_error(), "precision") != NULL, "message names the precision: %s", vidattn_last_error());
    mp.precision = VIDATTN_PRECISION_BF16;
    CHECK(vidattn_model_load(path, &mp, &m) == VIDATTN_OK && m != NULL, "bf16 load");
    vidattn_model_free(m);
    mp.precision = VIDATTN_PRECISION_INT8;
    CHECK(vidattn_model_load(path, &mp, &m) == VIDATTN_OK && m != NULL, "int8 load");
    vidattn_model_free(m);
    CHECK(strstr(vidattn_cpu_features(), "int8=") != NULL, "cpu features name the int8 unit: %s", vidattn_cpu_features());
    CHECK(strstr(vidattn_cpu_features(), "bf16=") != NULL, "cpu features name the bf16 unit: %s", vidattn_cpu_features());
    printf("kernels: %s\n", strstr(vidattn_cpu_features(), "fp32="));
    /* The Makefile states which fp32 kernels a run must have selected (per ISA level, under qemu). */
    const char *expect = getenv("VIDATTN_EXPECT_FP32");
    if (expect) {
        char want[64];
        snprintf(want, sizeof want, "fp32=%s;", expect);
        CHECK(strstr(vidattn_cpu_features(), want) != NULL, "fp32 kernels are %s: %s", expect, vidattn_cpu_features());
    }
    vidattn_model_free(NULL);
    vidattn_output_free(NULL);
    for (int i = 3; i < argc; i++) check_model(argv[1], argv[2], argv[i]);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
