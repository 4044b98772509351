// Shared pieces of the models: weights as packed linears and norms, the forward
// options and outputs, and the building blocks every ViT-style layer uses.
import Kernels

/// How the model being loaded stores its Linear layers; set by `loadModel(path:precision:)`
/// for the duration of a load (every Linear built then takes it).
public enum LoadContext {
    @TaskLocal public static var precision: Precision = .fp32
}

/// A PyTorch `Linear` (weight [out, in]) packed for the GEMM at load time: fp32 panels,
/// bf16 pair-interleaved panels when loaded at `Precision.bf16`, or int8 panels quantized per
/// output channel at `Precision.int8`. On a CPU without the unit, fp32 panels of the rounded
/// (dequantized) weights, with inputs rounded the same way: the same numbers, no speed-up.
public struct Linear: Sendable {
    public let inFeatures: Int, outFeatures: Int
    let w: PackedB?
    let w16: PackedBF16B?
    let w8: PackedInt8B?
    /// Emulation on the fp32 kernels: how inputs are rounded before the GEMM.
    enum InputRounding { case none, bf16, int8 }
    let roundInputs: InputRounding
    let bias: Tensor?

    public init(weight: Tensor, bias: Tensor?) throws {
        guard weight.shape.count == 2 else {
            throw VidAttnError(.shapeMismatch, "linear weight must be 2-D, got \(weight.shape)")
        }
        outFeatures = weight.shape[0]; inFeatures = weight.shape[1]
        if let bias, bias.shape != [outFeatures] {
            throw VidAttnError(.shapeMismatch, "linear bias has shape \(bias.shape), expected [\(outFeatures)]")
        }
        self.bias = bias
        var w16: PackedBF16B? = nil, w8: PackedInt8B? = nil, round = InputRounding.none
        // Emulation without the unit: the fp32 kernels on the rounded weights (and inputs).
        var rounded: UnsafeMutablePointer<Float>? = nil
        defer { if let rounded { freeFloats(rounded) } }
        switch LoadContext.precision {
        case .fp32:
            break
        case .bf16:
            guard let p16 = PackedBF16B(weight: weight.pointer, n: outFeatures, k: inFeatures, ldw: inFeatures) else {
                throw VidAttnError(.outOfMemory, "cannot pack a \(weight.shape) weight as bf16")
            }
            if BF16Unit.detected != .emulated { w16 = p16 } else {
                rounded = allocFloats(weight.count)
                if let rounded { p16.unpacked(into: rounded) }
                round = .bf16
            }
        case .int8:
            guard let p8 = PackedInt8B(weight: weight.pointer, n: outFeatures, k: inFeatures, ldw: inFeatures) else {
                throw VidAttnError(.outOfMemory, "cannot quantize a \(weight.shape) weight to int8")
            }
            if Int8Unit.detected != .emulated { w8 = p8 } else {
                rounded = allocFloats(weight.count)
                if let rounded { p8.dequantized(into: rounded) }
                round = .int8
            }
        }
        self.w16 = w16; self.w8 = w8; roundInputs = round
        if w16 != nil || w8 != nil { w = nil; return }
        if round != .none && rounded == nil {
            throw VidAttnError(.outOfMemory, "cannot round a \(weight.shape) weight")
        }
        guard let p = PackedB(transposed: true, k: inFeatures, n: outFeatures, b: rounded.map { UnsafePointer($0) } ?? weight.pointer,
                              ldb: inFeatures) else {
            throw VidAttnError(.outOfMemory, "cannot pack a \(weight.shape) weight")
        }
        w = p
    }

    /// Output rows lo..<hi of a weight [out, in] (and its bias): one half of a GEGLU projection.
    public init(weight: Tensor, bias: Tensor?, rows lo: Int, _ hi: Int) throws {
        guard weight.shape.count == 2, 0 <= lo, lo < hi, hi <= weight.shape[0] else {
            throw VidAttnError(.shapeMismatch, "cannot take rows \(lo)..<\(hi) of a \(weight.shape) weight")
        }
        let inF = weight.shape[1]
        let w = try Tensor(shape: [hi - lo, inF])
        w.data.update(from: weight.pointer + lo * inF, count: (hi - lo) * inF)
        var b: Tensor? = nil
        if let bias {
            b = try Tensor(shape: [hi - lo])
            b!.data.update(from: bias.pointer + lo, count: hi - lo)
        }
        try self.init(weight: w, bias: b)
    }

