// See ckernels.h. Loops are written so that clang vectorises them without -ffast-math: reductions keep
// 16 independent partial sums, and exp is a branch-free polynomial (Cephes expf coefficients).
#include "ckernels.h"

#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK_Q 64
#define BLOCK_K 64
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

void ck_erf(const float *x, float *y, long n) {
    for (long i = 0; i < n; i++) y[i] = ck_erff(x[i]);
}

void ck_exp(const float *x, float *y, long n) {
    for (long i = 0; i < n; i++) y[i] = ck_expf(x[i]);
}

static float max_of(const float *x, long n) {
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

/// x[c] = exp(x[c] - shift); returns the sum.
static float exp_shift_sum(float *x, long n, float shift) {
    float lanes[LANES] = {0};
    long c = 0;
    for (; c + LANES <= n; c += LANES)
        for (int u = 0; u < LANES; u++) {
            float p = ck_expf(x[c + u] - shift);
            x[c + u] = p;
            lanes[u] += p;
        }
    float sum = 0;
    for (; c < n; c++) {
        float p = ck_expf(x[c] - shift);
        x[c] = p;
        sum += p;
    }
    for (int u = 0; u < LANES; u++) sum += lanes[u];
    return sum;
}

/// ck_expf on 16 lanes: the same polynomial, with the power of two applied by vscalefps.
static inline __m512 ck_exp512(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.3f));
    const __m512 n = _mm512_roundscale_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), _mm512_set1_ps(0.5f)),
                                          _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    const __m512 y = _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(p, r), r, r), _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(y, n);
}

/// One full row of a 64-key tile: s[c] = exp(s[c] − m) with m = max(previous, max_c s[c]); returns Σ s[c], and m
/// through `max_out`. Four zmm registers, tree reductions: the per-row scalar work of the general path is what
/// dominated the tile's softmax.
static inline float softmax_row64(float *s, float previous, float *max_out) {
    const __m512 x0 = _mm512_load_ps(s), x1 = _mm512_load_ps(s + 16), x2 = _mm512_load_ps(s + 32),
                 x3 = _mm512_load_ps(s + 48);
    const float block_max = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(x0, x1), _mm512_max_ps(x2, x3)));
    const float m = block_max > previous ? block_max : previous;
    const __m512 mv = _mm512_set1_ps(m);
    const __m512 p0 = ck_exp512(_mm512_sub_ps(x0, mv)), p1 = ck_exp512(_mm512_sub_ps(x1, mv)),
                 p2 = ck_exp512(_mm512_sub_ps(x2, mv)), p3 = ck_exp512(_mm512_sub_ps(x3, mv));
    _mm512_store_ps(s, p0);
    _mm512_store_ps(s + 16, p1);
    _mm512_store_ps(s + 32, p2);
    _mm512_store_ps(s + 48, p3);
    *max_out = m;
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(p0, p1), _mm512_add_ps(p2, p3)));
}

/// Adds one tile's row to the running online-softmax state: `m` is the row's new maximum (≥ the previous one) and
/// `sum` the tile's Σ exp(s − m). When the maximum moved, what was summed so far is rescaled by exp(previous − m).
static inline void update_row(float *acc_row, long hs, float *row_max, float *row_sum, float m, float sum) {
    const float previous = *row_max;
    if (m == previous) {
        *row_sum += sum;
        return;
    }
    const float correction = previous == -INFINITY ? 0.0f : expf(previous - m);
    for (long e = 0; e < hs; e++) acc_row[e] *= correction;
    *row_sum = *row_sum * correction + sum;
    *row_max = m;
}

