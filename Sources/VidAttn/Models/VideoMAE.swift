// HuggingFace VideoMAE (`VideoMAEForVideoClassification`, docs/models.md): tubelet embedding,
// a fixed sinusoidal position table (computed, never stored in the checkpoint), pre-LN
// layers whose query and value projections carry biases and whose key projection has none,
// and either mean pooling over every token followed by `fc_norm` (LayerNorm with PyTorch's
// default ε 1e-5, not the config's) or a final LayerNorm and the first token (VideoMAE has
// no CLS token). Accepts the Hub's 4.x names (`attention.attention.q_bias`, `v_bias`) and
// transformers 5.x names (`query.bias`, `value.bias`).
#if canImport(Glibc)
import Glibc
#endif
import Kernels

/// config.json of a VideoMAE checkpoint (transformers' `VideoMAEConfig`; its defaults).
public struct VideoMAEConfig: Sendable {
    /// The shared encoder fields (`hidden_act` defaults to "gelu", `layer_norm_eps` to 1e-12).
    public var encoder: HFEncoderConfig
    /// Spatial patch side (`patch_size`, 16).
    public var patchSize: Int
    /// Frames per tubelet (`tubelet_size`, 2).
    public var tubeletSize: Int
    /// Mean pooling + `fc_norm` (true) or the final LayerNorm and the first token (`use_mean_pooling`, true).
    public var useMeanPooling: Bool

    /// Decodes and checks config.json (`file` names it in errors).
    public init(json: JSON, file: String) throws {
        let c = ConfigReader(json: json, file: file)
        encoder = try HFEncoderConfig(c, hiddenAct: "gelu", layerNormEps: 1e-12)
        patchSize = try c.int("patch_size", 16); tubeletSize = try c.int("tubelet_size", 2)
        try c.positive(["patch_size": patchSize, "tubelet_size": tubeletSize])
        useMeanPooling = try c.bool("use_mean_pooling", true)
    }
}

/// transformers' `VideoMAEForVideoClassification` (model_type `videomae`): tubelet embedding,
/// fixed sinusoidal table, no CLS, mean pooling + fc_norm or the first token (docs/models.md).
public final class VideoMAE: VideoModel, @unchecked Sendable {
    /// config.json's `model_type`.
    public let modelType = "videomae"
    /// The parsed config.json.
    public let config: JSON
    /// config.json decoded.
    public let settings: VideoMAEConfig
    /// Classifier outputs, and the width of the last hidden state.
    public let numLabels: Int, hiddenSize: Int
    /// Parameters loaded from the checkpoint (exact count).
    public private(set) var parameterCount = 0
    let heads: Int, inter: Int, channels: Int
    let tubelet: (Int, Int, Int)
    let act: Activation
    let meanPooling: Bool
    let patch: Linear
    let blocks: [PreLNBlock]
    /// `videomae.layernorm` (use_mean_pooling false) or `fc_norm` (true).
    let finalNorm: LayerNorm?, fcNorm: LayerNorm?
    let classifier: Linear?

    init(config: JSON, weights w: Weights, file: String) throws {
        let cfg = try VideoMAEConfig(json: config, file: file), enc = cfg.encoder
        self.config = config; settings = cfg
        hiddenSize = enc.hiddenSize; heads = enc.heads; inter = enc.intermediateSize; channels = enc.channels
        let layers = enc.layers, p = cfg.patchSize, tt = cfg.tubeletSize
        tubelet = (tt, p, p)
        act = try activationNamed(enc.hiddenAct, file: file)
        meanPooling = cfg.useMeanPooling
        let eps = Float(enc.layerNormEps)
        let C = hiddenSize
        patch = try w.patchEmbedding("videomae.embeddings.patch_embeddings.projection", shape: [C, channels, tt, p, p])
        let zeros = try Tensor(zeros: [C])
        var bl: [PreLNBlock] = []
        for i in 0..<layers {
            let l = "videomae.encoder.layer.\(i).", a = l + "attention.attention.", sp = HFLayerSpelling.v4
            // The key has no bias; q and v biases are `q_bias`/`v_bias` (4.x) or `query.bias`/`value.bias`
            // (5.x); qkv_bias (4.x) / qv_bias (5.x) false: no biases at all.
            let qb = try w.optional(a + "q_bias", shape: [C]) ?? w.optional(l + sp.query + ".bias", shape: [C]) ?? zeros
            let vb = try w.optional(a + "v_bias", shape: [C]) ?? w.optional(l + sp.value + ".bias", shape: [C]) ?? zeros
            let qkv = try w.stackedLinear(
                [[l + sp.query + ".weight"], [l + sp.key + ".weight"], [l + sp.value + ".weight"]],
                biases: [qb, zeros, vb],
                in: C, outs: [C, C, C])
            bl.append(try w.preLNBlock([l], [sp], qkv: qkv, channels: C, inter: inter, eps: eps))
        }
        blocks = bl
        if meanPooling {
            finalNorm = nil
            fcNorm = w.store.has("fc_norm.weight") ? try w.norm("fc_norm", C, eps: 1e-5) : nil
        } else {
            finalNorm = try w.norm("videomae.layernorm", C, eps: eps)
            fcNorm = nil
        }
        (classifier, numLabels) = try w.classifier("classifier", in: C, declared: enc.declaredLabels)
        parameterCount = w.loaded
    }

