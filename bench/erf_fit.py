"""Fits the polynomials of verf (Sources/Kernels/Hot/SIMDMath.swift).

AVX2 build, two fits:
|x| < 1:      erf(x) = x · P(x²), P of degree 6;
1 ≤ |x| ≤ 4:  erf(x) = ±(1 − e^(−x²) · G(u)), u = (|x| − 2.5) / 1.5, G of degree 10
              (G = erfc · e^(x²), smooth and slowly varying; beyond 4, erfc < 1.6e-8 and erf
              rounds to ±1 in float32).
AVX-512 build, a table: erf(x) = x · F(|x|), F(a) = erf(a)/a on [0, 4) in 16 intervals of 1/4,
each a polynomial of degree 6 in t = a − (i + 1/2)/4 (the coefficients printed as the
erfTable0 … erfTable6 vectors, one lane per interval).
All by iteratively reweighted least squares on the relative error (close to minimax); the table's
error is then measured with float32 Horner evaluation.
numpy only:  python bench/erf_fit.py
"""
import math

import numpy as np

erf = np.vectorize(math.erf)
erfc = np.vectorize(math.erfc)


def erf_over(a):
    """erf(a) / a, with its limit 2/√π at a = 0."""
    safe = np.where(a > 0, a, 1.0)
    return np.where(a > 0, erf(safe) / safe, 2 / math.sqrt(math.pi))


def irls(x, y, basis, rounds=40):
    w = np.ones_like(x)
    for _ in range(rounds):
        a = basis(x)
        ww = w / np.abs(y)
        c, *_ = np.linalg.lstsq(a * ww[:, None], y * ww, rcond=None)
        e = (a @ c - y) / np.abs(y)
        w = w * (np.abs(e) / np.abs(e).max()) ** 0.3 + 1e-12
    return c, np.abs(e).max()


if __name__ == "__main__":
    x = np.cos(np.linspace(0, np.pi, 3001)) * 0.5 + 0.5 + 1e-9
    p, ep = irls(x, erf(x) / x, lambda t: np.stack([(t * t) ** k for k in range(7)], 1))
    a = np.cos(np.linspace(0, np.pi, 3001)) * 1.5 + 2.5
    g, eg = irls(a, erfc(a) * np.exp(a * a), lambda t: np.stack([((t - 2.5) / 1.5) ** k for k in range(11)], 1))
    print(f"P (x², degree 6, relative error {ep:.1e}):", ", ".join(repr(float(np.float32(v))) for v in p))
    print(f"G (u, degree 10, relative error {eg:.1e}):", ", ".join(repr(float(np.float32(v))) for v in g))
    table = []
    worst = 0.0
    for i in range(16):
        c = (i + 0.5) / 4
        t = np.cos(np.linspace(0, np.pi, 2001)) / 8
        f, _ = irls(t, erf_over(c + t), lambda u: np.stack([u ** k for k in range(7)], 1), rounds=30)
        f32 = f.astype(np.float32)
        tt = (np.cos(np.linspace(0, np.pi, 20001)) / 8).astype(np.float32)
        h = np.full_like(tt, f32[6])
        for k in range(5, -1, -1):
            h = (h * tt + f32[k]).astype(np.float32)
        want = erf_over(c + tt.astype(np.float64))
        worst = max(worst, float((np.abs(h - want) / want).max()))
        table.append(f32)
    print(f"table (16 intervals, degree 6, float32 relative error {worst:.1e}):")
    for k in range(7):
        print(f"erfTable{k}:", ", ".join(str(np.float32(row[k])) for row in table))
