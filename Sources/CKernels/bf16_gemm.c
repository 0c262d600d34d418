// The matrix product of `--precision bf16`: C = A·Bᵀ (+ bias, + C) with A's fp32 activations rounded to bfloat16
// (nearest-even, vcvtne2ps2bf16) and B a weight matrix packed in bfloat16 once at load, products accumulated in fp32
// by AVX512-BF16's vdpbf16ps. Only CPUs with AVX512-BF16 run it (Zen 4 and later, Cooper Lake, Sapphire Rapids and
// later); `ck_bf16_available` says whether this one does, and nothing falls back silently.
//
// vdpbf16ps adds a[2i]·b[2i] + a[2i+1]·b[2i+1] into each fp32 lane, so both operands are packed in pairs along k:
// B as panels of NR = 32 columns, [k/2][32][2] values each (a panel's pair row is one 64-byte line, two zmm loads);
// A, per block of MC rows, as rows of pairs. The micro-kernel keeps an MR × NR = 8 × 32 tile of C in 16 zmm
// accumulators over the whole of k (up to KC = 4,096, so C is loaded and stored once for almost every shape) and
// broadcasts one pair of A per row per step. For each block of MC = 16 rows (16 × k × 2 bytes of A, in L2) every
// panel streams past both of its 8-row tiles. Measured on Zen 4 (GPT-2 small, 2,048 tokens, tokens/s of the whole
// pass): k blocks of 512 with MC = 64, the GotoBLAS order, 2,006; whole k with MC = 128, 64, 32, 16, 8: 2,420, 2,460,
// 2,510, 2,620, 2,490.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "ckernels.h"
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define CK_NR 32
#define CK_MR 8
#define CK_KC 4096
#define CK_MC 16
/// A weight matrix larger than this many bytes does not stay in the last-level cache between row blocks: it is
/// streamed from memory once per block of rows, so those blocks are made larger (CK_MC_BIG rows, k in blocks of
/// CK_KC_BIG, the same 128 KiB of packed A).
#define CK_CACHED_BYTES (8L << 20)
#define CK_MC_BIG 64
#define CK_KC_BIG 1024
_Static_assert(CK_MC_BIG * CK_KC_BIG == CK_MC * CK_KC, "both blockings pack A into the same block");

uint16_t ck_bf16_round(float x) {
    uint32_t bits;
    memcpy(&bits, &x, 4);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x40);  // NaN stays NaN (quiet)
    return (uint16_t)((bits + 0x7fffu + ((bits >> 16) & 1)) >> 16);
}

long ck_bf16_packed_count(long n, long k) { return (n + CK_NR - 1) / CK_NR * CK_NR * ((k + 1) / 2) * 2; }

/// Packs rows `row0 ..< row0 + rows` of B ([n][k], fp32 or 16-bit as `format` says: 0 fp32, 1 bf16, 2 f16) into
/// `out` (the whole packed matrix): rows past n and the odd k's partner are zero. Rows are packed independently, so
/// threads may pack disjoint row ranges at once.
void ck_bf16_pack(const void *b, int format, long n, long k, long row0, long rows, uint16_t *out) {
    const long pairs = (k + 1) / 2;
    float *row = malloc((size_t)(k + 1) * sizeof(float));
    for (long j = row0; j < row0 + rows; j++) {
        if (j < n) {
            if (format == 0) memcpy(row, (const float *)b + j * k, (size_t)k * sizeof(float));
            else if (format == 1) ck_widen_bf16((const uint16_t *)b + j * k, row, k);
            else ck_widen_f16((const uint16_t *)b + j * k, row, k);
        } else {
            memset(row, 0, (size_t)k * sizeof(float));
        }
        row[k] = 0;
        uint16_t *panel = out + (j / CK_NR) * CK_NR * pairs * 2;
        const long column = j % CK_NR;
        for (long p = 0; p < pairs; p++) {
            panel[(p * CK_NR + column) * 2] = ck_bf16_round(row[2 * p]);
            panel[(p * CK_NR + column) * 2 + 1] = ck_bf16_round(row[2 * p + 1]);
        }
    }
    free(row);
}

#if defined(__x86_64__)
#define CK_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16")))

/// `count` floats of one row as bf16 pairs (the last pair's partner zero when `count` is odd).
CK_BF16_TARGET static void ck_bf16_pack_row(const float *x, long count, uint32_t *out) {
    uint16_t *dst = (uint16_t *)out;
    long e = 0;
    for (; e + 32 <= count; e += 32) {
        __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + e + 16), _mm512_loadu_ps(x + e));
        _mm512_storeu_si512(dst + e, (__m512i)v);
    }
    if (e < count) {
        const long left = count - e, padded = (left + 1) & ~1L;
        const __mmask16 lo = (__mmask16)(left >= 16 ? 0xffff : (1u << left) - 1);
        const __mmask16 hi = (__mmask16)(left <= 16 ? 0 : (1u << (left - 16)) - 1);
        __m512bh v = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, x + e + 16), _mm512_maskz_loadu_ps(lo, x + e));
        _mm512_mask_storeu_epi16(dst + e, (__mmask32)(padded >= 32 ? 0xffffffffu : (1u << padded) - 1), (__m512i)v);
    }
}

