// AIM's Swin (`SwinTransformer2D_Adapter` of taoyang1122/adapt-image-models, docs/models.md):
// a 2-D Swin run on every temporal slice of a Conv3d (2,4,4) patch embedding, with
// adapters, and in every even block a temporal attention over the T' slices that reuses
// the block's spatial qkv and proj weights with a temporal relative-position bias. Per block:
//   even j: x += T_Adapter(Attn_t(LN1(x)))              (tokens regrouped per position)
//   x += S_Adapter2(W-MSA(LN1(x)))                      (shifted windows in odd blocks)
//   x += MLP(LN2(x)) + 0.5 · S_Adapter(LN2(x))
// with Adapter(x) = fc2(gelu(fc1 x)), S_Adapter2(x) = x + Adapter(x), bottleneck C/4.
// Then LayerNorm, the mean over T'×H×W, and mmaction2's I3DHead linear.
// config.json: model_type "aim_swin" (see tools/convert_aim_swin.py). The original fixes the
// spatial resolution at 224 and the frame count at construction; so does this model.
import Kernels

/// config.json of an AIM Swin checkpoint (written by tools/convert_aim_swin.py from the mmaction2
/// config; defaults are AIM's Swin-T at 224 and 32 frames).
public struct AIMSwinConfig: Sendable {
    /// Stage-1 width (`embed_dim`, 96).
    public var embedDim: Int
    /// Blocks per stage (`depths`, [2, 2, 6, 2]).
    public var depths: [Int]
    /// Heads per stage (`num_heads`, [3, 6, 12, 24]).
    public var heads: [Int]
    /// Patch (t, h, w) of the embedding (`patch_size`, [2, 4, 4]).
    public var patchSize: (Int, Int, Int)
    /// Square spatial window side (`window_size`, 7).
    public var windowSize: Int
    /// Input side the model is built for (`img_size`, 224).
    public var imageSize: Int
    /// Input frames the model is built for (`num_frames`, 32).
    public var numFrames: Int
    /// MLP width over model width (`mlp_ratio`, 4).
    public var mlpRatio: Double
    /// Temporal attention with a relative-position bias (true) or a learned temporal embedding
    /// added after the patch embedding (`t_relative`, true).
    public var temporalRelative: Bool
    /// LayerNorm after the patch embedding (`patch_norm`, true).
    public var patchNorm: Bool
    /// Classes: `num_labels` or `id2label`, else `num_classes`; nil when none is given.
    public var declaredLabels: Int?

    /// Decodes and checks config.json (`file` names it in errors).
    public init(json: JSON, file: String) throws {
        let c = ConfigReader(json: json, file: file)
        embedDim = try c.int("embed_dim", 96)
        depths = try c.ints("depths", [2, 2, 6, 2]); heads = try c.ints("num_heads", [3, 6, 12, 24])
        let ps = try c.ints("patch_size", [2, 4, 4])
        windowSize = try c.int("window_size", 7)
        imageSize = try c.int("img_size", 224)
        numFrames = try c.int("num_frames", 32)
        mlpRatio = try c.double("mlp_ratio", 4)
        temporalRelative = try c.bool("t_relative", true); patchNorm = try c.bool("patch_norm", true)
        guard ps.count == 3, depths.count == heads.count, !depths.isEmpty, (ps + depths + heads).allSatisfy({ $0 > 0 }),
            embedDim > 0, windowSize > 0, imageSize > 0, numFrames >= ps[0]
        else {
            throw VidAttnError(
                .badFormat,
                "\(file): patch_size needs 3 positive entries, depths and num_heads positive "
                    + "entries of equal count, window_size, img_size and num_frames positive")
        }
        patchSize = (ps[0], ps[1], ps[2])
        declaredLabels = try c.declaredLabels(orKey: "num_classes")
    }
}

/// AIM (taoyang1122/adapt-image-models) Swin-2D adapter backbone with the I3D head (model_type
/// `aim_swin`): temporal attention per spatial position, adapters, window attention (docs/models.md).
public final class AIMSwin: VideoModel, @unchecked Sendable {
    /// config.json's `model_type`.
    public let modelType = "aim_swin"
    /// The parsed config.json.
    public let config: JSON
    /// config.json decoded.
    public let settings: AIMSwinConfig
    /// Classifier outputs, and the width of the last hidden state.
    public let numLabels: Int, hiddenSize: Int
    /// Parameters loaded from the checkpoint (exact count).
    public private(set) var parameterCount = 0
    let patch: (Int, Int, Int)
    let embedDim: Int, imgSize: Int, numFrames: Int
    let patchProj: Linear, patchNorm: LayerNorm?
    let temporalEmbedding: Tensor?
    let stages: [[Block]]
    let merges: [(norm: LayerNorm, reduction: Linear)]
    let finalNorm: LayerNorm
    let head: Linear
    static let eps: Float = 1e-5

    struct Adapter { let fc1: Linear, fc2: Linear }

