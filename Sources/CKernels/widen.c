// Widening 16-bit weights (bfloat16, IEEE half) to fp32 — exact: every 16-bit value is an fp32 value. Models kept at
// their stored precision widen each matrix just before the product that reads it, so this runs once per matrix per
// pass and must go at memory speed. bfloat16 is the upper half of an fp32 and compiles to vector shifts on any
// x86-64; half uses F16C's vcvtph2ps where the CPU has it (cpuid, once), else an exact portable conversion.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "ckernels.h"
#if defined(__x86_64__)
#include <immintrin.h>
#endif

void ck_widen_bf16(const uint16_t *x, float *y, long n) {
    uint32_t *out = (uint32_t *)y;
    for (long i = 0; i < n; i++) out[i] = (uint32_t)x[i] << 16;
}

/// One IEEE half as fp32: normal numbers re-biased, subnormals scaled exactly (m · 2⁻²⁴ is an fp32), infinities and
/// NaNs keep their payload with the exponent widened.
static inline float ck_half_to_float(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    const uint32_t exponent = (h >> 10) & 0x1f;
    const uint32_t mantissa = h & 0x3ff;
    uint32_t bits;
    if (exponent == 0x1f) {
        bits = sign | 0x7f800000u | (mantissa << 13);
    } else if (exponent == 0) {
        float magnitude = (float)mantissa * 0x1p-24f;
        memcpy(&bits, &magnitude, 4);
        bits |= sign;
    } else {
        bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
    }
    float value;
    memcpy(&value, &bits, 4);
    return value;
}

static void ck_widen_f16_portable(const uint16_t *x, float *y, long n) {
    for (long i = 0; i < n; i++) y[i] = ck_half_to_float(x[i]);
}

#if defined(__x86_64__)
__attribute__((target("avx,f16c"))) static void ck_widen_f16_f16c(const uint16_t *x, float *y, long n) {
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(x + i));
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(h));
    }
    for (; i < n; i++) y[i] = ck_half_to_float(x[i]);
}
#endif

void ck_widen_f16(const uint16_t *x, float *y, long n) {
#if defined(__x86_64__)
    static int f16c = -1;
    if (f16c < 0) {
        __builtin_cpu_init();
        const char *forced = getenv("EXTRAPOLATE_KERNELS");
        f16c = __builtin_cpu_supports("f16c") && !(forced && strcmp(forced, "generic") == 0);
    }
    if (f16c) {
        ck_widen_f16_f16c(x, y, n);
        return;
    }
#endif
    ck_widen_f16_portable(x, y, n);
}
