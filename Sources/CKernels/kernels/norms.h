// Layer norm and RMS norm, in place over rows.

static void CK_VARIANT(ck_layer_norm)(float *x, long rows, long width, long stride, const float *gamma, const float *beta, float eps) {
    for (long r = 0; r < rows; r++) {
        float *row = x + r * stride;
        double mean = 0;
        for (long c = 0; c < width; c++) mean += row[c];
        mean /= (double)width;
        double var = 0;
        for (long c = 0; c < width; c++) { double d = row[c] - mean; var += d * d; }
        var /= (double)width;
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
        double square = 0;
        for (long c = 0; c < width; c++) square += (double)row[c] * row[c];
        const float inv = (float)(1.0 / sqrt(square / (double)width + (double)eps));
        for (long c = 0; c < width; c++) row[c] = gamma ? gamma[c] * (row[c] * inv) : row[c] * inv;
    }
}
