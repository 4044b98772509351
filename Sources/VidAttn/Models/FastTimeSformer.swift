// FastTimeSformer (adam-mehdi/FastTimeSformer, docs/models.md). config.json:
// model_type "fasttimesformer" with the constructor's arguments (frames, channels,
// height, width, num_classes, dim, patch_size, depth, dim_head, rotary_emb,
// attn_mechanism regular|fastformer|performer, attn_type divided|joint) and `parity`:
//   true  (default) — the repository's computations: divided blocks regroup the
//         frame-major tokens as if frame-fastest, Fastformer keeps a scalar per token,
//         "performer" is linear attention on the raw rotated q, k, joint blocks have
//         no residual connections;
//   false — the intended ones: geometric grouping, the paper's Fastformer, FAVOR+
//         features (key max per batch·head), residual joint blocks.
// heads = dim / dim_head (the constructor's `heads` is ignored, as in the reference).
import Kernels

/// config.json of a FastTimeSformer checkpoint: the constructor's arguments (tools/convert_fasttimesformer.py).
public struct FastTimeSformerConfig: Sendable {
    /// Frames the model takes (`frames`, required).
    public var frames: Int
    /// Input channels (`channels`, 3).
    public var channels: Int
    /// Input height and width (`height`, `width`, required; multiples of patchSize).
    public var height: Int, width: Int
    /// Classes (`num_classes`, required).
    public var numClasses: Int
    /// Model width (`dim`, 128).
    public var dim: Int
    /// Patch side (`patch_size`, 16).
    public var patchSize: Int
    /// Blocks (`depth`, 12).
    public var depth: Int
    /// Head width (`dim_head`, 64); heads = dim / dim_head.
    public var dimHead: Int
    /// Rotary embeddings (true) or a learned position table (`rotary_emb`, true).
    public var rotary: Bool
    /// The repository's computations (true) or the intended ones (`parity`, true; docs/models.md).
    public var parity: Bool
    /// "regular", "fastformer" or "performer" (`attn_mechanism`, fastformer).
    public var mechanism: String
    /// Divided space–time blocks (true) or joint ones (`attn_type` "divided" or "joint", divided).
    public var divided: Bool

    /// Decodes and checks config.json (`file` names it in errors).
    public init(json: JSON, file: String) throws {
        let c = ConfigReader(json: json, file: file)
        frames = try c.int("frames"); channels = try c.int("channels", 3)
        height = try c.int("height"); width = try c.int("width"); numClasses = try c.int("num_classes")
        dim = try c.int("dim", 128); patchSize = try c.int("patch_size", 16)
        depth = try c.int("depth", 12)
        dimHead = try c.int("dim_head", 64)
        rotary = try c.bool("rotary_emb", true); parity = try c.bool("parity", true)
        mechanism = try c.string("attn_mechanism", "fastformer")
        let type = try c.string("attn_type", "divided")
        try c.positive([
            "frames": frames, "channels": channels, "height": height, "width": width, "num_classes": numClasses,
            "dim": dim, "patch_size": patchSize, "depth": depth, "dim_head": dimHead
        ])
        guard ["regular", "fastformer", "performer"].contains(mechanism), ["divided", "joint"].contains(type) else {
            throw VidAttnError(.unsupported, "\(file): attn_mechanism '\(mechanism)' / attn_type '\(type)'")
        }
        guard dim % dimHead == 0, height % patchSize == 0, width % patchSize == 0 else {
            throw VidAttnError(
                .badFormat, "\(file): dim must be a multiple of dim_head, height and width of patch_size")
        }
        if rotary && dimHead % 4 != 0 {
            throw VidAttnError(.badFormat, "\(file): rotary needs dim_head divisible by 4")
        }
        divided = type == "divided"
    }
}

/// adam-mehdi/FastTimeSformer (model_type `fasttimesformer`): regular, Fastformer or Performer
/// attention, divided or joint, rotary tables, GEGLU feed-forward (docs/models.md).
public final class FastTimeSformer: VideoModel, @unchecked Sendable {
    /// config.json's `model_type`.
    public let modelType = "fasttimesformer"
    /// The parsed config.json.
    public let config: JSON
    /// config.json decoded.
    public let settings: FastTimeSformerConfig
    /// Classifier outputs, and the width of the last hidden state.
    public let numLabels: Int, hiddenSize: Int
    /// Parameters loaded from the checkpoint (exact count).
    public private(set) var parameterCount = 0
    let frames: Int, dimHead: Int, heads: Int, patchSize: Int, channels: Int, hp: Int, wp: Int
    let rotary: Bool, parity: Bool, mechanism: String, divided: Bool
    let projectIn: Linear, cls: Tensor, pos: Tensor?
    let blocks: [Block]
    let outNorm: LayerNorm, outFn: Linear

