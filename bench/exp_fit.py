"""Fits the polynomial of vexp / sexp (Sources/Kernels/Hot/SIMDMath.swift) and checks the
whole float32 computation against float64 exp.

e^r ≈ 1 + r·(c1 + r·(c2 + … + r·c6)) on |r| ≤ ln 2 / 2, c1…c6 by iteratively reweighted
least squares on the relative error (close to minimax). numpy only:
    python bench/exp_fit.py

`--exp2 DEG` instead fits 2^f ≈ c0 + f·(c1 + … + f·c_DEG) on |f| ≤ 1/2 the same way: the
probabilities of the bf16 attention's softmax step (Sources/CKernels/bf16.c, P0…P3 at DEG = 3).
"""
import sys
import numpy as np

H = np.log(2) / 2


def fit(deg=6, rounds=60):
    r = np.cos(np.linspace(0, np.pi, 4001)) * H
    w = np.ones_like(r)
    for _ in range(rounds):
        a = np.stack([r**k for k in range(1, deg + 1)], 1)
        wr = w / np.exp(r)
        c, *_ = np.linalg.lstsq(a * wr[:, None], (np.exp(r) - 1) * wr, rcond=None)
        err = (1 + a @ c - np.exp(r)) / np.exp(r)
        w = w * (np.abs(err) / np.abs(err).max()) ** 0.3 + 1e-9
    return c, np.abs(err).max()


def emulate(x, c):
    """The library's steps in float32 (without fused multiply-adds, so slightly pessimistic)."""
    f = np.float32
    n = np.rint(x * f(1.44269504)).astype(f)
    r = (x - n * f(0.693359375)).astype(f)
    r = (r + n * f(2.1219444e-4)).astype(f)
    p = c[-1]
    for k in range(len(c) - 2, -1, -1):
        p = (c[k] + p * r).astype(f)
    p = (f(1) + p * r).astype(f)
    return (p * np.exp2(n.astype(np.float64))).astype(f)


def fit_exp2(deg, rounds=80):
    f = np.cos(np.linspace(0, np.pi, 4001)) / 2
    w = np.ones_like(f)
    for _ in range(rounds):
        a = np.stack([f**k for k in range(deg + 1)], 1)
        y = np.exp2(f)
        c, *_ = np.linalg.lstsq(a * (w / y)[:, None], w, rcond=None)
        err = (a @ c - y) / y
        w = w * (np.abs(err) / np.abs(err).max()) ** 0.3 + 1e-9
    return c, np.abs(err).max()


if __name__ == "__main__" and "--exp2" in sys.argv:
    deg = int(sys.argv[sys.argv.index("--exp2") + 1])
    c, rel = fit_exp2(deg)
    print(f"2^f, degree {deg}, c0..c{deg}:", ", ".join(f"{v:.9e}" for v in c), f"(max relative error {rel:.2e})")
elif __name__ == "__main__":
    c, rel = fit()
    c32 = [np.float32(v) for v in c]
    print("c1..c6:", ", ".join(repr(float(v)) for v in c32), f"(fit's max relative error {rel:.2e})")
    x = np.random.default_rng(0).uniform(-87.3, 88.7, 2_000_000).astype(np.float32)
    got, ref = emulate(x, c32).astype(np.float64), np.exp(x.astype(np.float64))
    ulp = np.abs(got - ref) / np.spacing(ref.astype(np.float32)).astype(np.float64)
    print(f"float32 emulation: max {ulp.max():.2f} ulp, mean {ulp.mean():.3f} ulp")
