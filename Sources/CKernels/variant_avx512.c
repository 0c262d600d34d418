// The AVX-512 kernel set (x86-64-v4: Skylake-X and later Intel, Zen 4 and later AMD).
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/table.h"
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c,bmi,bmi2,lzcnt,popcnt,movbe"))), apply_to = function)
#define CK_QK_ROWS 4
#define CK_QKT_VECTORS 2
#define CK_QKT_KEYS 8
#define CK_AVX512_EXP2 1
#define CK_VARIANT(name) name##_avx512
#define CK_TABLE ck_table_avx512
#define CK_SET_NAME "avx512"
#include "kernels/variant.h"
#pragma clang attribute pop
#endif
