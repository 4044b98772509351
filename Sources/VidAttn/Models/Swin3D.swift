// torchvision Video Swin (`swin3d_t/s/b`, docs/models.md): padded Conv3d patch
// embedding + LayerNorm, stages of shifted-window blocks with patch merging in
// between, final LayerNorm, global average pool, linear head.
// config.json: model_type "torchvision_swin3d" with the constructor's fields
// (patch_size, embed_dim, depths, num_heads, window_size, num_classes, mlp_ratio),
// or "variant": "swin3d_t" | "swin3d_s" | "swin3d_b" for the published shapes.
import Kernels

/// config.json of a torchvision Video Swin checkpoint: the constructor's fields, or a published
/// `variant` whose shapes become the defaults (swin3d_t when neither is given).
public struct Swin3DConfig: Sendable {
    /// "swin3d_t", "swin3d_s" or "swin3d_b" (`variant`), nil when not given.
    public var variant: String?
    /// Stage-1 width (`embed_dim`, 96; 128 for swin3d_b).
    public var embedDim: Int
    /// Blocks per stage (`depths`, [2, 2, 6, 2]; [2, 2, 18, 2] for swin3d_s/b).
    public var depths: [Int]
    /// Heads per stage (`num_heads`, [3, 6, 12, 24]; [4, 8, 16, 32] for swin3d_b).
    public var heads: [Int]
    /// Patch (t, h, w) of the embedding (`patch_size`, [2, 4, 4]).
    public var patchSize: (Int, Int, Int)
    /// Attention window (t, h, w) (`window_size`, [8, 7, 7]).
    public var windowSize: (Int, Int, Int)
    /// MLP width over model width (`mlp_ratio`, 4).
    public var mlpRatio: Double
    /// Classes: `num_labels` or `id2label`, else `num_classes`; nil when none is given (the
    /// head weight's rows count then).
    public var declaredLabels: Int?

    /// The published shapes: stage-1 width, depths, heads.
    static let variants: [String: (dim: Int, depths: [Int], heads: [Int])] = [
        "swin3d_t": (96, [2, 2, 6, 2], [3, 6, 12, 24]),
        "swin3d_s": (96, [2, 2, 18, 2], [3, 6, 12, 24]),
        "swin3d_b": (128, [2, 2, 18, 2], [4, 8, 16, 32])
    ]

    /// Decodes and checks config.json (`file` names it in errors).
    public init(json: JSON, file: String) throws {
        let c = ConfigReader(json: json, file: file)
        var dim = 96, depths = [2, 2, 6, 2], heads = [3, 6, 12, 24]
        variant = json["variant"]?.string
        if let v = variant {
            guard let p = Self.variants[v] else {
                throw VidAttnError(.unsupported, "\(file): unknown variant '\(v)' (swin3d_t, swin3d_s, swin3d_b)")
            }
            (dim, depths, heads) = p
        }
        embedDim = try c.int("embed_dim", dim)
        self.depths = try c.ints("depths", depths); self.heads = try c.ints("num_heads", heads)
        let ps = try c.ints("patch_size", [2, 4, 4]), ws = try c.ints("window_size", [8, 7, 7])
        mlpRatio = try c.double("mlp_ratio", 4)
        guard ps.count == 3, ws.count == 3, self.depths.count == self.heads.count, !self.depths.isEmpty,
            (ps + ws + self.depths + self.heads).allSatisfy({ $0 > 0 }), embedDim > 0
        else {
            throw VidAttnError(
                .badFormat,
                "\(file): patch_size and window_size need 3 positive entries, depths and "
                    + "num_heads positive entries of equal count")
        }
        patchSize = (ps[0], ps[1], ps[2]); windowSize = (ws[0], ws[1], ws[2])
        declaredLabels = try c.declaredLabels(orKey: "num_classes")
    }
}

/// torchvision's `SwinTransformer3d` (model_type `torchvision_swin3d`): 3-D shifted-window attention,
/// patch merging, relative position bias (docs/models.md).
public final class Swin3D: VideoModel, @unchecked Sendable {
    /// config.json's `model_type`.
    public let modelType = "torchvision_swin3d"
    /// The parsed config.json.
    public let config: JSON
    /// config.json decoded.
    public let settings: Swin3DConfig
    /// Classifier outputs, and the width of the last hidden state.
    public let numLabels: Int, hiddenSize: Int
    /// Parameters loaded from the checkpoint (exact count).
    public private(set) var parameterCount = 0
    let patch: (Int, Int, Int)
    let window: (Int, Int, Int)
    let embedDim: Int
    let patchProj: Linear, patchNorm: LayerNorm
    let stages: [[Block]]
    let merges: [(norm: LayerNorm, reduction: Linear)]
    let finalNorm: LayerNorm
    let head: Linear
    static let eps: Float = 1e-5

    struct Block {
        let norm1: LayerNorm, attn: WindowAttention3DWeights, norm2: LayerNorm, fc1: Linear, fc2: Linear
        let shift: (Int, Int, Int)
    }

