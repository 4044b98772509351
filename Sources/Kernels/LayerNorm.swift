/// LayerNorm over the last dimension: y = (x − mean) / √(var + eps) · gamma + beta,
/// with the biased variance (PyTorch `nn.LayerNorm`). gamma/beta optional.
/// `x` and `y` may alias.
public func layerNorm(rows: Int, cols: Int, x: UnsafePointer<Float>, ldx: Int,
                      y: UnsafeMutablePointer<Float>, ldy: Int,
                      gamma: UnsafePointer<Float>?, beta: UnsafePointer<Float>?, eps: Float,
                      threads: Int = Threads.count) {
    if KernelMode.useReference {
        layerNormReference(rows: rows, cols: cols, x: x, ldx: ldx, y: y, ldy: ldy, gamma: gamma, beta: beta, eps: eps)
        return
    }
    let chunk = max(1, 32768 / max(cols, 1))
    let chunks = (rows + chunk - 1) / chunk
    parallelFor(chunks, threads: threads) { ci, _ in
        for r in (ci * chunk)..<min(rows, (ci + 1) * chunk) {
            layerNormRow(cols, x + r * ldx, y + r * ldy, gamma, beta, eps)
        }
    }
}

@inline(__always)
func layerNormRow(_ n: Int, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                  _ gamma: UnsafePointer<Float>?, _ beta: UnsafePointer<Float>?, _ eps: Float) {
    if n == 0 { return }
    var vs = Vec(), j = 0
    while j + 16 <= n { vs += vload(x + j); j += 16 }
    var s = vs.sum()
    while j < n { s += x[j]; j += 1 }
    let mean = s / Float(n)
    let vmean = Vec(repeating: mean)
    var vq = Vec(); j = 0
    while j + 16 <= n { let d = vload(x + j) - vmean; vq.addProduct(d, d); j += 16 }
    var q = vq.sum()
    while j < n { let d = x[j] - mean; q += d * d; j += 1 }
    let rstd = 1 / (q / Float(n) + eps).squareRoot()
    // gamma and beta are unwrapped outside the loops: optional loads inside them compile to
    // masked loads (vmaskmovps) that read through NULL with an all-false mask, which real
    // CPUs allow and emulators (qemu 7.2's TCG) fault on.
    let one = Vec(repeating: 1), zero = Vec()
    switch (gamma, beta) {
    case let (g?, b?): layerNormApply(n, x, y, mean, rstd) { v, j in v * vload(g + j) + vload(b + j) } _: { v, j in v * g[j] + b[j] }
    case let (g?, nil): layerNormApply(n, x, y, mean, rstd) { v, j in v * vload(g + j) } _: { v, j in v * g[j] }
    case let (nil, b?): layerNormApply(n, x, y, mean, rstd) { v, j in v * one + vload(b + j) } _: { v, j in v + b[j] }
    case (nil, nil): layerNormApply(n, x, y, mean, rstd) { v, _ in v + zero } _: { v, _ in v }
    }
}

/// y = affine((x − mean) · rstd) over a row, 16 at a time, then the tail.
@inline(__always)
func layerNormApply(_ n: Int, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ mean: Float, _ rstd: Float,
                    _ affine: (Vec, Int) -> Vec, _ affine1: (Float, Int) -> Float) {
    let vmean = Vec(repeating: mean), vr = Vec(repeating: rstd)
    var j = 0
    while j + 16 <= n { vstore(affine((vload(x + j) - vmean) * vr, j), y + j); j += 16 }
    while j < n { y[j] = affine1((x[j] - mean) * rstd, j); j += 1 }
}

/// Scalar reference for `layerNorm` (two-pass, double accumulation).
public func layerNormReference(rows: Int, cols: Int, x: UnsafePointer<Float>, ldx: Int,
                               y: UnsafeMutablePointer<Float>, ldy: Int,
                               gamma: UnsafePointer<Float>?, beta: UnsafePointer<Float>?, eps: Float) {
    for r in 0..<rows {
        let xr = x + r * ldx, yr = y + r * ldy
        var s = 0.0
        for j in 0..<cols { s += Double(xr[j]) }
        let mean = s / Double(cols)
        var q = 0.0
        for j in 0..<cols { let d = Double(xr[j]) - mean; q += d * d }
        let rstd = 1 / (q / Double(cols) + Double(eps)).squareRoot()
        for j in 0..<cols {
            var v = (Double(xr[j]) - mean) * rstd
            if let g = gamma { v *= Double(g[j]) }
            if let b = beta { v += Double(b[j]) }
            yr[j] = Float(v)
        }
    }
}
