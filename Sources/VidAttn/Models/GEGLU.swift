// The GEGLU feed-forward of lucidrains' TimeSformer-pytorch and FastTimeSformer (docs/models.md):
// y = W2·(a ⊙ gelu(g)) + b2 with [a | g] = W1·x + b1 (`net.0`, `chunk(2)`, `net.3`).
import Kernels

/// GEGLU as three Linears: W1's two halves, then W2. The gate runs first with GELU fused into
/// its GEMM, then `a` with the gate as its epilogue's multiplier, so the product takes no pass
/// of its own.
struct GEGLU: Sendable {
    let a: Linear, gate: Linear, out: Linear

    /// From its three Linears (W1's halves already split).
    init(a: Linear, gate: Linear, out: Linear) { self.a = a; self.gate = gate; self.out = out }

    /// From PyTorch's `w1` [2·hidden, in] (+ `b1`) and `w2` [out, hidden] (+ `b2`).
    init(w1: Tensor, b1: Tensor?, w2: Tensor, b2: Tensor?) throws {
        guard w1.shape.count == 2, w1.shape[0] % 2 == 0, w2.shape.count == 2, w2.shape[1] * 2 == w1.shape[0] else {
            throw VidAttnError(.shapeMismatch, "GEGLU weights do not fit: W1 is \(w1.shape), W2 is \(w2.shape)")
        }
        let h = w1.shape[0] / 2
        a = try Linear(weight: w1, bias: b1, rows: 0, h)
        gate = try Linear(weight: w1, bias: b1, rows: h, 2 * h)
        out = try Linear(weight: w2, bias: b2)
    }

    /// y [rows, out] = GEGLU(x [rows, in]), or y += GEGLU(x) when `accumulate` (x and y distinct).
    func callAsFunction(
        _ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>,
        accumulate: Bool = false
    ) throws {
        let h = a.outFeatures
        guard let buf = ScratchPool.shared.take(max(rows * 2 * h, 1)) else {
            throw VidAttnError(.outOfMemory, "GEGLU: cannot allocate \(rows)×\(2 * h)")
        }
        defer { ScratchPool.shared.give(buf) }
        let g = buf.p, ax = buf.p + rows * h
        try gate(x, rows: rows, into: g, activation: .gelu)
        try a(x, rows: rows, into: ax, multiplier: g)
        try out(ax, rows: rows, into: y, accumulate: accumulate)
    }
}

extension Ops {
    /// GEGLU feed-forward on x [rows, dim] → y [rows, out] with PyTorch's `w1` [2·hidden, dim],
    /// `b1` [2·hidden], `w2` [out, hidden], `b2` [out] (biases optional), packed for this call.
    public static func gegluFeedForward(
        rows: Int, dim: Int, hidden: Int, out: Int, x: UnsafePointer<Float>?,
        w1: UnsafePointer<Float>?, b1: UnsafePointer<Float>?,
        w2: UnsafePointer<Float>?, b2: UnsafePointer<Float>?,
        y: UnsafeMutablePointer<Float>?
    ) throws {
        try require(
            rows >= 0 && dim > 0 && hidden > 0 && out > 0 && dim <= 1 << 20 && hidden <= 1 << 20 && out <= 1 << 20,
            "rows >= 0 and dim, hidden, out > 0 required")
        let w1 = try nonNull(w1, "w1"), w2 = try nonNull(w2, "w2")
        let ff = try GEGLU(
            w1: try copyTensor(w1, [2 * hidden, dim]), b1: try b1.map { try copyTensor($0, [2 * hidden]) },
            w2: try copyTensor(w2, [out, hidden]), b2: try b2.map { try copyTensor($0, [out]) })
        if rows == 0 { return }
        try ff(try nonNull(x, "x"), rows: rows, into: try nonNull(y, "y"))
    }
}
