// One kernel set: every kernel's body compiled for the target the including file chose, its functions named with
// CK_VARIANT and gathered in the table CK_TABLE (dispatch.c picks one table at load time).
#include "ck_math.h"
#include "attention.h"
#include "softmax.h"
#include "norms.h"
#include "elementwise.h"

const ck_kernel_table CK_TABLE = {
    .name = CK_SET_NAME,
    .pack_keys = CK_VARIANT(ck_pack_keys),
    .key_tile_norms = CK_VARIANT(ck_key_tile_norms),
    .suffix_max = CK_VARIANT(ck_suffix_max),
    .attention_rows = CK_VARIANT(ck_attention_rows),
    .logsumexp_fold = CK_VARIANT(ck_logsumexp_fold),
    .layer_norm = CK_VARIANT(ck_layer_norm),
    .rms_norm = CK_VARIANT(ck_rms_norm),
    .activation = CK_VARIANT(ck_activation),
    .multiply = CK_VARIANT(ck_multiply),
    .add = CK_VARIANT(ck_add),
    .rotate = CK_VARIANT(ck_rotate),
    .exp = CK_VARIANT(ck_exp),
    .erf = CK_VARIANT(ck_erf),
};
