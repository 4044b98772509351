/// Row softmax: y = softmax(scale · x + bias) along each row of `cols` floats.
///
/// `bias` (optional) has its own row stride (0 broadcasts one row to all);
/// `mask` (optional, nonzero = keep) likewise. Masked entries get probability
/// 0; a row with every entry masked becomes all zeros. fp32 accumulation,
/// max-subtracted. `x` and `y` may alias.
public struct SoftmaxArgs {
    public var rows: Int, cols: Int
    public var x: UnsafePointer<Float>, ldx: Int
    public var y: UnsafeMutablePointer<Float>, ldy: Int
    public var scale: Float = 1
    public var bias: UnsafePointer<Float>? = nil, ldBias: Int = 0
    public var mask: UnsafePointer<UInt8>? = nil, ldMask: Int = 0

    public init(rows: Int, cols: Int, x: UnsafePointer<Float>, ldx: Int,
                y: UnsafeMutablePointer<Float>, ldy: Int) {
        self.rows = rows; self.cols = cols; self.x = x; self.ldx = ldx; self.y = y; self.ldy = ldy
    }
}

public func softmaxRows(_ s: SoftmaxArgs, threads: Int = Threads.count) {
    if KernelMode.useReference { softmaxRowsReference(s); return }
    let chunk = max(1, 65536 / max(s.cols, 1))
    let chunks = (s.rows + chunk - 1) / chunk
    parallelFor(chunks, threads: threads) { ci, _ in
        for r in (ci * chunk)..<min(s.rows, (ci + 1) * chunk) { softmaxRow(s, r) }
    }
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
    let inv = Vec(repeating: 1 / vsum.sum())
    j = 0
    while j + 16 <= n { vstore(vload(y + j) * inv, y + j); j += 16 }
    while j < n { y[j] *= inv[0]; j += 1 }
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
