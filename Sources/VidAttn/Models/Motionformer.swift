// Motionformer (docs/models.md): tubelet (or per-frame) patch embedding, separate
// space and time position tables, pre-LN blocks (ε 1e-6) with trajectory, joint or
// divided attention, CLS head with tanh pre-logits. Returns logits; the original's
// eval-mode softmax is the config option "eval_softmax": true.
// Trajectory attention takes approx_attn_type none / nystrom / orthoformer /
// performer (Ω from blocks.{i}.attn.performer_projection when present, else from
// performer_seed), with orthoformer_start fixing the first landmark.
import Kernels
import Synchronization

/// config.json of a Motionformer checkpoint (tools/convert_motionformer.py writes it from the
/// original's yaml; defaults are the released K400 model's).
public struct MotionformerConfig: Sendable {
    /// Model width C (`embed_dim`, 768).
    public var embedDim: Int
    /// Blocks (`depth`, 12).
    public var depth: Int
    /// Attention heads (`num_heads`, 12); must divide embedDim.
    public var heads: Int
    /// MLP width over model width (`mlp_ratio`, 4).
    public var mlpRatio: Double
    /// Spatial patch side (`patch_size`, 16).
    public var patchSize: Int
    /// Frames per tubelet (`patch_size_temp`, 2; 1 embeds each frame).
    public var patchSizeTemp: Int
    /// Rows of the time table, the tubelet count it was trained with (`temporal_resolution`, 8).
    public var temporalResolution: Int
    /// Crop side the model was configured for (`img_size`, 224).
    public var imageSize: Int
    /// "trajectory", "joint" or "divided" (`attn_layer`, trajectory).
    public var attentionLayer: String
    /// "none", "nystrom", "orthoformer" or "performer" (`approx_attn_type`, none).
    public var approximation: String
    /// Landmarks or random features of the approximation (`approx_attn_dim`, 128).
    public var approximationDim: Int
    /// Pool the unprojected trajectories as the original code does (`use_original_code`, true).
    public var useOriginalCode: Bool
    /// A tanh pre-logits layer before the head (`use_mlp`, false).
    public var useMLP: Bool
    /// Softmax over the logits, as the original's eval mode (`eval_softmax`, false).
    public var evalSoftmax: Bool
    /// First Orthoformer landmark (`orthoformer_start`, 0).
    public var orthoformerStart: Int
    /// Seed of Performer's projections when the checkpoint has none (`performer_seed`, 0; block i uses seed + i).
    public var performerSeed: Int
    /// "separate" space and time tables or one "joint" table (`pos_embed`, separate).
    public var positionEmbedding: String
    /// Biases on the qkv projections (`qkv_bias`, true).
    public var qkvBias: Bool
    /// Pre-logits activation (`head_act`, tanh).
    public var headAct: String
    /// Classes per head (`num_classes`, 400; a list gives several heads whose logits concatenate).
    public var numClasses: [Int]
    /// `num_classes` was a list: the heads are `head0`, `head1`, … (EPIC-Kitchens), else `head`.
    public var multipleHeads: Bool

