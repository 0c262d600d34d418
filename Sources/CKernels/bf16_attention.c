// Attention's two products under `--precision bf16`, for the full 64 × 64 tiles of the fused kernel (attention.h's
// transposed path: below the diagonal, inside any window, no FIRE MLP) — at long lengths nearly every tile. Scores
// S = scale · Q·Kᵀ and the output O += P·V take bfloat16 operands and accumulate in fp32 with vdpbf16ps, which
// multiplies pairs: Q·Kᵀ pairs along the head width e, P·V pairs along the keys c. The online softmax between them
// stays in fp32, as do the diagonal and window-edge tiles. Keys and values are paired once per layer and head
// (`ck_bf16_pack_key_pairs`, `ck_bf16_pack_value_pairs`); a query block once per block. Only where
// `ck_bf16_available()`.
#include <stdint.h>
#include <string.h>
#include "ckernels.h"
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define CK_TILE 64

void ck_bf16_pack_key_pairs(const float *k_packed, long length, long hs, uint32_t *out) {
    const long pairs = (hs + 1) / 2, tiles = (length + CK_TILE - 1) / CK_TILE;
    for (long t = 0; t < tiles; t++) {
        const float *tile = k_packed + t * hs * CK_TILE;   // [hs][64]
        uint32_t *dst = out + t * pairs * CK_TILE;          // [hs/2][64]
        for (long p = 0; p < pairs; p++)
            for (long c = 0; c < CK_TILE; c++) {
                const uint32_t lo = ck_bf16_round(tile[2 * p * CK_TILE + c]);
                const uint32_t hi = 2 * p + 1 < hs ? ck_bf16_round(tile[(2 * p + 1) * CK_TILE + c]) : 0;
                dst[p * CK_TILE + c] = lo | hi << 16;
            }
    }
}

void ck_bf16_pack_value_pairs(const float *v, long v_stride, long length, long hs, uint16_t *out) {
    const long padded = (hs + 63) / 64 * 64, tiles = (length + CK_TILE - 1) / CK_TILE;
    memset(out, 0, (size_t)tiles * (CK_TILE / 2) * padded * 2 * sizeof(uint16_t));
    for (long j = 0; j < length; j++) {
        uint16_t *dst = out + ((j / CK_TILE) * (CK_TILE / 2) + (j % CK_TILE) / 2) * padded * 2 + (j % 2);
        for (long e = 0; e < hs; e++) dst[2 * e] = ck_bf16_round(v[j * v_stride + e]);
    }
}

void ck_bf16_pack_query_block(const float *query_t, long hs, uint16_t *out) {
    const long pairs = (hs + 1) / 2;
    for (long p = 0; p < pairs; p++)
        for (long r = 0; r < CK_TILE; r++) {
            out[(p * CK_TILE + r) * 2] = ck_bf16_round(query_t[2 * p * CK_TILE + r]);
            out[(p * CK_TILE + r) * 2 + 1] = 2 * p + 1 < hs ? ck_bf16_round(query_t[(2 * p + 1) * CK_TILE + r]) : 0;
        }
}

#if defined(__x86_64__)
#define CK_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16")))

