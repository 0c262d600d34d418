// The portable kernel set: whatever the compiler's baseline is (SSE2 on x86-64, NEON on arm64).
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/table.h"

#define CK_QK_ROWS 1
#define CK_QKT_VECTORS 1
#define CK_QKT_KEYS 2
#define CK_VARIANT(name) name##_generic
#define CK_TABLE ck_table_generic
#define CK_SET_NAME "generic"
#include "kernels/variant.h"
