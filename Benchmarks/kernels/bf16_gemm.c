// How fast could a bf16 matrix product be on this CPU? A first micro-kernel with AVX512-BF16's vdpbf16ps against
// OpenBLAS sgemm on the engine's projection shapes, one thread each, best of N — the measurement the `--precision
// bf16` mode (issue 30) is to be designed from. Not part of the engine.
//
//   cc -O3 -march=native -o /tmp/bf16_gemm Benchmarks/kernels/bf16_gemm.c -lopenblas -lm
//   OPENBLAS_CORETYPE=SkylakeX /tmp/bf16_gemm [m n k repeats]
//
// C[m][n] = A[m][k] · B[n][k]ᵀ, A fp32 activations (rounded to bf16, nearest-even, as part of the timed work), B the
// weights already packed in bf16 (done once at load in an engine), fp32 accumulation. vdpbf16ps multiplies pairs:
// each fp32 lane adds a[2i]·b[2i] + a[2i+1]·b[2i+1], so A is packed as bf16 pairs per row and B as panels of 32
// columns × k/2 pairs; the micro-kernel keeps an 8 × 32 tile of C in 16 zmm registers.
#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MR 8
#define NR 32

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static uint16_t to_bf16(float x) {  // round to nearest even (finite inputs)
    uint32_t bits;
    memcpy(&bits, &x, 4);
    return (uint16_t)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
}

static float from_bf16(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float x;
    memcpy(&x, &bits, 4);
    return x;
}

/// B [n][k] fp32 → panels: panel p holds columns 32p…32p+31 as [k/2][32][2] bf16.
static uint16_t *pack_b(const float *b, long n, long k) {
    long panels = (n + NR - 1) / NR;
    uint16_t *packed = aligned_alloc(64, (size_t)panels * NR * k * 2);
    for (long p = 0; p < panels; p++)
        for (long kk = 0; kk < k / 2; kk++)
            for (long c = 0; c < NR; c++)
                for (int e = 0; e < 2; e++) {
                    long col = p * NR + c;
                    packed[((p * (k / 2) + kk) * NR + c) * 2 + e] = col < n ? to_bf16(b[col * k + 2 * kk + e]) : 0;
                }
    return packed;
}

/// Rows of A to bf16 pairs [rows][k/2] (uint32 each), rounding with vcvtne2ps2bf16.
__attribute__((target("avx512f,avx512bf16"))) static void pack_a(const float *a, long rows, long k, uint32_t *out) {
    for (long r = 0; r < rows; r++) {
        const float *row = a + r * k;
        uint16_t *dst = (uint16_t *)(out + r * (k / 2));
        long e = 0;
        for (; e + 32 <= k; e += 32) {
            __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(row + e + 16), _mm512_loadu_ps(row + e));
            _mm512_storeu_si512(dst + e, (__m512i)v);
        }
        for (; e < k; e++) dst[e] = to_bf16(row[e]);
    }
}

__attribute__((target("avx512f,avx512bf16"))) static void micro(const uint32_t *a, long lda2, long k2,
                                                                 const uint16_t *panel, float *c, long ldc, long rows,
                                                                 int accumulate) {
    __m512 acc[MR][2];
    for (int r = 0; r < MR; r++) {
        acc[r][0] = accumulate && r < rows ? _mm512_loadu_ps(c + r * ldc) : _mm512_setzero_ps();
        acc[r][1] = accumulate && r < rows ? _mm512_loadu_ps(c + r * ldc + 16) : _mm512_setzero_ps();
    }
    for (long kk = 0; kk < k2; kk++) {
        __m512bh b0 = (__m512bh)_mm512_load_si512(panel + kk * NR * 2);
        __m512bh b1 = (__m512bh)_mm512_load_si512(panel + kk * NR * 2 + 32);
        for (int r = 0; r < MR; r++) {
            __m512bh x = (__m512bh)_mm512_set1_epi32((int)a[r * lda2 + kk]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], x, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], x, b1);
        }
    }
    for (int r = 0; r < rows; r++) {
        _mm512_storeu_ps(c + r * ldc, acc[r][0]);
        _mm512_storeu_ps(c + r * ldc + 16, acc[r][1]);
    }
}

