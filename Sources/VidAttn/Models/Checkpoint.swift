// Reading a checkpoint: typed access to config.json values and to the weight tensors.
import Kernels

/// Typed reads of config.json values with defaults; every error names the file and the key.
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
    func labels(_ def: Int) throws -> Int { try declaredLabels() ?? def }
    /// num_labels, else the size of id2label, else the integer at `key` (when given), else nil.
    func declaredLabels(orKey key: String? = nil) throws -> Int? {
        if json["num_labels"] != nil { return try int("num_labels") }
        if let m = json["id2label"]?.object { return m.count }
        if let key, json[key] != nil { return try int(key) }
        return nil
    }
    func positive(_ values: [String: Int]) throws {
        for (k, v) in values where v <= 0 {
            throw VidAttnError(.badFormat, "\(file): '\(k)' must be positive (got \(v))")
        }
    }
}

/// The encoder fields that Hugging Face's ViT-style video configs share (ViViT, VideoMAE,
/// TimeSformer), with transformers' defaults; `hidden_act` and `layer_norm_eps` default per model.
public struct HFEncoderConfig: Sendable {
    /// Model width C (`hidden_size`, 768).
    public var hiddenSize: Int
    /// Attention heads (`num_attention_heads`, 12); must divide hiddenSize.
    public var heads: Int
    /// Encoder layers (`num_hidden_layers`, 12).
    public var layers: Int
    /// MLP width (`intermediate_size`, 3072).
    public var intermediateSize: Int
    /// Input channels (`num_channels`, 3).
    public var channels: Int
    /// MLP activation (`hidden_act`).
    public var hiddenAct: String
    /// LayerNorm epsilon (`layer_norm_eps`).
    public var layerNormEps: Double
    /// Classes from `num_labels`, else the size of `id2label`; nil when neither is given (the
    /// classifier weight's rows count then).
    public var declaredLabels: Int?

    init(_ c: ConfigReader, hiddenAct: String, layerNormEps: Double) throws {
        hiddenSize = try c.int("hidden_size", 768); heads = try c.int("num_attention_heads", 12)
        layers = try c.int("num_hidden_layers", 12); intermediateSize = try c.int("intermediate_size", 3072)
        channels = try c.int("num_channels", 3)
        self.hiddenAct = try c.string("hidden_act", hiddenAct)
        self.layerNormEps = try c.double("layer_norm_eps", layerNormEps)
        declaredLabels = try c.declaredLabels()
        try c.positive([
            "hidden_size": hiddenSize, "num_attention_heads": heads, "num_hidden_layers": layers,
            "intermediate_size": intermediateSize, "num_channels": channels
        ])
        guard hiddenSize % heads == 0 else {
            throw VidAttnError(
                .badFormat, "\(c.file): hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(heads)")
        }
    }
}

/// Where the parts of a Hugging Face pre-LN layer live, relative to the layer's prefix: one
/// spelling per transformers generation. `Weights.preLNBlock` tries the spellings in order.
struct HFLayerSpelling {
    /// Projections (weight and, when present, bias).
    var query = "attention.attention.query", key = "attention.attention.key", value = "attention.attention.value"
    /// Fused q, k, v projection (TimeSformer).
    var fusedQKV = "attention.attention.qkv"
    var output = "attention.output.dense"
    var normBefore = "layernorm_before", normAfter = "layernorm_after"
    var fc1 = "intermediate.dense", fc2 = "output.dense"

