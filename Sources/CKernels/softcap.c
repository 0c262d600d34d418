// Soft capping of logits, x ← cap · tanh(x / cap) (Gemma 2's final_logit_softcapping). tanh|y| = (1 − e)/(1 + e)
// with e = exp(−2|y|), 16 values at a time through the kernels' own exp (absolute error a few ulp of 1 times the
// cap); the tail through libm.
#include <math.h>
#include <string.h>
#include "ckernels.h"
#include "kernels/ck_math.h"

void ck_softcap(float *x, long n, float cap) {
    const float inverse = 1.0f / cap;
    float e[LANES];
    long i = 0;
    for (; i + LANES <= n; i += LANES) {
        for (int l = 0; l < LANES; l++) e[l] = ck_expf(-2.0f * fabsf(x[i + l] * inverse));
        for (int l = 0; l < LANES; l++) {
            const float t = (1.0f - e[l]) / (1.0f + e[l]);
            x[i + l] = copysignf(t, x[i + l]) * cap;
        }
    }
    for (; i < n; i++) x[i] = tanhf(x[i] * inverse) * cap;
}
