#!/usr/bin/env python3
"""The coefficients of the C kernels' exp and 2^x (Sources/CKernels/kernels/ck_math.h), and their measured error.

exp(x) = 2^n · exp(r), n = round(x·log2 e), |r| ≤ ln2/2, and exp(r) ≈ 1 + r + r²·q(r) with q of degree 4. q is
fitted to (exp(r) − 1 − r)/r² by iteratively reweighted least squares on Chebyshev nodes, weighted for the relative
error of exp(r), which approaches the minimax fit. The script prints the coefficients (as the float32 values the C
source spells), the fit's relative error, and the ulp error of a float32 simulation of the kernel's steps against
double-precision exp over [-87, 88] (the kernel fuses multiply-adds, which this simulation does not: it is the
worse of the two).

2^x (the attention tile keeps its scores in base 2): 2^x = 2^n · 2^f, n = round(x), |f| ≤ 1/2, and
2^f ≈ 1 + f·P(f) with P of degree 5, fitted the same way to (2^f − 1)/f, and simulated the same way over [-125, 0].

    python3 Tests/Fixtures/make_exp_coefficients.py      # numpy only
"""
import numpy as np

HALF_LN2 = np.log(2) / 2


def fit_relative(x, target, weight, terms, rounds):
    """Least squares on Chebyshev nodes, iteratively reweighted towards the minimax fit of `terms` coefficients."""
    best = None
    for _ in range(rounds):
        a = np.vander(x, terms, increasing=True) * weight[:, None]
        c, *_ = np.linalg.lstsq(a, target * weight, rcond=None)
        error = (np.polyval(c[::-1], x) - target) * weight
        if best is None or np.abs(error).max() < best[1]:
            best = (c, np.abs(error).max())
        weight = weight * (1 + 5 * np.abs(error) / np.abs(error).max())
    return best


def fit():
    x = np.cos(np.linspace(0, np.pi, 4001)) * HALF_LN2
    x = x[np.abs(x) > 1e-6]
    # error in q → relative error of exp(r)
    return fit_relative(x, (np.exp(x) - 1 - x) / x**2, x**2 / np.exp(x), 5, 40)


def simulate(xs, c):
    f = np.float32
    xs = np.clip(xs.astype(f), f(-87.3), f(88.3))
    magic = f(12582912.0 + 127)
    k = (xs * f(1.44269504088896341) + magic).astype(f)
    n = k - magic
    r = xs - n * f(0.693359375)
    r = r - n * f(-2.12194440e-4)
    p = f(c[4])
    for coefficient in c[3::-1]:
        p = p * r + f(coefficient)
    p = p * r + f(1)
    p = p * r + f(1)
    return p * (k.view(np.int32) << 23).view(f)


def fit_exp2():
    x = np.cos(np.linspace(0, np.pi, 4001)) * 0.5
    x = x[np.abs(x) > 1e-6]
    # error in P → relative error of 2^f
    return fit_relative(x, (np.exp2(x) - 1) / x, np.abs(x) / np.exp2(x), 6, 60)


def simulate_exp2(xs, c):
    f = np.float32
    xs = np.maximum(xs.astype(f), f(-125))
    magic = f(12582912.0 + 127)
    k = (xs + magic).astype(f)
    n = k - magic
    r = xs - n
    p = f(c[5])
    for coefficient in c[4::-1]:
        p = p * r + f(coefficient)
    p = p * r + f(1)
    return p * (k.view(np.int32) << 23).view(f)


def report(name, first_degree, fitted, interval, low, high, seed, simulated, exact):
    """Prints the C defines of a fit, its relative error, and the ulp error of its float32 steps on [low, high]."""
    c, error = fitted
    for degree, value in zip(range(first_degree, first_degree + len(c)), c):
        print(f"#define {name}{degree} {float(np.float32(value))!r}f")
    print(f"fit: {error:.2e} relative on {interval}")
    xs = np.concatenate([np.random.default_rng(seed).uniform(low, high, 4_000_000), np.linspace(low, high, 1_000_001)])
    xs = xs.astype(np.float32)
    reference = exact(xs.astype(np.float64))
    ulps = np.abs(simulated(xs, c) - reference) / np.spacing(reference.astype(np.float32))
    print(f"float32 steps: max {ulps.max():.2f} ulp, mean {ulps.mean():.2f} ulp against double precision")


if __name__ == "__main__":
    report("CK_EXP_C", 2, fit(), "[-ln2/2, ln2/2]", -87, 88, 1, simulate, np.exp)
    report("CK_EXP2_C", 1, fit_exp2(), "[-1/2, 1/2]", -125, 0, 2, simulate_exp2, np.exp2)
