// Fused causal attention: one head, a block of query rows at a time, keys and values in 64-wide tiles.
//
// The online softmax (Milakov & Gimelshein 2018; FlashAttention, Dao et al. 2022). For query row i and key tiles
// t = 1, 2, … with scores s_j = scale · q_i·k_j + bias(i, j) over the keys j of tile t (causal: j ≤ i, and
// i − W < j with a sliding window W):
//
//     m_t   = max(m_{t−1}, max_j s_j)                         running maximum, m_0 = −∞
//     l_t   = l_{t−1} · exp(m_{t−1} − m_t) + Σ_j exp(s_j − m_t)    running denominator, l_0 = 0
//     o_t   = o_{t−1} · exp(m_{t−1} − m_t) + Σ_j exp(s_j − m_t) · v_j   unnormalised output, o_0 = 0
//
// and after the last tile out_i = o_T / l_T. Nothing T×T is ever stored: the scratch is one BLOCK_Q × BLOCK_K
// score tile and BLOCK_Q accumulators, whatever the length.
//
// Scores are kept in base 2, s·log2 e (the factor is folded into the q·k scale and into the bias as it is added),
// so that each term is 2^(s − m), which needs no multiply before its range reduction; the result is the same
// quantity, rounded differently in its last bits. Tiles that every row of the query block sees whole (below the
// diagonal, inside any window, no FIRE MLP) take a transposed path: the scores are computed as S^T, keys down and
// 16 query rows across each vector, so that the running maxima and sums are lane-wise operations on 16 rows at once
// instead of a reduction across the lanes of each row. Tiles on the diagonal or a window's edge take the general
// row-by-row path. The softmax was a fifth of a full tile's time; this makes it an eighth (Benchmarks/kernels).
//
// Tiles whose terms are all zero in float are skipped. With a distance bias (ALiBi, KERPLE, T5, Sandwich) a key far
// from the query can sit so far below the row's maximum that exp(s_j − m) is under half the smallest float
// subnormal (2⁻¹⁵⁰, which exp(−104) is): a correctly rounded exp gives exactly 0, and the term adds nothing to l or
// o. A tile is skipped when that holds for every row of the query block, proven by bounds rather than by computing
// the scores: by Cauchy–Schwarz, s_j ≤ |scale|·|q_i|·max_j |k_j| + max_{d ≥ d_min} bias(d), and the row's final
// maximum is at least its own diagonal score s_i = scale·q_i·k_i + bias(0). The test asks for a gap of
// CK_NEGLIGIBLE_GAP (> 104, the rest is room for rounding in the bounds). The caller works out the bias's suffix
// maxima (ck_suffix_max) and the key tiles' largest norms (ck_key_tile_norms) once per layer and head. The result is what the full computation
// gives in exact float arithmetic; the work left out grows with the length (at 8k tokens, most of ALiBi's steeper
// heads), and without a bias nothing is ever skipped.


#ifndef BLOCK_Q
#define BLOCK_Q 64
#define BLOCK_K 64
#endif
#define CK_NEGLIGIBLE_GAP 110.0f

static void CK_VARIANT(ck_suffix_max)(const float *x, long n, float *out) {
    float running = -INFINITY;
    for (long d = n - 1; d >= 0; d--) {
        running = x[d] > running ? x[d] : running;
        out[d] = running;
    }
}

static void CK_VARIANT(ck_key_tile_norms)(const float *k_packed, long length, long hs, float *out) {
    for (long t = 0; t < (length + BLOCK_K - 1) / BLOCK_K; t++) {
        const float *tile = k_packed + t * hs * BLOCK_K;
        float squares[BLOCK_K] = {0};
        for (long e = 0; e < hs; e++)
            for (long c = 0; c < BLOCK_K; c++) squares[c] += tile[e * BLOCK_K + c] * tile[e * BLOCK_K + c];
        float largest = 0;
        for (long c = 0; c < BLOCK_K; c++) largest = squares[c] > largest ? squares[c] : largest;
        out[t] = sqrtf(largest);
    }
}

