// Positional pieces of TimeSformer-pytorch / FastTimeSformer (docs/attention.md):
// rotary tables and their application, token shift, and the GEGLU feed-forward.
#if canImport(Glibc)
import Glibc
#endif
import Kernels

public enum Rotary {
    /// Time table [frames, dim] of the lucidrains `RotaryEmbedding`: angles
    /// t·10000^(−2i/dim) for i < dim/2, the two halves concatenated. With that layout
    /// the adjacent-pair rotation mixes two different angles (the reference's quirk,
    /// reproduced by default); `consistent` repeats each angle for its pair instead,
    /// which makes ⟨R_t q, R_s k⟩ depend on t − s only.
    public static func timeTable(frames: Int, dim: Int, consistent: Bool = false) throws -> RotaryTable {
        let half = dim / 2
        let t = try RotaryTable(rows: frames, dim: dim)
        for f in 0..<frames {
            for j in 0..<dim {
                let i = consistent ? (j / 2) % max(half, 1) : j % max(half, 1)
                let invFreq = 1 / powf(10000, Float(2 * i) / Float(dim))
                let a = Float(f) * invFreq
                t.sin.data[f * dim + j] = sinf(a); t.cos.data[f * dim + j] = cosf(a)
            }
        }
        return t
    }

    /// Image table [h·w, dim] of `AxialRotaryEmbedding(dim, maxFreq)`: per patch (i, j),
    /// [π·y_i·scale_k]_k ++ [π·x_j·scale_k]_k with y, x = linspace(−1, 1) and
    /// scale_k log-spaced from 1 to maxFreq/2 (dim/4 of them), each entry duplicated
    /// for its adjacent pair.
    public static func imageTable(h: Int, w: Int, dim: Int, maxFreq: Float = 10) throws -> RotaryTable {
        let K = dim / 4
        let top = logf(maxFreq / 2) / logf(2)
        func scale(_ k: Int) -> Float { K == 1 ? 1 : powf(2, Float(k) * top / Float(K - 1)) }
        func lin(_ n: Int, _ i: Int) -> Float { n == 1 ? -1 : -1 + 2 * Float(i) / Float(n - 1) }
        let t = try RotaryTable(rows: h * w, dim: dim)
        let s = t.sin.data, c = t.cos.data
        for i in 0..<h { for j in 0..<w {
            let row = (i * w + j) * dim
            for k in 0..<K {
                let ay = lin(h, i) * scale(k) * Float.pi, ax = lin(w, j) * scale(k) * Float.pi
                for (slot, a) in [(k, ay), (K + k, ax)] {
                    s[row + 2 * slot] = sinf(a); s[row + 2 * slot + 1] = sinf(a)
                    c[row + 2 * slot] = cosf(a); c[row + 2 * slot + 1] = cosf(a)
                }
            }
        } }
        return t
    }
}

/// A rotary table: sin and cos, [rows, dim] each (counted allocations, like every tensor).
public struct RotaryTable {
    public let sin: Tensor, cos: Tensor
    public var rows: Int { sin.shape[0] }
    public var dim: Int { sin.shape[1] }

    /// Zeroed tables of `rows` × `dim`.
    public init(rows: Int, dim: Int) throws {
        sin = try Tensor(zeros: [rows, dim]); cos = try Tensor(zeros: [rows, dim])
    }
}

extension Ops {
    /// In place on rows of x [rows, d]: the first r = tableDim channels become
    /// x·cos + rotate_every_two(x)·sin with rotate_every_two([x0, x1, …]) = [−x1, x0, …];
    /// row i uses table row positions[i] (or i when positions is nil).
    public static func applyRotary(rows: Int, d: Int, x: UnsafeMutablePointer<Float>?, rowStride: Int? = nil,
                                   sin: UnsafePointer<Float>?, cos: UnsafePointer<Float>?, tableRows: Int,
                                   tableDim r: Int, positions: UnsafePointer<Int>? = nil) throws {
        try require(rows >= 0 && d > 0 && r > 0 && r <= d && r % 2 == 0,
                    "rotary needs an even table dim r with 0 < r <= d (got r=\(r), d=\(d))")
        if rows == 0 { return }
        let x = try nonNull(x, "x"), sn = try nonNull(sin, "sin"), cs = try nonNull(cos, "cos")
        let ld = rowStride ?? d
        for i in 0..<rows {
            let p = positions?[i] ?? i
            try require(p >= 0 && p < tableRows, "position \(p) of row \(i) is outside the table's \(tableRows) rows")
        }
        rotateRows(rows, r, x, ld, sn, cs, positions)
    }

