// Shared inline math of the C kernels, compiled once per kernel set (dispatch.c): not part of the public header. Loops are written so that clang vectorises
// them without -ffast-math: reductions keep 16 independent partial sums, and exp is a branch-free polynomial.
#ifndef EXTRAPOLATE_CK_MATH_H
#define EXTRAPOLATE_CK_MATH_H

#include <float.h>
#include <math.h>
#include <string.h>

#define LANES 16

static inline long min_l(long a, long b) { return a < b ? a : b; }
static inline long max_l(long a, long b) { return a > b ? a : b; }

// exp(x) = 2^n · exp(r) with n = round(x / ln 2) and |r| ≤ ln 2 / 2 (Cody–Waite: ln 2 in two parts, so r is exact
// enough). n comes from adding 1.5·2^23 + 127, which rounds x·log2(e) to an integer in the low mantissa bits already
// biased by 127: shifting those bits up by 23 is the float 2^n, with no float-to-integer conversion. exp(r) is
// 1 + r + r²·q(r), q of degree 4 fitted for relative error by `Tests/Fixtures/make_exp_coefficients.py` (3.6e-9
// relative on the interval; its float32 simulation of these steps is within 1.16 ulp of double-precision exp).
// Clamped to [-87.3, 88.3], where 2^n stays a normal float: inputs below return ~1e-38 instead of 0, which no sum it
// enters can tell apart. Thirteen vector operations where the Cephes form this replaced took seventeen: exp is what
// the attention tile spends on top of its two products.
#define CK_EXP_LOG2E 1.44269504088896341f
#define CK_EXP_MAGIC 12583039.0f // 1.5·2^23 + 127
#define CK_EXP_LN2_HI 0.693359375f
#define CK_EXP_LN2_LO -2.12194440e-4f
#define CK_EXP_C2 0.49999988079071045f
#define CK_EXP_C3 0.166665181517601f
#define CK_EXP_C4 0.04166953265666962f
#define CK_EXP_C5 0.008368918672204018f
#define CK_EXP_C6 0.00137514085508883f

/// `return`s p · 2ⁿ, n being the integer the magic-number addition left in the low mantissa bits of `k` (already
/// biased by 127): shifted up by 23 they are the float 2ⁿ.
#define CK_EXP_RETURN_SCALED(FLOAT, BITS, k, p)                                                                       \
    BITS bits;                                                                                                      \
    memcpy(&bits, &(k), sizeof bits);                                                                               \
    bits <<= 23;                                                                                                    \
    FLOAT scale;                                                                                                    \
    memcpy(&scale, &bits, sizeof scale);                                                                            \
    return (p) * scale

/// The steps of exp on an already clamped `x`, written once for both the scalar (`float`, `unsigned`) and the
/// 16-lane (`v16f`, `v16u`) types, so that both compute the same numbers: `return`s 2ⁿ·exp(r).
#define CK_EXP_STEPS(FLOAT, BITS, x)                                                                                  \
    const FLOAT k = (x) * CK_EXP_LOG2E + CK_EXP_MAGIC;                                                              \
    const FLOAT n = k - CK_EXP_MAGIC;                                                                               \
    FLOAT r = (x) - n * CK_EXP_LN2_HI;                                                                              \
    r = r - n * CK_EXP_LN2_LO;                                                                                      \
    FLOAT p = r * CK_EXP_C6 + CK_EXP_C5;                                                                            \
    p = p * r + CK_EXP_C4;                                                                                          \
    p = p * r + CK_EXP_C3;                                                                                          \
    p = p * r + CK_EXP_C2;                                                                                          \
    p = p * r + 1.0f;                                                                                               \
    p = p * r + 1.0f;                                                                                               \
    CK_EXP_RETURN_SCALED(FLOAT, BITS, k, p)