/// S[r][0..64) = scale · Σ_e q_r[e] · kt[e][0..64) for 4 query rows (register tile: 16 zmm accumulators).
static inline void qk_tile(float *s, const float *const q[4], const float *kt, long hs, float scale) {
    __m512 acc[4][4];
    for (int r = 0; r < 4; r++)
        for (int i = 0; i < 4; i++) acc[r][i] = _mm512_setzero_ps();
    for (long e = 0; e < hs; e++) {
        const float *ke = kt + e * BLOCK_K;
        const __m512 k0 = _mm512_load_ps(ke), k1 = _mm512_load_ps(ke + 16), k2 = _mm512_load_ps(ke + 32),
                     k3 = _mm512_load_ps(ke + 48);
        for (int r = 0; r < 4; r++) {
            const __m512 b = _mm512_set1_ps(q[r][e]);
            acc[r][0] = _mm512_fmadd_ps(b, k0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(b, k1, acc[r][1]);
            acc[r][2] = _mm512_fmadd_ps(b, k2, acc[r][2]);
            acc[r][3] = _mm512_fmadd_ps(b, k3, acc[r][3]);
        }
    }
    const __m512 sc = _mm512_set1_ps(scale);
    for (int r = 0; r < 4; r++)
        for (int i = 0; i < 4; i++) _mm512_store_ps(s + r * BLOCK_K + 16 * i, _mm512_mul_ps(acc[r][i], sc));
}

/// o_r[e0..e0+64) += Σ_c p_r[c] · v_c[e0..e0+64) for 4 rows; lanes past hs are masked.
static inline void pv_tile(float *o, long o_stride, const float *p, const float *v, long v_stride, long n, long e0, long hs) {
    __mmask16 mask[4];
    for (int i = 0; i < 4; i++) {
        const long lanes = hs - e0 - 16 * i;
        mask[i] = lanes >= 16 ? (__mmask16)0xFFFF : (lanes <= 0 ? (__mmask16)0 : (__mmask16)((1u << lanes) - 1));
    }
    __m512 acc[4][4];
    for (int r = 0; r < 4; r++)
        for (int i = 0; i < 4; i++) acc[r][i] = _mm512_maskz_loadu_ps(mask[i], o + r * o_stride + e0 + 16 * i);
    for (long c = 0; c < n; c++) {
        const float *vc = v + c * v_stride + e0;
        const __m512 v0 = _mm512_maskz_loadu_ps(mask[0], vc), v1 = _mm512_maskz_loadu_ps(mask[1], vc + 16),
                     v2 = _mm512_maskz_loadu_ps(mask[2], vc + 32), v3 = _mm512_maskz_loadu_ps(mask[3], vc + 48);
        for (int r = 0; r < 4; r++) {
            const __m512 b = _mm512_set1_ps(p[r * BLOCK_K + c]);
            acc[r][0] = _mm512_fmadd_ps(b, v0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(b, v1, acc[r][1]);
            acc[r][2] = _mm512_fmadd_ps(b, v2, acc[r][2]);
            acc[r][3] = _mm512_fmadd_ps(b, v3, acc[r][3]);
        }
    }
    for (int r = 0; r < 4; r++)
        for (int i = 0; i < 4; i++) _mm512_mask_storeu_ps(o + r * o_stride + e0 + 16 * i, mask[i], acc[r][i]);
}

void ck_pack_keys(const float *k, long k_stride, long length, long hs, float *out) {
    for (long j0 = 0; j0 < length; j0 += BLOCK_K) {
        const long nk = min_l(BLOCK_K, length - j0);
        float *block = out + (j0 / BLOCK_K) * hs * BLOCK_K;
        for (long c = 0; c < nk; c++) {
            const float *row = k + (j0 + c) * k_stride;
            for (long e = 0; e < hs; e++) block[e * BLOCK_K + c] = row[e];
        }
        for (long e = 0; e < hs; e++)
            for (long c = nk; c < BLOCK_K; c++) block[e * BLOCK_K + c] = 0;
    }
}

int ck_attention_rows(const ck_attention_args *a, long row_begin, long row_end) {
    const long hs = a->head_width;
    const long window = a->window;
    const long hidden = a->bias_kind == CK_BIAS_FIRE ? a->fire_hidden : 0;
    const long hs_padded = (hs + 63) / 64 * 64;
    const size_t floats = (size_t)(BLOCK_Q * BLOCK_K + BLOCK_Q * hs_padded + 2 * BLOCK_Q + 2 * BLOCK_K);
    float *scratch = aligned_alloc(64, (floats * sizeof(float) + 63) / 64 * 64);
    if (!scratch) return -1;
    float *scores = scratch;                      // [BLOCK_Q][BLOCK_K]
    float *acc = scores + BLOCK_Q * BLOCK_K;      // [BLOCK_Q][hs_padded]
    float *row_max = acc + BLOCK_Q * hs_padded;
    float *row_sum = row_max + BLOCK_Q;
    float *fire_x = row_sum + BLOCK_Q;
    float *fire_tmp = fire_x + BLOCK_K;

    for (long i0 = row_begin; i0 < row_end; i0 += BLOCK_Q) {
        const long i1 = min_l(i0 + BLOCK_Q, row_end);
        const long nq = i1 - i0;
        const long groups = (nq + 3) / 4;
        for (long r = 0; r < BLOCK_Q; r++) { row_max[r] = -INFINITY; row_sum[r] = 0; }
        memset(acc, 0, sizeof(float) * (size_t)(BLOCK_Q * hs_padded));
        const long j_first = window > 0 ? max_l(0, i0 - window + 1) / BLOCK_K * BLOCK_K : 0;

        for (long j0 = j_first; j0 < i1; j0 += BLOCK_K) {
            const long nk = min_l(BLOCK_K, i1 - j0);
            const float *keys = a->k_packed + (j0 / BLOCK_K) * hs * BLOCK_K;   // columns past i1 are masked below
            for (long g = 0; g < groups; g++) {
                const float *q[4];
                for (int u = 0; u < 4; u++) q[u] = a->q + min_l(i0 + 4 * g + u, i1 - 1) * a->q_stride;
                qk_tile(scores + 4 * g * BLOCK_K, q, keys, hs, a->scale);
            }
            // Every row sees all 64 keys of this tile (below the diagonal, inside any window), and no per-tile MLP:
            // the tight loop below, whose constants stay in registers, instead of the general one.
            const int full = nk == BLOCK_K && j0 + BLOCK_K <= i0 && (window == 0 || j0 >= i1 - window) &&
                             a->bias_kind != CK_BIAS_FIRE;
            if (full) {
                for (long r = 0; r < nq; r++) {
                    float *s = scores + r * BLOCK_K;
                    if (a->bias_kind == CK_BIAS_DISTANCE) {
                        const float *bias = a->distance_bias + (i0 + r - j0);   // bias of column c: bias[-c]
                        for (long c = 0; c < BLOCK_K; c++) s[c] += bias[-c];
                    }
                    float m;
                    const float sum = softmax_row64(s, row_max[r], &m);
                    update_row(acc + r * hs_padded, hs, &row_max[r], &row_sum[r], m, sum);
                }
                for (long r = nq; r < groups * 4; r++) memset(scores + r * BLOCK_K, 0, sizeof(float) * BLOCK_K);
            }
            for (long r = 0; !full && r < groups * 4; r++) {
                float *s = scores + r * BLOCK_K;
                const long i = i0 + r;
                const long c_end = r < nq ? min_l(nk, i - j0 + 1) : 0;
                const long c_begin = window > 0 ? max_l(0, i - window + 1 - j0) : 0;
                if (c_end <= c_begin) {                 // nothing visible in this block: contributes nothing
                    for (long c = 0; c < BLOCK_K; c++) s[c] = 0;
                    continue;
                }
                const long n = c_end - c_begin;
                float *sv = s + c_begin;
                const long d0 = i - (j0 + c_begin);     // distance of column c_begin + c is d0 - c
                if (a->bias_kind == CK_BIAS_DISTANCE) {
                    const float *bias = a->distance_bias;
                    for (long c = 0; c < n; c++) sv[c] += bias[d0 - c];
                } else if (a->bias_kind == CK_BIAS_FIRE) {
                    const float inv = a->inverse_normalizer[i];
                    for (long c = 0; c < n; c++) fire_x[c] = a->log_distance[d0 - c] * inv;
                    const float b2 = a->fire_b2;
                    for (long c = 0; c < n; c++) fire_tmp[c] = b2;
                    for (long h = 0; h < hidden; h++) {
                        const float w1 = a->fire_w1[h], b1 = a->fire_b1[h], w2 = a->fire_w2[h];
                        for (long c = 0; c < n; c++) {
                            const float z = w1 * fire_x[c] + b1;
                            fire_tmp[c] += w2 * (z > 0 ? z : 0);
                        }
                    }
                    for (long c = 0; c < n; c++) sv[c] += fire_tmp[c];
                }
                const float previous = row_max[r];
                float m, sum;
                if (n == BLOCK_K) {                     // every key of the tile visible: the common case
                    sum = softmax_row64(s, previous, &m);
                } else {
                    const float block_max = max_of(sv, n);
                    m = block_max > previous ? block_max : previous;
                    sum = exp_shift_sum(sv, n, m);
                    for (long c = 0; c < c_begin; c++) s[c] = 0;
                    for (long c = c_end; c < BLOCK_K; c++) s[c] = 0;
                }
                update_row(acc + r * hs_padded, hs, &row_max[r], &row_sum[r], m, sum);
            }
            const float *v = a->v + j0 * a->v_stride;
            for (long g = 0; g < groups; g++)
                for (long e0 = 0; e0 < hs; e0 += 64)
                    pv_tile(acc + 4 * g * hs_padded, hs_padded, scores + 4 * g * BLOCK_K, v, a->v_stride, nk, e0, hs);
        }
        for (long r = 0; r < nq; r++) {
            float *o = a->out + (i0 + r) * a->out_stride;
            const float *ar = acc + r * hs_padded;
            const float inv = row_sum[r] > 0 ? 1.0f / row_sum[r] : 0.0f;
            for (long e = 0; e < hs; e++) o[e] = ar[e] * inv;
        }
    }
    free(scratch);
    return 0;
}

void ck_layer_norm(float *x, long rows, long width, long stride, const float *gamma, const float *beta, float eps) {
    for (long r = 0; r < rows; r++) {
        float *row = x + r * stride;
        double mean = 0;
        for (long c = 0; c < width; c++) mean += row[c];
        mean /= (double)width;
        double var = 0;
        for (long c = 0; c < width; c++) { double d = row[c] - mean; var += d * d; }
        var /= (double)width;
        const float m = (float)mean;
        const float inv = (float)(1.0 / sqrt(var + (double)eps));
        for (long c = 0; c < width; c++) {
            float y = (row[c] - m) * inv;
            if (gamma) y *= gamma[c];
            if (beta) y += beta[c];
            row[c] = y;
        }
    }
}

void ck_rms_norm(float *x, long rows, long width, long stride, const float *gamma, float eps) {
    for (long r = 0; r < rows; r++) {
        float *row = x + r * stride;
        double square = 0;
        for (long c = 0; c < width; c++) square += (double)row[c] * row[c];
        const float inv = (float)(1.0 / sqrt(square / (double)width + (double)eps));
        for (long c = 0; c < width; c++) row[c] = gamma ? gamma[c] * (row[c] * inv) : row[c] * inv;
    }
}

void ck_activation(float *x, long n, int kind) {
    switch (kind) {
    case 0:
        for (long i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + ck_erff(x[i] * 0.70710678118654752f));
        break;
    case 1:
        for (long i = 0; i < n; i++) {
            const float v = x[i];
            // 0.5·v·(1 + tanh(y)) = v / (1 + exp(−2y)): exact identity, no cancellation, vectorises.
            x[i] = v / (1.0f + ck_expf(-2.0f * 0.79788456080286536f * (v + 0.044715f * v * v * v)));
        }
        break;
    case 2:
        for (long i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0;
        break;
    default:
        for (long i = 0; i < n; i++) x[i] = x[i] / (1.0f + ck_expf(-x[i]));
        break;
    }
}

void ck_multiply(float *x, const float *y, long n) {
    for (long i = 0; i < n; i++) x[i] *= y[i];
}

void ck_add(float *x, const float *y, long n) {
    for (long i = 0; i < n; i++) x[i] += y[i];
}

void ck_add_bias(float *x, long rows, long width, long stride, const float *bias) {
    for (long r = 0; r < rows; r++) {
        float *row = x + r * stride;
        for (long c = 0; c < width; c++) row[c] += bias[c];
    }
}

void ck_rotate(float *x, long rows, long stride, long half, const float *cos_table, const float *sin_table, int interleaved) {
    for (long r = 0; r < rows; r++) {
        float *row = x + r * stride;
        const float *cs = cos_table + r * half;
        const float *sn = sin_table + r * half;
        if (interleaved) {
            for (long k = 0; k < half; k++) {
                const float a = row[2 * k], b = row[2 * k + 1];
                row[2 * k] = a * cs[k] - b * sn[k];
                row[2 * k + 1] = b * cs[k] + a * sn[k];
            }
        } else {
            for (long k = 0; k < half; k++) {
                const float a = row[k], b = row[k + half];
                row[k] = a * cs[k] - b * sn[k];
                row[k + half] = b * cs[k] + a * sn[k];
            }
        }
    }
}

void ck_logsumexp_fold(const float *logits, long rows, long cols, long ld, long col0, const int *targets,
                       float *row_max, double *row_sum, float *target_logit) {
    for (long r = 0; r < rows; r++) {
        const float *row = logits + r * ld;
        const float slice_max = max_of(row, cols);
        const float previous = row_max[r];
        const float m = slice_max > previous ? slice_max : previous;
        double total = previous == -INFINITY ? 0.0 : row_sum[r] * exp((double)previous - (double)m);
        long c = 0;
        for (; c + LANES <= cols; c += LANES) {
            float chunk = 0;
            float lanes[LANES];
            for (int u = 0; u < LANES; u++) lanes[u] = ck_expf(row[c + u] - m);
            for (int u = 0; u < LANES; u++) chunk += lanes[u];
            total += chunk;
        }
        for (; c < cols; c++) total += exp((double)row[c] - m);
        row_max[r] = m;
        row_sum[r] = total;
        const long t = (long)targets[r] - col0;
        if (t >= 0 && t < cols) target_logit[r] = row[t];
    }
}

long ck_next_item(long *counter) { return __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED); }