    struct Attn {
        let norm: LayerNorm, qkv: Linear, out: Linear
        let wq: Tensor?, wk: Tensor?, omega: Tensor?
    }
    struct Block { let s: Attn; let t: Attn?; let fcT: Linear?; let ffNorm: LayerNorm; let ff: GEGLU }

    init(config: JSON, weights w: Weights, file: String) throws {
        let cfg = try FastTimeSformerConfig(json: config, file: file)
        self.config = config; settings = cfg
        frames = cfg.frames; channels = cfg.channels; hiddenSize = cfg.dim; patchSize = cfg.patchSize
        dimHead = cfg.dimHead; rotary = cfg.rotary; parity = cfg.parity; mechanism = cfg.mechanism
        divided = cfg.divided
        let H = cfg.height, W = cfg.width, classes = cfg.numClasses, depth = cfg.depth
        heads = hiddenSize / dimHead
        hp = H / patchSize; wp = W / patchSize
        let D = hiddenSize
        projectIn = try w.linear("project_in", in: channels * patchSize * patchSize, out: D)
        cls = try w.tensor("cls_token", shape: [1, D])
        pos = rotary ? nil : try w.tensor("pos_emb.weight", shape: [frames * hp * wp + 1, D])
        let (dimHead, mechanism, parity) = (self.dimHead, self.mechanism, self.parity)
        func attn(_ p: String) throws -> Attn {
            let qkvBias = w.store.has(p + ".fn.to_qkv.bias")
            var omega: Tensor? = nil
            if mechanism == "performer", let info = w.store.info(p + ".fn.projection_matrix") {
                guard info.shape.count == 2, info.shape[1] == dimHead else {
                    throw VidAttnError(
                        .shapeMismatch, "\(p).fn.projection_matrix has shape \(info.shape), expected [m, \(dimHead)]")
                }
                omega = try w.tensor(p + ".fn.projection_matrix", shape: info.shape)
            }
            if mechanism == "performer" && !parity && omega == nil {
                throw VidAttnError(.badFormat, "missing tensor '\(p).fn.projection_matrix' (needed by parity=false)")
            }
            return Attn(
                norm: try w.norm(p + ".norm", D, eps: 1e-5),
                qkv: try w.linear(p + ".fn.to_qkv", in: D, out: 3 * D, bias: qkvBias),
                out: try w.linear(p + ".fn.to_out", in: D, out: D),
                wq: mechanism == "fastformer" ? try w.tensor(p + ".fn.Wq.weight", shape: [1, dimHead]) : nil,
                wk: mechanism == "fastformer" ? try w.tensor(p + ".fn.Wk.weight", shape: [1, dimHead]) : nil,
                omega: omega)
        }
        var bl: [Block] = []
        for i in 0..<depth {
            let p = "blocks.\(i)"
            bl.append(
                Block(
                    s: try attn(p + ".attn_s"), t: divided ? try attn(p + ".attn_t") : nil,
                    fcT: divided ? try w.linear(p + ".fc_t", in: D, out: D) : nil,
                    ffNorm: try w.norm(p + ".mlp.norm", D, eps: 1e-5),
                    ff: try w.geglu(p + ".mlp.fn.net", D)))
        }
        blocks = bl
        outNorm = try w.norm("to_out.norm", D, eps: 1e-5)
        outFn = try w.linear("to_out.fn", in: D, out: classes)
        numLabels = classes
        parameterCount = w.loaded
    }

