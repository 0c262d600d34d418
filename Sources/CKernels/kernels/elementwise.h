// Element-wise kernels: activations, products, sums, biases, rotary rotation; the work counter of the thread teams.

static void CK_VARIANT(ck_erf)(const float *x, float *y, long n) {
    for (long i = 0; i < n; i++) y[i] = ck_erff(x[i]);
}

static void CK_VARIANT(ck_activation)(float *x, long n, ck_activation_kind kind) {
    switch (kind) {
    case CK_ACTIVATION_GELU:
        for (long i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + ck_erff(x[i] * 0.70710678118654752f));
        break;
    case CK_ACTIVATION_GELU_TANH:
        for (long i = 0; i < n; i++) {
            const float v = x[i];
            // 0.5·v·(1 + tanh(y)) = v / (1 + exp(−2y)): exact identity, no cancellation, vectorises.
            x[i] = v / (1.0f + ck_expf(-2.0f * 0.79788456080286536f * (v + 0.044715f * v * v * v)));
        }
        break;
    case CK_ACTIVATION_RELU:
        for (long i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0;
        break;
    case CK_ACTIVATION_SILU:
        for (long i = 0; i < n; i++) x[i] = x[i] / (1.0f + ck_expf(-x[i]));
        break;
    }
}

static void CK_VARIANT(ck_multiply)(float *x, const float *y, long n) {
    for (long i = 0; i < n; i++) x[i] *= y[i];
}

static void CK_VARIANT(ck_add)(float *x, const float *y, long n) {
    for (long i = 0; i < n; i++) x[i] += y[i];
}

static void CK_VARIANT(ck_rotate)(float *x, long rows, long stride, long half, const float *cos_table, const float *sin_table, int interleaved) {
    for (long r = 0; r < rows; r++) {
        float *row = x + r * stride;
        const float *cs = cos_table + r * half;
        const float *sn = sin_table + r * half;
        if (interleaved) {
            for (long k = 0; k < half; k++) {
                const float a = row[2 * k], b = row[2 * k + 1];
                row[2 * k] = a * cs[k] - b * sn[k];
                row[2 * k + 1] = b * cs[k] + a * sn[k];
            }
        } else {
            for (long k = 0; k < half; k++) {
                const float a = row[k], b = row[k + half];
                row[k] = a * cs[k] - b * sn[k];
                row[k + half] = b * cs[k] + a * sn[k];
            }
        }
    }
}

