// Rotary position embeddings of TimeSformer-pytorch / FastTimeSformer (docs/attention.md):
// the tables and their application to queries and keys.
#if canImport(Glibc)
import Glibc
#endif
import Kernels

/// Rotary position tables (lucidrains `RotaryEmbedding` and `AxialRotaryEmbedding`).
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
        for i in 0..<h {
            for j in 0..<w {
                let row = (i * w + j) * dim
                for k in 0..<K {
                    let ay = lin(h, i) * scale(k) * Float.pi, ax = lin(w, j) * scale(k) * Float.pi
                    for (slot, a) in [(k, ay), (K + k, ax)] {
                        s[row + 2 * slot] = sinf(a); s[row + 2 * slot + 1] = sinf(a)
                        c[row + 2 * slot] = cosf(a); c[row + 2 * slot + 1] = cosf(a)
                    }
                }
            }
        }
        return t
    }
}

/// A rotary table: sin and cos, [rows, dim] each (counted allocations, like every tensor).
public struct RotaryTable {
    /// sin and cos of every angle, [rows, dim] each.
    public let sin: Tensor, cos: Tensor
    /// Positions in the table.
    public var rows: Int { sin.shape[0] }
    /// Width of the rotated vectors.
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
    public static func applyRotary(
        rows: Int, d: Int, x: UnsafeMutablePointer<Float>?, rowStride: Int? = nil,
        sin: UnsafePointer<Float>?, cos: UnsafePointer<Float>?, tableRows: Int,
        tableDim r: Int, positions: UnsafePointer<Int>? = nil
    ) throws {
        try require(
            rows >= 0 && d > 0 && r > 0 && r <= d && r % 2 == 0,
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
}

/// The rotation of `applyRotary` with the positions already checked against the table.
@inline(__always)
func rotateRows(
    _ rows: Int, _ r: Int, _ x: UnsafeMutablePointer<Float>, _ ld: Int, _ sn: UnsafePointer<Float>,
    _ cs: UnsafePointer<Float>, _ positions: UnsafePointer<Int>?
) {
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
