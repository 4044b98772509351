// lucidrains TimeSformer-pytorch 0.4.1 (docs/models.md): linear patch embedding,
// rotary time/axial tables (or a learned table), divided attention with the CLS
// query over all keys, optional token shift, GEGLU feed-forward, frame mask.
// config.json: model_type "timesformer_pytorch" with the constructor's arguments.
// last_hidden_state is the residual stream after the last layer (the reference
// normalises only the CLS token, inside to_out).
import Kernels

/// config.json of a lucidrains TimeSformer-pytorch checkpoint: the constructor's arguments
/// (tools/convert_timesformer_pytorch.py) and one option of ours.
public struct TimeSformerLucidrainsConfig: Sendable {
    /// Model width (`dim`, required).
    public var dim: Int
    /// Frames the position table and time rotary are built for (`num_frames`, required).
    public var numFrames: Int
    /// Classes (`num_classes`, required).
    public var numClasses: Int
    /// Patch side (`patch_size`, 16).
    public var patchSize: Int
    /// Input channels (`channels`, 3).
    public var channels: Int
    /// Layers (`depth`, 12).
    public var depth: Int
    /// Attention heads (`heads`, 8).
    public var heads: Int
    /// Head width (`dim_head`, 64).
    public var dimHead: Int
    /// Input side the learned position table is sized for (`image_size`, 224).
    public var imageSize: Int
    /// Rotary embeddings (true) or a learned position table (`rotary_emb`, true).
    public var rotary: Bool
    /// Token shift before attention and feed-forward (`shift_tokens`, false).
    public var shiftTokens: Bool
    /// A time rotary consistent with the spatial layout instead of upstream's (`consistent_rope`,
    /// false; ours, docs/models.md).
    public var consistentRoPE: Bool

    /// Decodes and checks config.json (`file` names it in errors).
    public init(json: JSON, file: String) throws {
        let c = ConfigReader(json: json, file: file)
        dim = try c.int("dim"); numFrames = try c.int("num_frames")
        numClasses = try c.int("num_classes")
        patchSize = try c.int("patch_size", 16); channels = try c.int("channels", 3)
        depth = try c.int("depth", 12)
        heads = try c.int("heads", 8); dimHead = try c.int("dim_head", 64)
        rotary = try c.bool("rotary_emb", true); shiftTokens = try c.bool("shift_tokens", false)
        consistentRoPE = try c.bool("consistent_rope", false)
        imageSize = try c.int("image_size", 224)
        try c.positive([
            "dim": dim, "num_frames": numFrames, "num_classes": numClasses, "patch_size": patchSize,
            "channels": channels, "depth": depth, "heads": heads, "dim_head": dimHead, "image_size": imageSize
        ])
        if rotary && dimHead % 4 != 0 {
            throw VidAttnError(.badFormat, "\(file): rotary embeddings need dim_head divisible by 4 (got \(dimHead))")
        }
    }
}

/// lucidrains TimeSformer-pytorch (model_type `timesformer_pytorch`): rotary or learned
/// positions, token shift, divided attention with the CLS over all keys (docs/models.md).
public final class TimeSformerLucidrains: VideoModel, @unchecked Sendable {
    /// config.json's `model_type`.
    public let modelType = "timesformer_pytorch"
    /// The parsed config.json.
    public let config: JSON
    /// config.json decoded.
    public let settings: TimeSformerLucidrainsConfig
    /// Classifier outputs, and the width of the last hidden state.
    public let numLabels: Int, hiddenSize: Int
    /// Parameters loaded from the checkpoint (exact count).
    public private(set) var parameterCount = 0
    let heads: Int, dimHead: Int, patchSize: Int, channels: Int, numFrames: Int
    let rotary: Bool, shiftTokens: Bool, consistentRoPE: Bool
    let patch: Linear
    let cls: Tensor
    let pos: Tensor?
    let layers: [Layer]
    let outNorm: LayerNorm, outLinear: Linear

    struct Attn { let norm: LayerNorm; let qkv: Linear; let out: Linear }
    struct Layer { let time: Attn; let space: Attn; let ffNorm: LayerNorm; let ff: GEGLU }