// 2^x for the attention tile, whose scores are kept in base 2 (scaled by log2 e) so that exp needs no multiply:
// 2^x = 2^n · 2^f with n = round(x) from the same magic-number addition as above and f = x − n exact, |f| ≤ 1/2;
// 2^f = 1 + f·P(f), P of degree 5 fitted for relative error by `Tests/Fixtures/make_exp_coefficients.py`
// (2.2e-9 relative on the interval). Twelve vector operations with the clamp, where exp(x − m) took fourteen.
// Inputs below −125 are clamped there: 2^n stays a normal float.
#define CK_LOG2E 1.44269504088896341f
#define CK_EXP2_C1 0.6931471824645996f
#define CK_EXP2_C2 0.24022647738456726f
#define CK_EXP2_C3 0.05550329014658928f
#define CK_EXP2_C4 0.009618373587727547f
#define CK_EXP2_C5 0.001339985290542245f
#define CK_EXP2_C6 0.00015370710752904415f

/// The steps of 2^x on an already clamped `x`, for scalars and 16 lanes alike (as CK_EXP_STEPS).
#define CK_EXP2_STEPS(FLOAT, BITS, x)                                                                                 \
    const FLOAT k = (x) + CK_EXP_MAGIC;                                                                             \
    const FLOAT n = k - CK_EXP_MAGIC;                                                                               \
    const FLOAT f = (x) - n;                                                                                        \
    FLOAT p = f * CK_EXP2_C6 + CK_EXP2_C5;                                                                          \
    p = p * f + CK_EXP2_C4;                                                                                         \
    p = p * f + CK_EXP2_C3;                                                                                         \
    p = p * f + CK_EXP2_C2;                                                                                         \
    p = p * f + CK_EXP2_C1;                                                                                         \
    p = p * f + 1.0f;                                                                                               \
    CK_EXP_RETURN_SCALED(FLOAT, BITS, k, p)

/// 2^x for x ≤ 0 (a base-2 softmax's x − max), to about 1 ulp.
static inline float ck_exp2f_nonpositive(float x) {
    x = x < -125.0f ? -125.0f : x;
    CK_EXP2_STEPS(float, unsigned, x);
}

/// exp(x) to about 1 ulp on [-87.3, 88.3].
static inline float ck_expf(float x) {
    x = x < -87.3f ? -87.3f : (x > 88.3f ? 88.3f : x);
    CK_EXP_STEPS(float, unsigned, x);
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

/// Σ of 16 double lanes as a fixed tree (8 + 8, 4 + 4, …): the same sum on every kernel set.
static inline double sum_lanes_d(const double *lanes) {
    double t[8];
    for (int u = 0; u < 8; u++) t[u] = lanes[u] + lanes[u + 8];
    for (int u = 0; u < 4; u++) t[u] += t[u + 4];
    return (t[0] + t[2]) + (t[1] + t[3]);
}

/// Σ (x[c] − shift)ᵖ for p = 1 or 2, in double: 16 independent lanes (which vectorise without reassociating
/// anything) folded by `sum_lanes_d`, then the tail. A single double chain waited 4 cycles per element.
static inline double sum_power_d(const float *x, long n, double shift, int power) {
    double lanes[LANES] = {0};
    long c = 0;
    for (; c + LANES <= n; c += LANES)
        for (int u = 0; u < LANES; u++) {
            const double d = (double)x[c + u] - shift;
            lanes[u] += power == 2 ? d * d : d;
        }
    double total = sum_lanes_d(lanes);
    for (; c < n; c++) {
        const double d = (double)x[c] - shift;
        total += power == 2 ? d * d : d;
    }
    return total;
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
typedef unsigned v16u __attribute__((vector_size(64)));

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

/// ck_exp2f_nonpositive on 16 lanes: the same steps, where AVX-512 takes two instructions fewer (vreduceps gives
/// f = x − round(x) in one, vscalefps multiplies by 2^n without building its bits).
static inline v16f ck_exp2_16_nonpositive(v16f x) {
    x = max16(x, splat16(-125.0f));
#if defined(CK_AVX512_EXP2)
    const v16f f = (v16f)_mm512_reduce_ps((__m512)x, 0);
    const v16f n = x - f;
    v16f p = f * CK_EXP2_C6 + CK_EXP2_C5;
    p = p * f + CK_EXP2_C4;
    p = p * f + CK_EXP2_C3;
    p = p * f + CK_EXP2_C2;
    p = p * f + CK_EXP2_C1;
    p = p * f + 1.0f;
    return (v16f)_mm512_scalef_ps((__m512)p, (__m512)n);
#else
    CK_EXP2_STEPS(v16f, v16u, x);
#endif
}

#endif