/// One MR × NR tile (fewer rows when `rows` < MR; columns masked by `m0`/`m1`) over `pairs` pair rows of the panel.
/// The accumulators start from C when `load`, else zero, plus `bias` when given.
CK_BF16_TARGET static inline void ck_bf16_tile(const uint32_t *a, long lda, const uint16_t *panel, long pairs, float *c,
                                               long ldc, long rows, __mmask16 m0, __mmask16 m1, int load,
                                               const float *bias) {
    __m512 acc[CK_MR][2];
    const __m512 b0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
    const __m512 b1 = bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
    for (int r = 0; r < CK_MR; r++) {
        if (r < rows && load) {
            acc[r][0] = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, c + r * ldc), b0);
            acc[r][1] = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, c + r * ldc + 16), b1);
        } else {
            acc[r][0] = b0;
            acc[r][1] = b1;
        }
    }
    if (rows == CK_MR) {
        for (long p = 0; p < pairs; p++) {
            const __m512bh x0 = (__m512bh)_mm512_load_si512(panel + p * CK_NR * 2);
            const __m512bh x1 = (__m512bh)_mm512_load_si512(panel + p * CK_NR * 2 + 32);
            for (int r = 0; r < CK_MR; r++) {
                const __m512bh y = (__m512bh)_mm512_set1_epi32((int)a[r * lda + p]);
                acc[r][0] = _mm512_dpbf16_ps(acc[r][0], y, x0);
                acc[r][1] = _mm512_dpbf16_ps(acc[r][1], y, x1);
            }
        }
    } else {
        for (long p = 0; p < pairs; p++) {
            const __m512bh x0 = (__m512bh)_mm512_load_si512(panel + p * CK_NR * 2);
            const __m512bh x1 = (__m512bh)_mm512_load_si512(panel + p * CK_NR * 2 + 32);
            for (int r = 0; r < rows; r++) {
                const __m512bh y = (__m512bh)_mm512_set1_epi32((int)a[r * lda + p]);
                acc[r][0] = _mm512_dpbf16_ps(acc[r][0], y, x0);
                acc[r][1] = _mm512_dpbf16_ps(acc[r][1], y, x1);
            }
        }
    }
    for (int r = 0; r < rows; r++) {
        _mm512_mask_storeu_ps(c + r * ldc, m0, acc[r][0]);
        _mm512_mask_storeu_ps(c + r * ldc + 16, m1, acc[r][1]);
    }
}

CK_BF16_TARGET static void ck_bf16_linear_avx512(const float *a, long lda, const uint16_t *packed, long k,
                                                 long column0, const float *bias, float *c, long ldc, long m, long n,
                                                 int accumulate) {
    static _Thread_local uint32_t block[CK_MC * (CK_KC / 2)] __attribute__((aligned(64)));
    const long pairs = (k + 1) / 2;
    const int big = (long)(((n + CK_NR - 1) / CK_NR) * CK_NR) * pairs * 4 > CK_CACHED_BYTES;
    const long MC = big ? CK_MC_BIG : CK_MC, KC = big ? CK_KC_BIG : CK_KC;
    const long first = column0 / CK_NR, panels = (n + CK_NR - 1) / CK_NR;
    for (long k0 = 0; k0 < k; k0 += KC) {
        const long kb = k - k0 < KC ? k - k0 : KC, kp = (kb + 1) / 2;
        for (long i0 = 0; i0 < m; i0 += MC) {
            const long mb = m - i0 < MC ? m - i0 : MC;
            for (long r = 0; r < mb; r++) ck_bf16_pack_row(a + (i0 + r) * lda + k0, kb, block + r * (KC / 2));
            for (long p = 0; p < panels; p++) {
                const long left = n - p * CK_NR;
                const __mmask16 m0 = (__mmask16)(left >= 16 ? 0xffff : (1u << left) - 1);
                const __mmask16 m1 = (__mmask16)(left >= 32 ? 0xffff : left <= 16 ? 0 : (1u << (left - 16)) - 1);
                const uint16_t *panel = packed + ((first + p) * pairs + k0 / 2) * CK_NR * 2;
                for (long i = 0; i < mb; i += CK_MR) {
                    const long rows = mb - i < CK_MR ? mb - i : CK_MR;
                    ck_bf16_tile(block + i * (KC / 2), KC / 2, panel, kp, c + (i0 + i) * ldc + p * CK_NR, ldc,
                                 rows, m0, m1, k0 > 0 || accumulate, k0 == 0 ? (bias ? bias + p * CK_NR : NULL) : NULL);
                }
            }
        }
    }
}
#endif

int ck_bf16_available(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return strcmp(ck_kernel_set(), "avx512") == 0 && __builtin_cpu_supports("avx512bf16");
#else
    return 0;
#endif
}

void ck_bf16_linear(const float *a, long lda, const uint16_t *packed, long k, long column0, const float *bias, float *c,
                    long ldc, long m, long n, int accumulate) {
#if defined(__x86_64__)
    if (m > 0 && n > 0) ck_bf16_linear_avx512(a, lda, packed, k, column0, bias, c, ldc, m, n, accumulate);
#else
    abort();
#endif
}