    /// Several linears on the same input fused into one (rows stacked: [q; k; v]).
    public init(stacking parts: [(Tensor, Tensor?)]) throws {
        let inF = parts[0].0.shape[1]
        let outF = parts.reduce(0) { $0 + $1.0.shape[0] }
        let w = try Tensor(shape: [outF, inF])
        let b = parts.allSatisfy { $0.1 != nil } ? try Tensor(shape: [outF]) : nil
        var row = 0
        for (pw, pb) in parts {
            guard pw.shape.count == 2, pw.shape[1] == inF else {
                throw VidAttnError(.shapeMismatch, "cannot stack a \(pw.shape) weight onto inputs of \(inF)")
            }
            (w.data + row * inF).update(from: pw.pointer, count: pw.count)
            if let b, let pb { (b.data + row).update(from: pb.pointer, count: pb.count) }
            row += pw.shape[0]
        }
        try self.init(weight: w, bias: b)
    }

    /// y[rows, out] = act(x·Wᵀ + b) (+ y when accumulate: residual add in place).
    func callAsFunction(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>,
                        activation: Activation = .none, accumulate: Bool = false, ldx: Int? = nil,
                        multiplier: UnsafePointer<Float>? = nil) throws {
        let profiled = Profile.begin(.linear); defer { Profile.end(profiled, .linear) }
        let epilogue = GemmEpilogue(bias: bias?.pointer, activation: activation,
                                    multiplier: multiplier, ldMultiplier: outFeatures)
        let ok: Bool
        if roundInputs != .none {
            let ld = ldx ?? inFeatures
            guard let xr = ScratchPool.shared.take(max(rows * inFeatures, 1)) else {
                throw VidAttnError(.outOfMemory, "linear \(inFeatures)→\(outFeatures) on \(rows) rows: scratch")
            }
            defer { ScratchPool.shared.give(xr) }
            if roundInputs == .bf16 {
                roundToBF16(rows: rows, cols: inFeatures, x, ld, into: xr.p)
            } else {
                fakeQuantizeRows(rows: rows, cols: inFeatures, x, ld, into: xr.p)
            }
            ok = sgemm(transA: false, m: rows, k: inFeatures, alpha: 1, a: xr.p, lda: inFeatures, packedB: w!,
                       beta: accumulate ? 1 : 0, c: y, ldc: outFeatures, epilogue: epilogue)
        } else if let w16 {
            ok = gemmBF16(m: rows, a: x, lda: ldx ?? inFeatures, packedB: w16, accumulate: accumulate, c: y,
                          ldc: outFeatures, epilogue: epilogue)
        } else if let w8 {
            ok = gemmInt8(m: rows, a: x, lda: ldx ?? inFeatures, packedB: w8, accumulate: accumulate, c: y,
                          ldc: outFeatures, epilogue: epilogue)
        } else if KernelMode.useReference {
            // The scalar reference (VIDATTN_REFERENCE=1) covers the packed GEMM too.
            sgemmPackedReference(m: rows, a: x, lda: ldx ?? inFeatures, packedB: w!, beta: accumulate ? 1 : 0,
                                 c: y, ldc: outFeatures, epilogue: epilogue)
            ok = true
        } else {
            ok = sgemm(transA: false, m: rows, k: inFeatures, alpha: 1, a: x, lda: ldx ?? inFeatures, packedB: w!,
                       beta: accumulate ? 1 : 0, c: y, ldc: outFeatures, epilogue: epilogue)
        }
        if !ok { throw VidAttnError(.outOfMemory, "linear \(inFeatures)→\(outFeatures) on \(rows) rows: scratch") }
    }
}

public struct LayerNormP: Sendable {
    let gamma: Tensor, beta: Tensor
    let eps: Float
    func callAsFunction(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) {
        let profiled = Profile.begin(.norm); defer { Profile.end(profiled, .norm) }
        layerNorm(rows: rows, cols: gamma.count, x: x, ldx: gamma.count, y: y, ldy: gamma.count,
                  gamma: gamma.pointer, beta: beta.pointer, eps: eps)
    }
}

