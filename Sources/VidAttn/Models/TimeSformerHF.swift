// HuggingFace TimeSformer (docs/models.md): per-frame patch embedding, CLS and
// position table per frame (nearest-neighbour resize), time table per spatial
// position, tokens space-major (index 1 + s·T + t). attention_type
// divided_space_time (temporal attention over patches only, temporal_dense,
// spatial attention with one CLS copy per frame, averaged), joint_space_time or
// space_only (per-frame sequences; logits per frame as in HF).
// Unlike HF, frames and grid come from the input, so other frame counts work.
import Kernels

/// config.json of a Hugging Face TimeSformer checkpoint (transformers' `TimesformerConfig`; its defaults).
public struct TimeSformerHFConfig: Sendable {
    /// The shared encoder fields (`hidden_act` defaults to "gelu", `layer_norm_eps` to 1e-6).
    public var encoder: HFEncoderConfig
    /// Patch side (`patch_size`, 16).
    public var patchSize: Int
    /// "divided_space_time", "joint_space_time" or "space_only" (`attention_type`, divided).
    public var attentionType: String

    /// Decodes and checks config.json (`file` names it in errors).
    public init(json: JSON, file: String) throws {
        let c = ConfigReader(json: json, file: file)
        encoder = try HFEncoderConfig(c, hiddenAct: "gelu", layerNormEps: 1e-6)
        patchSize = try c.int("patch_size", 16)
        try c.positive(["patch_size": patchSize])
        attentionType = try c.string("attention_type", "divided_space_time")
        guard ["divided_space_time", "space_only", "joint_space_time"].contains(attentionType) else {
            throw VidAttnError(.unsupported, "\(file): attention_type '\(attentionType)' is not supported")
        }
    }
}

/// transformers' `TimesformerForVideoClassification` (model_type `timesformer`): divided
/// space–time, joint or space-only attention with per-frame CLS handling (docs/models.md).
public final class TimeSformerHF: VideoModel, @unchecked Sendable {
    /// config.json's `model_type`.
    public let modelType = "timesformer"
    /// The parsed config.json.
    public let config: JSON
    /// config.json decoded.
    public let settings: TimeSformerHFConfig
    /// Classifier outputs, and the width of the last hidden state.
    public let numLabels: Int, hiddenSize: Int
    /// Parameters loaded from the checkpoint (exact count).
    public private(set) var parameterCount = 0
    let heads: Int, inter: Int, channels: Int, patchSize: Int
    let attentionType: String
    let act: Activation
    let patch: Linear
    let cls: Tensor, pos: Tensor, time: Tensor?
    let blocks: [Block]
    let finalNorm: LayerNorm
    let classifier: Linear?

    struct Block {
        /// Divided attention's temporal part; tOut is temporal_dense ∘ output.dense (one Linear,
        /// `Weights.composedLinear`) and tDense nil, unless `LoadContext.foldLinears` was off.
        let tNorm: LayerNorm?, tQKV: Linear?, tOut: Linear?, tDense: Linear?
        /// The layer's spatial part: the shared pre-LN layer.
        let plain: PreLNBlock
    }

    init(config: JSON, weights w: Weights, file: String) throws {
        let cfg = try TimeSformerHFConfig(json: config, file: file), enc = cfg.encoder
        self.config = config; settings = cfg
        hiddenSize = enc.hiddenSize; heads = enc.heads; inter = enc.intermediateSize; channels = enc.channels
        let layers = enc.layers
        patchSize = cfg.patchSize; attentionType = cfg.attentionType
        act = try activationNamed(enc.hiddenAct, file: file)
        let eps = Float(enc.layerNormEps)
        let C = hiddenSize, p = patchSize, e = "timesformer.embeddings."
        patch = try w.patchEmbedding(e + "patch_embeddings.projection", shape: [C, channels, p, p])
        cls = try w.tensor(e + "cls_token", shape: [1, 1, C])
        guard let pi = w.store.info(e + "position_embeddings"), pi.shape.count == 3, pi.shape[0] == 1, pi.shape[2] == C,
            pi.shape[1] >= 2
        else {
            throw VidAttnError(
                .badFormat, "missing or mis-shaped tensor '\(e)position_embeddings' (expected [1, 1+P, \(C)])")
        }
        pos = try w.tensor(e + "position_embeddings", shape: pi.shape)
        let side = Int(Double(pi.shape[1] - 1).squareRoot())
        guard side * side == pi.shape[1] - 1 else {
            throw VidAttnError(.badFormat, "position_embeddings has \(pi.shape[1] - 1) patch rows, not a square grid")
        }
        if attentionType != "space_only" {
            guard let ti = w.store.info(e + "time_embeddings"), ti.shape.count == 3, ti.shape[0] == 1, ti.shape[2] == C
            else {
                throw VidAttnError(
                    .badFormat, "missing or mis-shaped tensor '\(e)time_embeddings' (expected [1, T, \(C)])")
            }
            time = try w.tensor(e + "time_embeddings", shape: ti.shape)
        } else {
            time = nil
        }
        var bl: [Block] = []
        let fold = LoadContext.foldLinears
        for i in 0..<layers {
            let l = "timesformer.encoder.layer.\(i)."
            let divided = attentionType == "divided_space_time"
            bl.append(
                Block(
                    tNorm: divided ? try w.norm(l + "temporal_layernorm", C, eps: eps) : nil,
                    tQKV: divided ? try w.linear(l + "temporal_attention.attention.qkv", in: C, out: 3 * C) : nil,
                    tOut: !divided
                        ? nil
                        : fold
                            ? try w.composedLinear(
                                l + "temporal_attention.output.dense", then: l + "temporal_dense", in: C, mid: C, out: C
                            )
                            : try w.linear(l + "temporal_attention.output.dense", in: C, out: C),
                    tDense: divided && !fold ? try w.linear(l + "temporal_dense", in: C, out: C) : nil,
                    plain: try w.preLNBlock(
                        [l], [.v4], qkv: try w.linear(l + HFLayerSpelling.v4.fusedQKV, in: C, out: 3 * C),
                        channels: C, inter: inter, eps: eps)))
        }
        blocks = bl
        finalNorm = try w.norm("timesformer.layernorm", C, eps: eps)
        (classifier, numLabels) = try w.classifier("classifier", in: C, declared: enc.declaredLabels)
        parameterCount = w.loaded
    }

