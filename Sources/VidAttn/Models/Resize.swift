// Resizing learned position tables to other grids, with PyTorch's
// `interpolate(..., align_corners=False)` arithmetic: bicubic (A = −0.75, indices
// clamped at the borders) over space, linear over time.

enum Resize {
    @inline(__always) static func cubic1(_ x: Float) -> Float {
        let a: Float = -0.75; return ((a + 2) * x - (a + 3)) * x * x + 1
    }
    @inline(__always) static func cubic2(_ x: Float) -> Float {
        let a: Float = -0.75; return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    }

    /// Source taps and weights of output index i for a bicubic resize in → out.
    /// `scale` (source step per output step) defaults to in/out, PyTorch's `size=` form;
    /// with `scale_factor=s` PyTorch uses Float(1/s) instead.
    static func cubicTaps(_ i: Int, _ inSize: Int, _ outSize: Int, scale given: Float? = nil) -> ([Int], [Float]) {
        let scale = given ?? Float(inSize) / Float(outSize)
        let real = (Float(i) + 0.5) * scale - 0.5
        let x0 = Int(real.rounded(.down)), t = real - Float(x0)
        let w: [Float] = [cubic2(t + 1), cubic1(t), cubic1(1 - t), cubic2(2 - t)]
        let idx = (-1...2).map { min(max(x0 + $0, 0), inSize - 1) }
        return (idx, w)
    }

    /// src [h, w, C] → dst [h2, w2, C], bicubic. `scaleH`/`scaleW`: PyTorch's scale-factor
    /// form (see `cubicTaps`). The intermediate rows come from the counted allocator.
    static func bicubic(
        _ src: UnsafePointer<Float>, h: Int, w: Int, c: Int, toH h2: Int, toW w2: Int,
        scaleH: Float? = nil, scaleW: Float? = nil, into dst: UnsafeMutablePointer<Float>
    ) throws {
        if h == h2 && w == w2 { dst.update(from: src, count: h * w * c); return }
        let rows = try Tensor(zeros: [h * w2 * c])  // along x first
        for x in 0..<w2 {
            let (ix, wx) = cubicTaps(x, w, w2, scale: scaleW)
            for y in 0..<h {
                for k in 0..<4 {
                    for ch in 0..<c { rows.data[(y * w2 + x) * c + ch] += wx[k] * src[(y * w + ix[k]) * c + ch] }
                }
            }
        }
        dst.update(repeating: 0, count: h2 * w2 * c)
        for y in 0..<h2 {
            let (iy, wy) = cubicTaps(y, h, h2, scale: scaleH)
            for x in 0..<w2 {
                for k in 0..<4 {
                    for ch in 0..<c { dst[(y * w2 + x) * c + ch] += wy[k] * rows.data[(iy[k] * w2 + x) * c + ch] }
                }
            }
        }
    }

    /// src [t, n] → dst [t2, n], linear along t (PyTorch: source index clamped at 0).
    static func linear(_ src: UnsafePointer<Float>, t: Int, n: Int, to t2: Int, into dst: UnsafeMutablePointer<Float>) {
        if t == t2 { dst.update(from: src, count: t * n); return }
        let scale = Float(t) / Float(t2)
        for i in 0..<t2 {
            let real = max((Float(i) + 0.5) * scale - 0.5, 0)
            let x0 = min(Int(real), t - 1), x1 = min(x0 + 1, t - 1), l = real - Float(x0)
            for j in 0..<n { dst[i * n + j] = (1 - l) * src[x0 * n + j] + l * src[x1 * n + j] }
        }
    }
}