/// Options of one forward pass.
public struct ForwardOptions {
    public var outputHiddenStates = false
    public var outputAttentions = false
    /// [B, T] bytes, nonzero = real frame (models that take one).
    public var frameMask: UnsafePointer<UInt8>? = nil
    /// Called between layers with (layer, layers); return false to stop (status aborted).
    public var shouldContinue: ((Int, Int) -> Bool)? = nil
    public init() {}
}

/// What a forward pass returns. Token layouts follow the reference model.
public final class ModelOutput: @unchecked Sendable {
    public var logits: Tensor
    public var lastHiddenState: Tensor
    public var hiddenStates: [Tensor] = []
    public var attentions: [Tensor] = []
    init(logits: Tensor, lastHiddenState: Tensor) { self.logits = logits; self.lastHiddenState = lastHiddenState }
}

public enum Pooling: Int32, Sendable { case cls = 0, mean = 1 }

/// A loaded video model: immutable, shareable between threads.
public protocol VideoModel: AnyObject, Sendable {
    var modelType: String { get }
    var config: JSON { get }
    var numLabels: Int { get }
    var hiddenSize: Int { get }
    var parameterCount: Int { get }
    /// pixel_values [B, T, C, H, W], fp32.
    func forward(_ pixels: UnsafePointer<Float>, batch: Int, frames: Int, channels: Int, height: Int, width: Int,
                 options: ForwardOptions) throws -> ModelOutput
}

extension VideoModel {
    /// Tokens before the patch tokens in `lastHiddenState` (the CLS token), which mean pooling
    /// leaves out as timm's average pooling does: 1 for the families with a CLS token, else 0.
    public var prefixTokens: Int {
        ["vivit", "timesformer", "motionformer", "timesformer_pytorch", "fasttimesformer"].contains(modelType) ? 1 : 0
    }

    /// CLS (token 0), or the mean over the patch tokens (the CLS token left out), of the last
    /// hidden state: [B, hidden].
    public func pooled(_ out: ModelOutput, _ pooling: Pooling) throws -> Tensor {
        let h = out.lastHiddenState
        let B = h.shape[0], N = h.shape[1], C = h.shape[2]
        let r = try Tensor(zeros: [B, C])
        let first = min(prefixTokens, N - 1)
        for b in 0..<B {
            let dst = r.data + b * C
            switch pooling {
            case .cls: dst.update(from: h.data + b * N * C, count: C)
            case .mean:
                for n in first..<N { for c in 0..<C { dst[c] += h.data[(b * N + n) * C + c] } }
                for c in 0..<C { dst[c] /= Float(N - first) }
            }
        }
        return r
    }
}

// MARK: - Config and weight access

struct ConfigReader {
    let json: JSON
    let file: String
    func int(_ key: String, _ def: Int? = nil) throws -> Int {
        if let v = json[key] {
            guard let i = v.int else { throw VidAttnError(.badFormat, "\(file): '\(key)' must be an integer") }
            return i
        }
        if let def { return def }
        throw VidAttnError(.badFormat, "\(file): missing '\(key)'")
    }
    func double(_ key: String, _ def: Double) throws -> Double {
        guard let v = json[key] else { return def }
        guard let d = v.double else { throw VidAttnError(.badFormat, "\(file): '\(key)' must be a number") }
        return d
    }
    func string(_ key: String, _ def: String) throws -> String {
        guard let v = json[key] else { return def }
        guard let s = v.string else { throw VidAttnError(.badFormat, "\(file): '\(key)' must be a string") }
        return s
    }
    func bool(_ key: String, _ def: Bool) throws -> Bool {
        guard let v = json[key] else { return def }
        guard let b = v.bool else { throw VidAttnError(.badFormat, "\(file): '\(key)' must be true or false") }
        return b
    }
    func ints(_ key: String, _ def: [Int]) throws -> [Int] {
        guard let v = json[key] else { return def }
        guard let a = v.array, a.allSatisfy({ $0.int != nil }) else {
            throw VidAttnError(.badFormat, "\(file): '\(key)' must be a list of integers")
        }
        return a.map { $0.int! }
    }
    /// Number of labels: num_labels, else the size of id2label, else `def`.
    func labels(_ def: Int) throws -> Int {
        if json["num_labels"] != nil { return try int("num_labels") }
        if let m = json["id2label"]?.object { return m.count }
        return def
    }
    func positive(_ values: [String: Int]) throws {
        for (k, v) in values where v <= 0 { throw VidAttnError(.badFormat, "\(file): '\(k)' must be positive (got \(v))") }
    }
}

