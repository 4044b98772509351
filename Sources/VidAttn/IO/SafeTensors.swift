// A safetensors reader: memory-mapped, header validated before any tensor is
// touched, F32 / F16 / BF16 converted to fp32 on read, sharded checkpoints
// through model.safetensors.index.json.
#if canImport(Glibc)
import Glibc
#endif
import Kernels

/// Element types a safetensors header may name.
public enum DType: String, Sendable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16", f64 = "F64", i64 = "I64", i32 = "I32", i8 = "I8", u8 = "U8", bool =
        "BOOL"
    var size: Int {
        switch self {
        case .f64, .i64: return 8
        case .f32, .i32: return 4
        case .f16, .bf16: return 2
        case .i8, .u8, .bool: return 1
        }
    }
}

/// One tensor's entry in a safetensors header.
public struct TensorInfo: Sendable {
    /// Its name in the checkpoint.
    public let name: String
    /// Its element type.
    public let dtype: DType
    /// Its shape.
    public let shape: [Int]
    /// Byte range within the data section.
    public let begin: Int, end: Int  // byte offsets within the data section
    /// Number of elements.
    public var count: Int { shape.reduce(1, *) }
}

/// One .safetensors file.
public final class SafeTensorsFile: @unchecked Sendable {
    /// Largest header accepted (hostile files declare huge ones).
    public static let maxHeaderBytes = 100 << 20
    /// The mapped file.
    public let file: MappedFile
    /// Every tensor by name (offsets checked against the file size).
    public let tensors: [String: TensorInfo]
    /// The header's `__metadata__` strings.
    public let metadata: [String: String]
    let dataStart: Int

    /// Maps and validates one .safetensors file.
    public init(path: String) throws {
        file = try MappedFile(path: path)
        let b = file.bytes
        guard b.count >= 8 else {
            throw VidAttnError(.badFormat, "\(path): \(b.count) bytes, too short for a safetensors header")
        }
        var n: UInt64 = 0
        for k in 0..<8 { n |= UInt64(b[k]) << (8 * UInt64(k)) }
        guard n >= 2, n <= UInt64(Self.maxHeaderBytes) else {
            throw VidAttnError(.badFormat, "\(path): header length \(n) outside 2...\(Self.maxHeaderBytes)")
        }
        guard Int(n) <= b.count - 8 else {
            throw VidAttnError(
                .badFormat, "\(path): header of \(n) bytes runs past the end of the \(b.count)-byte file (truncated?)")
        }
        let header = UnsafeRawBufferPointer(rebasing: b[8..<(8 + Int(n))])
        guard header[0] == UInt8(ascii: "{") else {
            throw VidAttnError(.badFormat, "\(path): header does not start with '{'")
        }
        let json: JSON
        do { json = try JSON.parse(header) } catch let e as VidAttnError {
            throw VidAttnError(.badFormat, "\(path): \(e.message)")
        }
        guard let obj = json.object else { throw VidAttnError(.badFormat, "\(path): header is not a JSON object") }
        dataStart = 8 + Int(n)
        let dataBytes = b.count - dataStart
        var infos: [String: TensorInfo] = [:]
        var meta: [String: String] = [:]
        for (name, v) in obj {
            if name == "__metadata__" {
                for (k, mv) in v.object ?? [:] { if let s = mv.string { meta[k] = s } }
                continue
            }
            guard let dt = v["dtype"]?.string, let shapeJ = v["shape"]?.array, let offs = v["data_offsets"]?.array,
                offs.count == 2
            else {
                throw VidAttnError(.badFormat, "\(path): tensor '\(name)' lacks dtype, shape or data_offsets")
            }
            guard let dtype = DType(rawValue: dt) else {
                throw VidAttnError(.unsupported, "\(path): tensor '\(name)' has unknown dtype \(dt)")
            }
            var shape: [Int] = []
            for s in shapeJ {
                guard let d = s.int, d >= 0 else {
                    throw VidAttnError(.badFormat, "\(path): tensor '\(name)' has a bad shape")
                }
                shape.append(d)
            }
            guard let count = checkedProduct(shape + [dtype.size]) else {
                throw VidAttnError(.badFormat, "\(path): tensor '\(name)' shape \(shape) overflows")
            }
            guard let lo = offs[0].int, let hi = offs[1].int, lo >= 0, lo <= hi, hi <= dataBytes else {
                throw VidAttnError(
                    .badFormat, "\(path): tensor '\(name)' data_offsets outside the \(dataBytes)-byte data section")
            }
            guard hi - lo == count else {
                throw VidAttnError(
                    .badFormat, "\(path): tensor '\(name)' has \(hi - lo) bytes but \(dt) \(shape) needs \(count)")
            }
            infos[name] = TensorInfo(name: name, dtype: dtype, shape: shape, begin: lo, end: hi)
        }
        // The data section must be tiled exactly: no overlaps, no gaps.
        var pos = 0
        for t in infos.values.sorted(by: { ($0.begin, $0.end) < ($1.begin, $1.end) }) {
            guard t.begin == pos else {
                throw VidAttnError(
                    .badFormat,
                    t.begin < pos
                        ? "\(path): tensor '\(t.name)' overlaps the previous tensor"
                        : "\(path): gap before tensor '\(t.name)' in the data section")
            }
            pos = t.end
        }
        guard pos == dataBytes else {
            throw VidAttnError(.badFormat, "\(path): \(dataBytes - pos) bytes after the last tensor")
        }
        tensors = infos; metadata = meta
    }

