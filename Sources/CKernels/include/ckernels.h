// Numeric kernels over raw fp32 buffers (kernels/attention.h, softmax.h, norms.h, elementwise.h), compiled -O3 even
// in debug builds, once per kernel set (AVX-512, AVX2 + FMA, portable); dispatch.c picks the set the CPU supports. Swift (`Kernels`) owns threading and buffer lifetimes; nothing here
// allocates more than one tile's scratch or keeps state between calls.
#ifndef EXTRAPOLATE_CKERNELS_H
#define EXTRAPOLATE_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// How attention logits are biased.
typedef enum {
    /// No bias (NoPE, rotary, xPos, learned/sinusoidal inputs).
    CK_BIAS_NONE = 0,
    /// `bias[d]` by distance `d = i - j` (ALiBi, T5, KERPLE, Sandwich): `distance_bias` holds `T` values.
    CK_BIAS_DISTANCE = 1,
    /// FIRE: `mlp(log_distance[d] * inverse_normalizer[i])` for this head, computed per tile.
    CK_BIAS_FIRE = 2,
} ck_bias_kind;

/// One head's causal attention over a sequence; element (t, e) of q is `q[t * q_stride + e]`.
typedef struct {
    long length;              ///< T
    long head_width;          ///< hs
    const float *q; long q_stride;
    const float *k_packed;    ///< this head's keys, packed by ck_pack_keys
    const float *v; long v_stride;
    float *out; long out_stride;
    float scale;              ///< multiplier of q·k
    long window;              ///< 0: full causal; W: keys i-W < j <= i
    ck_bias_kind bias_kind;
    const float *distance_bias;     ///< CK_BIAS_DISTANCE: [T]
    const float *log_distance;      ///< CK_BIAS_FIRE: [T], ln(|c|·d + 1)
    const float *inverse_normalizer;///< CK_BIAS_FIRE: [T], 1 / (ln(|c|·max(L, i) + 1) + eps)
    long fire_hidden;
    const float *fire_w1;           ///< [hidden]
    const float *fire_b1;           ///< [hidden]
    const float *fire_w2;           ///< [hidden], this head's row
    float fire_b2;                  ///< this head's bias
    /// CK_BIAS_DISTANCE, optional: with both of these the kernel skips key tiles whose every term is exactly 0
    /// in float (attention.h says how it proves it). Worked out once per layer, not per call.
    const float *distance_bias_bound; ///< [T]: max of distance_bias[d ..< T] (ck_suffix_max)
    const float *key_tile_norms;      ///< [ceil(T / 64)]: the largest |k| of each packed key tile (ck_key_tile_norms)
    /// > 0: each scaled score s = scale·q·k becomes softcap·tanh(s / softcap) before any bias or mask (Gemma 2).
    float softcap;
    /// Nonzero: the full tiles' two products in bfloat16 (`--precision bf16`; only where ck_bf16_available()), from
    /// these pairs of this head's keys and values.
    int bf16;
    const uint32_t *k_pairs;  ///< ck_bf16_pack_key_pairs of k_packed
    const uint16_t *v_pairs;  ///< ck_bf16_pack_value_pairs of v
} ck_attention_args;

/// Packs one head's keys for ck_attention_rows: block b of 64 keys becomes [hs][64] (transposed, zero-padded past
/// `length`), so tiles read contiguous memory instead of re-transposing strided rows for every query block.
/// `out` holds ceil(length / 64) · hs · 64 floats.
void ck_pack_keys(const float *k, long k_stride, long length, long hs, float *out);

/// `out[t]` = the largest Euclidean norm of the keys in tile t of `k_packed` (ck_pack_keys' layout), for the
/// ceil(length / 64) tiles.
void ck_key_tile_norms(const float *k_packed, long length, long hs, float *out);

/// `out[d]` = max of x[d ..< n], for every d.
void ck_suffix_max(const float *x, long n, float *out);

/// Computes output rows [row_begin, row_end) of one head with a tiled online softmax (no T×T matrix).
/// Returns 0, or -1 if scratch could not be allocated.
int ck_attention_rows(const ck_attention_args *args, long row_begin, long row_end);

/// Folds one slice of the vocabulary, columns [col0, col0 + cols) of `rows` rows of logits (leading dimension `ld`),
/// into running log-sum-exp state: row_max[r] (start at -INFINITY), row_sum[r] = Σ exp(logit − row_max[r]) in
/// double, and target_logit[r] when targets[r] falls in the slice. log p = target_logit − row_max − log(row_sum).
void ck_logsumexp_fold(const float *logits, long rows, long cols, long ld, long col0, const int *targets,
                       float *row_max, double *row_sum, float *target_logit);

/// Returns *counter and adds 1, atomically: how a team of threads hands out work items.
long ck_next_item(long *counter);
/// Whether the calling thread is running an item of a parallel region (`Kernels.parallelWork`): a parallel call made
/// there runs on the calling thread alone, so work split over windows (training's batch) is not split again.
int ck_in_parallel_region(void);
void ck_set_parallel_region(int inside);

/// The kernel set in use: "avx512", "avx2" or "generic".
const char *ck_kernel_set(void);
/// What the CPU supports, from cpuid: 3 = AVX-512 (F, BW, DQ, VL), 2 = AVX2 + FMA, 1 = neither (or not x86-64).
int ck_cpu_level(void);
/// The value of EXTRAPOLATE_KERNELS when it asked for a set this CPU lacks (then the best it has runs), else NULL.
const char *ck_kernel_set_refused(void);

