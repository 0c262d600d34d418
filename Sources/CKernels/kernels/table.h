// The table of one kernel set's functions (dispatch.c, the variant_*.c files).
#ifndef EXTRAPOLATE_CK_TABLE_H
#define EXTRAPOLATE_CK_TABLE_H

#include "ckernels.h"

typedef struct {
    const char *name;
    void (*pack_keys)(const float *, long, long, long, float *);
    void (*key_tile_norms)(const float *, long, long, float *);
    void (*suffix_max)(const float *, long, float *);
    int (*attention_rows)(const ck_attention_args *, long, long);
    void (*logsumexp_fold)(const float *, long, long, long, long, const int *, float *, double *, float *);
    void (*layer_norm)(const float *, float *, long, long, long, const float *, const float *, float);
    void (*rms_norm)(const float *, float *, long, long, long, const float *, float);
    void (*activation)(float *, long, ck_activation_kind);
    void (*multiply)(float *, const float *, long);
    void (*add)(float *, const float *, long);
    void (*rotate)(float *, long, long, long, const float *, const float *, int);
    void (*exp)(const float *, float *, long);
    void (*erf)(const float *, float *, long);
} ck_kernel_table;

extern const ck_kernel_table ck_table_avx512;
extern const ck_kernel_table ck_table_avx2;
extern const ck_kernel_table ck_table_generic;

#endif