/// Weight lookup with alternative spellings and shape checks; counts what it loads.
final class Weights {
    let store: WeightStore
    var loaded = 0
    init(_ store: WeightStore) { self.store = store }

    func tensor(_ names: [String], shape: [Int]?) throws -> Tensor {
        for n in names where store.has(n) {
            let t = try store.tensor(n, shape: shape)
            loaded += t.count
            return t
        }
        throw VidAttnError(.badFormat, "missing tensor '\(names[0])'" + (names.count > 1 ? " (or '\(names[1])')" : ""))
    }
    func tensor(_ name: String, shape: [Int]?) throws -> Tensor { try tensor([name], shape: shape) }
    func optional(_ name: String, shape: [Int]?) throws -> Tensor? {
        store.has(name) ? try tensor(name, shape: shape) : nil
    }
    func linear(_ prefix: [String], in i: Int, out o: Int, bias: Bool = true) throws -> Linear {
        let w = try tensor(prefix.map { $0 + ".weight" }, shape: [o, i])
        let b = bias ? try tensor(prefix.map { $0 + ".bias" }, shape: [o]) : nil
        return try Linear(weight: w, bias: b)
    }
    func linear(_ prefix: String, in i: Int, out o: Int, bias: Bool = true) throws -> Linear {
        try linear([prefix], in: i, out: o, bias: bias)
    }
    func norm(_ prefix: [String], _ c: Int, eps: Float) throws -> LayerNormP {
        LayerNormP(gamma: try tensor(prefix.map { $0 + ".weight" }, shape: [c]),
                   beta: try tensor(prefix.map { $0 + ".bias" }, shape: [c]), eps: eps)
    }
    func norm(_ prefix: String, _ c: Int, eps: Float) throws -> LayerNormP { try norm([prefix], c, eps: eps) }
    /// Swin patch merging at `prefix`: LayerNorm(4C) and the bias-free reduction 4C → 2C, packed.
    func patchMerging(_ prefix: String, _ c: Int, eps: Float) throws -> (norm: LayerNormP, reduction: PackedB) {
        let red = try tensor(prefix + "reduction.weight", shape: [2 * c, 4 * c])
        guard let packed = PackedB(transposed: true, k: 4 * c, n: 2 * c, b: red.pointer, ldb: 4 * c) else {
            throw VidAttnError(.outOfMemory, "cannot pack \(prefix)reduction")
        }
        return (try norm(prefix + "norm", 4 * c, eps: eps), packed)
    }
}

// MARK: - Building blocks

/// Non-overlapping patches (a Conv3d with kernel = stride) as GEMM rows:
/// pixels [B, T, C, H, W] → rows (b, t', i, j) of C·kt·kh·kw values ordered (c, dt, dy, dx),
/// the layout of a PyTorch Conv3d weight [out, C, kt, kh, kw]. Trailing remainders dropped.
func patchify(_ px: UnsafePointer<Float>, B: Int, T: Int, C: Int, H: Int, W: Int,
              kt: Int, kh: Int, kw: Int, into dst: UnsafeMutablePointer<Float>) {
    let Tp = T / kt, h = H / kh, w = W / kw, K = C * kt * kh * kw
    parallelFor(B * Tp) { bt, _ in
        let b = bt / Tp, tp = bt % Tp
        for i in 0..<h { for j in 0..<w {
            var o = dst + ((bt * h + i) * w + j) * K
            for c in 0..<C { for dt in 0..<kt { for dy in 0..<kh {
                let src = px + ((((b * T + tp * kt + dt) * C + c) * H + i * kh + dy) * W + j * kw)
                o.update(from: src, count: kw)
                o += kw
            } } }
        } }
        _ = b
    }
}

