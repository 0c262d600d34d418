// Layer norm and RMS norm over rows, from x into out (which may be x: in place). A residual branch that starts with
// its norm reads the stream and writes its own input, with no copy of the stream first.

static void CK_VARIANT(ck_layer_norm)(const float *x, float *out, long rows, long width, long stride, const float *gamma,
                                      const float *beta, float eps) {
    for (long r = 0; r < rows; r++) {
        const float *row = x + r * stride;
        float *destination = out + r * stride;
        const double mean = sum_power_d(row, width, 0, 1) / (double)width;
        const double var = sum_power_d(row, width, mean, 2) / (double)width;
        const float m = (float)mean;
        const float inv = (float)(1.0 / sqrt(var + (double)eps));
        for (long c = 0; c < width; c++) {
            float y = (row[c] - m) * inv;
            if (gamma) y *= gamma[c];
            if (beta) y += beta[c];
            destination[c] = y;
        }
    }
}

static void CK_VARIANT(ck_rms_norm)(const float *x, float *out, long rows, long width, long stride, const float *gamma,
                                    float eps) {
    for (long r = 0; r < rows; r++) {
        const float *row = x + r * stride;
        float *destination = out + r * stride;
        const double square = sum_power_d(row, width, 0, 2);
        const float inv = (float)(1.0 / sqrt(square / (double)width + (double)eps));
        for (long c = 0; c < width; c++) destination[c] = gamma ? gamma[c] * (row[c] * inv) : row[c] * inv;
    }
}
