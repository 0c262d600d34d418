// The AVX2 + FMA kernel set (x86-64-v3: Haswell and later Intel, Zen 1–3 AMD).
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/table.h"

#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,bmi,bmi2,lzcnt,popcnt,movbe"))), apply_to = function)
#define CK_QK_ROWS 1
#define CK_QKT_VECTORS 1
#define CK_QKT_KEYS 4
#define CK_VARIANT(name) name##_avx2
#define CK_TABLE ck_table_avx2
#define CK_SET_NAME "avx2"
#include "kernels/variant.h"
#pragma clang attribute pop
#endif