/// einops `b f c (h p1) (w p2) -> b (f h w) (p1 p2 c)` (lucidrains and FastTimeSformer):
/// patch rows of p·p·C values, channel fastest. Returns [B·F·(H/p)·(W/p), p·p·C].
func patchifyChannelsLast(_ px: UnsafePointer<Float>, B: Int, F: Int, C: Int, H: Int, W: Int, p: Int) throws -> Tensor {
    let hp = H / p, wp = W / p, pd = C * p * p
    let patches = try Tensor(shape: [B * F * hp * wp, pd])
    for b in 0..<B { for f in 0..<F { for i in 0..<hp { for j in 0..<wp {
        let row = patches.data + (((b * F + f) * hp + i) * wp + j) * pd
        for p1 in 0..<p { for p2 in 0..<p { for c in 0..<C {
            row[(p1 * p + p2) * C + c] = px[(((b * F + f) * C + c) * H + i * p + p1) * W + j * p + p2]
        } } }
    } } } }
    return patches
}

/// Self-attention of `seqs` sequences of n tokens from a fused qkv buffer [seqs·n, 3C]
/// ([q | k | v], heads contiguous) into out [seqs·n, C]; probs [seqs, heads, n, n] if given.
func selfAttention(qkv: UnsafePointer<Float>, seqs: Int, n: Int, channels C: Int, heads: Int,
                   out: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>? = nil) throws {
    let profiled = Profile.begin(.attention); defer { Profile.end(profiled, .attention) }
    let d = C / heads
    let view = { (off: Int) in HeadView(qkv + off, batchStride: n * 3 * C, headStride: d, rowStride: 3 * C) }
    var a = AttentionArgs(batch: seqs, heads: heads, nq: n, nk: n, d: d, q: view(0), k: view(C), v: view(2 * C),
                          o: HeadView(out, batchStride: n * C, headStride: d, rowStride: C),
                          scale: 1 / Float(d).squareRoot())
    a.probs = probs
    guard attention(a) else { throw VidAttnError(.outOfMemory, "attention scratch for \(seqs)×\(n) tokens") }
}

func copyTensor(_ p: UnsafePointer<Float>, _ shape: [Int]) throws -> Tensor {
    let t = try Tensor(shape: shape)
    t.data.update(from: p, count: t.count)
    return t
}

func activationNamed(_ s: String, file: String) throws -> Activation {
    switch s {
    case "gelu", "gelu_python": return .gelu
    case "gelu_fast", "gelu_new", "gelu_pytorch_tanh", "gelu_tanh": return .geluTanh
    case "relu": return .relu
    case "tanh": return .tanh
    default: throw VidAttnError(.unsupported, "\(file): hidden_act '\(s)' is not supported")
    }
}

/// The lucidrains-style head: LayerNorm of each sequence's token 0, then a linear layer.
/// last_hidden_state is the residual stream x [B, S, D] itself.
func clsHeadOutput(_ x: Tensor, B: Int, S: Int, norm: LayerNormP, head: Linear, hidden: [Tensor]) throws -> ModelOutput {
    let D = x.shape[2]
    let clsRows = try Tensor(shape: [B, D])
    for b in 0..<B { norm(x.pointer + b * S * D, rows: 1, into: clsRows.data + b * D) }
    let logits = try Tensor(shape: [B, head.outFeatures])
    try head(clsRows.pointer, rows: B, into: logits.data)
    let out = ModelOutput(logits: logits, lastHiddenState: try copyTensor(x.pointer, x.shape))
    out.hiddenStates = hidden
    return out
}

/// Per-frame attention with its own CLS copy (HF TimeSformer's spatial step, FastTimeSformer):
/// x's CLS row += the mean over the `groups` CLS outputs, row 0 of each group of
/// `groupTokens` rows in r.
func addMeanCLS(_ x: UnsafeMutablePointer<Float>, _ r: UnsafePointer<Float>, groups: Int, groupTokens: Int,
                channels C: Int) {
    for c in 0..<C {
        var m: Float = 0
        for g in 0..<groups { m += r[g * groupTokens * C + c] }
        x[c] += m / Float(groups)
    }
}