    /// transformers 4.x (ViViT, VideoMAE, TimeSformer).
    static let v4 = HFLayerSpelling()
    /// transformers 5.x ViViT.
    static let vivitV5 = HFLayerSpelling(
        query: "attention.q_proj", key: "attention.k_proj", value: "attention.v_proj",
        output: "attention.o_proj", fc1: "mlp.fc1", fc2: "mlp.fc2")
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
    /// The Linear at `prefix` (its spellings): `.weight` [out, in], `.bias` [out] unless `bias` is false.
    func linear(_ prefix: [String], in i: Int, out o: Int, bias: Bool = true) throws -> Linear {
        let names = prefix.map { $0 + ".weight" }
        let b = bias ? try tensor(prefix.map { $0 + ".bias" }, shape: [o]) : nil
        if let direct = try packedHalf([names], in: i, out: [o]) { return try Linear(packed: direct, bias: b) }
        return try Linear(weight: try tensor(names, shape: [o, i]), bias: b)
    }
    /// Several weights on the same input as one Linear (rows stacked, e.g. [q; k; v]): weight
    /// `weights[p]` (its spellings) is [outs[p], in], its bias `biases[p]` (nil: none for any part).
    func stackedLinear(_ weights: [[String]], biases: [Tensor?], in i: Int, outs: [Int]) throws -> Linear {
        var bias: Tensor? = nil
        if biases.allSatisfy({ $0 != nil }) {
            let b = try Tensor(shape: [outs.reduce(0, +)])
            var row = 0
            for (p, n) in zip(biases, outs) { (b.data + row).update(from: p!.pointer, count: n); row += n }
            bias = b
        }
        if let direct = try packedHalf(weights, in: i, out: outs) { return try Linear(packed: direct, bias: bias) }
        let parts = try zip(weights, outs).map { try tensor($0, shape: [$1, i]) }
        return try Linear(stacking: zip(parts, biases).map { ($0, $1) })
    }
    /// At bf16 (int8) precision on a CPU with a bf16 (int8) unit, weights stored as BF16 or F16 are
    /// packed (quantized) straight from the mapped file: no fp32 copy, pages dropped once packed.
    /// nil otherwise, and the caller reads fp32 as usual. `names[p]` holds the spellings of part p
    /// ([out[p], in]).
    func packedHalf(_ names: [[String]], in k: Int, out: [Int]) throws -> PackedInPlace? {
        try packedHalf(zip(names, out).map { HalfPart(names: $0, shape: [$1, k], firstRow: 0, rows: $1) }, k: k)
    }
    /// Rows firstRow..<firstRow+rows of a stored tensor (its spellings and stored shape; each
    /// row k values), one part of a weight packed in place.
    struct HalfPart {
        var names: [String], shape: [Int], firstRow: Int, rows: Int
    }
    /// The parts stacked into one weight of k columns, packed in place (see above); the
    /// stored tensors' pages are dropped afterwards unless `release` is false (more parts follow).
    func packedHalf(_ parts: [HalfPart], k: Int, release: Bool = true) throws -> PackedInPlace? {
        let precision = LoadContext.precision
        guard
            (precision == .bf16 && BF16Unit.detected.hasKernels)
                || (precision == .int8 && Int8Unit.detected != .emulated)
        else { return nil }
        var found: [(name: String, bytes: UnsafeRawPointer, dtype: DType)] = []
        for part in parts {
            guard let name = part.names.first(where: { store.has($0) }) else { return nil }
            let (info, bytes) = try store.raw(name, shape: part.shape)
            guard info.dtype == .bf16 || info.dtype == .f16 else { return nil }
            found.append((name, bytes + 2 * part.firstRow * k, info.dtype))
        }
        var starts: [Int] = [], total = 0
        for part in parts { starts.append(total); total += part.rows }
        let rowAt: (Int) -> WeightRow = { j in
            let p = (starts.lastIndex { $0 <= j })!, src = found[p].bytes + 2 * (j - starts[p]) * k
            return found[p].dtype == .bf16 ? .bf16(src) : .f16(src)
        }
        let packed: PackedInPlace? =
            precision == .bf16
            ? PackedBF16B(n: total, k: k, row: rowAt).map { .bf16($0) }
            : PackedInt8B(n: total, k: k, row: rowAt).map { .int8($0) }
        guard let packed else { throw VidAttnError(.outOfMemory, "cannot pack a \(total)×\(k) weight as \(precision)") }
        loaded += total * k
        if release { for name in Set(found.map(\.name)) { store.release(name) } }
        return packed
    }
    func linear(_ prefix: String, in i: Int, out o: Int, bias: Bool = true) throws -> Linear {
        try linear([prefix], in: i, out: o, bias: bias)
    }
    /// `second(first(x))` for two Linears with nothing between them (first: in → mid, second:
    /// mid → out; both with a bias) as one Linear: weight W2·W1 [out, in] and bias W2·b1 + b2,
    /// computed in fp32 (`composeWeights`), then packed for the load's precision like any weight.
    /// One GEMM instead of two; the result differs from the two in sequence by rounding only (the
    /// intermediate is no longer rounded to fp32, or to bf16 / int8 at those precisions).
    func composedLinear(_ first: String, then second: String, in i: Int, mid m: Int, out o: Int) throws -> Linear {
        let w1 = try tensor(first + ".weight", shape: [m, i]), b1 = try tensor(first + ".bias", shape: [m])
        let w2 = try tensor(second + ".weight", shape: [o, m]), b2 = try tensor(second + ".bias", shape: [o])
        let w = try Tensor(shape: [o, i]), b = try Tensor(shape: [o])
        try composeWeights(w2.pointer, b2.pointer, w1.pointer, b1.pointer, out: o, mid: m, in: i, into: w.data, b.data)
        return try Linear(weight: w, bias: b)
    }
    func norm(_ prefix: [String], _ c: Int, eps: Float) throws -> LayerNorm {
        LayerNorm(
            gamma: try tensor(prefix.map { $0 + ".weight" }, shape: [c]),
            beta: try tensor(prefix.map { $0 + ".bias" }, shape: [c]), eps: eps)
    }
    func norm(_ prefix: String, _ c: Int, eps: Float) throws -> LayerNorm { try norm([prefix], c, eps: eps) }
    /// The names of one layer part under each (prefix, spelling) pair.
    func names(_ prefixes: [String], _ spellings: [HFLayerSpelling], _ part: (HFLayerSpelling) -> String) -> [String] {
        zip(prefixes, spellings).map { $0 + part($1) }
    }
    /// A Hugging Face pre-LN layer with the given fused `qkv`, its other parts read under `prefixes`
    /// (one per spelling, tried in order).
    func preLNBlock(
        _ prefixes: [String], _ spellings: [HFLayerSpelling], qkv: Linear, channels C: Int, inter: Int,
        eps: Float
    ) throws -> PreLNBlock {
        PreLNBlock(
            ln1: try norm(names(prefixes, spellings, \.normBefore), C, eps: eps), qkv: qkv,
            o: try linear(names(prefixes, spellings, \.output), in: C, out: C),
            ln2: try norm(names(prefixes, spellings, \.normAfter), C, eps: eps),
            fc1: try linear(names(prefixes, spellings, \.fc1), in: C, out: inter),
            fc2: try linear(names(prefixes, spellings, \.fc2), in: inter, out: C))
    }
    /// The optional classifier Linear at `prefix` (`.weight` [labels, inFeatures], `.bias`): nil and
    /// 0 labels when the checkpoint has none (a backbone); the label count is `declared` when the
    /// config gives one, else the weight's rows.
    func classifier(_ prefix: String, in inFeatures: Int, declared: Int?) throws -> (Linear?, labels: Int) {
        guard let info = store.info(prefix + ".weight") else { return (nil, 0) }
        let n = declared ?? info.shape.first ?? 0
        return (try linear(prefix, in: inFeatures, out: n), n)
    }
    /// The weights of one Swin window-attention block at `prefix` (`attn.qkv`, `attn.proj`,
    /// `attn.relative_position_bias_table` with `tableRows` rows), packed.
    func windowAttention(
        _ prefix: String, channels C: Int, heads nh: Int, window: (Int, Int, Int), tableRows: Int
    ) throws -> WindowAttention3DWeights {
        let qkv = try linear(prefix + "attn.qkv", in: C, out: 3 * C)
        let proj = try linear(prefix + "attn.proj", in: C, out: C)
        let table = try tensor(prefix + "attn.relative_position_bias_table", shape: [tableRows, nh])
        return try WindowAttention3DWeights(
            channels: C, heads: nh, window: window, qkv: qkv, proj: proj, relativePositionTable: table.pointer)
    }
    /// A patch-embedding convolution (kernel = stride) at `prefix` (`.weight` of `shape` [out, in, k…],
    /// `.bias` [out]) as a Linear over flattened patches: the weight read as [out, in·k…], the order
    /// in which `patchify` lays out a patch's values.
    func patchEmbedding(_ prefix: String, shape: [Int]) throws -> Linear {
        let k = shape.dropFirst().reduce(1, *)
        if let direct = try packedHalf(
            [HalfPart(names: [prefix + ".weight"], shape: shape, firstRow: 0, rows: shape[0])], k: k)
        {
            return try Linear(packed: direct, bias: try tensor(prefix + ".bias", shape: [shape[0]]))
        }
        let pw = try tensor(prefix + ".weight", shape: shape)
        let flat = try Tensor(shape: [shape[0], pw.count / max(shape[0], 1)])
        flat.data.update(from: pw.pointer, count: pw.count)
        return try Linear(weight: flat, bias: try tensor(prefix + ".bias", shape: [shape[0]]))
    }
    /// The GEGLU feed-forward at `prefix` (`.0`: [8·dim, dim] with bias, `.3`: [dim, 4·dim] with bias).
    func geglu(_ prefix: String, _ dim: Int) throws -> GEGLU {
        let h = 4 * dim, w1 = prefix + ".0.weight"
        if let x = try packedHalf(
            [HalfPart(names: [w1], shape: [2 * h, dim], firstRow: 0, rows: h)], k: dim, release: false),
            let g = try packedHalf([HalfPart(names: [w1], shape: [2 * h, dim], firstRow: h, rows: h)], k: dim)
        {
            let b1 = try tensor(prefix + ".0.bias", shape: [2 * h])
            return GEGLU(
                a: try Linear(packed: x, bias: try copyTensor(b1.pointer, [h])),
                gate: try Linear(packed: g, bias: try copyTensor(b1.pointer + h, [h])),
                out: try linear(prefix + ".3", in: h, out: dim))
        }
        return try GEGLU(
            w1: try tensor(prefix + ".0.weight", shape: [8 * dim, dim]),
            b1: try tensor(prefix + ".0.bias", shape: [8 * dim]),
            w2: try tensor(prefix + ".3.weight", shape: [dim, 4 * dim]),
            b2: try tensor(prefix + ".3.bias", shape: [dim]))
    }
    /// Swin patch merging at `prefix`: LayerNorm(4C) and the bias-free reduction 4C → 2C, packed
    /// for the load's precision like every Linear.
    func patchMerging(_ prefix: String, _ c: Int, eps: Float) throws -> (norm: LayerNorm, reduction: Linear) {
        (
            try norm(prefix + "norm", 4 * c, eps: eps),
            try linear(prefix + "reduction", in: 4 * c, out: 2 * c, bias: false)
        )
    }
}

/// w = w2 · w1 ([out, mid] · [mid, in]) with the library's fp32 GEMM (fp32 sums, as the two
/// GEMMs it replaces have), b = w2 · b1 + b2 summed in Double.
private func composeWeights(
    _ w2: UnsafePointer<Float>, _ b2: UnsafePointer<Float>, _ w1: UnsafePointer<Float>, _ b1: UnsafePointer<Float>,
    out o: Int, mid m: Int, in i: Int, into w: UnsafeMutablePointer<Float>, _ b: UnsafeMutablePointer<Float>
) throws {
    guard
        sgemm(
            transA: false, transB: false, m: o, n: i, k: m, alpha: 1, a: w2, lda: m, b: w1, ldb: i, beta: 0, c: w,
            ldc: i)
    else { throw VidAttnError(.outOfMemory, "cannot compose a \(o)×\(m) and a \(m)×\(i) weight") }
    for r in 0..<o {
        var bias = Double(b2[r])
        for k in 0..<m { bias += Double(w2[r * m + k]) * Double(b1[k]) }
        b[r] = Float(bias)
    }
}