/// Layer norm of `rows` rows of `width` from `x` into `out` (both `stride` apart; `out` may be `x`); `gamma`/`beta`
/// may be NULL.
void ck_layer_norm(const float *x, float *out, long rows, long width, long stride, const float *gamma, const float *beta,
                   float eps);
/// RMS norm (Llama) of `rows` rows from `x` into `out` (`out` may be `x`); `gamma` may be NULL.
void ck_rms_norm(const float *x, float *out, long rows, long width, long stride, const float *gamma, float eps);

/// The feed-forward activations.
typedef enum {
    /// 0.5·x·(1 + erf(x/√2)) (`gelu`, exact form).
    CK_ACTIVATION_GELU = 0,
    /// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) (`gelu_new`, `gelu_pytorch_tanh`).
    CK_ACTIVATION_GELU_TANH = 1,
    /// max(x, 0).
    CK_ACTIVATION_RELU = 2,
    /// x·σ(x) (`silu`, `swish`).
    CK_ACTIVATION_SILU = 3,
} ck_activation_kind;

/// An activation in place over `n` values.
void ck_activation(float *x, long n, ck_activation_kind kind);
/// `x[i] *= y[i]` (gated feed-forward).
void ck_multiply(float *x, const float *y, long n);
/// `x[i] += y[i]`.
void ck_add(float *x, const float *y, long n);

/// Rotates pairs of `rows` vectors in place: pair k of row r uses cos/sin `[r * half + k]`;
/// `interleaved` pairs (2k, 2k+1), otherwise (k, k + half). Entries past 2·half are untouched.
void ck_rotate(float *x, long rows, long stride, long half, const float *cos_table, const float *sin_table, int interleaved);


/// `exp` of every element (the vectorised routine the attention kernel uses; exposed for tests).
void ck_exp(const float *x, float *y, long n);
/// `erf` of every element (the GELU kernel's approximation; exposed for tests).
void ck_erf(const float *x, float *y, long n);

/// x ← cap · tanh(x / cap) over n values.
void ck_softcap(float *x, long n, float cap);

/// bfloat16 values to fp32 (exact).
void ck_widen_bf16(const uint16_t *x, float *y, long n);

/// IEEE half values to fp32 (exact; F16C where the CPU has it).
void ck_widen_f16(const uint16_t *x, float *y, long n);

/// fp32 to bfloat16, rounding to nearest even (NaN stays NaN).
uint16_t ck_bf16_round(float x);

/// Whether `ck_bf16_linear` runs here: the CPU has AVX512-BF16 and the AVX-512 kernel set is in use.
int ck_bf16_available(void);

/// Values (uint16) of B [n][k] packed for `ck_bf16_linear`: panels of 32 columns × ⌈k/2⌉ pairs.
long ck_bf16_packed_count(long n, long k);

/// Packs rows row0 ..< row0 + rows of B [n][k] (format 0 fp32, 1 bf16, 2 f16), rounded to bfloat16, into `out`
/// (`ck_bf16_packed_count(n, k)` values; rows past n are zero).
void ck_bf16_pack(const void *b, int format, long n, long k, long row0, long rows, uint16_t *out);

/// C[m][n] = A[m][k] · B[column0 ..< column0 + n]ᵀ (+ bias[n]) (+ C when `accumulate`), A rounded to bfloat16, B
/// packed by `ck_bf16_pack`, fp32 accumulation; column0 a multiple of 32. Only where `ck_bf16_available()`.
void ck_bf16_linear(const float *a, long lda, const uint16_t *packed, long k, long column0, const float *bias, float *c,
                    long ldc, long m, long n, int accumulate);

/// Keys packed by ck_pack_keys, rounded to bfloat16 and paired along the head width: tile t becomes
/// [ceil(hs / 2)][64] pairs (uint32: element 2p low, 2p + 1 high). `out` holds ceil(length / 64) · ceil(hs / 2) · 64.
void ck_bf16_pack_key_pairs(const float *k_packed, long length, long hs, uint32_t *out);

/// Values [length][v_stride] rounded to bfloat16 and paired along the keys: tile t becomes [32][hs_padded][2]
/// (hs_padded = hs rounded up to 64, zeros past hs and past length). `out` holds ceil(length / 64) · 64 · hs_padded.
void ck_bf16_pack_value_pairs(const float *v, long v_stride, long length, long hs, uint16_t *out);

/// A query block transposed ([hs][64] fp32) as bfloat16 pairs along the head width: [ceil(hs / 2)][64][2].
void ck_bf16_pack_query_block(const float *query_t, long hs, uint16_t *out);

/// st[c][r] = scale · Σ_e k_c[e] · q_r[e] over a full tile, bfloat16 operands, fp32 accumulation; `vectors` groups
/// of 16 query rows (even).
void ck_bf16_qk_tile_t(float *st, const uint16_t *q_pairs, const uint32_t *k_pairs, long hs, float scale, long vectors);

/// acc[r][e] += Σ_c st[c][r] · v_c[e] over a full tile's 64 keys for `rows` rows (a multiple of 4), bfloat16
/// operands (the probabilities rounded here), fp32 accumulation.
void ck_bf16_pv_full(float *acc, long hs_padded, const float *st, const uint16_t *v_pairs, long rows);

#ifdef __cplusplus
}
#endif

#endif
