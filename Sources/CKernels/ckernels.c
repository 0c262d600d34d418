// See ckernels.h. Loops are written so that clang vectorises them without -ffast-math: reductions keep
// 16 independent partial sums, and exp is a branch-free polynomial (Cephes expf coefficients).
#include "ckernels.h"

#include <float.h>
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

int ck_attention_rows(const ck_attention_args *a, long row_begin, long row_end) {
    const long hs = a->head_width;
    const long window = a->window;
    const long hidden = a->bias_kind == CK_BIAS_FIRE ? a->fire_hidden : 0;
    float *scratch = malloc(sizeof(float) * (size_t)(BLOCK_Q * BLOCK_K + BLOCK_Q * hs + hs * BLOCK_K + 2 * BLOCK_Q + BLOCK_K));
    if (!scratch) return -1;
    float *scores = scratch;
    float *acc = scores + BLOCK_Q * BLOCK_K;
    float *kt = acc + BLOCK_Q * hs;
    float *row_max = kt + hs * BLOCK_K;
    float *row_sum = row_max + BLOCK_Q;
    float *fire_x = row_sum + BLOCK_Q;

    for (long i0 = row_begin; i0 < row_end; i0 += BLOCK_Q) {
        const long i1 = min_l(i0 + BLOCK_Q, row_end);
        const long nq = i1 - i0;
        for (long r = 0; r < nq; r++) { row_max[r] = -INFINITY; row_sum[r] = 0; }
        memset(acc, 0, sizeof(float) * (size_t)(nq * hs));
        const long j_first = window > 0 ? max_l(0, i0 - window + 1) : 0;

        for (long j0 = j_first; j0 < i1; j0 += BLOCK_K) {
            const long nk = min_l(BLOCK_K, i1 - j0);
            for (long c = 0; c < nk; c++) {
                const float *kr = a->k + (j0 + c) * a->k_stride;
                for (long e = 0; e < hs; e++) kt[e * BLOCK_K + c] = kr[e];
            }
            for (long r = 0; r < nq; r++) {
                const long i = i0 + r;
                const long c_end = min_l(nk, i - j0 + 1);
                const long c_begin = window > 0 ? max_l(0, i - window + 1 - j0) : 0;
                if (c_end <= c_begin) continue;
                const long n = c_end - c_begin;
                float *s = scores + r * BLOCK_K + c_begin;
                for (long c = 0; c < n; c++) s[c] = 0;
                const float *qr = a->q + i * a->q_stride;
                for (long e = 0; e < hs; e++) {
                    const float qe = qr[e];
                    const float *kte = kt + e * BLOCK_K + c_begin;
                    for (long c = 0; c < n; c++) s[c] += qe * kte[c];
                }
                const float scale = a->scale;
                for (long c = 0; c < n; c++) s[c] *= scale;
                const long d0 = i - (j0 + c_begin);   // distance of column c is d0 - c
                if (a->bias_kind == CK_BIAS_DISTANCE) {
                    const float *bias = a->distance_bias;
                    for (long c = 0; c < n; c++) s[c] += bias[d0 - c];
                } else if (a->bias_kind == CK_BIAS_FIRE) {
                    const float inv = a->inverse_normalizer[i];
                    for (long c = 0; c < n; c++) fire_x[c] = a->log_distance[d0 - c] * inv;
                    const float b2 = a->fire_b2;
                    float tmp[BLOCK_K];
                    for (long c = 0; c < n; c++) tmp[c] = b2;
                    for (long h = 0; h < hidden; h++) {
                        const float w1 = a->fire_w1[h], b1 = a->fire_b1[h], w2 = a->fire_w2[h];
                        for (long c = 0; c < n; c++) {
                            float z = w1 * fire_x[c] + b1;
                            tmp[c] += w2 * (z > 0 ? z : 0);
                        }
                    }
                    for (long c = 0; c < n; c++) s[c] += tmp[c];
                }
                const float block_max = max_of(s, n);
                const float previous = row_max[r];
                const float m = block_max > previous ? block_max : previous;
                const float correction = previous == -INFINITY ? 0.0f : expf(previous - m);
                const float sum = exp_shift_sum(s, n, m);
                row_sum[r] = row_sum[r] * correction + sum;
                row_max[r] = m;
                float *ar = acc + r * hs;
                if (correction != 1.0f)
                    for (long e = 0; e < hs; e++) ar[e] *= correction;
                for (long c = 0; c < n; c++) {
                    const float p = s[c];
                    const float *vr = a->v + (j0 + c_begin + c) * a->v_stride;
                    for (long e = 0; e < hs; e++) ar[e] += p * vr[e];
                }
            }
        }
        for (long r = 0; r < nq; r++) {
            float *o = a->out + (i0 + r) * a->out_stride;
            const float *ar = acc + r * hs;
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
        for (long i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
        break;
    case 1:
        for (long i = 0; i < n; i++) {
            const float v = x[i];
            x[i] = 0.5f * v * (1.0f + tanhf(0.79788456080286536f * (v + 0.044715f * v * v * v)));
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

void ck_log_softmax_gather(const float *logits, long rows, long vocab, const int *targets, double *out) {
    for (long r = 0; r < rows; r++) {
        const float *row = logits + r * vocab;
        const int target = targets[r];
        if (target < 0 || target >= vocab) { out[r] = NAN; continue; }
        const float m = max_of(row, vocab);
        double total = 0;
        long c = 0;
        for (; c + LANES <= vocab; c += LANES) {
            float chunk = 0;
            float lanes[LANES];
            for (int u = 0; u < LANES; u++) lanes[u] = ck_expf(row[c + u] - m);
            for (int u = 0; u < LANES; u++) chunk += lanes[u];
            total += chunk;
        }
        for (; c < vocab; c++) total += exp((double)row[c] - m);
        out[r] = (double)row[target] - (double)m - log(total);
    }
}
