// Layer norm and RMS norm, in place over rows.

static void CK_VARIANT(ck_layer_norm)(float *x, long rows, long width, long stride, const float *gamma, const float *beta, float eps) {
    for (long r = 0; r < rows; r++) {
        float *row = x + r * stride;
        const double mean = sum_power_d(row, width, 0, 1) / (double)width;
        const double var = sum_power_d(row, width, mean, 2) / (double)width;
        const float m = (float)mean;
        const float inv = (float)(1.0 / sqrt(var + (double)eps));
        for (long c = 0; c < width; c++) {
            float y = (row[c] - m) * inv;
            if (gamma) y *= gamma[c];
            if (beta) y += beta[c];
            row[c] = y;
        }
    }
}

static void CK_VARIANT(ck_rms_norm)(float *x, long rows, long width, long stride, const float *gamma, float eps) {
    for (long r = 0; r < rows; r++) {
        float *row = x + r * stride;
        const double square = sum_power_d(row, width, 0, 2);
        const float inv = (float)(1.0 / sqrt(square / (double)width + (double)eps));
        for (long c = 0; c < width; c++) row[c] = gamma ? gamma[c] * (row[c] * inv) : row[c] * inv;
    }
}