    /// PyTorch `interpolate(mode="nearest")` source index.
    @inline(__always) func nearest(_ i: Int, _ outSize: Int, _ inSize: Int) -> Int {
        min(Int(Float(i) * (Float(inSize) / Float(outSize))), inSize - 1)
    }

    /// Runs the model on pixel_values [B, T, C, H, W] (`VideoModel.forward`).
    public func forward(
        _ px: UnsafePointer<Float>, batch B: Int, frames T: Int, channels Cin: Int, height H: Int,
        width W: Int, options: ForwardOptions
    ) throws -> ModelOutput {
        try checkChannels(Cin, channels)
        try require(
            H >= patchSize && W >= patchSize, "frames of \(H)×\(W) are smaller than one \(patchSize)-pixel patch",
            status: .shapeMismatch)
        let C = hiddenSize, hp = H / patchSize, wp = W / patchSize, P = hp * wp
        // Per-frame embeddings [B·T, 1+P, C] with the (resized) position table.
        let K = channels * patchSize * patchSize
        let patches = try Tensor(shape: [B * T * P, K]), emb = try Tensor(shape: [B * T * P, C])
        patchify(px, B: B * T, T: 1, C: Cin, H: H, W: W, kt: 1, kh: patchSize, kw: patchSize, into: patches.data)
        try patch(patches.pointer, rows: B * T * P, into: emb.data)
        let side = Int(Double(pos.shape[1] - 1).squareRoot())
        let posRow: (Int) -> Int = { s in
            if P + 1 == self.pos.shape[1] { return 1 + s }
            // HF: patch_height = (1+P) // patch_width, nearest resize of the side×side grid.
            let ph = (1 + P) / wp, i = s / wp, j = s % wp
            return 1 + self.nearest(i, ph, side) * side + self.nearest(j, wp, side)
        }
        if attentionType == "space_only" {
            let S = 1 + P
            let x = try Tensor(shape: [B * T, S, C])
            embedTokens(
                into: x.data, batch: B * T, tokens: P, channels: C, cls: cls.pointer, clsPos: pos.pointer,
                emb: emb.pointer
            ) { s in TokenSource(patch: s, pos: pos.pointer + posRow(s) * C) }
            return try runPlain(x, seqs: B * T, S: S, options: options)
        }
        // Space-major sequence [B, 1 + P·T, C]: token 1 + s·T + t.
        let time = self.time!, Tcfg = time.shape[1]
        let S = 1 + P * T
        let x = try Tensor(shape: [B, S, C])
        embedTokens(
            into: x.data, batch: B, tokens: P * T, channels: C, cls: cls.pointer, clsPos: pos.pointer,
            emb: emb.pointer
        ) { n in
            let s = n / T, t = n % T
            return TokenSource(
                patch: t * P + s, pos: pos.pointer + posRow(s) * C,
                pos2: time.pointer + (T == Tcfg ? t : self.nearest(t, T, Tcfg)) * C)
        }
        if attentionType == "joint_space_time" { return try runPlain(x, seqs: B, S: S, options: options) }
        return try runDivided(x, B: B, T: T, P: P, options: options)
    }