/// The whole product on one thread, k in blocks of KC (an 8-row A block and a panel's KC/2 pairs stay in L1): for
/// each k block, A packed MR rows at a time, then every B panel's slice of the block.
#define KC 512
static void bf16_gemm(const float *a, long m, long n, long k, const uint16_t *packed, float *c, uint32_t *scratch) {
    long panels = n / NR;
    for (long k0 = 0; k0 < k; k0 += KC) {
        long kb = k - k0 < KC ? k - k0 : KC;
        for (long i = 0; i < m; i += MR) {
            long rows = m - i < MR ? m - i : MR;
            for (long r = 0; r < rows; r++) pack_a(a + (i + r) * k + k0, 1, kb, scratch + r * (KC / 2));
            for (long p = 0; p < panels; p++)
                micro(scratch, KC / 2, kb / 2, packed + (p * (k / 2) + k0 / 2) * NR * 2, c + i * n + p * NR, n, rows,
                      k0 > 0);
        }
    }
}

int main(int argc, char **argv) {
    long m = argc > 1 ? atol(argv[1]) : 2048, n = argc > 2 ? atol(argv[2]) : 3072, k = argc > 3 ? atol(argv[3]) : 768;
    int repeats = argc > 4 ? atoi(argv[4]) : 5;
    if (n % NR || k % 32 || m % MR) {
        fprintf(stderr, "n must be a multiple of %d, k of 32, m of %d\n", NR, MR);
        return 2;
    }
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512bf16")) {
        fprintf(stderr, "this CPU has no AVX512-BF16\n");
        return 2;
    }
    openblas_set_num_threads(1);
    float *a = aligned_alloc(64, m * k * 4), *b = aligned_alloc(64, n * k * 4);
    float *c = aligned_alloc(64, m * n * 4), *c2 = aligned_alloc(64, m * n * 4);
    srand(1);
    for (long i = 0; i < m * k; i++) a[i] = (float)rand() / RAND_MAX - 0.5f;
    for (long i = 0; i < n * k; i++) b[i] = ((float)rand() / RAND_MAX - 0.5f) * 0.1f;
    uint16_t *packed = pack_b(b, n, k);
    uint32_t *scratch = aligned_alloc(64, MR * k * 2);
    double best_s = 1e9, best_b = 1e9;
    for (int r = 0; r < repeats; r++) {
        double t = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1, a, k, b, k, 0, c, n);
        t = now() - t;
        best_s = t < best_s ? t : best_s;
        t = now();
        bf16_gemm(a, m, n, k, packed, c2, scratch);
        t = now() - t;
        best_b = t < best_b ? t : best_b;
    }
    // Accuracy against the fp32 product of the bf16-rounded inputs (what the mode computes exactly), and against
    // the fp32 product itself (what rounding the inputs costs).
    double worst_rounded = 0, worst_exact = 0, scale = 0;
    for (long i = 0; i < m; i += m / 16)
        for (long j = 0; j < n; j += 7) {
            double exact = 0;
            for (long e = 0; e < k; e++) exact += (double)from_bf16(to_bf16(a[i * k + e])) * from_bf16(to_bf16(b[j * k + e]));
            double d = fabs(c2[i * n + j] - exact);
            worst_rounded = d > worst_rounded ? d : worst_rounded;
            double e2 = fabs(c2[i * n + j] - c[i * n + j]);
            worst_exact = e2 > worst_exact ? e2 : worst_exact;
            scale = fabs(c[i * n + j]) > scale ? fabs(c[i * n + j]) : scale;
        }
    double flops = 2.0 * m * n * k;
    printf("%ld x %ld x %ld, 1 thread, best of %d: sgemm %.1f GFLOP/s, bf16 %.1f GFLOP/s, ratio %.2fx; "
           "max |bf16 - exact on rounded inputs| %.2g, max |bf16 - fp32| %.2g (largest |C| %.2g)\n",
           m, n, k, repeats, flops / best_s / 1e9, flops / best_b / 1e9, best_s / best_b, worst_rounded, worst_exact,
           scale);
    return 0;
}