    /// Token shift of TimeSformer-pytorch (§2.6) on x [B, 1+F·P, C] → y: channel chunk 0
    /// (⌊C/3⌋ wide) takes frame t+1, chunk 2 frame t−1 (zeros past the ends), the rest
    /// and CLS are copied. x and y must not alias.
    public static func tokenShift(batch B: Int, frames F: Int, patches P: Int, channels C: Int,
                                  x: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>?) throws {
        try require(B >= 0 && F > 0 && P > 0 && C > 0, "token shift needs positive frames, patches, channels")
        if B == 0 { return }
        let x = try nonNull(x, "x"), y = try nonNull(y, "y")
        let T = 1 + F * P, ch = C / 3
        for b in 0..<B {
            (y + b * T * C).update(from: x + b * T * C, count: C)
            for f in 0..<F { for p in 0..<P {
                let dst = y + (b * T + 1 + f * P + p) * C
                let at = { (ff: Int) in x + (b * T + 1 + ff * P + p) * C }
                dst.update(from: at(f), count: C)
                if ch > 0 {
                    if f + 1 < F { dst.update(from: at(f + 1), count: ch) } else { dst.update(repeating: 0, count: ch) }
                    if f > 0 { (dst + 2 * ch).update(from: at(f - 1) + 2 * ch, count: ch) }
                    else { (dst + 2 * ch).update(repeating: 0, count: ch) }
                }
            } }
        }
    }

    /// GEGLU feed-forward (§2.7): y = W2·(a ⊙ gelu(g)) + b2 with [a | g] = W1·x + b1.
    /// x [rows, dim]; w1 packed [dim → 2·hidden]; w2 packed [hidden → out]; y [rows, out].
    public static func gegluFeedForward(rows: Int, x: UnsafePointer<Float>?, w1: PackedB, b1: UnsafePointer<Float>?,
                                        w2: PackedB, b2: UnsafePointer<Float>?,
                                        y: UnsafeMutablePointer<Float>?) throws {
        try require(w1.n % 2 == 0 && w2.k == w1.n / 2,
                    "GEGLU weights do not fit: W1 gives \(w1.n) channels, W2 takes \(w2.k)", status: .shapeMismatch)
        if rows == 0 { return }
        let x = try nonNull(x, "x"), y = try nonNull(y, "y")
        let hidden = w2.k
        guard let hb = ScratchPool.shared.take(rows * 2 * hidden) else {
            throw VidAttnError(.outOfMemory, "GEGLU: cannot allocate \(rows)×\(2 * hidden)")
        }
        defer { ScratchPool.shared.give(hb) }
        guard Kernels.sgemm(transA: false, m: rows, k: w1.k, alpha: 1, a: x, lda: w1.k, packedB: w1, beta: 0,
                            c: hb.p, ldc: 2 * hidden, epilogue: GemmEpilogue(bias: b1)) else {
            throw VidAttnError(.outOfMemory, "GEGLU: GEMM scratch")
        }
        parallelFor(rows) { r, _ in
            let row = hb.p + r * 2 * hidden
            Kernels.activation(.gelu, row + hidden, row + hidden, hidden)
            var j = 0
            while j + 16 <= hidden { vstore(vload(row + j) * vload(row + hidden + j), row + j); j += 16 }
            while j < hidden { row[j] *= row[hidden + j]; j += 1 }
        }
        guard Kernels.sgemm(transA: false, m: rows, k: hidden, alpha: 1, a: hb.p, lda: 2 * hidden, packedB: w2,
                            beta: 0, c: y, ldc: w2.n, epilogue: GemmEpilogue(bias: b2)) else {
            throw VidAttnError(.outOfMemory, "GEGLU: GEMM scratch")
        }
    }
}

/// The rotation of `applyRotary` with the positions already checked against the table.
@inline(__always)
func rotateRows(_ rows: Int, _ r: Int, _ x: UnsafeMutablePointer<Float>, _ ld: Int, _ sn: UnsafePointer<Float>,
                _ cs: UnsafePointer<Float>, _ positions: UnsafePointer<Int>?) {
    for i in 0..<rows {
        let p = positions?[i] ?? i
        let row = x + i * ld, st = sn + p * r, ct = cs + p * r
        var j = 0
        while j < r {
            let a = row[j], b = row[j + 1]
            row[j] = a * ct[j] - b * st[j]
            row[j + 1] = b * ct[j + 1] + a * st[j + 1]
            j += 2
        }
    }
}
