// HuggingFace ViViT (docs/models.md): tubelet embedding, a learned 3-D position
// table, pre-LN transformer layers with joint space-time attention, CLS classifier.
// Accepts the Hub's 4.x key names and transformers 5.x names.
import Kernels

/// config.json of a ViViT checkpoint (transformers' `VivitConfig`; its defaults).
public struct ViViTConfig: Sendable {
    /// The shared encoder fields (`hidden_act` defaults to "gelu_fast", `layer_norm_eps` to 1e-6).
    public var encoder: HFEncoderConfig
    /// Tubelet (t, h, w) of the patch embedding (`tubelet_size`, [2, 16, 16]).
    public var tubelet: (Int, Int, Int)
    /// Input side and frames the position table was trained for (`image_size`, 224; `num_frames`, 32).
    public var imageSize: Int, numFrames: Int

    /// Decodes and checks config.json (`file` names it in errors).
    public init(json: JSON, file: String) throws {
        let c = ConfigReader(json: json, file: file)
        encoder = try HFEncoderConfig(c, hiddenAct: "gelu_fast", layerNormEps: 1e-6)
        let tb = try c.ints("tubelet_size", [2, 16, 16])
        guard tb.count == 3 else { throw VidAttnError(.badFormat, "\(file): tubelet_size must have 3 entries") }
        try c.positive(["tubelet t": tb[0], "tubelet h": tb[1], "tubelet w": tb[2]])
        tubelet = (tb[0], tb[1], tb[2])
        imageSize = try c.int("image_size", 224); numFrames = try c.int("num_frames", 32)
    }
}

/// transformers' `VivitForVideoClassification` (model_type `vivit`): tubelet embedding, CLS,
/// one position table, pre-LN blocks, CLS head (docs/models.md).
public final class ViViT: VideoModel, @unchecked Sendable {
    /// config.json's `model_type`.
    public let modelType = "vivit"
    /// The parsed config.json.
    public let config: JSON
    /// config.json decoded.
    public let settings: ViViTConfig
    /// Classifier outputs, and the width of the last hidden state.
    public let numLabels: Int, hiddenSize: Int
    /// Parameters loaded from the checkpoint (exact count).
    public private(set) var parameterCount = 0
    let heads: Int, layers: Int, inter: Int, channels: Int
    let tubelet: (Int, Int, Int)
    let act: Activation
    let patch: Linear
    let cls: Tensor, pos: Tensor
    let blocks: [PreLNBlock]
    let finalNorm: LayerNorm
    let classifier: Linear?

    /// Layer names: the Hub's transformers 4.x checkpoints, then transformers 5.x's.
    static let spellings: [HFLayerSpelling] = [.v4, .vivitV5]

    init(config: JSON, weights w: Weights, file: String) throws {
        let cfg = try ViViTConfig(json: config, file: file), enc = cfg.encoder
        self.config = config; settings = cfg
        hiddenSize = enc.hiddenSize; heads = enc.heads; layers = enc.layers; inter = enc.intermediateSize
        channels = enc.channels; tubelet = cfg.tubelet
        let tb = [tubelet.0, tubelet.1, tubelet.2]
        act = try activationNamed(enc.hiddenAct, file: file)
        let eps = Float(enc.layerNormEps)
        let C = hiddenSize
        patch = try w.patchEmbedding(
            "vivit.embeddings.patch_embeddings.projection", shape: [C, channels, tb[0], tb[1], tb[2]])
        cls = try w.tensor("vivit.embeddings.cls_token", shape: [1, 1, C])
        guard let posInfo = w.store.info("vivit.embeddings.position_embeddings"), posInfo.shape.count == 3,
            posInfo.shape[0] == 1, posInfo.shape[2] == C
        else {
            throw VidAttnError(
                .badFormat,
                "missing or mis-shaped tensor 'vivit.embeddings.position_embeddings' (expected [1, N+1, \(C)])")
        }
        pos = try w.tensor("vivit.embeddings.position_embeddings", shape: posInfo.shape)
        var bl: [PreLNBlock] = []
        for i in 0..<layers {
            let prefixes = ["vivit.encoder.layer.\(i).", "vivit.layers.\(i)."], sp = Self.spellings
            func names(_ part: (HFLayerSpelling) -> String, _ suffix: String) -> [String] {
                w.names(prefixes, sp, part).map { $0 + suffix }
            }
            let parts: [(HFLayerSpelling) -> String] = [\.query, \.key, \.value]
            let qkv = try w.stackedLinear(
                parts.map { names($0, ".weight") },
                biases: try parts.map { try w.tensor(names($0, ".bias"), shape: [C]) },
                in: C, outs: [C, C, C])
            bl.append(try w.preLNBlock(prefixes, sp, qkv: qkv, channels: C, inter: inter, eps: eps))
        }
        blocks = bl
        finalNorm = try w.norm("vivit.layernorm", C, eps: eps)
        (classifier, numLabels) = try w.classifier("classifier", in: C, declared: enc.declaredLabels)
        parameterCount = w.loaded
    }

