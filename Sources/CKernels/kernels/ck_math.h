// Shared inline math of the C kernels, compiled once per kernel set (dispatch.c): not part of the public header. Loops are written so that clang vectorises
// them without -ffast-math: reductions keep 16 independent partial sums, and exp is a branch-free polynomial
// (Cephes expf coefficients).
#ifndef EXTRAPOLATE_CK_MATH_H
#define EXTRAPOLATE_CK_MATH_H

#include <float.h>
#include <math.h>
#include <string.h>

#define LANES 16

static inline long min_l(long a, long b) { return a < b ? a : b; }
static inline long max_l(long a, long b) { return a > b ? a : b; }

/// exp(x) to about 1 ulp on [-87, 88]; inputs below -87.3 return ~1e-38 instead of 0.
static inline float ck_expf(float x) {
    x = x < -87.3f ? -87.3f : (x > 88.3f ? 88.3f : x);
    float n = floorf(x * 1.44269504088896341f + 0.5f);
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = p * r * r + r + 1.0f;
    int bits = ((int)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return y * scale;
}

/// erf(x) by Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7 in exact arithmetic, 4.1e-7 measured in fp32), branch-free
/// so that loops over it vectorise; libm's erff is a call per element. Used inside GELU, 0.5·x·(1 + erf(x/√2)),
/// where the absolute error is what matters.
static inline float ck_erff(float x) {
    const float a = fabsf(x);
    const float t = 1.0f / (1.0f + 0.3275911f * a);
    float p = 1.061405429f;
    p = p * t - 1.453152027f;
    p = p * t + 1.421413741f;
    p = p * t - 0.284496736f;
    p = p * t + 0.254829592f;
    const float y = 1.0f - p * t * ck_expf(-a * a);
    return copysignf(y, x);
}

static inline float max_of(const float *x, long n) {
    float lanes[LANES];
    for (int u = 0; u < LANES; u++) lanes[u] = -INFINITY;
    long c = 0;
    for (; c + LANES <= n; c += LANES)
        for (int u = 0; u < LANES; u++) lanes[u] = x[c + u] > lanes[u] ? x[c + u] : lanes[u];
    float m = -INFINITY;
    for (int u = 0; u < LANES; u++) m = lanes[u] > m ? lanes[u] : m;
    for (; c < n; c++) m = x[c] > m ? x[c] : m;
    return m;
}

/// Sixteen floats as one value: clang lowers the operations to one zmm register with AVX-512, two ymm with AVX2,
/// four xmm on the baseline, so the same source serves every kernel set (`dispatch.c`).
typedef float v16f __attribute__((vector_size(64)));
typedef int v16i __attribute__((vector_size(64)));

static inline v16f load16(const float *p) { v16f v; memcpy(&v, p, sizeof v); return v; }
static inline void store16(float *p, v16f v) { memcpy(p, &v, sizeof v); }
static inline v16f splat16(float x) { return (v16f){0} + x; }
static inline v16f max16(v16f a, v16f b) { return __builtin_elementwise_max(a, b); }

/// Σ of the 16 lanes, as a tree (8 + 8, 4 + 4, …).
static inline float sum16(v16f v) {
    const v16f a = v + __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
    const v16f b = a + __builtin_shufflevector(a, a, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3);
    const v16f c = b + __builtin_shufflevector(b, b, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1);
    return c[0] + c[1];
}

/// The largest of the 16 lanes.
static inline float max_lane16(v16f v) {
    const v16f a = max16(v, __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7));
    const v16f b = max16(a, __builtin_shufflevector(a, a, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3));
    const v16f c = max16(b, __builtin_shufflevector(b, b, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1));
    return c[0] > c[1] ? c[0] : c[1];
}

/// ck_expf on 16 lanes: the same polynomial and the same power-of-two construction.
static inline v16f ck_exp16(v16f x) {
    x = __builtin_elementwise_min(max16(x, splat16(-87.3f)), splat16(88.3f));
    const v16f n = __builtin_elementwise_floor(x * 1.44269504088896341f + 0.5f);
    v16f r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    v16f p = splat16(1.9875691500e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    const v16f y = p * r * r + r + 1.0f;
    const v16i bits = (__builtin_convertvector(n, v16i) + 127) << 23;
    v16f scale;
    memcpy(&scale, &bits, sizeof scale);
    return y * scale;
}

#endif
