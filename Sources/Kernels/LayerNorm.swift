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
    let vr = Vec(repeating: rstd)
    j = 0
    while j + 16 <= n {
        var v = (vload(x + j) - vmean) * vr
        if let g = gamma { v *= vload(g + j) }
        if let b = beta { v += vload(b + j) }
        vstore(v, y + j); j += 16
    }
    while j < n {
        var v = (x[j] - mean) * rstd
        if let g = gamma { v *= g[j] }
        if let b = beta { v += b[j] }
        y[j] = v; j += 1
    }
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
