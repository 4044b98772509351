// Trajectory attention (Motionformer, docs/attention.md), with the spatial step
// exact or approximated (Nyström, Orthoformer, Performer — docs/attention.md, trajectory attention).
//
// Inputs are the heads-split q, k, v of `qkv(x)`: [B, H, 1+N, d], N = F·P tokens
// frame-major. Output: [B, 1+N, C] (C = H·d, heads merged, CLS first), i.e. the
// tensor the module feeds to its final `proj`.
//
// Memory: the trajectory tensor Ỹ [N, F, C] is never held whole. Query rows are
// processed in tiles of `trajectoryTile` tokens: Ỹ for the tile, its own-frame
// diagonal, proj_q, proj_kv and the temporal softmax all happen per tile.
import Kernels
import Synchronization

/// How the trajectory step's spatial attention is approximated (none: exact).
public enum TrajectoryApprox {
    case none
    /// Nyström with `landmarks` spatial landmarks and 6 Newton–Schulz steps.
    case nystrom(landmarks: Int)
    /// Orthoformer greedy max-min landmarks, starting at token `start` (per batch·head).
    case orthoformer(landmarks: Int, start: Int)
    /// Performer FAVOR+ with the given projection Ω [m, d] (row-major).
    case performer(projection: UnsafePointer<Float>, features: Int)
}

/// proj_q (C→C) and proj_kv (C→2C) of a trajectory-attention layer, packed once.
public final class TrajectoryWeights: @unchecked Sendable {
    /// Model width C.
    public let channels: Int
    let projQ: PackedB, projK: PackedB, projV: PackedB
    let biasQ: Tensor?, biasK: Tensor?, biasV: Tensor?

    /// projQ: [C, C], projKV: [2C, C] (PyTorch Linear layout); biases optional.
    public init(
        channels c: Int, projQ wq: UnsafePointer<Float>, projQBias: UnsafePointer<Float>?,
        projKV wkv: UnsafePointer<Float>, projKVBias: UnsafePointer<Float>?
    ) throws {
        try require(c > 0, "channels must be positive")
        guard let q = PackedB(transposed: true, k: c, n: c, b: wq, ldb: c),
            let k = PackedB(transposed: true, k: c, n: c, b: wkv, ldb: c),
            let v = PackedB(transposed: true, k: c, n: c, b: wkv + c * c, ldb: c)
        else {
            throw VidAttnError(.outOfMemory, "trajectory attention: cannot pack projections")
        }
        channels = c; projQ = q; projK = k; projV = v
        biasQ = try projQBias.map { try copyTensor($0, [c]) }
        biasK = try projKVBias.map { try copyTensor($0, [c]) }
        biasV = try projKVBias.map { try copyTensor($0 + c, [c]) }
    }
}

let trajectoryTile = 48