    struct Block {
        let norm1: LayerNorm, attn: WindowAttention3DWeights, norm2: LayerNorm, fc1: Linear, fc2: Linear
        let shift: Int
        /// Temporal attention (even blocks): its bias table [2T' − 1, heads] and T_Adapter.
        let temporalTable: Tensor?, tAdapter: Adapter?
        /// S_Adapter2 (after the window attention, with its own skip) and S_Adapter (beside
        /// the MLP; its fc2 carries the 0.5, folded in at load: exact, a power of two).
        let sAdapter2: Adapter, sAdapter: Adapter
    }

    init(config: JSON, weights w: Weights, file: String) throws {
        let cfg = try AIMSwinConfig(json: config, file: file)
        self.config = config; settings = cfg
        embedDim = cfg.embedDim; imgSize = cfg.imageSize; numFrames = cfg.numFrames; patch = cfg.patchSize
        let depths = cfg.depths, heads = cfg.heads, ws = cfg.windowSize, mlpRatio = cfg.mlpRatio
        let tRelative = cfg.temporalRelative, patchNormOn = cfg.patchNorm
        let ps = [patch.0, patch.1, patch.2]
        let T = numFrames / ps[0]
        let C0 = embedDim
        patchProj = try w.patchEmbedding("patch_embed.proj", shape: [C0, 3, ps[0], ps[1], ps[2]])
        patchNorm = patchNormOn ? try w.norm("patch_embed.norm", C0, eps: Self.eps) : nil
        temporalEmbedding = tRelative ? nil : try w.tensor("temporal_embedding", shape: [1, T, C0])
        func adapter(_ p: String, _ C: Int, scale: Float = 1) throws -> Adapter {
            let hidden = Int(Double(C) * 0.25)
            let fc1 = try w.linear(p + ".D_fc1", in: C, out: hidden)
            let w2 = try w.tensor(p + ".D_fc2.weight", shape: [C, hidden]),
                b2 = try w.tensor(p + ".D_fc2.bias", shape: [C])
            if scale != 1 {
                for i in 0..<w2.count { w2.data[i] *= scale }
                for i in 0..<b2.count { b2.data[i] *= scale }
            }
            return Adapter(fc1: fc1, fc2: try Linear(weight: w2, bias: b2))
        }
        var st: [[Block]] = [], mg: [(LayerNorm, Linear)] = []
        var res = (imgSize / ps[1], imgSize / ps[2])
        for (i, depth) in depths.enumerated() {
            let C = C0 << i, nh = heads[i], hidden = Int(Double(C) * mlpRatio)
            guard C % nh == 0 else {
                throw VidAttnError(.badFormat, "\(file): stage \(i) width \(C) not divisible by \(nh) heads")
            }
            // The window shrinks to the resolution when that is not larger (then no shift).
            let clamp = min(res.0, res.1) <= ws
            let wEff = clamp ? min(res.0, res.1) : ws
            var blocks: [Block] = []
            for j in 0..<depth {
                let p = "layers.\(i).blocks.\(j)."
                let attn = try w.windowAttention(
                    p, channels: C, heads: nh, window: (1, wEff, wEff), tableRows: (2 * wEff - 1) * (2 * wEff - 1))
                let temporal = j % 2 == 0
                blocks.append(
                    Block(
                        norm1: try w.norm(p + "norm1", C, eps: Self.eps), attn: attn,
                        norm2: try w.norm(p + "norm2", C, eps: Self.eps),
                        fc1: try w.linear(p + "mlp.fc1", in: C, out: hidden),
                        fc2: try w.linear(p + "mlp.fc2", in: hidden, out: C),
                        shift: temporal || clamp ? 0 : wEff / 2,
                        temporalTable: temporal
                            ? try w.tensor(p + "attn.temporal_position_bias_table", shape: [2 * T - 1, nh]) : nil,
                        tAdapter: temporal ? try adapter(p + "T_Adapter", C) : nil,
                        sAdapter2: try adapter(p + "S_Adapter2", C),
                        sAdapter: try adapter(p + "S_Adapter", C, scale: 0.5)))
            }
            st.append(blocks)
            if i < depths.count - 1 {
                mg.append(try w.patchMerging("layers.\(i).downsample.", C, eps: Self.eps))
                res = (res.0 / 2, res.1 / 2)
            }
        }
        stages = st; merges = mg
        hiddenSize = C0 << (depths.count - 1)
        finalNorm = try w.norm("norm", hiddenSize, eps: Self.eps)
        let hi = w.store.info("cls_head.fc_cls.weight")
        let nl = cfg.declaredLabels ?? hi?.shape.first ?? 400
        head = try w.linear("cls_head.fc_cls", in: hiddenSize, out: nl)
        numLabels = nl
        parameterCount = w.loaded
    }

    /// x += adapter(y) (rows × C), through a bottleneck buffer.
    func addAdapter(_ a: Adapter, _ y: UnsafePointer<Float>, rows: Int, into x: UnsafeMutablePointer<Float>) throws {
        let h = try Tensor(shape: [rows, a.fc1.outFeatures])
        try a.fc1(y, rows: rows, into: h.data, activation: .gelu)
        try a.fc2(h.pointer, rows: rows, into: x, accumulate: true)
    }

