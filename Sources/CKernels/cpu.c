// CPU feature detection: CPUID for what the processor has, XCR0 for what the OS
// saves on a context switch, and Linux's arch_prctl for the AMX tile data permission.
#define _GNU_SOURCE
#include "ckernels.h"

#include <cpuid.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ARCH_GET_XCOMP_PERM 0x1022
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

static vidattn_cpu_info info;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static int amx_permission(void) {
    unsigned long bits = 0;
    if (syscall(SYS_arch_prctl, ARCH_GET_XCOMP_PERM, &bits) == 0 && (bits & (1ul << XFEATURE_XTILEDATA)))
        return 1;
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0) return 0;
    bits = 0;
    if (syscall(SYS_arch_prctl, ARCH_GET_XCOMP_PERM, &bits) != 0) return 0;
    return (bits & (1ul << XFEATURE_XTILEDATA)) != 0;
}

static void detect(void) {
    unsigned a, b, c, d;
    memset(&info, 0, sizeof info);
    unsigned maxLeaf = __get_cpuid_max(0, NULL);
    if (maxLeaf < 1) return;
    __cpuid(0, a, b, c, d);
    info.vendor_intel = b == 0x756e6547 && d == 0x49656e69 && c == 0x6c65746e;   // "Genu" "ineI" "ntel"
    __cpuid(1, a, b, c, d);
    int osxsave = (c >> 27) & 1;
    info.fma = (c >> 12) & 1;
    info.f16c = (c >> 29) & 1;
    int avx = (c >> 28) & 1;
    uint64_t xcr0 = osxsave ? xgetbv0() : 0;
    info.os_avx = avx && (xcr0 & 0x6) == 0x6;
    info.os_avx512 = info.os_avx && (xcr0 & 0xe0) == 0xe0;
    info.os_amx = (xcr0 & 0x60000) == 0x60000;
    if (maxLeaf >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        info.avx2 = info.os_avx && ((b >> 5) & 1);
        info.avx512f = info.os_avx512 && ((b >> 16) & 1);
        info.avx512dq = info.os_avx512 && ((b >> 17) & 1);
        info.avx512bw = info.os_avx512 && ((b >> 30) & 1);
        info.avx512vl = info.os_avx512 && ((b >> 31) & 1);
        info.avx512_vnni = info.os_avx512 && ((c >> 11) & 1);
        info.amx_bf16 = info.os_amx && ((d >> 22) & 1);
        info.amx_tile = info.os_amx && ((d >> 24) & 1);
        info.amx_int8 = info.os_amx && ((d >> 25) & 1);
        __cpuid_count(7, 1, a, b, c, d);
        info.avx_vnni = info.os_avx && ((a >> 4) & 1);
        info.avx512_bf16 = info.os_avx512 && ((a >> 5) & 1);
    }
    info.fma = info.fma && info.os_avx;
    if (info.amx_tile) info.amx_permitted = amx_permission();
    unsigned ext = __get_cpuid_max(0x80000000, NULL);
    if (ext >= 0x80000004) {
        unsigned *w = (unsigned *)info.brand;
        for (unsigned leaf = 0; leaf < 3; leaf++) __cpuid(0x80000002 + leaf, w[4 * leaf], w[4 * leaf + 1], w[4 * leaf + 2], w[4 * leaf + 3]);
        info.brand[48] = 0;
    }
    long l1 = sysconf(_SC_LEVEL1_DCACHE_SIZE), l2 = sysconf(_SC_LEVEL2_CACHE_SIZE), l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    info.l1d = l1 > 0 ? l1 : 0;
    info.l2 = l2 > 0 ? l2 : 0;
    info.l3 = l3 > 0 ? l3 : 0;
}

const vidattn_cpu_info *vidattn_cpu_detect(void) {
    pthread_once(&once, detect);
    return &info;
}
