import KernelTypes

// Row kernels: softmax and LayerNorm, one row at a time (drivers: Softmax.swift,
// LayerNorm.swift).

/// Softmax of rows lo..<hi.
func softmaxRows(_ s: SoftmaxArgs, _ lo: Int, _ hi: Int) {
    for r in lo..<hi { softmaxRow(s, r) }
}

@inline(__always)
func softmaxRow(_ s: SoftmaxArgs, _ r: Int) {
    let n = s.cols
    let x = s.x + r * s.ldx, y = s.y + r * s.ldy
    let bias = s.bias.map { $0 + r * s.ldBias }
    let mask = s.mask.map { $0 + r * s.ldMask }
    let scale = Vec(repeating: s.scale)
    let ninf = -Float.infinity
    // Pass 1: t = scale·x + bias (masked → −inf), running max.
    var vmax = Vec(repeating: ninf)
    var j = 0
    while j < n {
        let w = min(16, n - j)
        var t = (w == 16 ? vload(x + j) : vloadPartial(x + j, w)) * scale
        if let b = bias { t += w == 16 ? vload(b + j) : vloadPartial(b + j, w) }
        if let m = mask {
            var keep = SIMDMask<SIMD16<Int32>>()
            for l in 0..<w { keep[l] = m[j + l] != 0 }
            t = t.replacing(with: ninf, where: .!keep)
        }
        if w < 16 {
            for l in w..<16 { t[l] = ninf }
            vstorePartial(t, y + j, w)
        } else {
            vstore(t, y + j)
        }
        vmax = vmax.replacing(with: t, where: t .> vmax)
        j += 16
    }
    var mx = vmax.max()
    if mx == ninf {
        for j in 0..<n { y[j] = 0 }
        return
    }
    if !mx.isFinite { mx = Float.greatestFiniteMagnitude }
    // Pass 2: exp(t − max), sum.
    let vm = Vec(repeating: mx)
    var vsum = Vec()
    j = 0
    while j < n {
        let w = min(16, n - j)
        if w == 16 {
            let e = vexp(vload(y + j) - vm)
            vstore(e, y + j); vsum += e
        } else {
            let e = vexp(vloadPartial(y + j, w, fill: ninf) - vm)
            vstorePartial(e, y + j, w); vsum += e
        }
        j += 16
    }
    let inv = Vec(repeating: 1 / hsum(vsum))
    j = 0
    while j + 16 <= n { vstore(vload(y + j) * inv, y + j); j += 16 }
    while j < n { y[j] *= inv[0]; j += 1 }
}

/// LayerNorm of rows lo..<hi.
func layerNormRows(_ a: LayerNormArgs, _ lo: Int, _ hi: Int) {
    for r in lo..<hi { layerNormRow(a.cols, a.x + r * a.ldx, a.y + r * a.ldy, a.gamma, a.beta, a.eps) }
}

@inline(__always)
func layerNormRow(
    _ n: Int, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
    _ gamma: UnsafePointer<Float>?, _ beta: UnsafePointer<Float>?, _ eps: Float
) {
    if n == 0 { return }
    // Both sums over four accumulators (one chain waited on the addition's latency at every
    // step): LayerNorm [1576, 768] 0.79–0.83 of the time at 1 and 2 threads (alternated in one
    // process, BENCHMARKS.md session 11).
    var s0 = Vec(), s1 = Vec(), s2 = Vec(), s3 = Vec(), j = 0
    while j + 64 <= n {
        s0 += vload(x + j); s1 += vload(x + j + 16); s2 += vload(x + j + 32); s3 += vload(x + j + 48); j += 64
    }
    while j + 16 <= n { s0 += vload(x + j); j += 16 }
    var s = hsum((s0 + s1) + (s2 + s3))
    while j < n { s += x[j]; j += 1 }
    let mean = s / Float(n)
    let vmean = Vec(repeating: mean)
    var q0 = Vec(), q1 = Vec(), q2 = Vec(), q3 = Vec(); j = 0
    while j + 64 <= n {
        let d0 = vload(x + j) - vmean, d1 = vload(x + j + 16) - vmean
        let d2 = vload(x + j + 32) - vmean, d3 = vload(x + j + 48) - vmean
        q0.addProduct(d0, d0); q1.addProduct(d1, d1); q2.addProduct(d2, d2); q3.addProduct(d3, d3); j += 64
    }
    while j + 16 <= n { let d = vload(x + j) - vmean; q0.addProduct(d, d); j += 16 }
    var q = hsum((q0 + q1) + (q2 + q3))
    while j < n { let d = x[j] - mean; q += d * d; j += 1 }
    let rstd = 1 / (q / Float(n) + eps).squareRoot()
    // gamma and beta are unwrapped outside the loops: optional loads inside them compile to
    // masked loads (vmaskmovps) that read through NULL with an all-false mask, which real
    // CPUs allow and emulators (qemu 7.2's TCG) fault on.
    let one = Vec(repeating: 1), zero = Vec()
    switch (gamma, beta) {
    case let (g?, b?):
        layerNormApply(n, x, y, mean, rstd) { v, j in
            v * vload(g + j) + vload(b + j)
        } _: { v, j in
            v * g[j] + b[j]
        }
    case let (g?, nil):
        layerNormApply(n, x, y, mean, rstd) { v, j in
            v * vload(g + j)
        } _: { v, j in
            v * g[j]
        }
    case let (nil, b?):
        layerNormApply(n, x, y, mean, rstd) { v, j in
            v * one + vload(b + j)
        } _: { v, j in
            v + b[j]
        }
    case (nil, nil):
        layerNormApply(n, x, y, mean, rstd) { v, _ in
            v + zero
        } _: { v, _ in
            v
        }
    }
}

/// y = affine((x − mean) · rstd) over a row, 16 at a time, then the tail.
@inline(__always)
func layerNormApply(
    _ n: Int, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ mean: Float, _ rstd: Float,
    _ affine: (Vec, Int) -> Vec, _ affine1: (Float, Int) -> Float
) {
    let vmean = Vec(repeating: mean), vr = Vec(repeating: rstd)
    var j = 0
    while j + 16 <= n { vstore(affine((vload(x + j) - vmean) * vr, j), y + j); j += 16 }
    while j < n { y[j] = affine1((x[j] - mean) * rstd, j); j += 1 }
}
