// Log-sum-exp over vocabulary slices (the LM head's log-softmax), and the vectorised exp exposed for tests.

static void CK_VARIANT(ck_logsumexp_fold)(const float *logits, long rows, long cols, long ld, long col0, const int *targets,
                       float *row_max, double *row_sum, float *target_logit) {
    for (long r = 0; r < rows; r++) {
        const float *row = logits + r * ld;
        const float slice_max = max_of(row, cols);
        const float previous = row_max[r];
        const float m = slice_max > previous ? slice_max : previous;
        double total = previous == -INFINITY ? 0.0 : row_sum[r] * exp((double)previous - (double)m);
        // 16 double lanes (a float chunk summed lane by lane was a serial chain of 16 adds per 16 logits).
        double lanes[LANES] = {0};
        long c = 0;
        for (; c + LANES <= cols; c += LANES)
            for (int u = 0; u < LANES; u++) lanes[u] += (double)ck_expf(row[c + u] - m);
        total += sum_lanes_d(lanes);
        for (; c < cols; c++) total += exp((double)row[c] - m);
        row_max[r] = m;
        row_sum[r] = total;
        const long t = (long)targets[r] - col0;
        if (t >= 0 && t < cols) target_logit[r] = row[t];
    }
}

static void CK_VARIANT(ck_exp)(const float *x, float *y, long n) {
    for (long i = 0; i < n; i++) y[i] = ck_expf(x[i]);
}