    init(config: JSON, weights w: Weights, file: String) throws {
        let cfg = try TimeSformerLucidrainsConfig(json: config, file: file)
        self.config = config; settings = cfg
        hiddenSize = cfg.dim; numFrames = cfg.numFrames; patchSize = cfg.patchSize; channels = cfg.channels
        heads = cfg.heads; dimHead = cfg.dimHead; rotary = cfg.rotary; shiftTokens = cfg.shiftTokens
        consistentRoPE = cfg.consistentRoPE
        let classes = cfg.numClasses, depth = cfg.depth, imageSize = cfg.imageSize
        let D = hiddenSize, inner = heads * dimHead, pd = channels * patchSize * patchSize
        patch = try w.linear("to_patch_embedding", in: pd, out: D)
        cls = try w.tensor("cls_token", shape: [1, D])
        if !rotary {
            let positions = numFrames * (imageSize / patchSize) * (imageSize / patchSize) + 1
            pos = try w.tensor("pos_emb.weight", shape: [positions, D])
        } else {
            pos = nil
        }
        let mid = shiftTokens ? ".fn.fn" : ".fn"
        var ls: [Layer] = []
        for i in 0..<depth {
            func attn(_ k: Int) throws -> Attn {
                let p = "layers.\(i).\(k)"
                return Attn(
                    norm: try w.norm(p + ".norm", D, eps: 1e-5),
                    qkv: try w.linear(p + mid + ".to_qkv", in: D, out: 3 * inner, bias: false),
                    out: try w.linear(p + mid + ".to_out.0", in: inner, out: D))
            }
            let f = "layers.\(i).2"
            ls.append(
                Layer(
                    time: try attn(0), space: try attn(1), ffNorm: try w.norm(f + ".norm", D, eps: 1e-5),
                    ff: try w.geglu(f + mid + ".net", D)))
        }
        layers = ls
        outNorm = try w.norm("to_out.0", D, eps: 1e-5)
        outLinear = try w.linear("to_out.1", in: D, out: classes)
        numLabels = classes
        parameterCount = w.loaded
    }

