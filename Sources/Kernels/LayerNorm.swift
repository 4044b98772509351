/// LayerNorm over the last dimension: y = (x − mean) / √(var + eps) · gamma + beta,
/// with the biased variance (PyTorch `nn.LayerNorm`). gamma/beta optional.
/// `x` and `y` may alias.
public func layerNorm(
    rows: Int, cols: Int, x: UnsafePointer<Float>, ldx: Int,
    y: UnsafeMutablePointer<Float>, ldy: Int,
    gamma: UnsafePointer<Float>?, beta: UnsafePointer<Float>?, eps: Float,
    threads: Int = Threads.count
) {
    if KernelMode.useReference {
        layerNormReference(rows: rows, cols: cols, x: x, ldx: ldx, y: y, ldy: ldy, gamma: gamma, beta: beta, eps: eps)
        return
    }
    let chunk = max(1, 32768 / max(cols, 1))
    let chunks = (rows + chunk - 1) / chunk
    let args = LayerNormArgs(cols: cols, x: x, ldx: ldx, y: y, ldy: ldy, gamma: gamma, beta: beta, eps: eps)
    let run = FP32Kernels.selected.layerNormRows
    parallelFor(chunks, threads: threads) { ci, _ in run(args, ci * chunk, min(rows, (ci + 1) * chunk)) }
}

/// Scalar reference for `layerNorm` (two-pass, double accumulation).
public func layerNormReference(
    rows: Int, cols: Int, x: UnsafePointer<Float>, ldx: Int,
    y: UnsafeMutablePointer<Float>, ldy: Int,
    gamma: UnsafePointer<Float>?, beta: UnsafePointer<Float>?, eps: Float
) {
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
