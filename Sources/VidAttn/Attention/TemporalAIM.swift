// AIM's temporal attention (docs/attention.md): the spatial window attention's qkv
// and proj weights reused over the T' frames at each spatial position, with a
// temporal relative position bias Bt[h, i, j] = table[i − j + T' − 1, h] and no mask.
import Kernels

extension Ops {
    /// AIM temporal attention with `qkv_weight` [3C, C] and `proj_weight` [C, C] as PyTorch stores
    /// them, packed for this call (the C API's entry; models pack theirs once at load).
    public static func temporalAttentionAIM(
        groups G: Int, frames T: Int, channels C: Int, heads nh: Int,
        z: UnsafePointer<Float>?, qkvWeight: UnsafePointer<Float>?,
        qkvBias: UnsafePointer<Float>?, projWeight: UnsafePointer<Float>?,
        projBias: UnsafePointer<Float>?, table: UnsafePointer<Float>?,
        y: UnsafeMutablePointer<Float>?
    ) throws {
        try require(C > 0 && C <= 1 << 20, "channels must be positive (got \(C))")
        let qw = try nonNull(qkvWeight, "qkv_weight"), pw = try nonNull(projWeight, "proj_weight")
        let q = try Linear(copying: qw, bias: qkvBias, out: 3 * C, in: C)
        let p = try Linear(copying: pw, bias: projBias, out: C, in: C)
        try temporalAttentionAIM(
            groups: G, frames: T, channels: C, heads: nh, z: z, qkv: q, proj: p, table: table, y: y)
    }

    /// z, y: [groups, frames, C] (groups = batch · spatial positions); qkv (C → 3C) and proj
    /// (C → C) Linears with their biases, at their own precision; table [2·frames − 1, heads].
    static func temporalAttentionAIM(
        groups G: Int, frames T: Int, channels C: Int, heads nh: Int,
        z: UnsafePointer<Float>?, qkv: Linear, proj: Linear,
        table: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>?
    ) throws {
        try require(
            G >= 0 && T > 0 && C > 0 && nh > 0 && C % nh == 0,
            "temporal attention needs frames > 0 and channels divisible by heads (got \(T), \(C), \(nh))")
        try require(
            qkv.inFeatures == C && qkv.outFeatures == 3 * C && proj.inFeatures == C && proj.outFeatures == C,
            "qkv must map \(C)→\(3 * C) and proj \(C)→\(C)", status: .shapeMismatch)
        guard let rows = checkedProduct(G, T), checkedProduct(rows, 3 * C) != nil else {
            throw VidAttnError(.invalidArgument, "temporal attention sizes overflow")
        }
        if G == 0 { return }
        let z = try nonNull(z, "z"), y = try nonNull(y, "y"), table = try nonNull(table, "temporal table")
        let d = C / nh
        guard let bufs = ScratchPool.shared.take(rows * 3 * C, rows * C, nh * T * T) else {
            throw VidAttnError(.outOfMemory, "temporal attention: cannot allocate \(rows)×\(3 * C)")
        }
        defer { bufs.forEach(ScratchPool.shared.give) }
        let qkvBuf = bufs[0], ob = bufs[1], bias = bufs[2].p
        for h in 0..<nh {
            for i in 0..<T { for j in 0..<T { bias[(h * T + i) * T + j] = table[(i - j + T - 1) * nh + h] } }
        }
        try qkv(z, rows: rows, into: qkvBuf.p)
        let view = { (off: Int) in
            HeadView(UnsafePointer(qkvBuf.p + off), batchStride: T * 3 * C, headStride: d, rowStride: 3 * C)
        }
        var a = AttentionArgs(
            batch: G, heads: nh, nq: T, nk: T, d: d, q: view(0), k: view(C), v: view(2 * C),
            o: HeadView(ob.p, batchStride: T * C, headStride: d, rowStride: C),
            scale: 1 / Float(d).squareRoot())
        a.bias = HeadView(UnsafePointer(bias), batchStride: 0, headStride: T * T, rowStride: T)
        let profiled = Profile.begin(.attention)
        let ok = Kernels.attention(a)
        Profile.end(profiled, .attention)
        guard ok else { throw VidAttnError(.outOfMemory, "temporal attention: scratch") }
        try proj(ob.p, rows: rows, into: y)
    }
}
