/* classify.c — classify a clip with a vidattn checkpoint.
 *
 *   classify MODEL_DIR FRAMES.rgb WIDTH HEIGHT [TOP_K]
 *
 * FRAMES.rgb holds decoded frames as raw RGB24 bytes, one after another, e.g. from
 *   ffmpeg -i clip.mp4 -f rawvideo -pix_fmt rgb24 frames.rgb
 * The program samples the frames the model wants uniformly, preprocesses them per the
 * checkpoint's preprocessor_config.json, runs the model and prints the top classes with
 * the labels of config.json. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <vidattn.h>

static int fail(const char *what, vidattn_status s) {
    fprintf(stderr, "%s: %s: %s\n", what, vidattn_status_string(s), vidattn_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: %s MODEL_DIR FRAMES.rgb WIDTH HEIGHT [TOP_K]\n", argv[0]); return 2; }
    int64_t w = atoll(argv[3]), h = atoll(argv[4]), top = argc > 5 ? atoll(argv[5]) : 5;
    if (w <= 0 || h <= 0 || top <= 0) { fprintf(stderr, "WIDTH, HEIGHT and TOP_K must be positive\n"); return 2; }

    /* Read every frame. */
    FILE *f = fopen(argv[2], "rb");
    if (!f) { perror(argv[2]); return 1; }
    fseek(f, 0, SEEK_END);
    long bytes = ftell(f);
    fseek(f, 0, SEEK_SET);
    int64_t frame_bytes = w * h * 3, available = bytes / frame_bytes;
    if (available < 1) { fprintf(stderr, "%s holds no whole %lldx%lld frame\n", argv[2], (long long)w, (long long)h); return 1; }
    unsigned char *all = malloc((size_t)(available * frame_bytes));
    if (!all || fread(all, 1, (size_t)(available * frame_bytes), f) != (size_t)(available * frame_bytes)) {
        fprintf(stderr, "cannot read %s\n", argv[2]); return 1;
    }
    fclose(f);

    vidattn_model *model = NULL;
    vidattn_status s = vidattn_model_load(argv[1], NULL, &model);
    if (s != VIDATTN_OK) return fail("load", s);

    /* Sample the frames the model wants, uniformly (the centre of each segment). */
    int64_t t = vidattn_model_num_frames(model);
    if (t <= 0) t = available;
    unsigned char *clip = malloc((size_t)(t * frame_bytes));
    for (int64_t i = 0; i < t; i++) {
        int64_t src = (int64_t)((i + 0.5) * (double)available / (double)t);
        if (src >= available) src = available - 1;
        for (int64_t b = 0; b < frame_bytes; b++) clip[i * frame_bytes + b] = all[src * frame_bytes + b];
    }
    int64_t ph, pw;
    if ((s = vidattn_model_input_size(model, h, w, &ph, &pw)) != VIDATTN_OK) return fail("input size", s);
    int64_t n = t * 3 * ph * pw;
    float *pixels = malloc(sizeof(float) * (size_t)n);
    if ((s = vidattn_model_preprocess(model, clip, t, h, w, pixels, n)) != VIDATTN_OK) return fail("preprocess", s);

    vidattn_output *out = NULL;
    if ((s = vidattn_model_forward(model, pixels, 1, t, 3, ph, pw, NULL, &out)) != VIDATTN_OK) return fail("forward", s);
    int64_t labels = vidattn_model_num_labels(model);
    float *logits = malloc(sizeof(float) * (size_t)labels);
    if ((s = vidattn_output_copy(out, VIDATTN_OUT_LOGITS, 0, logits, labels)) != VIDATTN_OK) return fail("logits", s);

    /* Softmax, then the top classes. */
    double mx = -INFINITY, sum = 0;
    for (int64_t i = 0; i < labels; i++) mx = fmax(mx, logits[i]);
    for (int64_t i = 0; i < labels; i++) sum += exp(logits[i] - mx);
    printf("%s: %lld frames of %lldx%lld -> %lld x %lldx%lld\n", vidattn_model_type(model), (long long)available,
           (long long)w, (long long)h, (long long)t, (long long)pw, (long long)ph);
    for (int64_t k = 0; k < top && k < labels; k++) {
        int64_t best = -1;
        for (int64_t i = 0; i < labels; i++)
            if (logits[i] > -INFINITY && (best < 0 || logits[i] > logits[best])) best = i;
        const char *name = vidattn_model_label(model, best);
        printf("%2lld. %-24s %6.2f%%\n", (long long)(k + 1), name ? name : "?", 100.0 * exp(logits[best] - mx) / sum);
        logits[best] = -INFINITY;
    }
    vidattn_output_free(out);
    vidattn_model_free(model);
    free(all); free(clip); free(pixels); free(logits);
    return 0;
}
