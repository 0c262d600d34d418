// Which kernel set runs: decided once, when the library loads, from the CPU's own features (cpuid through
// __builtin_cpu_supports), never from a model table: AVX-512 where the CPU has it, else AVX2 + FMA, else the
// portable set. EXTRAPOLATE_KERNELS=avx512|avx2|generic forces one (tests run every path this way); a forced set
// the CPU lacks is refused in favour of the best it has, since running it would crash with SIGILL.
#include <stdlib.h>
#include <string.h>
#include "kernels/table.h"

static const ck_kernel_table *ck_active = &ck_table_generic;
static const char *ck_refused = NULL;

__attribute__((constructor)) static void ck_choose(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    const int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                       __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    const int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const ck_kernel_table *best = avx512 ? &ck_table_avx512 : (avx2 ? &ck_table_avx2 : &ck_table_generic);
    const char *forced = getenv("EXTRAPOLATE_KERNELS");
    ck_active = best;
    if (forced && *forced) {
        if (strcmp(forced, "generic") == 0) ck_active = &ck_table_generic;
        else if (strcmp(forced, "avx2") == 0 && avx2) ck_active = &ck_table_avx2;
        else if (strcmp(forced, "avx512") == 0 && avx512) ck_active = &ck_table_avx512;
        else ck_refused = forced;
    }
#endif
}

const char *ck_kernel_set(void) { return ck_active->name; }
const char *ck_kernel_set_refused(void) { return ck_refused; }

void ck_pack_keys(const float *k, long k_stride, long length, long hs, float *out) {
    ck_active->pack_keys(k, k_stride, length, hs, out);
}
void ck_key_tile_norms(const float *k_packed, long length, long hs, float *out) {
    ck_active->key_tile_norms(k_packed, length, hs, out);
}
void ck_suffix_max(const float *x, long n, float *out) { ck_active->suffix_max(x, n, out); }
int ck_attention_rows(const ck_attention_args *args, long row_begin, long row_end) {
    return ck_active->attention_rows(args, row_begin, row_end);
}
void ck_logsumexp_fold(const float *logits, long rows, long cols, long ld, long col0, const int *targets,
                       float *row_max, double *row_sum, float *target_logit) {
    ck_active->logsumexp_fold(logits, rows, cols, ld, col0, targets, row_max, row_sum, target_logit);
}
void ck_layer_norm(const float *x, float *out, long rows, long width, long stride, const float *gamma, const float *beta,
                   float eps) {
    ck_active->layer_norm(x, out, rows, width, stride, gamma, beta, eps);
}
void ck_rms_norm(const float *x, float *out, long rows, long width, long stride, const float *gamma, float eps) {
    ck_active->rms_norm(x, out, rows, width, stride, gamma, eps);
}
void ck_activation(float *x, long n, ck_activation_kind kind) { ck_active->activation(x, n, kind); }
void ck_multiply(float *x, const float *y, long n) { ck_active->multiply(x, y, n); }
void ck_add(float *x, const float *y, long n) { ck_active->add(x, y, n); }
void ck_rotate(float *x, long rows, long stride, long half, const float *cos_table, const float *sin_table,
               int interleaved) {
    ck_active->rotate(x, rows, stride, half, cos_table, sin_table, interleaved);
}
void ck_exp(const float *x, float *y, long n) { ck_active->exp(x, y, n); }
void ck_erf(const float *x, float *y, long n) { ck_active->erf(x, y, n); }
long ck_next_item(long *counter) { return __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED); }

static _Thread_local int in_parallel_region;
int ck_in_parallel_region(void) { return in_parallel_region; }
void ck_set_parallel_region(int inside) { in_parallel_region = inside; }

int ck_cpu_level(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl"))
        return 3;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 2;
#endif
    return 1;
}