/// x[c] = 2^(x[c] − shift) for shift ≥ every x[c]; returns the sum.
static float exp2_shift_sum(float *x, long n, float shift) {
    float lanes[LANES] = {0};
    long c = 0;
    for (; c + LANES <= n; c += LANES)
        for (int u = 0; u < LANES; u++) {
            float p = ck_exp2f_nonpositive(x[c + u] - shift);
            x[c + u] = p;
            lanes[u] += p;
        }
    float sum = 0;
    for (; c < n; c++) {
        float p = ck_exp2f_nonpositive(x[c] - shift);
        x[c] = p;
        sum += p;
    }
    for (int u = 0; u < LANES; u++) sum += lanes[u];
    return sum;
}

/// One full row of a 64-key tile in base 2: s[c] = 2^(s[c] − m) with m = max(previous, max_c s[c]); returns Σ s[c], and m
/// through `max_out`. Four 16-lane vectors, tree reductions: the per-row scalar work of the general path is what
/// dominated the tile's softmax.
static inline float softmax_row64(float *s, float previous, float *max_out) {
    const v16f x0 = load16(s), x1 = load16(s + 16), x2 = load16(s + 32), x3 = load16(s + 48);
    const float block_max = max_lane16(max16(max16(x0, x1), max16(x2, x3)));
    const float m = block_max > previous ? block_max : previous;
    const v16f p0 = ck_exp2_16_nonpositive(x0 - m), p1 = ck_exp2_16_nonpositive(x1 - m),
               p2 = ck_exp2_16_nonpositive(x2 - m), p3 = ck_exp2_16_nonpositive(x3 - m);
    store16(s, p0);
    store16(s + 16, p1);
    store16(s + 32, p2);
    store16(s + 48, p3);
    *max_out = m;
    return sum16((p0 + p1) + (p2 + p3));
}

/// Adds one tile's row to the running online-softmax state: `m` is the row's new maximum (≥ the previous one) and
/// `sum` the tile's Σ 2^(s − m). When the maximum moved, what was summed so far is rescaled by 2^(previous − m).
static inline void update_row(float *acc_row, long hs, float *row_max, float *row_sum, float m, float sum) {
    const float previous = *row_max;
    if (m == previous) {
        *row_sum += sum;
        return;
    }
    const float correction = previous == -INFINITY ? 0.0f : ck_exp2f_nonpositive(previous - m);
    for (long e = 0; e < hs; e++) acc_row[e] *= correction;
    *row_sum = *row_sum * correction + sum;
    *row_max = m;
}

/// S[r][0..64) = scale · Σ_e q_r[e] · kt[e][0..64) for 4 query rows, CK_QK_ROWS rows per pass: 4 on AVX-512 (16
/// accumulators in zmm registers), fewer where registers are narrower (each 16-lane accumulator takes two ymm on
/// AVX2), so that accumulators and keys stay in registers. The products and their order are the same either way.
static inline void qk_tile(float *s, const float *const q[4], const float *kt, long hs, float scale) {
    for (int r0 = 0; r0 < 4; r0 += CK_QK_ROWS) {
        v16f acc[CK_QK_ROWS][4];
        for (int r = 0; r < CK_QK_ROWS; r++)
            for (int i = 0; i < 4; i++) acc[r][i] = splat16(0);
        for (long e = 0; e < hs; e++) {
            const float *ke = kt + e * BLOCK_K;
            const v16f k0 = load16(ke), k1 = load16(ke + 16), k2 = load16(ke + 32), k3 = load16(ke + 48);
            for (int r = 0; r < CK_QK_ROWS; r++) {
                const float b = q[r0 + r][e];
                acc[r][0] += b * k0;
                acc[r][1] += b * k1;
                acc[r][2] += b * k2;
                acc[r][3] += b * k3;
            }
        }
        for (int r = 0; r < CK_QK_ROWS; r++)
            for (int i = 0; i < 4; i++) store16(s + (r0 + r) * BLOCK_K + 16 * i, acc[r][i] * scale);
    }
}

