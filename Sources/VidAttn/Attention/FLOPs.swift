// Multiply–accumulate counts per mechanism, per clip (batch 1), two ways:
//  - `attention`: the two attention matmuls only (Q·Kᵀ and A·V, and their analogues
//    in the approximations) — the convention of AIM's / Video Swin's flops() (docs/attention.md, FLOPs);
//  - `total`: every matmul of the mechanism, projections included (qkv, proj and
//    the mechanism's own extra linears). Norms, softmax and activations are not counted.
// Multiply by 2 for floating-point operations. Every count is checked against the products
// executed by a numpy implementation verified against vidattn's outputs
// (tests/python/test_flops_counted.py; AIM's against its own flops()).

/// The attention mechanisms whose cost `macs` counts (values as the header's `vidattn_mechanism`).
public enum Mechanism: Int32, Sendable, CaseIterable {
    case joint = 0, dividedTime, dividedSpace, dividedTimeHF, dividedSpaceHF, trajectory
    case trajectoryNystrom, trajectoryOrthoformer, trajectoryPerformer
    case performer, nystrom, orthoformer, fastformer, window3d, temporalAIM, aimBlock
}

/// Shape of one mechanism call. Fields a mechanism does not use are ignored.
public struct MechanismShape: Sendable {
    /// Model width C = heads · head_dim.
    public var channels = 768  // C = heads · head_dim
    /// Attention heads.
    public var heads = 12
    /// Frames F (or the temporal length T' for AIM).
    public var frames = 8  // F (or T' for AIM)
    /// Patches per frame P (or H·W for AIM).
    public var patches = 196  // P per frame (or H·W for AIM)
    /// Tokens N for the generic mechanisms (0: 1 + F·P).
    public var tokens = 0  // N for the generic mechanisms (0: 1 + F·P)
    /// Landmarks L, or random features m for Performer.
    public var landmarks = 128  // L, or m features for Performer
    /// Swin window (t, h, w); AIM uses (h, w).
    public var window = (8, 7, 7)  // Swin window (t, h, w), AIM uses (h, w)
    /// Swin / AIM input grid (t, h, w).
    public var grid = (8, 56, 56)  // Swin / AIM input (t, h, w)
    /// The defaults above (TimeSformer-B at 8×224).
    public init() {}
}

/// Multiply-accumulates of one clip.
public struct MACCount: Sendable, Equatable {
    /// In the attention mechanism itself.
    public var attention: Double
    /// Including the projections around it.
    public var total: Double
}