CK_BF16_TARGET void ck_bf16_qk_tile_t(float *st, const uint16_t *q_pairs, const uint32_t *k_pairs, long hs,
                                      float scale, long vectors) {
    const long pairs = (hs + 1) / 2;
    for (long u0 = 0; u0 < vectors; u0 += 2)
        for (long c0 = 0; c0 < CK_TILE; c0 += 8) {
            __m512 acc[2][8];
            for (int u = 0; u < 2; u++)
                for (int j = 0; j < 8; j++) acc[u][j] = _mm512_setzero_ps();
            for (long p = 0; p < pairs; p++) {
                const __m512bh q0 = (__m512bh)_mm512_load_si512(q_pairs + (p * CK_TILE + 16 * u0) * 2);
                const __m512bh q1 = (__m512bh)_mm512_load_si512(q_pairs + (p * CK_TILE + 16 * (u0 + 1)) * 2);
                const uint32_t *kp = k_pairs + p * CK_TILE + c0;
                for (int j = 0; j < 8; j++) {
                    const __m512bh k = (__m512bh)_mm512_set1_epi32((int)kp[j]);
                    acc[0][j] = _mm512_dpbf16_ps(acc[0][j], q0, k);
                    acc[1][j] = _mm512_dpbf16_ps(acc[1][j], q1, k);
                }
            }
            const __m512 s = _mm512_set1_ps(scale);
            for (int u = 0; u < 2; u++)
                for (int j = 0; j < 8; j++)
                    _mm512_store_ps(st + (c0 + j) * CK_TILE + 16 * (u0 + u), _mm512_mul_ps(acc[u][j], s));
        }
}

CK_BF16_TARGET void ck_bf16_pv_full(float *acc, long hs_padded, const float *st, const uint16_t *v_pairs, long rows) {
    uint32_t p_pairs[(CK_TILE / 2) * CK_TILE] __attribute__((aligned(64)));   // [c/2][row]
    const long vectors = (rows + 15) / 16;
    for (long c2 = 0; c2 < CK_TILE / 2; c2++)
        for (long u = 0; u < vectors; u++) {
            const __m256i lo = (__m256i)_mm512_cvtneps_pbh(_mm512_load_ps(st + 2 * c2 * CK_TILE + 16 * u));
            const __m256i hi = (__m256i)_mm512_cvtneps_pbh(_mm512_load_ps(st + (2 * c2 + 1) * CK_TILE + 16 * u));
            const __m512i pair =
                _mm512_or_si512(_mm512_cvtepu16_epi32(lo), _mm512_slli_epi32(_mm512_cvtepu16_epi32(hi), 16));
            _mm512_store_si512(p_pairs + c2 * CK_TILE + 16 * u, pair);
        }
    for (long r0 = 0; r0 < rows; r0 += 4)
        for (long e0 = 0; e0 < hs_padded; e0 += 64) {
            __m512 o[4][4];
            for (int r = 0; r < 4; r++)
                for (int i = 0; i < 4; i++) o[r][i] = _mm512_loadu_ps(acc + (r0 + r) * hs_padded + e0 + 16 * i);
            for (long c2 = 0; c2 < CK_TILE / 2; c2++) {
                const uint16_t *vc = v_pairs + (c2 * hs_padded + e0) * 2;
                const __m512bh v0 = (__m512bh)_mm512_load_si512(vc), v1 = (__m512bh)_mm512_load_si512(vc + 32),
                               v2 = (__m512bh)_mm512_load_si512(vc + 64), v3 = (__m512bh)_mm512_load_si512(vc + 96);
                for (int r = 0; r < 4; r++) {
                    const __m512bh p = (__m512bh)_mm512_set1_epi32((int)p_pairs[c2 * CK_TILE + r0 + r]);
                    o[r][0] = _mm512_dpbf16_ps(o[r][0], p, v0);
                    o[r][1] = _mm512_dpbf16_ps(o[r][1], p, v1);
                    o[r][2] = _mm512_dpbf16_ps(o[r][2], p, v2);
                    o[r][3] = _mm512_dpbf16_ps(o[r][3], p, v3);
                }
            }
            for (int r = 0; r < 4; r++)
                for (int i = 0; i < 4; i++) _mm512_storeu_ps(acc + (r0 + r) * hs_padded + e0 + 16 * i, o[r][i]);
        }
}
#else
void ck_bf16_qk_tile_t(float *st, const uint16_t *q_pairs, const uint32_t *k_pairs, long hs, float scale,
                       long vectors) {
    abort();
}
void ck_bf16_pv_full(float *acc, long hs_padded, const float *st, const uint16_t *v_pairs, long rows) { abort(); }
#endif