/// The transposed score tile of a full tile: st[c][r] = scale · Σ_e k_c[e] · q_r[e] for the 64 keys of the packed
/// tile `kt` ([hs][BLOCK_K]) and `vectors` groups of 16 query rows of `qt`, the query block transposed
/// ([hs][BLOCK_Q]). CK_QKT_VECTORS × CK_QKT_KEYS accumulators stay in registers (2 × 8 zmm on AVX-512, fewer where
/// registers are narrower); each product sums over e in order, as qk_tile does.
static inline void qk_tile_t(float *st, const float *qt, const float *kt, long hs, float scale, long vectors) {
    for (long u0 = 0; u0 < vectors; u0 += CK_QKT_VECTORS)
        for (long c0 = 0; c0 < BLOCK_K; c0 += CK_QKT_KEYS) {
            v16f acc[CK_QKT_VECTORS][CK_QKT_KEYS];
            for (int u = 0; u < CK_QKT_VECTORS; u++)
                for (int j = 0; j < CK_QKT_KEYS; j++) acc[u][j] = splat16(0);
            for (long e = 0; e < hs; e++) {
                const float *ke = kt + e * BLOCK_K + c0;
                v16f q[CK_QKT_VECTORS];
                for (int u = 0; u < CK_QKT_VECTORS; u++) q[u] = load16(qt + e * BLOCK_Q + 16 * (u0 + u));
                for (int j = 0; j < CK_QKT_KEYS; j++) {
                    const float b = ke[j];
                    for (int u = 0; u < CK_QKT_VECTORS; u++) acc[u][j] += b * q[u];
                }
            }
            for (int u = 0; u < CK_QKT_VECTORS; u++)
                for (int j = 0; j < CK_QKT_KEYS; j++) store16(st + (c0 + j) * BLOCK_Q + 16 * (u0 + u), acc[u][j] * scale);
        }
}

/// The online-softmax step of a full tile for 16 query rows at once, on the transposed scores (column u of st, rows
/// 16u … 16u + 15 in the lanes): each row's maximum and sum are vertical, lane-wise operations over the 64 keys, with
/// no reduction across lanes, and the row state (maximum, sum) is updated 16 rows per vector. Rows whose maximum moved
/// have their accumulated output rescaled by 2^(previous − m).
static inline void softmax_tile_t(float *st, long u, const float *bias, float *row_max, float *row_sum, float *acc,
                                  long hs_padded, long hs) {
    float *column = st + 16 * u;
    v16f most[4] = {splat16(-INFINITY), splat16(-INFINITY), splat16(-INFINITY), splat16(-INFINITY)};
    for (long c = 0; c < BLOCK_K; c += 4)
        for (int j = 0; j < 4; j++) {
            v16f x = load16(column + (c + j) * BLOCK_Q);
            if (bias) {                 // row 16u + l, column c: distance i − j = bias[16u + l − c] (bias offset by i0 − j0)
                x += load16(bias + 16 * u - (c + j)) * CK_LOG2E;
                store16(column + (c + j) * BLOCK_Q, x);
            }
            most[j] = max16(most[j], x);
        }
    const v16f previous = load16(row_max + 16 * u);
    const v16f m = max16(max16(max16(most[0], most[1]), max16(most[2], most[3])), previous);
    v16f sums[4] = {splat16(0), splat16(0), splat16(0), splat16(0)};
    for (long c = 0; c < BLOCK_K; c += 4)
        for (int j = 0; j < 4; j++) {
            const v16f p = ck_exp2_16_nonpositive(load16(column + (c + j) * BLOCK_Q) - m);
            store16(column + (c + j) * BLOCK_Q, p);
            sums[j] += p;
        }
    const v16f sum = (sums[0] + sums[1]) + (sums[2] + sums[3]);
    v16f running = load16(row_sum + 16 * u);
    int moved = 0;
    for (int l = 0; l < 16; l++) moved |= m[l] != previous[l];
    if (moved) {
        // A row seen for the first time has previous = −∞, clamped to 2^−125: it multiplies only zeros.
        const v16f correction = ck_exp2_16_nonpositive(previous - m);
        for (int l = 0; l < 16; l++)
            if (m[l] != previous[l]) {
                float *row = acc + (16 * u + l) * hs_padded;
                for (long e = 0; e < hs; e++) row[e] *= correction[l];
            }
        running *= correction;
    }
    store16(row_sum + 16 * u, running + sum);
    store16(row_max + 16 * u, m);
}

