/* libFuzzer target over the C API: the input becomes a checkpoint directory's
 * model.safetensors (FUZZ_FILE=weights, default: the safetensors reader), its config.json
 * (FUZZ_FILE=config: the JSON parser and the architectures' config checks) or the
 * model.safetensors.index.json of a sharded checkpoint (FUZZ_FILE=index), next to valid
 * counterparts; vidattn_model_load must return a status, never crash, and a loaded model
 * must run a forward. Build and run: make fuzz. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <vidattn.h>

static char dir[256];
static const char *which;

static void write_file(const char *name, const uint8_t *data, size_t size) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    fwrite(data, 1, size, f);
    fclose(f);
}

static void copy_from(const char *src, const char *name) {
    FILE *f = fopen(src, "rb");
    if (!f) { fprintf(stderr, "cannot open %s\n", src); abort(); }
    static uint8_t buf[1 << 22];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    write_file(name, buf, n);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc; (void)argv;
    snprintf(dir, sizeof dir, "/tmp/vidattn-fuzz-%d", (int)getpid());
    char cmd[300];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
    if (system(cmd) != 0) abort();
    which = getenv("FUZZ_FILE") ? getenv("FUZZ_FILE") : "weights";
    int index = strcmp(which, "index") == 0;
    const char *base = getenv("FUZZ_BASE") ? getenv("FUZZ_BASE")
                     : index ? "tests/fixtures/models/vivit_sharded" : "tests/fixtures/models/vivit";
    char path[512], name[64];
    snprintf(path, sizeof path, "%s/config.json", base);
    copy_from(path, "config.json");
    if (index) {
        for (int i = 1; i <= 3; i++) {
            snprintf(name, sizeof name, "model-%05d-of-00003.safetensors", i);
            snprintf(path, sizeof path, "%s/%s", base, name);
            copy_from(path, name);
        }
    } else {
        snprintf(path, sizeof path, "%s/model.safetensors", base);
        copy_from(path, "model.safetensors");
    }
    vidattn_set_num_threads(1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    write_file(!strcmp(which, "config") ? "config.json" : !strcmp(which, "index") ? "model.safetensors.index.json"
                                                                                : "model.safetensors", data, size);
    vidattn_model *m = NULL;
    vidattn_status s = vidattn_model_load(dir, NULL, &m);
    if (s == VIDATTN_OK) {
        float px[4 * 3 * 32 * 32] = {0};
        vidattn_output *out = NULL;
        if (vidattn_model_forward(m, px, 1, 4, 3, 32, 32, NULL, &out) == VIDATTN_OK) vidattn_output_free(out);
        vidattn_model_free(m);
    } else if (m != NULL || vidattn_last_error()[0] == 0) {
        abort();   /* an error must leave *out NULL and say why */
    }
    return 0;
}