    /// transformers' `get_sinusoid_encoding_table(n, C)`: angle(pos, j) = pos / 10000^(2⌊j/2⌋/C),
    /// sin on even j and cos on odd j, computed in double and rounded to float. For another
    /// token count than the configured one the table simply has that many rows (an extension:
    /// transformers' table has exactly num_patches rows).
    static func sinusoidTable(_ n: Int, _ c: Int) throws -> Tensor {
        let t = try Tensor(shape: [n, c])
        for j in 0..<c {
            let denom = pow(10000.0, 2.0 * Double(j / 2) / Double(c))
            for p in 0..<n {
                let angle = Double(p) / denom
                t.data[p * c + j] = Float(j % 2 == 0 ? sin(angle) : cos(angle))
            }
        }
        return t
    }

    /// Runs the model on pixel_values [B, T, C, H, W] (`VideoModel.forward`).
    public func forward(
        _ px: UnsafePointer<Float>, batch B: Int, frames T: Int, channels Cin: Int, height H: Int,
        width W: Int, options: ForwardOptions
    ) throws -> ModelOutput {
        let (kt, kh, kw) = tubelet
        let N = try tubeletCount(
            frames: T, channels: Cin, height: H, width: W, modelChannels: channels, tubelet: tubelet)
        let C = hiddenSize, rows = B * N
        let pos = try VideoMAE.sinusoidTable(N, C)
        let x = try Tensor(shape: [B, N, C]), y = try Tensor(shape: [rows, max(3 * C, inter)])
        let attn = try Tensor(shape: [rows, C])
        let patches = try Tensor(shape: [rows, channels * kt * kh * kw])
        patchify(px, B: B, T: T, C: Cin, H: H, W: W, kt: kt, kh: kh, kw: kw, into: patches.data)
        try patch(patches.pointer, rows: rows, into: x.data)
        for b in 0..<B { addInPlace(x.data + b * N * C, pos.pointer, N * C) }
        var hidden: [Tensor] = []
        var attentions: [Tensor] = []
        try runPreLNLayers(
            blocks, over: x, seqs: B, n: N, heads: heads, act: act, y: y, a: attn, options: options,
            hidden: &hidden, attentions: &attentions)
        // last_hidden_state is VideoMAEModel's output: after videomae.layernorm when the model
        // has one (use_mean_pooling false), else the residual stream itself.
        let last = try Tensor(shape: [B, N, C])
        if let finalNorm {
            finalNorm(x.pointer, rows: rows, into: last.data)
        } else {
            last.data.update(from: x.pointer, count: x.count)
        }
        let feat = try Tensor(zeros: [B, C])
        for b in 0..<B {
            let dst = feat.data + b * C, src = last.pointer + b * N * C
            if meanPooling {
                for n in 0..<N { addInPlace(dst, src + n * C, C) }
                for ch in 0..<C { dst[ch] /= Float(N) }
            } else {
                dst.update(from: src, count: C)  // the first token (no CLS in VideoMAE)
            }
        }
        var pooled = feat
        if let fcNorm {
            pooled = try Tensor(shape: [B, C])
            fcNorm(feat.pointer, rows: B, into: pooled.data)
        }
        let logits = try Tensor(zeros: [B, max(numLabels, 0)])
        if let classifier { try classifier(pooled.pointer, rows: B, into: logits.data) }
        let out = ModelOutput(logits: logits, lastHiddenState: last)
        out.hiddenStates = hidden; out.attentions = attentions
        return out
    }
}