/// o_r[e0..e0+64) += Σ_c p_r[c] · v_c[e0..e0+64) for 4 rows, p_r[c] at p[r·p_row + c·p_col] (the row layout of the
/// general path or the transposed one of full tiles). Lanes past hs are never read or written: a 16-lane group that
/// hs cuts is done lane by lane, with the same products in the same order.
static inline void pv_tile(float *o, long o_stride, const float *p, long p_row, long p_col, const float *v, long v_stride,
                           long n, long e0, long hs) {
    if (hs - e0 >= 64) {                        // all 64 lanes: one pass over the values, 16 accumulators
        v16f acc[4][4];
        for (int r = 0; r < 4; r++)
            for (int i = 0; i < 4; i++) acc[r][i] = load16(o + r * o_stride + e0 + 16 * i);
        for (long c = 0; c < n; c++) {
            const float *vc = v + c * v_stride + e0;
            const v16f v0 = load16(vc), v1 = load16(vc + 16), v2 = load16(vc + 32), v3 = load16(vc + 48);
            for (int r = 0; r < 4; r++) {
                const float b = p[r * p_row + c * p_col];
                acc[r][0] += b * v0;
                acc[r][1] += b * v1;
                acc[r][2] += b * v2;
                acc[r][3] += b * v3;
            }
        }
        for (int r = 0; r < 4; r++)
            for (int i = 0; i < 4; i++) store16(o + r * o_stride + e0 + 16 * i, acc[r][i]);
        return;
    }
    for (int i = 0; i < 4; i++) {
        const long begin = e0 + 16 * i;
        const long lanes = hs - begin;
        if (lanes <= 0) break;
        if (lanes >= 16) {
            v16f acc[4];
            for (int r = 0; r < 4; r++) acc[r] = load16(o + r * o_stride + begin);
            for (long c = 0; c < n; c++) {
                const v16f vc = load16(v + c * v_stride + begin);
                for (int r = 0; r < 4; r++) acc[r] += p[r * p_row + c * p_col] * vc;
            }
            for (int r = 0; r < 4; r++) store16(o + r * o_stride + begin, acc[r]);
        } else {
            for (int r = 0; r < 4; r++)
                for (long l = 0; l < lanes; l++) {
                    float sum = o[r * o_stride + begin + l];
                    for (long c = 0; c < n; c++) sum += p[r * p_row + c * p_col] * v[c * v_stride + begin + l];
                    o[r * o_stride + begin + l] = sum;
                }
        }
    }
}