/// Multiply-accumulates of one clip through mechanism `m` at shape `s` (FLOPs are twice these).
public func macs(_ m: Mechanism, _ s: MechanismShape) -> MACCount {
    let C = Double(s.channels), F = Double(s.frames), P = Double(s.patches), L = Double(s.landmarks)
    let N = F * P, T = 1 + N
    let tokens = s.tokens > 0 ? Double(s.tokens) : T
    let qkvProj = { (rows: Double) in 4 * C * C * rows }  // qkv (3C²) + proj (C²) per row
    switch m {
    case .joint:
        let a = 2 * C * tokens * tokens
        return MACCount(attention: a, total: a + qkvProj(tokens))
    case .dividedTime, .dividedSpace:
        let group = m == .dividedTime ? F : P
        let a = 2 * C * N * (1 + group) + 2 * C * T  // patch queries over {CLS} ∪ group; CLS over all
        return MACCount(attention: a, total: a + qkvProj(T))
    case .dividedTimeHF:
        let a = 2 * C * N * F
        return MACCount(attention: a, total: a + qkvProj(N) + C * C * N)  // + temporal dense layer
    case .dividedSpaceHF:
        let a = 2 * C * F * (1 + P) * (1 + P)
        return MACCount(attention: a, total: a + qkvProj(F * (1 + P)))
    case .trajectory, .trajectoryNystrom, .trajectoryOrthoformer, .trajectoryPerformer:
        let cls = 2 * C * T
        let spatial: Double
        switch m {
        case .trajectory: spatial = 2 * C * N * N
        case .trajectoryNystrom:
            // K1, K3 logits, K3·V, the final contraction, K2, the six 4-product inverse steps and
            // Z·M (L × L × F·d), the Newton–Schulz products.
            let h = Double(s.heads), d = C / h
            spatial = h * (2 * N * L * d + N * L * d + N * L * F * d + L * L * d + 24 * L * L * L + L * L * F * d)
        case .trajectoryOrthoformer:
            let h = Double(s.heads), d = C / h
            // Selection (L − 1 greedy steps, N cosines each: the first landmark is given), K1 and
            // per-frame K3 logits, K3·V per frame, the final contraction.
            spatial = h * ((L - 1) * N * d + 3 * N * L * d + N * L * F * d)
        default:
            let h = Double(s.heads), d = C / h
            // Features, KV, numerators, denominators.
            spatial = h * (2 * N * L * d + N * L * d + N * L * F * d + N * L * F)
        }
        let temporal = 2 * C * N * F
        let extra = C * C * N + 2 * C * C * N * F  // proj_q on N rows, proj_kv on N·F rows
        return MACCount(attention: cls + spatial + temporal, total: cls + spatial + temporal + qkvProj(T) + extra)
    case .performer:
        let h = Double(s.heads), d = C / h
        let a = h * (2 * tokens * L * d + 2 * tokens * L * d + tokens * L)
        return MACCount(attention: a, total: a + qkvProj(tokens))
    case .nystrom:
        let h = Double(s.heads), d = C / h
        let a = h * (3 * tokens * L * d + L * L * d + 24 * L * L * L + L * L * d + tokens * L * d)
        return MACCount(attention: a, total: a + qkvProj(tokens))
    case .orthoformer:
        let h = Double(s.heads), d = C / h
        let a = h * ((L - 1) * tokens * d + 3 * tokens * L * d + tokens * L * d)  // selection as above
        return MACCount(attention: a, total: a + qkvProj(tokens))
    case .fastformer:
        // Two scores (q·wq, p·wk), q̄ = Σ α q and k̄ = Σ β p; p = q̄ ⊙ k and u = k̄ ⊙ v are
        // elementwise, not matrix products (tests/python/test_flops_counted.py). The "implemented"
        // form's κ = β · Σ_d p has no k̄ product: 3·C·tokens there; this counts the paper's.
        let a = 4 * C * tokens
        return MACCount(attention: a, total: a + qkvProj(tokens))
    case .window3d:
        let (wt, wh, ww) = s.window, (gt, gh, gw) = s.grid
        let w = (min(wt, gt), min(wh, gh), min(ww, gw))
        let pad = (
            Double((gt + w.0 - 1) / w.0 * w.0), Double((gh + w.1 - 1) / w.1 * w.1), Double((gw + w.2 - 1) / w.2 * w.2)
        )
        let rows = pad.0 * pad.1 * pad.2, nw = Double(w.0 * w.1 * w.2)
        let a = 2 * C * rows * nw
        return MACCount(attention: a, total: a + qkvProj(rows))
    case .temporalAIM:
        let (_, gh, gw) = s.grid
        let hw = Double(gh * gw), t = F
        let a = 2 * C * hw * t * t  // nW·flops(ws², T, temporal) = 2·C·H·W·T²
        return MACCount(attention: a, total: a + qkvProj(hw * t))
    case .aimBlock:
        // AIM's Block.flops() for a t_attn block: temporal (2·C·H·W·T²) + spatial (2·C·H·W·ws²·T).
        let (_, gh, gw) = s.grid
        let ws = Double(min(s.window.1, min(gh, gw)))
        let hw = Double(gh * gw), t = F
        let a = 2 * C * hw * t * t + 2 * C * hw * ws * ws * t
        return MACCount(attention: a, total: a + qkvProj(hw * t) * 2)
    }
}