    /// PreNorm attention over G sequences of L tokens (rows of x), result into y.
    /// table: rotary rows for tokens (skipping token 0 of each sequence when skipFirst).
    func attend(
        _ a: Attn, _ x: UnsafePointer<Float>, G: Int, L: Int, table: RotaryTable?,
        skipFirst: Bool, into y: UnsafeMutablePointer<Float>
    ) throws {
        let D = hiddenSize, d = dimHead, H = heads, rows = G * L
        let xn = try Tensor(shape: [rows, D]), qkv = try Tensor(shape: [rows, 3 * D])
        a.norm(x, rows: rows, into: xn.data)
        try a.qkv(xn.pointer, rows: rows, into: qkv.data)
        let q = try Tensor(shape: [G, H, L, d]), k = try Tensor(shape: [G, H, L, d]),
            v = try Tensor(shape: [G, H, L, d])
        splitHeads(qkv.pointer, seqs: G, n: L, heads: H, d: d, q: q.data, k: k.data, v: v.data)
        if let table {
            let start = skipFirst ? 1 : 0
            for gh in 0..<(G * H) {
                for buf in [q.data, k.data] {
                    try Ops.applyRotary(
                        rows: L - start, d: d, x: buf + (gh * L + start) * d, sin: table.sin.pointer,
                        cos: table.cos.pointer, tableRows: table.rows, tableDim: d)
                }
            }
        }
        let o = try Tensor(shape: [G, H, L, d])
        switch mechanism {
        case "regular":
            try Ops.attention(
                batch: G, heads: H, nq: L, nk: L, d: d, q: q.pointer, k: k.pointer, v: v.pointer, out: o.data)
        case "fastformer":
            try Ops.fastformer(
                batch: G, heads: H, n: L, d: d, q: q.pointer, k: k.pointer, v: v.pointer,
                wq: a.wq!.pointer, wk: a.wk!.pointer, out: o.data, form: parity ? .implemented : .paper)
        default:
            if parity {
                // Linear attention on the raw q, k: (q·(kᵀv)) / (q·Σk), no feature map, no ε.
                // Double accumulation: the denominators can come close to zero (docs/models.md).
                guard let ctx = allocCounted(Double.self, d * d + d) else {
                    throw VidAttnError(.outOfMemory, "linear attention: cannot allocate \(d)×\(d) context")
                }
                defer { freeCounted(ctx) }
                let ks = ctx + d * d
                for gh in 0..<(G * H) {
                    let qh = q.pointer + gh * L * d, kh = k.pointer + gh * L * d, vh = v.pointer + gh * L * d
                    ctx.initialize(repeating: 0, count: d * d + d)
                    for t in 0..<L {
                        for i in 0..<d {
                            let kv = Double(kh[t * d + i])
                            ks[i] += kv
                            for j in 0..<d { ctx[i * d + j] += kv * Double(vh[t * d + j]) }
                        }
                    }
                    for t in 0..<L {
                        var den = 0.0
                        for i in 0..<d { den += Double(qh[t * d + i]) * ks[i] }
                        for j in 0..<d {
                            var num = 0.0
                            for i in 0..<d { num += Double(qh[t * d + i]) * ctx[i * d + j] }
                            // The reference divides even by an exact 0 (inf/NaN); here that row is 0.
                            o.data[(gh * L + t) * d + j] = den == 0 ? 0 : Float(num / den)
                        }
                    }
                }
            } else {
                let om = a.omega!
                try Ops.performerAttention(
                    batch: G, heads: H, nq: L, nk: L, d: d, q: q.pointer, k: k.pointer, v: v.pointer,
                    projection: om.pointer, features: om.shape[0], out: o.data, eps: 1e-4)
            }
        }
        let merged = try Tensor(shape: [rows, D])
        mergeHeads(o.pointer, seqs: G, n: L, heads: H, d: d, into: merged.data)
        try a.out(merged.pointer, rows: rows, into: y)
        if mechanism == "fastformer" {  // + the un-rotated, un-split query projection
            for r in 0..<rows { addInPlace(y + r * D, qkv.pointer + r * 3 * D, D) }
        }
    }

    func geglu(
        _ blk: Block, _ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>, accumulate: Bool
    ) throws {
        let D = hiddenSize
        let xn = try Tensor(shape: [rows, D])
        blk.ffNorm(x, rows: rows, into: xn.data)
        try blk.ff(xn.pointer, rows: rows, into: y, accumulate: accumulate)
    }