static void CK_VARIANT(ck_pack_keys)(const float *k, long k_stride, long length, long hs, float *out) {
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

/// Soft-caps n scores kept in base 2 (cap2 = cap · log2 e): s ← cap2 · tanh(s / cap2), 16 lanes at a time, with
/// tanh|x| = (1 − e)/(1 + e), e = exp(−2|x|) from the tile's own 2^x (absolute error a few ulp of 1 times the cap:
/// ~10⁻⁶ on a score, against the 10⁻⁴ the engine answers for); the tail through libm.
static inline void softcap_scores(float *s, long n, float cap2) {
    const float inverse = 1.0f / cap2;
    long c = 0;
    for (; c + LANES <= n; c += LANES) {
        const v16f x = load16(s + c) * inverse;
        const v16f e = ck_exp2_16_nonpositive(__builtin_elementwise_abs(x) * (-2.0f * CK_LOG2E));
        const v16f t = (1.0f - e) / (1.0f + e);
        store16(s + c, __builtin_elementwise_copysign(t, x) * cap2);
    }
    for (; c < n; c++) s[c] = cap2 * tanhf(s[c] * inverse);
}

static int CK_VARIANT(ck_attention_rows)(const ck_attention_args *a, long row_begin, long row_end) {
    const long hs = a->head_width;
    const long window = a->window;
    const long hidden = a->bias_kind == CK_BIAS_FIRE ? a->fire_hidden : 0;
    const long hs_padded = (hs + 63) / 64 * 64;
    const int capped = a->softcap > 0;
    const float cap2 = a->softcap * CK_LOG2E;     // the cap in the scores' base-2 units
    const int skipping =
        a->bias_kind == CK_BIAS_DISTANCE && a->distance_bias_bound && a->key_tile_norms && !capped;
    // The bf16 query pairs ([hs_padded / 2][BLOCK_Q] pairs, one float's room each) follow query_t.
    const size_t floats = (size_t)(BLOCK_Q * BLOCK_K + 2 * BLOCK_Q * hs_padded + 4 * BLOCK_Q + 2 * BLOCK_K +
                                   (a->bf16 ? BLOCK_Q * hs_padded / 2 + 16 : 0));
    float *scratch = aligned_alloc(64, (floats * sizeof(float) + 63) / 64 * 64);
    if (!scratch) return -1;
    float *scores = scratch;                      // [BLOCK_Q][BLOCK_K]
    float *acc = scores + BLOCK_Q * BLOCK_K;      // [BLOCK_Q][hs_padded]
    float *row_max = acc + BLOCK_Q * hs_padded;
    float *row_sum = row_max + BLOCK_Q;
    float *fire_x = row_sum + BLOCK_Q;
    float *fire_tmp = fire_x + BLOCK_K;
    float *query_reach = fire_tmp + BLOCK_K;      // skipping: |scale|·|q_i| per row of the block
    float *row_floor = query_reach + BLOCK_Q;     // skipping: the row's diagonal score − CK_NEGLIGIBLE_GAP
    float *query_t = row_floor + BLOCK_Q;         // [hs][BLOCK_Q]: the block's queries transposed, zeros past its end
    // 64-byte aligned: query_t's offset is a multiple of 16 floats, as is its size.
    uint16_t *query_pairs = (uint16_t *)(query_t + BLOCK_Q * hs_padded);
    const float scale2 = a->scale * CK_LOG2E;     // scores are kept in base 2: 2^(s·log2 e) = e^s

    for (long i0 = row_begin; i0 < row_end; i0 += BLOCK_Q) {
        const long i1 = min_l(i0 + BLOCK_Q, row_end);
        const long nq = i1 - i0;
        const long groups = (nq + 3) / 4;
        const long vectors = (nq + 15) / 16;
        const long vectors_padded = (vectors + CK_QKT_VECTORS - 1) / CK_QKT_VECTORS * CK_QKT_VECTORS;
        for (long r = 0; r < BLOCK_Q; r++) { row_max[r] = -INFINITY; row_sum[r] = 0; }
        for (long e = 0; e < hs; e++)
            for (long r = 0; r < BLOCK_Q; r++) query_t[e * BLOCK_Q + r] = r < nq ? a->q[(i0 + r) * a->q_stride + e] : 0;
        memset(acc, 0, sizeof(float) * (size_t)(BLOCK_Q * hs_padded));
        if (a->bf16) ck_bf16_pack_query_block(query_t, hs, query_pairs);
        const long j_first = window > 0 ? max_l(0, i0 - window + 1) / BLOCK_K * BLOCK_K : 0;
        if (skipping)
            for (long r = 0; r < nq; r++) {
                const long i = i0 + r;
                const float *qi = a->q + i * a->q_stride;
                const float *ki = a->k_packed + (i / BLOCK_K) * hs * BLOCK_K + i % BLOCK_K;
                float squares = 0, dot = 0;
                for (long e = 0; e < hs; e++) {
                    squares += qi[e] * qi[e];
                    dot += qi[e] * ki[e * BLOCK_K];
                }
                query_reach[r] = fabsf(a->scale) * sqrtf(squares);
                row_floor[r] = a->scale * dot + a->distance_bias[0] - CK_NEGLIGIBLE_GAP;
            }

        for (long j0 = j_first; j0 < i1; j0 += BLOCK_K) {
            if (skipping && j0 + BLOCK_K <= i0) {     // below the diagonal for every row: may be all zeros
                int negligible = 1;
                for (long r = 0; r < nq && negligible; r++)
                    negligible = query_reach[r] * a->key_tile_norms[j0 / BLOCK_K] +
                                     a->distance_bias_bound[i0 + r - j0 - (BLOCK_K - 1)] <
                                 row_floor[r];
                if (negligible) continue;
            }
            const long nk = min_l(BLOCK_K, i1 - j0);
            const float *keys = a->k_packed + (j0 / BLOCK_K) * hs * BLOCK_K;   // columns past i1 are masked below
            const float *v = a->v + j0 * a->v_stride;
            // Every row sees all 64 keys of this tile (below the diagonal, inside any window), and no per-tile MLP:
            // the transposed path, 16 rows per vector, instead of the general row-by-row one.
            const int full = nk == BLOCK_K && j0 + BLOCK_K <= i0 && (window == 0 || j0 >= i1 - window) &&
                             a->bias_kind != CK_BIAS_FIRE;
            if (full && a->bf16) {
                const long pairs = (hs + 1) / 2;
                ck_bf16_qk_tile_t(scores, query_pairs, a->k_pairs + (j0 / BLOCK_K) * pairs * BLOCK_K, hs, scale2,
                                  (vectors + 1) / 2 * 2);
                if (capped) softcap_scores(scores, BLOCK_K * BLOCK_Q, cap2);
                const float *bias = a->bias_kind == CK_BIAS_DISTANCE ? a->distance_bias + (i0 - j0) : NULL;
                for (long u = 0; u < vectors; u++) softmax_tile_t(scores, u, bias, row_max, row_sum, acc, hs_padded, hs);
                ck_bf16_pv_full(acc, hs_padded, scores, a->v_pairs + (j0 / BLOCK_K) * BLOCK_K * hs_padded, groups * 4);
                continue;
            }
            if (full) {
                qk_tile_t(scores, query_t, keys, hs, scale2, vectors_padded);
                if (capped) softcap_scores(scores, BLOCK_K * BLOCK_Q, cap2);   // every entry is visible here
                const float *bias = a->bias_kind == CK_BIAS_DISTANCE ? a->distance_bias + (i0 - j0) : NULL;
                for (long u = 0; u < vectors; u++) softmax_tile_t(scores, u, bias, row_max, row_sum, acc, hs_padded, hs);
                for (long g = 0; g < groups; g++)
                    for (long e0 = 0; e0 < hs; e0 += 64)
                        pv_tile(acc + 4 * g * hs_padded, hs_padded, scores + 4 * g, 1, BLOCK_Q, v, a->v_stride, nk, e0, hs);
                continue;
            }
            for (long g = 0; g < groups; g++) {
                const float *q[4];
                for (int u = 0; u < 4; u++) q[u] = a->q + min_l(i0 + 4 * g + u, i1 - 1) * a->q_stride;
                qk_tile(scores + 4 * g * BLOCK_K, q, keys, hs, scale2);
            }
            for (long r = 0; r < groups * 4; r++) {
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
                if (capped) softcap_scores(sv, n, cap2);   // cap·tanh(s/cap), in base 2 (the factor cancels inside)
                if (a->bias_kind == CK_BIAS_DISTANCE) {
                    const float *bias = a->distance_bias;
                    for (long c = 0; c < n; c++) sv[c] += bias[d0 - c] * CK_LOG2E;
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
                    for (long c = 0; c < n; c++) sv[c] += fire_tmp[c] * CK_LOG2E;
                }
                const float previous = row_max[r];
                float m, sum;
                if (n == BLOCK_K) {                     // every key of the tile visible: the common case
                    sum = softmax_row64(s, previous, &m);
                } else {
                    const float block_max = max_of(sv, n);
                    m = block_max > previous ? block_max : previous;
                    sum = exp2_shift_sum(sv, n, m);
                    for (long c = 0; c < c_begin; c++) s[c] = 0;
                    for (long c = c_end; c < BLOCK_K; c++) s[c] = 0;
                }
                update_row(acc + r * hs_padded, hs, &row_max[r], &row_sum[r], m, sum);
            }
            for (long g = 0; g < groups; g++)
                for (long e0 = 0; e0 < hs; e0 += 64)
                    pv_tile(acc + 4 * g * hs_padded, hs_padded, scores + 4 * g * BLOCK_K, BLOCK_K, 1, v, a->v_stride, nk,
                            e0, hs);
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
