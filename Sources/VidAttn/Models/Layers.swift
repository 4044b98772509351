// The layers every model is built from: Linear (fp32, bf16 or int8 packed weights) and
// LayerNorm, and the load-time context that chooses the precision.
import Kernels

/// How the model being loaded stores its Linear layers; set by `loadModel(path:precision:)`
/// for the duration of a load (every Linear built then takes it).
public enum LoadContext {
    /// Precision the Linear layers built during a load use (set by the loader for the load's duration).
    @TaskLocal public static var precision: Precision = .fp32
    /// Whether two Linears with nothing between them are composed into one at load
    /// (`Weights.composedLinear`); read at every load. `VIDATTN_FOLD_LINEARS=0` keeps them apart
    /// (the reference's order of operations, for comparison).
    public static var foldLinears: Bool { getenvString("VIDATTN_FOLD_LINEARS") != "0" }
}

/// Weights packed at load straight from a half-precision checkpoint, for a bf16 or int8 Linear.
enum PackedInPlace {
    case bf16(PackedBF16B)
    case int8(PackedInt8B)
}

/// A PyTorch `Linear` (weight [out, in]) packed for the GEMM at load time: fp32 panels,
/// bf16 pair-interleaved panels when loaded at `Precision.bf16`, or int8 panels quantized per
/// output channel at `Precision.int8`. On a CPU without the unit, fp32 panels of the rounded
/// (dequantized) weights, with inputs rounded the same way: the same numbers, no speed-up.
public struct Linear: Sendable {
    /// Input and output widths.
    public let inFeatures: Int, outFeatures: Int
    let w: PackedB?
    let w16: PackedBF16B?
    let w8: PackedInt8B?
    /// Emulation on the fp32 kernels: how inputs are rounded before the GEMM.
    enum InputRounding { case none, bf16, int8 }
    let roundInputs: InputRounding
    let bias: Tensor?

    /// A Linear from a PyTorch weight [out, in] and an optional bias [out], packed for this load's precision.
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
            if BF16Unit.detected.hasKernels {
                guard let p16 = PackedBF16B(weight: weight.pointer, n: outFeatures, k: inFeatures, ldw: inFeatures)
                else {
                    throw VidAttnError(.outOfMemory, "cannot pack a \(weight.shape) weight as bf16")
                }
                w16 = p16
            } else {
                rounded = allocFloats(weight.count)
                if let rounded {
                    roundToBF16(rows: outFeatures, cols: inFeatures, weight.pointer, inFeatures, into: rounded)
                }
                round = .bf16
            }
        case .int8:
            guard let p8 = PackedInt8B(weight: weight.pointer, n: outFeatures, k: inFeatures, ldw: inFeatures) else {
                throw VidAttnError(.outOfMemory, "cannot quantize a \(weight.shape) weight to int8")
            }
            if Int8Unit.detected != .emulated {
                w8 = p8
            } else {
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
        guard
            let p = PackedB(
                transposed: true, k: inFeatures, n: outFeatures, b: rounded.map { UnsafePointer($0) } ?? weight.pointer,
                ldb: inFeatures)
        else {
            throw VidAttnError(.outOfMemory, "cannot pack a \(weight.shape) weight")
        }
        w = p
    }

    /// A Linear from a caller's weight [out, in] and optional bias [out] (the C API's per-call
    /// entries), copied, then packed for this load's precision like any other.
    init(copying weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, out o: Int, in i: Int) throws {
        try self.init(weight: try copyTensor(weight, [o, i]), bias: try bias.map { try copyTensor($0, [o]) })
    }

