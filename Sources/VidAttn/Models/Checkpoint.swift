// Reading a checkpoint: typed access to config.json values and to the weight tensors.
import Kernels

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
    /// A patch-embedding convolution (kernel = stride) at `prefix` (`.weight` of `shape` [out, in, k…],
    /// `.bias` [out]) as a Linear over flattened patches: the weight read as [out, in·k…], the order
    /// in which `patchify` lays out a patch's values.
    func patchEmbedding(_ prefix: String, shape: [Int]) throws -> Linear {
        let pw = try tensor(prefix + ".weight", shape: shape)
        let flat = try Tensor(shape: [shape[0], pw.count / max(shape[0], 1)])
        flat.data.update(from: pw.pointer, count: pw.count)
        return try Linear(weight: flat, bias: try tensor(prefix + ".bias", shape: [shape[0]]))
    }
    /// The GEGLU feed-forward at `prefix` (`.0`: [8·dim, dim] with bias, `.3`: [dim, 4·dim] with bias).
    func geglu(_ prefix: String, _ dim: Int) throws -> GEGLU {
        try GEGLU(w1: try tensor(prefix + ".0.weight", shape: [8 * dim, dim]), b1: try tensor(prefix + ".0.bias", shape: [8 * dim]),
                  w2: try tensor(prefix + ".3.weight", shape: [dim, 4 * dim]), b2: try tensor(prefix + ".3.bias", shape: [dim]))
    }
    /// Swin patch merging at `prefix`: LayerNorm(4C) and the bias-free reduction 4C → 2C, packed.
    func patchMerging(_ prefix: String, _ c: Int, eps: Float) throws -> (norm: LayerNormP, reduction: PackedB) {
        let red = try tensor(prefix + "reduction.weight", shape: [2 * c, 4 * c])
        guard let packed = PackedB(transposed: true, k: 4 * c, n: 2 * c, b: red.pointer, ldb: 4 * c) else {
            throw VidAttnError(.outOfMemory, "cannot pack \(prefix)reduction")
        }
        return (try norm(prefix + "norm", 4 * c, eps: eps), packed)
    }
}