    /// Decodes and checks config.json (`file` names it in errors).
    public init(json: JSON, file: String) throws {
        let c = ConfigReader(json: json, file: file)
        embedDim = try c.int("embed_dim", 768)
        depth = try c.int("depth", 12)
        heads = try c.int("num_heads", 12)
        mlpRatio = try c.double("mlp_ratio", 4)
        patchSize = try c.int("patch_size", 16); patchSizeTemp = try c.int("patch_size_temp", 2)
        temporalResolution = try c.int("temporal_resolution", 8)
        imageSize = try c.int("img_size", 224)
        let inCh = try c.int("in_chans", 3)
        try c.positive([
            "embed_dim": embedDim, "depth": depth, "num_heads": heads, "patch_size": patchSize,
            "patch_size_temp": patchSizeTemp, "temporal_resolution": temporalResolution, "img_size": imageSize
        ])
        guard inCh == 3 else { throw VidAttnError(.unsupported, "\(file): in_chans must be 3") }
        guard embedDim % heads == 0 else {
            throw VidAttnError(.badFormat, "\(file): embed_dim not divisible by num_heads")
        }
        attentionLayer = try c.string("attn_layer", "trajectory")
        approximation = try c.string("approx_attn_type", "none")
        approximationDim = try c.int("approx_attn_dim", 128)
        useOriginalCode = try c.bool("use_original_code", true)
        useMLP = try c.bool("use_mlp", false)
        evalSoftmax = try c.bool("eval_softmax", false)
        orthoformerStart = try c.int("orthoformer_start", 0)
        performerSeed = try c.int("performer_seed", 0)
        guard ["trajectory", "joint", "divided"].contains(attentionLayer) else {
            throw VidAttnError(.unsupported, "\(file): attn_layer '\(attentionLayer)' (trajectory, joint, divided)")
        }
        guard ["none", "nystrom", "orthoformer", "performer"].contains(approximation) else {
            throw VidAttnError(.unsupported, "\(file): approx_attn_type '\(approximation)'")
        }
        positionEmbedding = try c.string("pos_embed", "separate")
        guard positionEmbedding == "separate" || positionEmbedding == "joint" else {
            throw VidAttnError(.unsupported, "\(file): pos_embed '\(positionEmbedding)' (separate, joint)")
        }
        qkvBias = try c.bool("qkv_bias", true)
        headAct = try c.string("head_act", "tanh")
        multipleHeads = json["num_classes"]?.array != nil
        if let list = json["num_classes"]?.array {
            numClasses = try list.map {
                guard let n = $0.int, n > 0 else {
                    throw VidAttnError(.badFormat, "\(file): num_classes entries must be positive")
                }
                return n
            }
        } else {
            numClasses = [try c.int("num_classes", 400)]
        }
    }
}

/// facebookresearch/Motionformer (model_type `motionformer`): trajectory, joint or divided
/// attention, Nyström / Orthoformer / Performer approximations, the HR models (docs/models.md).
public final class Motionformer: VideoModel, @unchecked Sendable {
    /// config.json's `model_type`.
    public let modelType = "motionformer"
    /// The parsed config.json.
    public let config: JSON
    /// config.json decoded.
    public let settings: MotionformerConfig
    /// Classifier outputs, and the width of the last hidden state.
    public let numLabels: Int, hiddenSize: Int
    /// Parameters loaded from the checkpoint (exact count).
    public private(set) var parameterCount = 0
    let heads: Int, patchSize: Int, patchT: Int, tRes: Int, gridP: Int
    let attnLayer: String, approx: String, approxDim: Int, useOriginal: Bool, useMLP: Bool, evalSoftmax: Bool
    let orthoStart: Int
    let patch: Linear
    /// `pos_embed`: [1, 1 + side², C], side = 224/patch in released checkpoints whatever the crop
    /// (or the crop's own grid); `temp_embed` [1, T', C] ("separate"); `st_embed` ("joint").
    let cls: Tensor, pos: Tensor, temp: Tensor?, stEmbed: Tensor?
    let posSide: Int
    /// The space table resized to each input grid seen (key h·65536 + w), made once per grid.
    private let spaceTables = Mutex<[Int: Tensor]>([:])
    let blocks: [Block]
    let norm: LayerNorm
    let preLogits: Linear?, headAct: Activation
    let classifierHeads: [Linear]

    struct Block {
        let norm1: LayerNorm, qkv: Linear, proj: Linear, norm2: LayerNorm, fc1: Linear, fc2: Linear
        let traj: TrajectoryWeights?, omega: Tensor?
        let norm3: LayerNorm?, tQKV: Linear?, tProj: Linear?
    }