    /// Reads a tensor into `dst` (count floats), converting to fp32.
    public func read(_ t: TensorInfo, into dst: UnsafeMutablePointer<Float>) throws {
        let src = file.bytes.baseAddress! + dataStart + t.begin
        let n = t.count
        switch t.dtype {
        case .f32:
            UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: n * 4)
        case .f16:
            for i in 0..<n {
                dst[i] = Float(Float16(bitPattern: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
            }
        case .bf16:
            for i in 0..<n {
                dst[i] = Float(bitPattern: UInt32(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16)
            }
        case .f64:
            for i in 0..<n { dst[i] = Float(src.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)) }
        default:
            throw VidAttnError(
                .unsupported, "\(file.path): tensor '\(t.name)' has dtype \(t.dtype.rawValue), not a float type")
        }
        dropPages(t)
    }

    /// Where tensor t's bytes are in the mapped file.
    func bytes(_ t: TensorInfo) -> UnsafeRawPointer { UnsafeRawPointer(file.bytes.baseAddress! + dataStart + t.begin) }

    /// Lets the kernel drop the file pages of tensor t once its values have been copied or
    /// packed, so that a load never holds the mapped file and the model's own weights in memory at once.
    func dropPages(_ t: TensorInfo) {
        let src = bytes(t)
        let page = UInt(max(Int(sysconf(Int32(_SC_PAGESIZE))), 4096))
        let lo = (UInt(bitPattern: src) + page - 1) & ~(page - 1)
        let hi = UInt(bitPattern: src + (t.end - t.begin)) & ~(page - 1)
        if hi > lo, let p = UnsafeMutableRawPointer(bitPattern: lo) { _ = madvise(p, Int(hi - lo), MADV_DONTNEED) }
    }
}

/// A checkpoint's weights: one file or shards named by model.safetensors.index.json.
public final class WeightStore: @unchecked Sendable {
    public private(set) var files: [SafeTensorsFile] = []
    var index: [String: (file: Int, info: TensorInfo)] = [:]

    /// Opens a checkpoint directory: model.safetensors, or the shards a model.safetensors.index.json lists.
    public init(directory dir: String) throws {
        let single = dir + "/model.safetensors", indexPath = dir + "/model.safetensors.index.json"
        if fileExists(single) {
            try add(SafeTensorsFile(path: single))
        } else if fileExists(indexPath) {
            let json = try JSON.parse(try MappedFile(path: indexPath).text())
            guard let map = json["weight_map"]?.object else {
                throw VidAttnError(.badFormat, "\(indexPath): no weight_map object")
            }
            var shards: [String] = []
            for (_, v) in map {
                guard let f = v.string, !f.contains("/"), !f.hasPrefix(".") else {
                    throw VidAttnError(.badFormat, "\(indexPath): bad shard file name \(v)")
                }
                if !shards.contains(f) { shards.append(f) }
            }
            for f in shards.sorted() { try add(SafeTensorsFile(path: dir + "/" + f)) }
            for (name, v) in map where index[name] == nil {
                throw VidAttnError(.badFormat, "\(indexPath): tensor '\(name)' is not in its shard \(v.string ?? "?")")
            }
        } else if let bin = ["pytorch_model.bin", "pytorch_model.bin.index.json"].first(where: {
            fileExists(dir + "/" + $0)
        }) {
            // PyTorch pickles are not read (executing a pickle is unsafe and needs PyTorch).
            throw VidAttnError(
                .unsupported,
                "\(dir): only \(bin) found, a PyTorch pickle vidattn does not read; convert it "
                    + "once with `python tools/convert_pytorch_bin.py \(dir)` (needs torch), which writes "
                    + "model.safetensors beside it")
        } else {
            throw VidAttnError(.io, "\(dir): neither model.safetensors nor model.safetensors.index.json found")
        }
    }

    private func add(_ f: SafeTensorsFile) throws {
        for (name, info) in f.tensors {
            if index[name] != nil { throw VidAttnError(.badFormat, "tensor '\(name)' appears in two shards") }
            index[name] = (files.count, info)
        }
        files.append(f)
    }

    /// Every tensor name across the shards.
    public var names: [String] { Array(index.keys) }
    /// Whether the checkpoint has tensor `name`.
    public func has(_ name: String) -> Bool { index[name] != nil }
    /// The entry of tensor `name`, if present.
    public func info(_ name: String) -> TensorInfo? { index[name]?.info }

    /// Tensor `name` in place, in its stored type, checked against `shape`: its entry and its
    /// bytes in the mapped file (valid while the store lives). Call `release` once it is packed.
    public func raw(_ name: String, shape: [Int]) throws -> (info: TensorInfo, bytes: UnsafeRawPointer) {
        guard let (fi, info) = index[name] else { throw VidAttnError(.badFormat, "missing tensor '\(name)'") }
        if shape != info.shape {
            throw VidAttnError(.shapeMismatch, "tensor '\(name)' has shape \(info.shape), expected \(shape)")
        }
        return (info, files[fi].bytes(info))
    }

    /// Lets the kernel drop the mapped pages of tensor `name` (its values have been packed).
    public func release(_ name: String) {
        if let (fi, info) = index[name] { files[fi].dropPages(info) }
    }

    /// The tensor `name` as fp32, checked against `shape` (nil: any shape).
    public func tensor(_ name: String, shape: [Int]? = nil) throws -> Tensor {
        guard let (fi, info) = index[name] else { throw VidAttnError(.badFormat, "missing tensor '\(name)'") }
        if let shape, shape != info.shape {
            throw VidAttnError(.shapeMismatch, "tensor '\(name)' has shape \(info.shape), expected \(shape)")
        }
        let t = try Tensor(shape: info.shape)
        try files[fi].read(info, into: t.data)
        return t
    }
}