    /// Runs the model on pixel_values [B, T, C, H, W] (`VideoModel.forward`).
    public func forward(
        _ px: UnsafePointer<Float>, batch B: Int, frames F: Int, channels Cin: Int, height H: Int,
        width W: Int, options: ForwardOptions
    ) throws -> ModelOutput {
        let p = patchSize
        try checkChannels(Cin, channels)
        try require(
            H % p == 0 && W % p == 0, "height \(H) and width \(W) must be divisible by the patch size \(p)",
            status: .shapeMismatch)
        let hp = H / p, wp = W / p, P = hp * wp, N = F * P, T = 1 + N, D = hiddenSize
        if let pos {
            try require(
                T <= pos.shape[0], "\(T) tokens exceed the learned position table's \(pos.shape[0])",
                status: .shapeMismatch)
        }
        let patches = try patchifyChannelsLast(px, B: B, F: F, C: channels, H: H, W: W, p: p)
        let x = try Tensor(shape: [B, T, D])
        let emb = try Tensor(shape: [B * N, D])
        try patch(patches.pointer, rows: B * N, into: emb.data)
        embedTokens(
            into: x.data, batch: B, tokens: N, channels: D, cls: cls.pointer, clsPos: pos?.pointer,
            emb: emb.pointer
        ) { n in TokenSource(patch: n, pos: pos.map { $0.pointer + (1 + n) * D }) }
        let timeTab = rotary ? try Rotary.timeTable(frames: F, dim: dimHead, consistent: consistentRoPE) : nil
        let imageTab = rotary ? try Rotary.imageTable(h: hp, w: wp, dim: dimHead) : nil
        // CLS key mask: tokens of padded frames are never attended by the CLS query.
        // The mask and the rotary positions below come from the counted allocator.
        var clsMask: UnsafeMutablePointer<UInt8>? = nil
        if let fm = options.frameMask {
            guard let cm = allocCounted(UInt8.self, B * T) else {
                throw VidAttnError(.outOfMemory, "cannot allocate the CLS key mask")
            }
            cm.initialize(repeating: 1, count: B * T)
            for b in 0..<B {
                for f in 0..<F where fm[b * F + f] == 0 { for s in 0..<P { cm[b * T + 1 + f * P + s] = 0 } }
            }
            clsMask = cm
        }
        defer { freeCounted(clsMask) }
        guard let positions = allocCounted(Int.self, N) else {
            throw VidAttnError(.outOfMemory, "cannot allocate positions")
        }
        defer { freeCounted(positions) }
        let inner = heads * dimHead, rows = B * T
        let y = try Tensor(shape: [rows, D]), ys = try Tensor(shape: [rows, D])
        let qkv = try Tensor(shape: [rows, 3 * inner])
        let q = try Tensor(shape: [B, heads, T, dimHead]), k = try Tensor(shape: [B, heads, T, dimHead])
        let kr = try Tensor(shape: [B, heads, T, dimHead]), v = try Tensor(shape: [B, heads, T, dimHead])
        let o = try Tensor(shape: [B, heads, T, dimHead]), merged = try Tensor(shape: [rows, inner])
        var hidden: [Tensor] = []

        func prenorm(_ norm: LayerNorm) throws -> UnsafePointer<Float> {
            norm(x.pointer, rows: rows, into: y.data)
            if !shiftTokens { return y.pointer }
            try Ops.tokenShift(batch: B, frames: F, patches: P, channels: D, x: y.pointer, y: ys.data)
            return ys.pointer
        }
        func dividedStep(_ a: Attn, _ grouping: DividedGrouping, _ table: RotaryTable?) throws {
            let inp = try prenorm(a.norm)
            try a.qkv(inp, rows: rows, into: qkv.data)
            // Split heads: qkv row [q (h d) | k | v] → [B, H, T, d]; kr = k, then q and kr of
            // the patch rows rotate (time groups by frame, space groups by patch position).
            for i in 0..<N { positions[i] = grouping == .time ? i / P : i % P }
            if let table {
                try require(
                    (0..<N).allSatisfy { positions[$0] < table.rows },
                    "rotary table of \(table.rows) rows is too short for this input")
            }
            splitHeads(qkv.pointer, seqs: B, n: T, heads: heads, d: dimHead, q: q.data, k: k.data, v: v.data)
            let (qd, kd, krd, dh) = (q.data, k.pointer, kr.data, dimHead)
            let sinP = table?.sin.pointer, cosP = table?.cos.pointer
            let pp = UnsafePointer(positions)
            parallelFor(B * heads) { bh, _ in
                (krd + bh * T * dh).update(from: kd + bh * T * dh, count: T * dh)
                if let s = sinP, let c = cosP {
                    rotateRows(N, dh, qd + (bh * T + 1) * dh, dh, s, c, pp)
                    rotateRows(N, dh, krd + (bh * T + 1) * dh, dh, s, c, pp)
                }
            }
            try Ops.dividedAttention(
                DividedShape(batch: B, heads: heads, frames: F, patches: P, headDim: dimHead),
                grouping: grouping, scheme: .clsAllKeys, q: q.pointer, k: kr.pointer, v: v.pointer,
                out: o.data, frameMask: grouping == .time ? options.frameMask : nil)
            // The CLS query attends to the unrotated keys.
            let hv = { (t: Tensor) in
                HeadView(
                    t.pointer, batchStride: self.heads * T * self.dimHead, headStride: T * self.dimHead,
                    rowStride: self.dimHead)
            }
            var ca = AttentionArgs(
                batch: B, heads: heads, nq: 1, nk: T, d: dimHead, q: hv(q), k: hv(k), v: hv(v),
                o: HeadView(
                    o.data, batchStride: heads * T * dimHead, headStride: T * dimHead,
                    rowStride: dimHead), scale: 1 / Float(dimHead).squareRoot())
            if let cm = clsMask { ca.keyMask = UnsafePointer(cm); ca.keyMaskStride = T }
            let ok = Kernels.attention(ca)
            guard ok else { throw VidAttnError(.outOfMemory, "attention scratch") }
            mergeHeads(o.pointer, seqs: B, n: T, heads: heads, d: dimHead, into: merged.data)
            try a.out(merged.pointer, rows: rows, into: x.data, accumulate: true)
        }

        try runLayers(layers, over: x, options: options, hidden: &hidden) { _, layer in
            try dividedStep(layer.time, .time, timeTab)
            try dividedStep(layer.space, .space, imageTab)
            let inp = try prenorm(layer.ffNorm)
            try layer.ff(inp, rows: rows, into: x.data, accumulate: true)
        }
        return try clsHeadOutput(x, B: B, S: T, norm: outNorm, head: outLinear, hidden: hidden)
    }
}