    init(config: JSON, weights w: Weights, file: String) throws {
        let cfg = try MotionformerConfig(json: config, file: file)
        self.config = config; settings = cfg
        let C = cfg.embedDim, depth = cfg.depth, mlpRatio = cfg.mlpRatio, img = cfg.imageSize
        hiddenSize = C; heads = cfg.heads
        patchSize = cfg.patchSize; patchT = cfg.patchSizeTemp; tRes = cfg.temporalResolution
        attnLayer = cfg.attentionLayer; approx = cfg.approximation; approxDim = cfg.approximationDim
        useOriginal = cfg.useOriginalCode; useMLP = cfg.useMLP; evalSoftmax = cfg.evalSoftmax
        orthoStart = cfg.orthoformerStart
        let seed = cfg.performerSeed, posKind = cfg.positionEmbedding, qkvBias = cfg.qkvBias
        gridP = (img / patchSize) * (img / patchSize)
        if patchT > 1 {
            patch = try w.patchEmbedding("patch_embed_3d.proj", shape: [C, 3, patchT, patchSize, patchSize])
        } else {
            patch = try w.patchEmbedding("patch_embed.proj", shape: [C, 3, patchSize, patchSize])
        }
        cls = try w.tensor("cls_token", shape: [1, 1, C])
        // The released model sizes pos_embed for a 224 image whatever the crop and resizes it
        // on every forward when the crop differs; a table at the crop's own grid is accepted too.
        let grid224 = (224 / patchSize) * (224 / patchSize)
        let posRows = w.store.info("pos_embed").flatMap { $0.shape.count == 3 ? $0.shape[1] : nil } ?? 1 + grid224
        let side = Int(Double(max(posRows - 1, 0)).squareRoot().rounded())
        guard posRows == 1 + grid224 || posRows == 1 + gridP, side * side == posRows - 1 else {
            throw VidAttnError(
                .shapeMismatch,
                "\(file): tensor 'pos_embed' has \(posRows) rows, expected \(1 + grid224) "
                    + "(the 224-pixel grid of the released models) or \(1 + gridP) (the img_size grid)")
        }
        posSide = side
        pos = try w.tensor("pos_embed", shape: [1, posRows, C])
        if posKind == "joint" {
            let rows =
                w.store.info("st_embed").flatMap { $0.shape.count == 3 ? $0.shape[1] : nil } ?? 1 + tRes * grid224
            stEmbed = try w.tensor("st_embed", shape: [1, rows, C])
            temp = nil
        } else {
            temp = try w.tensor("temp_embed", shape: [1, tRes, C])
            stEmbed = nil
        }
        let hidden = Int(Double(C) * mlpRatio), d = C / heads
        var bl: [Block] = []
        for i in 0..<depth {
            let p = "blocks.\(i)."
            var traj: TrajectoryWeights? = nil
            var omega: Tensor? = nil
            if attnLayer == "trajectory" {
                let wq = try w.tensor(p + "attn.proj_q.weight", shape: [C, C])
                let bq = qkvBias ? try w.tensor(p + "attn.proj_q.bias", shape: [C]) : nil
                let wkv = try w.tensor(p + "attn.proj_kv.weight", shape: [2 * C, C])
                let bkv = qkvBias ? try w.tensor(p + "attn.proj_kv.bias", shape: [2 * C]) : nil
                traj = try TrajectoryWeights(
                    channels: C, projQ: wq.pointer, projQBias: bq?.pointer, projKV: wkv.pointer,
                    projKVBias: bkv?.pointer)
                if approx == "performer" {
                    if let info = w.store.info(p + "attn.performer_projection") {
                        guard info.shape.count == 2, info.shape[1] == d else {
                            throw VidAttnError(
                                .shapeMismatch,
                                "\(p)attn.performer_projection has shape \(info.shape), expected [m, \(d)]")
                        }
                        omega = try w.tensor(p + "attn.performer_projection", shape: info.shape)
                    } else {
                        omega = try performerProjection(features: 256, dim: d, seed: UInt64(seed + i))
                    }
                }
            }
            let divided = attnLayer == "divided"
            bl.append(
                Block(
                    norm1: try w.norm(p + "norm1", C, eps: 1e-6),
                    qkv: try w.linear(p + "attn.qkv", in: C, out: 3 * C, bias: qkvBias),
                    proj: try w.linear(p + "attn.proj", in: C, out: C),
                    norm2: try w.norm(p + "norm2", C, eps: 1e-6),
                    fc1: try w.linear(p + "mlp.fc1", in: C, out: hidden),
                    fc2: try w.linear(p + "mlp.fc2", in: hidden, out: C),
                    traj: traj, omega: omega,
                    norm3: divided ? try w.norm(p + "norm3", C, eps: 1e-6) : nil,
                    tQKV: divided ? try w.linear(p + "timeattn.qkv", in: C, out: 3 * C, bias: qkvBias) : nil,
                    tProj: divided ? try w.linear(p + "timeattn.proj", in: C, out: C) : nil))
        }
        blocks = bl
        norm = try w.norm("norm", C, eps: 1e-6)
        preLogits = useMLP ? try w.linear("pre_logits.fc", in: C, out: C) : nil
        headAct = try activationNamed(cfg.headAct, file: file)
        // num_classes may be a list (EPIC-Kitchens: head0, head1, ...): logits are concatenated.
        if cfg.multipleHeads {
            classifierHeads = try cfg.numClasses.enumerated().map { k, n in try w.linear("head\(k)", in: C, out: n) }
        } else {
            classifierHeads = [try w.linear("head", in: C, out: cfg.numClasses[0])]
        }
        numLabels = classifierHeads.reduce(0) { $0 + $1.outFeatures }
        parameterCount = w.loaded
    }