    /// The position table for a tp×h×w tubelet grid. The configured grid comes from
    /// config (num_frames, image_size); another grid resizes each frame's table bicubically
    /// and the frames linearly (an extension: HF 5.23 cannot, see docs/models.md).
    func positionTable(tp: Int, h: Int, w: Int) throws -> Tensor {
        if pos.shape[1] == 1 + tp * h * w { return pos }
        let img = settings.imageSize, nf = settings.numFrames
        let (t0, h0, w0) = (nf / tubelet.0, img / tubelet.1, img / tubelet.2)
        guard t0 * h0 * w0 + 1 == pos.shape[1] else {
            throw VidAttnError(
                .shapeMismatch,
                "the position table's \(pos.shape[1] - 1) rows do not match the configured "
                    + "grid \(t0)×\(h0)×\(w0); cannot resize it to \(tp)×\(h)×\(w)")
        }
        let C = hiddenSize
        let frames = try Tensor(shape: [t0, h * w * C])
        for t in 0..<t0 {
            try Resize.bicubic(
                pos.pointer + (1 + t * h0 * w0) * C, h: h0, w: w0, c: C, toH: h, toW: w,
                into: frames.data + t * h * w * C)
        }
        let out = try Tensor(shape: [1, 1 + tp * h * w, C])
        out.data.update(from: pos.pointer, count: C)
        Resize.linear(frames.pointer, t: t0, n: h * w * C, to: tp, into: out.data + C)
        return out
    }

    /// Runs the model on pixel_values [B, T, C, H, W] (`VideoModel.forward`).
    public func forward(
        _ px: UnsafePointer<Float>, batch B: Int, frames T: Int, channels Cin: Int, height H: Int,
        width W: Int, options: ForwardOptions
    ) throws -> ModelOutput {
        let (kt, kh, kw) = tubelet
        let N = try tubeletCount(
            frames: T, channels: Cin, height: H, width: W, modelChannels: channels, tubelet: tubelet)
        let S = 1 + N, C = hiddenSize
        let pos = try positionTable(tp: T / kt, h: H / kh, w: W / kw)
        let rows = B * S
        let x = try Tensor(shape: [B, S, C]), y = try Tensor(shape: [rows, max(3 * C, inter)])
        let attn = try Tensor(shape: [rows, C])
        // Embeddings.
        let K = channels * kt * kh * kw
        let patches = try Tensor(shape: [B * N, K]), emb = try Tensor(shape: [B * N, C])
        patchify(px, B: B, T: T, C: Cin, H: H, W: W, kt: kt, kh: kh, kw: kw, into: patches.data)
        try patch(patches.pointer, rows: B * N, into: emb.data)
        embedTokens(
            into: x.data, batch: B, tokens: N, channels: C, cls: cls.pointer, clsPos: pos.pointer,
            emb: emb.pointer
        ) { n in TokenSource(patch: n, pos: pos.pointer + (1 + n) * C) }
        var hidden: [Tensor] = []
        var attentions: [Tensor] = []
        try runPreLNLayers(
            blocks, over: x, seqs: B, n: S, heads: heads, act: act, y: y, a: attn, options: options,
            hidden: &hidden, attentions: &attentions)
        let last = try Tensor(shape: [B, S, C])
        finalNorm(x.pointer, rows: rows, into: last.data)
        let logits = try Tensor(zeros: [B, max(numLabels, 0)])
        if let classifier {
            for b in 0..<B { try classifier(last.pointer + b * S * C, rows: 1, into: logits.data + b * numLabels) }
        }
        let out = ModelOutput(logits: logits, lastHiddenState: last)
        out.hiddenStates = hidden; out.attentions = attentions
        return out
    }
}
