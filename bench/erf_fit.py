"""Fits the two polynomials of verf (Sources/Kernels/Hot/SIMDMath.swift).

|x| < 1:      erf(x) = x · P(x²), P of degree 6;
1 ≤ |x| ≤ 4:  erf(x) = ±(1 − e^(−x²) · G(u)), u = (|x| − 2.5) / 1.5, G of degree 10
              (G = erfc · e^(x²), smooth and slowly varying; beyond 4, erfc < 1.6e-8 and erf
              rounds to ±1 in float32).
Both by iteratively reweighted least squares on the relative error (close to minimax).
numpy only:  python bench/erf_fit.py
"""
import math

import numpy as np

erf = np.vectorize(math.erf)
erfc = np.vectorize(math.erfc)


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