    /// Runs the model on pixel_values [B, T, C, H, W] (`VideoModel.forward`).
    public func forward(
        _ px: UnsafePointer<Float>, batch B: Int, frames T: Int, channels Cin: Int, height H: Int,
        width W: Int, options: ForwardOptions
    ) throws -> ModelOutput {
        try require(Cin == 3, "pixel_values has \(Cin) channels, the model takes 3", status: .shapeMismatch)
        let C = hiddenSize, p = patchSize, F = T / patchT, P = (H / p) * (W / p)
        try require(
            F > 0 && P > 0, "input \(T)×\(H)×\(W) is smaller than one \(patchT)×\(p)×\(p) patch",
            status: .shapeMismatch)
        let gh = H / p, gw = W / p
        let N = F * P, S = 1 + N, rows = B * S
        let patches = try Tensor(shape: [B * N, 3 * patchT * p * p]), emb = try Tensor(shape: [B * N, C])
        patchify(px, B: B, T: T, C: 3, H: H, W: W, kt: patchT, kh: p, kw: p, into: patches.data)
        try patch(patches.pointer, rows: B * N, into: emb.data)
        let x = try Tensor(shape: [B, S, C])
        if let st = stEmbed {
            // "joint": one table added as it is (the original cannot resize it either).
            try require(
                st.shape[1] == S,
                "st_embed has \(st.shape[1]) rows and the input gives 1 + \(F)×\(P) tokens: "
                    + "a joint table only fits the frame count and crop it was trained for", status: .shapeMismatch)
            embedTokens(
                into: x.data, batch: B, tokens: N, channels: C, cls: cls.pointer, clsPos: st.pointer,
                emb: emb.pointer
            ) { n in TokenSource(patch: n, pos: st.pointer + (1 + n) * C) }
        } else {
            // "separate": the space table resized to this grid (bicubic, as the original does for
            // other crops), the time table linearly for other frame counts (an extension).
            let spaceTab = try spaceTable(gh, gw)
            let timeTab = try Tensor(shape: [F, C])
            Resize.linear(temp!.pointer, t: tRes, n: C, to: F, into: timeTab.data)
            embedTokens(
                into: x.data, batch: B, tokens: N, channels: C, cls: cls.pointer, clsPos: pos.pointer,
                emb: emb.pointer
            ) { n in
                TokenSource(patch: n, pos: spaceTab.pointer + (n % P) * C, pos2: timeTab.pointer + (n / P) * C)
            }
        }
        let d = C / heads
        let y = try Tensor(shape: [rows, C]), qkv = try Tensor(shape: [rows, 3 * C]), a = try Tensor(shape: [rows, C])
        let hbuf = try Tensor(shape: [rows, blocks.first?.fc1.outFeatures ?? C])
        let q = try Tensor(shape: [B, heads, S, d]), k = try Tensor(shape: [B, heads, S, d]),
            v = try Tensor(shape: [B, heads, S, d])
        let o = try Tensor(shape: [B, heads, S, d])
        var hidden: [Tensor] = []

        func splitHeads() {
            VidAttn.splitHeads(qkv.pointer, seqs: B, n: S, heads: heads, d: d, q: q.data, k: k.data, v: v.data)
        }
        func mergeHeads() { VidAttn.mergeHeads(o.pointer, seqs: B, n: S, heads: heads, d: d, into: a.data) }
        func divided(_ norm: LayerNorm, _ qkvL: Linear, _ projL: Linear, _ g: DividedGrouping) throws {
            norm(x.pointer, rows: rows, into: y.data)
            try qkvL(y.pointer, rows: rows, into: qkv.data)
            splitHeads()
            try Ops.dividedAttention(
                DividedShape(batch: B, heads: heads, frames: F, patches: P, headDim: d),
                grouping: g, scheme: .clsAllKeys, q: q.pointer, k: k.pointer, v: v.pointer, out: o.data)
            mergeHeads()
            try projL(a.pointer, rows: rows, into: x.data, accumulate: true)
        }
        try runLayers(blocks, over: x, options: options, hidden: &hidden) { _, blk in
            switch attnLayer {
            case "divided":
                try divided(blk.norm3!, blk.tQKV!, blk.tProj!, .time)
                try divided(blk.norm1, blk.qkv, blk.proj, .space)
            case "joint":
                blk.norm1(x.pointer, rows: rows, into: y.data)
                try blk.qkv(y.pointer, rows: rows, into: qkv.data)
                try selfAttention(qkv: qkv.pointer, seqs: B, n: S, channels: C, heads: heads, out: a.data)
                try blk.proj(a.pointer, rows: rows, into: x.data, accumulate: true)
            default:
                blk.norm1(x.pointer, rows: rows, into: y.data)
                try blk.qkv(y.pointer, rows: rows, into: qkv.data)
                splitHeads()
                let mode: TrajectoryApprox
                switch approx {
                case "nystrom": mode = .nystrom(landmarks: approxDim)
                case "orthoformer": mode = .orthoformer(landmarks: approxDim, start: orthoStart)
                case "performer": mode = .none
                default: mode = .none
                }
                if approx == "performer", let om = blk.omega {
                    try Ops.trajectoryAttention(
                        batch: B, heads: heads, frames: F, patches: P, headDim: d, q: q.pointer,
                        k: k.pointer, v: v.pointer, weights: blk.traj!, out: a.data,
                        useOriginalCode: useOriginal,
                        approx: .performer(projection: om.pointer, features: om.count / d))
                } else {
                    try Ops.trajectoryAttention(
                        batch: B, heads: heads, frames: F, patches: P, headDim: d, q: q.pointer,
                        k: k.pointer, v: v.pointer, weights: blk.traj!, out: a.data,
                        useOriginalCode: useOriginal, approx: mode)
                }
                try blk.proj(a.pointer, rows: rows, into: x.data, accumulate: true)
            }
            try residualMLP(
                x.data, rows: rows, norm: blk.norm2, fc1: blk.fc1, fc2: blk.fc2, act: .gelu, normed: y.data,
                hidden: hbuf.data)
        }
        let last = try Tensor(shape: [B, S, C])
        norm(x.pointer, rows: rows, into: last.data)
        let h = try Tensor(shape: [B, C])
        for b in 0..<B { (h.data + b * C).update(from: last.pointer + b * S * C, count: C) }
        if let preLogits {
            let t = try Tensor(shape: [B, C])
            try preLogits(h.pointer, rows: B, into: t.data, activation: headAct)
            h.data.update(from: t.pointer, count: B * C)
        }
        let logits = try Tensor(shape: [B, numLabels])
        var col = 0
        let tmp = try Tensor(shape: [B, numLabels])
        for hd in classifierHeads {
            try hd(h.pointer, rows: B, into: tmp.data)
            for b in 0..<B {
                let row = logits.data + b * numLabels + col
                row.update(from: tmp.pointer + b * hd.outFeatures, count: hd.outFeatures)
                if evalSoftmax { softmaxInPlace(row, 1, hd.outFeatures) }
            }
            col += hd.outFeatures
        }
        let out = ModelOutput(logits: logits, lastHiddenState: last)
        out.hiddenStates = hidden
        return out
    }

    /// The spatial position rows (without CLS) for a gh×gw grid: the stored table when it has
    /// that grid, else resized as the original does, `interpolate(scale_factor=sqrt(P/N),
    /// mode="bicubic", align_corners=False)`, whose source step is Float(1/scale_factor)
    /// (non-square grids, an extension, use the size form). Cached per grid.
    func spaceTable(_ gh: Int, _ gw: Int) throws -> Tensor {
        let key = gh << 16 | gw
        if let t = spaceTables.withLock({ $0[key] }) { return t }
        let C = hiddenSize, side = posSide
        var sh: Float? = nil, sw: Float? = nil
        if gh == gw {
            let factor = (Double(gh * gw) / Double(side * side)).squareRoot()
            sh = Float(1.0 / factor); sw = sh
        }
        let t = try Tensor(shape: [gh * gw, C])
        try Resize.bicubic(
            pos.pointer + C, h: side, w: side, c: C, toH: gh, toW: gw, scaleH: sh, scaleW: sw, into: t.data)
        spaceTables.withLock { $0[key] = t }
        return t
    }
}
