// Soft capping of logits, x ← cap · tanh(x / cap) (Gemma 2's final_logit_softcapping), as transformers computes it:
// divide, tanh, multiply, in fp32.
#include <math.h>
#include "ckernels.h"

void ck_softcap(float *x, long n, float cap) {
    for (long i = 0; i < n; i++) x[i] = tanhf(x[i] / cap) * cap;
}