    init(config: JSON, weights w: Weights, file: String) throws {
        let cfg = try Swin3DConfig(json: config, file: file)
        self.config = config; settings = cfg
        embedDim = cfg.embedDim; patch = cfg.patchSize; window = cfg.windowSize
        let depths = cfg.depths, heads = cfg.heads, mlpRatio = cfg.mlpRatio
        let ps = [patch.0, patch.1, patch.2], ws = [window.0, window.1, window.2]
        let C0 = embedDim
        patchProj = try w.patchEmbedding("patch_embed.proj", shape: [C0, 3, ps[0], ps[1], ps[2]])
        patchNorm = try w.norm("patch_embed.norm", C0, eps: Self.eps)
        var st: [[Block]] = [], mg: [(LayerNorm, Linear)] = []
        let tableRows = (2 * ws[0] - 1) * (2 * ws[1] - 1) * (2 * ws[2] - 1)
        for (i, depth) in depths.enumerated() {
            let C = C0 << i, nh = heads[i], hidden = Int(Double(C) * mlpRatio)
            guard C % nh == 0 else {
                throw VidAttnError(.badFormat, "\(file): stage \(i) width \(C) not divisible by \(nh) heads")
            }
            var blocks: [Block] = []
            for j in 0..<depth {
                let p = "features.\(2 * i).\(j)."
                let attn = try w.windowAttention(p, channels: C, heads: nh, window: window, tableRows: tableRows)
                let shift = j % 2 == 0 ? (0, 0, 0) : (ws[0] / 2, ws[1] / 2, ws[2] / 2)
                blocks.append(
                    Block(
                        norm1: try w.norm(p + "norm1", C, eps: Self.eps), attn: attn,
                        norm2: try w.norm(p + "norm2", C, eps: Self.eps),
                        fc1: try w.linear(p + "mlp.0", in: C, out: hidden),
                        fc2: try w.linear(p + "mlp.3", in: hidden, out: C), shift: shift))
            }
            st.append(blocks)
            if i < depths.count - 1 {
                mg.append(try w.patchMerging("features.\(2 * i + 1).", C, eps: Self.eps))
            }
        }
        stages = st; merges = mg
        hiddenSize = C0 << (depths.count - 1)
        finalNorm = try w.norm("norm", hiddenSize, eps: Self.eps)
        let hi = w.store.info("head.weight")
        let nl = cfg.declaredLabels ?? hi?.shape.first ?? 400
        head = try w.linear("head", in: hiddenSize, out: nl)
        numLabels = nl
        parameterCount = w.loaded
    }

    /// Runs the model on pixel_values [B, T, C, H, W] (`VideoModel.forward`).
    public func forward(
        _ px: UnsafePointer<Float>, batch B: Int, frames T: Int, channels Cin: Int, height H: Int,
        width W: Int, options: ForwardOptions
    ) throws -> ModelOutput {
        try require(Cin == 3, "pixel_values has \(Cin) channels, the model takes 3", status: .shapeMismatch)
        let (pt, ph, pw) = patch
        let Tp = (T + pt - 1) / pt * pt, Hp = (H + ph - 1) / ph * ph, Wp = (W + pw - 1) / pw * pw
        // Zero-pad to whole patches ([B, T, C, H, W] layout), then patch rows.
        var src = px
        var padded: Tensor? = nil
        if Tp != T || Hp != H || Wp != W {
            let p = try Tensor(zeros: [B, Tp, 3, Hp, Wp])
            for b in 0..<B {
                for t in 0..<T {
                    for c in 0..<3 {
                        for y in 0..<H {
                            (p.data + (((b * Tp + t) * 3 + c) * Hp + y) * Wp).update(
                                from: px + (((b * T + t) * 3 + c) * H + y) * W, count: W)
                        }
                    }
                }
            }
            padded = p
            src = p.pointer
        }
        var (gt, gh, gw) = (Tp / pt, Hp / ph, Wp / pw)
        var C = embedDim
        let patches = try Tensor(shape: [B * gt * gh * gw, 3 * pt * ph * pw])
        patchify(src, B: B, T: Tp, C: 3, H: Hp, W: Wp, kt: pt, kh: ph, kw: pw, into: patches.data)
        _ = padded
        var x = try Tensor(shape: [B, gt, gh, gw, C])
        try patchProj(patches.pointer, rows: B * gt * gh * gw, into: x.data)
        patchNorm(x.pointer, rows: B * gt * gh * gw, into: x.data)
        var hidden: [Tensor] = []
        if options.outputHiddenStates { hidden.append(try copyTensor(x.pointer, x.shape)) }
        let total = stages.reduce(0) { $0 + $1.count }
        var done = 0
        for (i, blocks) in stages.enumerated() {
            let rows = B * gt * gh * gw
            let y = try Tensor(shape: [rows, C])
            let hbuf = try Tensor(shape: [rows, blocks.first.map { $0.fc1.outFeatures } ?? C])
            for blk in blocks {
                try checkContinue(options, done, total)
                // x += attention(norm1(x)): the norm applied in the window gather, the result
                // added in the scatter.
                try Ops.windowAttention3D(
                    batch: B, t: gt, h: gh, w: gw, x: x.pointer, y: x.data, weights: blk.attn,
                    shift: blk.shift, norm: blk.norm1, accumulate: true)
                try residualMLP(
                    x.data, rows: rows, norm: blk.norm2, fc1: blk.fc1, fc2: blk.fc2, act: .gelu, normed: y.data,
                    hidden: hbuf.data)
                done += 1
            }
            if options.outputHiddenStates { hidden.append(try copyTensor(x.pointer, x.shape)) }
            if i < merges.count {
                x = try mergePatches(x, B: B, t: gt, h: gh, w: gw, channels: C, merges[i])
                gh = (gh + 1) / 2; gw = (gw + 1) / 2; C *= 2
            }
        }
        return try meanPooledHeadOutput(
            x, B: B, tokens: gt * gh * gw, channels: C, norm: finalNorm, head: head, hidden: hidden)
    }
}
