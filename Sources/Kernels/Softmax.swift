/// Row softmax over `s.rows` rows (see `SoftmaxArgs`), rows split over threads.
public func softmaxRows(_ s: SoftmaxArgs, threads: Int = Threads.count) {
    if KernelMode.useReference { softmaxRowsReference(s); return }
    let chunk = max(1, 65536 / max(s.cols, 1))
    let chunks = (s.rows + chunk - 1) / chunk
    let run = FP32Kernels.selected.softmaxRows
    parallelFor(chunks, threads: threads) { ci, _ in run(s, ci * chunk, min(s.rows, (ci + 1) * chunk)) }
}

/// Scalar reference for `softmaxRows`.
public func softmaxRowsReference(_ s: SoftmaxArgs) {
    for r in 0..<s.rows {
        let x = s.x + r * s.ldx, y = s.y + r * s.ldy
        var mx = -Float.infinity
        for j in 0..<s.cols {
            var t = s.scale * x[j]
            if let b = s.bias { t += b[r * s.ldBias + j] }
            if let m = s.mask, m[r * s.ldMask + j] == 0 { t = -.infinity }
            y[j] = t
            mx = max(mx, t)
        }
        if mx == -.infinity { for j in 0..<s.cols { y[j] = 0 }; continue }
        var sum: Float = 0
        for j in 0..<s.cols { y[j] = sexp(y[j] - mx); sum += y[j] }
        for j in 0..<s.cols { y[j] /= sum }
    }
}