extension Ops {
    /// Trajectory attention. q, k, v: [B, H, 1+F·P, d]; out: [B, 1+F·P, H·d].
    /// `useOriginalCode` (true for released checkpoints): the temporal step's values
    /// are the unprojected trajectories; false uses the v half of proj_kv.
    public static func trajectoryAttention(
        batch B: Int, heads H: Int, frames F: Int, patches P: Int, headDim d: Int,
        q: UnsafePointer<Float>?, k: UnsafePointer<Float>?,
        v: UnsafePointer<Float>?, weights: TrajectoryWeights,
        out: UnsafeMutablePointer<Float>?, useOriginalCode: Bool = true,
        approx: TrajectoryApprox = .none, scale: Float? = nil
    ) throws {
        let profiled = Profile.begin(.attention); defer { Profile.end(profiled, .attention) }
        try require(
            B >= 0 && H > 0 && F > 0 && P > 0 && d > 0,
            "trajectory attention needs heads, frames, patches, head_dim > 0 (got \(H), \(F), \(P), \(d))")
        try require(
            weights.channels == H * d,
            "weights are for \(weights.channels) channels but heads·head_dim = \(H * d)",
            status: .shapeMismatch)
        guard checkedProduct(B, 1 + F * P, H * d, F) != nil else {
            throw VidAttnError(.invalidArgument, "trajectory attention sizes overflow")
        }
        if B == 0 { return }
        let q = try nonNull(q, "q"), k = try nonNull(k, "k"), v = try nonNull(v, "v"), out = try nonNull(out, "out")
        let s = scale ?? 1 / Float(d).squareRoot()
        let N = F * P, T = 1 + N, C = H * d
        switch approx {
        case .none: break
        case .nystrom(let l), .orthoformer(let l, _):
            try require(l > 0 && l <= N, "landmark count \(l) must be in 1...\(N)")
            if case .orthoformer(_, let st) = approx {
                try require(st >= 0 && st < N, "orthoformer start \(st) outside 0..<\(N)")
            }
        case .performer(_, let m): try require(m > 0, "performer feature count must be positive")
        }

        // CLS: exact attention over all 1+N keys, written to out[b, 0, h·d...].
        let hv = { (p: UnsafePointer<Float>) in HeadView(p, batchStride: H * T * d, headStride: T * d, rowStride: d) }
        let cls = AttentionArgs(
            batch: B, heads: H, nq: 1, nk: T, d: d, q: hv(q), k: hv(k), v: hv(v),
            o: HeadView(out, batchStride: T * C, headStride: d, rowStride: C), scale: s)
        guard Kernels.attention(cls) else { throw VidAttnError(.outOfMemory, "trajectory attention: CLS scratch") }

        // Spatial-step factors of the approximations, per (b, h): Ỹ = W·M (/ W·Z).
        let factors: SpatialFactors?
        switch approx {
        case .none: factors = nil
        default:
            guard let f = SpatialFactors(B: B, H: H, F: F, P: P, d: d, q: q, k: k, v: v, approx: approx) else {
                throw VidAttnError(.outOfMemory, "trajectory attention: cannot allocate the approximation factors")
            }
            factors = f
        }

        let tiles = (N + trajectoryTile - 1) / trajectoryTile
        let Tq = trajectoryTile
        // Per-worker scratch: Ỹ tile [Tq, F, C], ŷ/q2 [Tq, C] ×2, k2 (and v2) [Tq·F, C].
        let per = Tq * F * C + 2 * Tq * C + (useOriginalCode ? 1 : 2) * Tq * F * C + 64
        let workers = min(Threads.count, B * tiles)
        guard let scratch = ScratchPool.shared.take(workers * per) else {
            throw VidAttnError(.outOfMemory, "trajectory attention: cannot allocate tile scratch")
        }
        defer { ScratchPool.shared.give(scratch) }
        let failed = Atomic<Bool>(false)
        parallelFor(B * tiles, threads: workers) { item, w in
            let b = item / tiles, s0 = (item % tiles) * Tq, tq = min(Tq, N - s0)
            var p = scratch.p + w * per
            let ytile = p; p += Tq * F * C
            let yhat = p; p += Tq * C
            let q2 = p; p += Tq * C
            let k2 = p; p += Tq * F * C
            let v2 = p
            // 1. Ỹ for the tile.
            if let fac = factors {
                if !fac.trajectoryTile(b: b, s0: s0, tq: tq, into: ytile) {
                    failed.store(true, ordering: .relaxed); return
                }
            } else {
                for f in 0..<F {
                    let a = AttentionArgs(
                        batch: 1, heads: H, nq: tq, nk: P, d: d,
                        q: HeadView(q + b * H * T * d + (1 + s0) * d, batchStride: 0, headStride: T * d, rowStride: d),
                        k: HeadView(
                            k + b * H * T * d + (1 + f * P) * d, batchStride: 0, headStride: T * d, rowStride: d),
                        v: HeadView(
                            v + b * H * T * d + (1 + f * P) * d, batchStride: 0, headStride: T * d, rowStride: d),
                        o: HeadView(ytile + f * C, batchStride: 0, headStride: d, rowStride: F * C), scale: s)
                    if !Kernels.attention(a, threads: 1) { failed.store(true, ordering: .relaxed); return }
                }
            }
            // 2. ŷ_s = Ỹ[s, frame(s)].
            for i in 0..<tq {
                let g = (s0 + i) / P
                (yhat + i * C).update(from: ytile + (i * F + g) * C, count: C)
            }
            // 3. q2 = proj_q(ŷ); k2 (v2) = proj_kv(Ỹ).
            let ok1 = linear(yhat, tq, weights.projQ, weights.biasQ, q2)
            let ok2 = linear(ytile, tq * F, weights.projK, weights.biasK, k2)
            let ok3 = useOriginalCode || linear(ytile, tq * F, weights.projV, weights.biasV, v2)
            if !(ok1 && ok2 && ok3) { failed.store(true, ordering: .relaxed); return }
            // 4. Temporal softmax over the F trajectory points, per head.
            let values = useOriginalCode ? UnsafePointer(ytile) : UnsafePointer(v2)
            let orow = out + b * T * C + (1 + s0) * C
            temporalStep(tq, F, H, d, s, UnsafePointer(q2), UnsafePointer(k2), values, orow)
        }
        if failed.load(ordering: .relaxed) {
            throw VidAttnError(.outOfMemory, "trajectory attention: scratch allocation failed")
        }
    }
}