    /// Standard pre-LN layers over `seqs` sequences of S tokens (space_only, joint_space_time).
    func runPlain(_ x: Tensor, seqs: Int, S: Int, options: ForwardOptions) throws -> ModelOutput {
        let C = hiddenSize, rows = seqs * S
        let y = try Tensor(shape: [rows, max(3 * C, inter)]), a = try Tensor(shape: [rows, C])
        var hidden: [Tensor] = [], atts: [Tensor] = []
        try runPreLNLayers(
            blocks.map(\.plain), over: x, seqs: seqs, n: S, heads: heads, act: act, y: y, a: a,
            options: options, hidden: &hidden, attentions: &atts)
        return try finish(x, seqs: seqs, S: S, hidden: hidden, atts: atts)
    }

    func mlp(_ blk: Block, _ x: Tensor, rows: Int, y: Tensor, a: Tensor) throws {
        try blk.plain.mlp(x.data, rows: rows, act: act, y: y.data, a: a.data)
    }

    func finish(_ x: Tensor, seqs: Int, S: Int, hidden: [Tensor], atts: [Tensor]) throws -> ModelOutput {
        let C = hiddenSize
        let last = try Tensor(shape: [seqs, S, C])
        finalNorm(x.pointer, rows: seqs * S, into: last.data)
        let logits = try Tensor(zeros: [seqs, numLabels])
        if let classifier {
            for b in 0..<seqs { try classifier(last.pointer + b * S * C, rows: 1, into: logits.data + b * numLabels) }
        }
        let out = ModelOutput(logits: logits, lastHiddenState: last)
        out.hiddenStates = hidden; out.attentions = atts
        return out
    }

    /// divided_space_time layers on x [B, 1 + P·T, C] (space-major).
    func runDivided(_ x: Tensor, B: Int, T: Int, P: Int, options: ForwardOptions) throws -> ModelOutput {
        let C = hiddenSize, S = 1 + P * T, N = P * T
        let rowsT = B * N, rowsS = B * T * (1 + P), rows = B * S
        let big = max(rowsT, rowsS, rows)
        let y = try Tensor(shape: [big, max(3 * C, inter)]), a = try Tensor(shape: [big, C])
        let r = try Tensor(shape: [big, C])
        var hidden: [Tensor] = [], atts: [Tensor] = []
        try runLayers(blocks, over: x, options: options, hidden: &hidden) { _, blk in
            // Temporal: patch tokens of each b are [P, T] rows already (space-major).
            for b in 0..<B {
                blk.tNorm!(x.pointer + (b * S + 1) * C, rows: N, into: a.data + b * N * C)
            }
            try blk.tQKV!(a.pointer, rows: rowsT, into: y.data)
            try selfAttention(qkv: y.pointer, seqs: B * P, n: T, channels: C, heads: heads, out: a.data)
            if let tDense = blk.tDense {
                try blk.tOut!(a.pointer, rows: rowsT, into: r.data)
                for b in 0..<B {  // x_patches += temporal_dense(Rt)
                    try tDense(r.pointer + b * N * C, rows: N, into: x.data + (b * S + 1) * C, accumulate: true)
                }
            } else {
                for b in 0..<B {  // the same, with temporal_dense ∘ output.dense composed at load
                    try blk.tOut!(a.pointer + b * N * C, rows: N, into: x.data + (b * S + 1) * C, accumulate: true)
                }
            }
            // Spatial: [CLS, frame t's patches] for every (b, t), normalised straight from x (frame
            // t's patch rows are T rows apart there); the CLS row once, copied to every frame.
            for b in 0..<B {
                let xb = x.pointer + b * S * C, first = a.data + b * T * (1 + P) * C
                blk.plain.ln1(xb, rows: 1, into: first)
                for t in 0..<T {
                    let seq = first + t * (1 + P) * C
                    if t > 0 { seq.update(from: first, count: C) }
                    blk.plain.ln1(xb + (1 + t) * C, rows: P, ldx: T * C, into: seq + C)
                }
            }
            try blk.plain.qkv(a.pointer, rows: rowsS, into: y.data)
            let probs = options.outputAttentions ? try Tensor(shape: [B * T, heads, 1 + P, 1 + P]) : nil
            try selfAttention(
                qkv: y.pointer, seqs: B * T, n: 1 + P, channels: C, heads: heads, out: a.data,
                probs: probs?.data)
            if let probs { atts.append(probs) }
            try blk.plain.o(a.pointer, rows: rowsS, into: r.data)
            for b in 0..<B {
                let xb = x.data + b * S * C
                addMeanCLS(xb, r.pointer + b * T * (1 + P) * C, groups: T, groupTokens: 1 + P, channels: C)
                for t in 0..<T {
                    for s in 0..<P {
                        let src = r.data + ((b * T + t) * (1 + P) + 1 + s) * C, dst = xb + (1 + s * T + t) * C
                        addInPlace(dst, src, C)
                    }
                }
            }
            try mlp(blk, x, rows: rows, y: y, a: a)
        }
        return try finish(x, seqs: B, S: S, hidden: hidden, atts: atts)
    }
}