    /// Runs the model on pixel_values [B, T, C, H, W] (`VideoModel.forward`).
    public func forward(
        _ px: UnsafePointer<Float>, batch B: Int, frames F: Int, channels Cin: Int, height H: Int,
        width W: Int, options: ForwardOptions
    ) throws -> ModelOutput {
        let p = patchSize, D = hiddenSize
        try checkChannels(Cin, channels)
        try require(
            H == hp * p && W == wp * p, "frames must be \(hp * p)×\(wp * p) (got \(H)×\(W))", status: .shapeMismatch)
        try require(
            !divided || F == frames, "divided blocks take exactly \(frames) frames (got \(F))", status: .shapeMismatch)
        let P = hp * wp, N = F * P, S = 1 + N
        if let pos { try require(S <= pos.shape[0], "\(S) tokens exceed the position table", status: .shapeMismatch) }
        let patches = try patchifyChannelsLast(px, B: B, F: F, C: channels, H: H, W: W, p: p)
        let x = try Tensor(shape: [B, S, D]), emb = try Tensor(shape: [B * N, D])
        try projectIn(patches.pointer, rows: B * N, into: emb.data)
        embedTokens(
            into: x.data, batch: B, tokens: N, channels: D, cls: cls.pointer, clsPos: pos?.pointer,
            emb: emb.pointer
        ) { n in TokenSource(patch: n, pos: pos.map { $0.pointer + (1 + n) * D }) }
        let timeTab = rotary ? try Rotary.timeTable(frames: F, dim: dimHead) : nil
        let imageTab = rotary ? try Rotary.imageTable(h: hp, w: wp, dim: dimHead) : nil
        // Token r (frame-major) → (time group, slot) and (space group, slot).
        let tg: (Int) -> (Int, Int) = parity ? { ($0 / F, $0 % F) } : { ($0 % P, $0 / P) }
        let sg: (Int) -> (Int, Int) = parity ? { ($0 % F, $0 / F) } : { ($0 / P, $0 % P) }
        var hidden: [Tensor] = []
        let y = try Tensor(shape: [B * S, D])
        try runLayers(blocks, over: x, options: options, hidden: &hidden) { _, blk in
            if !divided {
                try attend(blk.s, x.pointer, G: B, L: S, table: nil, skipFirst: false, into: y.data)
                if parity {
                    x.data.update(from: y.pointer, count: B * S * D)
                } else {
                    addInPlace(x.data, y.pointer, B * S * D)
                }
                try geglu(blk, x.pointer, rows: B * S, into: y.data, accumulate: false)
                if parity {
                    x.data.update(from: y.pointer, count: B * S * D)
                } else {
                    addInPlace(x.data, y.pointer, B * S * D)
                }
            } else {
                // Temporal: groups of F tokens.
                let grp = try Tensor(shape: [B * P * F, D]), rt = try Tensor(shape: [B * P * F, D])
                for b in 0..<B {
                    for r in 0..<N {
                        let (g, t) = tg(r)
                        (grp.data + ((b * P + g) * F + t) * D).update(from: x.pointer + (b * S + 1 + r) * D, count: D)
                    }
                }
                try attend(blk.t!, grp.pointer, G: B * P, L: F, table: timeTab, skipFirst: false, into: rt.data)
                let ordered = try Tensor(shape: [B * N, D])
                for b in 0..<B {
                    for r in 0..<N {
                        let (g, t) = tg(r)
                        (ordered.data + (b * N + r) * D).update(from: rt.pointer + ((b * P + g) * F + t) * D, count: D)
                    }
                }
                let outT = try Tensor(shape: [B * N, D])
                for b in 0..<B { (outT.data + b * N * D).update(from: x.pointer + (b * S + 1) * D, count: N * D) }
                try blk.fcT!(ordered.pointer, rows: B * N, into: outT.data, accumulate: true)
                // Spatial: [CLS, group] per (b, space group).
                let seq = try Tensor(shape: [B * F * (1 + P), D]), rs = try Tensor(shape: [B * F * (1 + P), D])
                for b in 0..<B {
                    for g in 0..<F {
                        (seq.data + (b * F + g) * (1 + P) * D).update(from: x.pointer + b * S * D, count: D)
                    }
                    for r in 0..<N {
                        let (g, j) = sg(r)
                        (seq.data + ((b * F + g) * (1 + P) + 1 + j) * D).update(
                            from: outT.pointer + (b * N + r) * D, count: D)
                    }
                }
                try attend(blk.s, seq.pointer, G: B * F, L: 1 + P, table: imageTab, skipFirst: true, into: rs.data)
                for b in 0..<B {
                    let xb = x.data + b * S * D
                    addMeanCLS(xb, rs.pointer + b * F * (1 + P) * D, groups: F, groupTokens: 1 + P, channels: D)
                    for r in 0..<N {
                        let (g, j) = sg(r)
                        let dst = xb + (1 + r) * D, a = outT.data + (b * N + r) * D,
                            s = rs.data + ((b * F + g) * (1 + P) + 1 + j) * D
                        dst.update(from: a, count: D); addInPlace(dst, s, D)
                    }
                }
                try geglu(blk, x.pointer, rows: B * S, into: x.data, accumulate: true)
            }
        }
        return try clsHeadOutput(x, B: B, S: S, norm: outNorm, head: outFn, hidden: hidden)
    }
}