/// y[rows, C] = x[rows, C]·Wᵀ + bias (single-threaded; called inside parallel tiles).
@inline(__always)
func linear(
    _ x: UnsafePointer<Float>, _ rows: Int, _ w: PackedB, _ bias: Tensor?,
    _ y: UnsafeMutablePointer<Float>
) -> Bool {
    withExtendedLifetime(bias) {
        sgemm(
            transA: false, m: rows, k: w.k, alpha: 1, a: x, lda: w.k, packedB: w, beta: 0, c: y, ldc: w.n,
            epilogue: GemmEpilogue(bias: bias?.pointer), threads: 1)
    }
}

func linear(
    _ x: UnsafeMutablePointer<Float>, _ rows: Int, _ w: PackedB, _ bias: Tensor?,
    _ y: UnsafeMutablePointer<Float>
) -> Bool {
    linear(UnsafePointer(x), rows, w, bias, y)
}

/// out[i, h] = Σ_f softmax_f(scale·q2[i,h]·k2[i,f,h]) · values[i,f,h] for a tile.
@inline(__always)
func temporalStep(
    _ tq: Int, _ F: Int, _ H: Int, _ d: Int, _ scale: Float,
    _ q2: UnsafePointer<Float>, _ k2: UnsafePointer<Float>, _ values: UnsafePointer<Float>,
    _ out: UnsafeMutablePointer<Float>
) {
    let C = H * d
    withUnsafeTemporaryAllocation(of: Float.self, capacity: F) { ab in
        let a = ab.baseAddress!
        for i in 0..<tq {
            for h in 0..<H {
                let qi = q2 + i * C + h * d
                var mx = -Float.infinity
                for f in 0..<F {
                    let kf = k2 + (i * F + f) * C + h * d
                    var acc: Float = 0
                    for t in 0..<d { acc += qi[t] * kf[t] }
                    a[f] = acc * scale
                    mx = max(mx, a[f])
                }
                var sum: Float = 0
                for f in 0..<F { a[f] = sexp(a[f] - mx); sum += a[f] }
                let o = out + i * C + h * d
                for t in 0..<d { o[t] = 0 }
                for f in 0..<F {
                    let w = a[f] / sum, vf = values + (i * F + f) * C + h * d
                    for t in 0..<d { o[t] += w * vf[t] }
                }
            }
        }
    }
}