    /// A bf16 or int8 Linear from weights already packed (straight from a BF16 / F16 checkpoint)
    /// and an optional bias [out]. Only for a CPU with the unit.
    init(packed: PackedInPlace, bias: Tensor?) throws {
        switch packed {
        case .bf16(let p): outFeatures = p.n; inFeatures = p.k; w16 = p; w8 = nil
        case .int8(let p): outFeatures = p.n; inFeatures = p.k; w16 = nil; w8 = p
        }
        if let bias, bias.shape != [outFeatures] {
            throw VidAttnError(.shapeMismatch, "linear bias has shape \(bias.shape), expected [\(outFeatures)]")
        }
        self.bias = bias
        w = nil; roundInputs = .none
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
    func callAsFunction(
        _ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>,
        activation: Activation = .none, accumulate: Bool = false, ldx: Int? = nil,
        multiplier: UnsafePointer<Float>? = nil, threads: Int = Threads.count
    ) throws {
        let profiled = Profile.begin(.linear); defer { Profile.end(profiled, .linear) }
        let epilogue = GemmEpilogue(
            bias: bias?.pointer, activation: activation,
            multiplier: multiplier, ldMultiplier: outFeatures)
        let ok: Bool
        if roundInputs == .bf16 && !KernelMode.useReference {
            // bf16 on the fp32 kernels: the GEMM rounds A as it packs it (no pass of its own
            // over the input; the reference path below keeps the separate rounding).
            ok = sgemm(
                transA: false, m: rows, k: inFeatures, alpha: 1, a: x, lda: ldx ?? inFeatures, packedB: w!,
                beta: accumulate ? 1 : 0, c: y, ldc: outFeatures, epilogue: epilogue, roundA: true, threads: threads)
        } else if roundInputs != .none {
            let ld = ldx ?? inFeatures
            guard let xr = ScratchPool.shared.take(max(rows * inFeatures, 1)) else {
                throw VidAttnError(.outOfMemory, "linear \(inFeatures)→\(outFeatures) on \(rows) rows: scratch")
            }
            defer { ScratchPool.shared.give(xr) }
            if roundInputs == .bf16 {
                roundToBF16(rows: rows, cols: inFeatures, x, ld, into: xr.p, threads: threads)
            } else {
                fakeQuantizeRows(rows: rows, cols: inFeatures, x, ld, into: xr.p, threads: threads)
            }
            ok = sgemm(
                transA: false, m: rows, k: inFeatures, alpha: 1, a: xr.p, lda: inFeatures, packedB: w!,
                beta: accumulate ? 1 : 0, c: y, ldc: outFeatures, epilogue: epilogue, threads: threads)
        } else if let w16 {
            ok = gemmBF16(
                m: rows, a: x, lda: ldx ?? inFeatures, packedB: w16, accumulate: accumulate, c: y,
                ldc: outFeatures, epilogue: epilogue, threads: threads)
        } else if let w8 {
            ok = gemmInt8(
                m: rows, a: x, lda: ldx ?? inFeatures, packedB: w8, accumulate: accumulate, c: y,
                ldc: outFeatures, epilogue: epilogue, threads: threads)
        } else if KernelMode.useReference {
            // The scalar reference (VIDATTN_REFERENCE=1) covers the packed GEMM too.
            sgemmPackedReference(
                m: rows, a: x, lda: ldx ?? inFeatures, packedB: w!, beta: accumulate ? 1 : 0,
                c: y, ldc: outFeatures, epilogue: epilogue)
            ok = true
        } else {
            ok = sgemm(
                transA: false, m: rows, k: inFeatures, alpha: 1, a: x, lda: ldx ?? inFeatures, packedB: w!,
                beta: accumulate ? 1 : 0, c: y, ldc: outFeatures, epilogue: epilogue, threads: threads)
        }
        if !ok { throw VidAttnError(.outOfMemory, "linear \(inFeatures)→\(outFeatures) on \(rows) rows: scratch") }
    }
}

extension Linear {
    /// `y += second(act(self(x)))` without the hidden activations [rows, out] in fp32, when both
    /// Linears run in the same reduced precision (false otherwise, nothing done). bf16: this one
    /// writes its output straight as the second's bf16 A strips (BENCHMARKS.md, session 8).
    /// int8, when this one's GEMM gives each work item whole rows: it quantizes its output rows
    /// into the second's int8 strips while they are in L2 (session 15). The same numbers either
    /// way: the second GEMM would round or quantize the same rows the same way.
    func chain(
        _ x: UnsafePointer<Float>, rows: Int, activation: Activation, then second: Linear,
        accumulatingInto y: UnsafeMutablePointer<Float>
    ) throws -> Bool {
        guard second.inFeatures == outFeatures, rows > 0 else { return false }
        let e1 = GemmEpilogue(bias: bias?.pointer, activation: activation)
        let e2 = GemmEpilogue(bias: second.bias?.pointer)
        let oom = VidAttnError(.outOfMemory, "linear \(inFeatures)→\(outFeatures) on \(rows) rows: scratch")
        // The strips' memory, then the two GEMMs (each false when out of scratch memory).
        func run(floats: Int, _ body: (UnsafeMutablePointer<Float>) -> Bool) throws -> Bool {
            let profiled = Profile.begin(.linear); defer { Profile.end(profiled, .linear) }
            guard let buffer = ScratchPool.shared.take(max(floats, 1)) else { throw oom }
            defer { ScratchPool.shared.give(buffer) }
            guard body(buffer.p) else { throw oom }
            return true
        }
        if let w1 = w16, let w2 = second.w16 {
            let count = bf16StripsCount(rows: rows, k: outFeatures)
            return try run(floats: (count + 1) / 2) { p in
                let strips = UnsafeMutableRawPointer(p).bindMemory(to: UInt16.self, capacity: count)
                return gemmBF16(m: rows, a: x, lda: inFeatures, packedB: w1, epilogue: e1, intoStrips: strips)
                    && gemmBF16(
                        m: rows, strips: strips, packedB: w2, accumulate: true, c: y, ldc: second.outFeatures,
                        epilogue: e2)
            }
        }
        if let w1 = w8, let w2 = second.w8, int8WritesWholeRows(m: rows, packedB: w1) {
            return try run(floats: Int8Strips.floats(rows: rows, k: outFeatures)) { p in
                let strips = Int8Strips(p, rows: rows, k: outFeatures)
                return gemmInt8(m: rows, a: x, lda: inFeatures, packedB: w1, epilogue: e1, intoStrips: strips)
                    && gemmInt8(
                        m: rows, strips: strips, packedB: w2, accumulate: true, c: y, ldc: second.outFeatures,
                        epilogue: e2)
            }
        }
        return false
    }
}

/// A LayerNorm's parameters and epsilon.
public struct LayerNorm: Sendable {
    let gamma: Tensor, beta: Tensor
    let eps: Float
    func callAsFunction(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) {
        let profiled = Profile.begin(.norm); defer { Profile.end(profiled, .norm) }
        layerNorm(
            rows: rows, cols: gamma.count, x: x, ldx: gamma.count, y: y, ldy: gamma.count,
            gamma: gamma.pointer, beta: beta.pointer, eps: eps)
    }
    /// Contiguous rows normed in place on the calling thread (for work already split across
    /// threads; not profiled on its own).
    func inPlace(_ x: UnsafeMutablePointer<Float>, rows: Int) {
        let c = gamma.count
        layerNorm(
            rows: rows, cols: c, x: x, ldx: c, y: x, ldy: c, gamma: gamma.pointer, beta: beta.pointer, eps: eps,
            threads: 1)
    }
    /// Rows of x `ldx` floats apart (a strided view: one frame's tokens of a space-major
    /// sequence) into contiguous rows of y.
    func callAsFunction(_ x: UnsafePointer<Float>, rows: Int, ldx: Int, into y: UnsafeMutablePointer<Float>) {
        let profiled = Profile.begin(.norm); defer { Profile.end(profiled, .norm) }
        layerNorm(
            rows: rows, cols: gamma.count, x: x, ldx: ldx, y: y, ldy: gamma.count,
            gamma: gamma.pointer, beta: beta.pointer, eps: eps)
    }
}

/// Options of one forward pass.