    /// Runs the model on pixel_values [B, T, C, H, W] (`VideoModel.forward`).
    public func forward(
        _ px: UnsafePointer<Float>, batch B: Int, frames T: Int, channels Cin: Int, height H: Int,
        width W: Int, options: ForwardOptions
    ) throws -> ModelOutput {
        try require(Cin == 3, "pixel_values has \(Cin) channels, the model takes 3", status: .shapeMismatch)
        // The original builds its windows, masks and temporal tables for one input size.
        try require(
            T == numFrames && H == imgSize && W == imgSize,
            "AIM Swin takes \(numFrames)×\(imgSize)×\(imgSize) clips (num_frames, img_size), got \(T)×\(H)×\(W)",
            status: .shapeMismatch)
        let (pt, ph, pw) = patch
        var (gt, gh, gw) = (T / pt, H / ph, W / pw)
        var C = embedDim
        let patches = try Tensor(shape: [B * gt * gh * gw, 3 * pt * ph * pw])
        patchify(px, B: B, T: T, C: 3, H: H, W: W, kt: pt, kh: ph, kw: pw, into: patches.data)
        var x = try Tensor(shape: [B, gt, gh, gw, C])
        try patchProj(patches.pointer, rows: B * gt * gh * gw, into: x.data)
        if let patchNorm { patchNorm(x.pointer, rows: B * gt * gh * gw, into: x.data) }
        if let te = temporalEmbedding {
            for b in 0..<B {
                for t in 0..<gt {
                    for n in 0..<(gh * gw) {
                        addInPlace(x.data + ((b * gt + t) * gh * gw + n) * C, te.pointer + t * C, C)
                    }
                }
            }
        }
        var hidden: [Tensor] = []
        if options.outputHiddenStates { hidden.append(try copyTensor(x.pointer, x.shape)) }
        let total = stages.reduce(0) { $0 + $1.count }
        var done = 0
        for (i, blocks) in stages.enumerated() {
            let P = gh * gw, rows = B * gt * P
            let y = try Tensor(shape: [rows, C]), z = try Tensor(shape: [rows, C]), g = try Tensor(shape: [rows, C])
            let hbuf = try Tensor(shape: [rows, blocks.first.map { $0.fc1.outFeatures } ?? C])
            for blk in blocks {
                try checkContinue(options, done, total)
                if let table = blk.temporalTable, let ta = blk.tAdapter {
                    // Tokens regrouped (b, t, n) → (b, n, t); LN1 is per token, so it commutes.
                    blk.norm1(x.pointer, rows: rows, into: y.data)
                    regroup(y.pointer, into: g.data, B: B, outer: gt, inner: P, C: C)
                    try Ops.temporalAttentionAIM(
                        groups: B * P, frames: gt, channels: C, heads: blk.attn.heads,
                        z: g.pointer, qkv: blk.attn.qkv, proj: blk.attn.proj, table: table.pointer, y: z.data)
                    g.data.update(repeating: 0, count: rows * C)
                    try addAdapter(ta, z.pointer, rows: rows, into: g.data)
                    regroup(g.pointer, into: z.data, B: B, outer: P, inner: gt, C: C)
                    addInPlace(x.data, z.pointer, rows * C)
                }
                try Ops.windowAttention3D(
                    batch: B * gt, t: 1, h: gh, w: gw, x: x.pointer, y: z.data, weights: blk.attn,
                    shift: (0, blk.shift, blk.shift), norm: blk.norm1)
                try addAdapter(blk.sAdapter2, z.pointer, rows: rows, into: z.data)  // S_Adapter2 keeps its input
                addInPlace(x.data, z.pointer, rows * C)
                try residualMLP(
                    x.data, rows: rows, norm: blk.norm2, fc1: blk.fc1, fc2: blk.fc2, act: .gelu, normed: y.data,
                    hidden: hbuf.data)
                try addAdapter(blk.sAdapter, y.pointer, rows: rows, into: x.data)
                done += 1
            }
            if options.outputHiddenStates { hidden.append(try copyTensor(x.pointer, x.shape)) }
            if i < merges.count {
                try require(
                    gh % 2 == 0 && gw % 2 == 0, "AIM Swin patch merging needs an even grid (got \(gh)×\(gw))",
                    status: .shapeMismatch)
                x = try mergePatches(x, B: B, t: gt, h: gh, w: gw, channels: C, merges[i])
                gh /= 2; gw /= 2; C *= 2
            }
        }
        return try meanPooledHeadOutput(
            x, B: B, tokens: gt * gh * gw, channels: C, norm: finalNorm, head: head, hidden: hidden)
    }

    /// [B, outer, inner, C] → [B, inner, outer, C].
    func regroup(
        _ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, B: Int, outer: Int, inner: Int, C: Int
    ) {
        parallelFor(B * outer) { bo, _ in
            let b = bo / outer, o = bo % outer
            for n in 0..<inner {
                (dst + ((b * inner + n) * outer + o) * C).update(
                    from: src + ((b * outer + o) * inner + n) * C, count: C)
            }
        }
    }
}
