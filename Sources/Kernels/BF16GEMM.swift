#if canImport(Glibc)
import Glibc
#endif
import CKernels

// bf16 GEMM for Linear layers: weights converted once to bf16 and packed in the
// pair-interleaved layout read by both AMX (tdpbf16ps) and AVX512-BF16 (vdpbf16ps);
// activations rounded to bf16 (nearest even) as each row block is packed; fp32
// accumulation; bias, activation, multiplier and residual applied in fp32 as the
// results leave the 32×32 blocks. The micro-kernels are C (Sources/CKernels/bf16.c);
// blocking and threading live here.

/// Floating-point precision of a model's Linear layers.
public enum Precision: String, Sendable, CaseIterable {
    case fp32, bf16
    /// int8 weights (per output channel) and activations (per token), int32 accumulation
    /// (Int8GEMM.swift).
    case int8
}

/// Which bf16 unit runs the products (chosen once per process from the CPU and
/// `VIDATTN_MAX_ISA`).
public enum BF16Unit: String, Sendable {
    /// AMX tiles (tdpbf16ps): Sapphire Rapids and later.
    case amx
    /// AVX512-BF16 (vdpbf16ps): Zen 4, Cooper Lake, Sapphire Rapids.
    case avx512bf16 = "avx512_bf16"
    /// No bf16 unit: the fp32 kernels run on the bf16-rounded weights and activations.
    case emulated

    public static let detected: BF16Unit = {
        let i = CPU.info
        let cap = ISALevel.cap
        if i.amx_bf16 != 0 && i.amx_tile != 0 && i.amx_permitted != 0 && cap >= .amx { return .amx }
        if i.avx512_bf16 != 0 && cap >= .avx512bf16 { return .avx512bf16 }
        return .emulated
    }()
}

/// Instruction-set levels, lowest first; `VIDATTN_MAX_ISA=avx2|avx512|avx512_bf16|amx` caps
/// the kernels the library selects (for testing every path on a capable machine).
public enum ISALevel: Int, Comparable, Sendable, CaseIterable {
    case avx2 = 0, avx512, avx512bf16, amx

    public var name: String { ["avx2", "avx512", "avx512_bf16", "amx"][rawValue] }
    public static func < (a: ISALevel, b: ISALevel) -> Bool { a.rawValue < b.rawValue }

    /// The cap from `VIDATTN_MAX_ISA` (no cap when unset or unknown).
    public static let cap: ISALevel = {
        guard let s = getenvString("VIDATTN_MAX_ISA") else { return .amx }
        return ISALevel.allCases.first { $0.name == s } ?? .amx
    }()
}

// MARK: - Conversion

/// fp32 → bf16, round to nearest even; NaN stays a (quiet) NaN and subnormal inputs become
/// zero of the same sign, as vcvtne2ps2bf16 does (and as library work, run with DAZ, sees them).
@inline(__always)
public func bf16Round(_ x: Float) -> UInt16 {
    let bits = x.bitPattern
    if x.isNaN { return UInt16(truncatingIfNeeded: (bits >> 16) | 0x40) }
    if x.isSubnormal { return UInt16(truncatingIfNeeded: (bits >> 16) & 0x8000) }
    let rounded = bits &+ 0x7FFF &+ ((bits >> 16) & 1)
    return UInt16(truncatingIfNeeded: rounded >> 16)
}

/// bf16 → fp32 (exact).
@inline(__always)
public func bf16ToFloat(_ h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }

/// y = fp32(bf16(x)) for a rows × cols block (row stride ldx; y dense).
public func roundToBF16(rows: Int, cols: Int, _ x: UnsafePointer<Float>, _ ldx: Int, into y: UnsafeMutablePointer<Float>) {
    parallelFor(rows) { r, _ in
        let src = x + r * ldx, dst = y + r * cols
        for j in 0..<cols { dst[j] = bf16ToFloat(bf16Round(src[j])) }
    }
}

// MARK: - Packed weights

/// op(B) (K×N, from a PyTorch Linear weight [N, K]) as bf16 panels of 32 columns, K padded
/// with zeros to a multiple of 32: panel j at j · kp · 32, element (k, n) of the panel at
/// ((k / 2) · 32 + n) · 2 + k % 2.
public final class PackedBF16B: @unchecked Sendable {
    public let k: Int, n: Int
    /// K rounded up to a multiple of 32.
    public let kp: Int
    public let panels: Int
    let data: UnsafeMutablePointer<UInt16>

    /// Packs weight [n, k] (row stride ldw). Returns nil when the memory cannot be had.
    public init?(weight w: UnsafePointer<Float>, n: Int, k: Int, ldw: Int) {
        self.k = k; self.n = n
        kp = (k + 31) / 32 * 32
        panels = (n + 31) / 32
        let (count, o) = (panels * 32).multipliedReportingOverflow(by: kp)
        if o { return nil }
        guard let raw = allocFloats((count + 1) / 2) else { return nil }
        data = UnsafeMutableRawPointer(raw).bindMemory(to: UInt16.self, capacity: count)
        data.initialize(repeating: 0, count: count)
        let data = self.data, kp = self.kp
        parallelFor(panels) { j, _ in
            let panel = data + j * kp * 32
            for col in 0..<min(32, n - j * 32) {
                let row = w + (j * 32 + col) * ldw
                for kk in 0..<k { panel[((kk >> 1) * 32 + col) * 2 + (kk & 1)] = bf16Round(row[kk]) }
            }
        }
    }

    deinit { freeFloats(UnsafeMutableRawPointer(data).assumingMemoryBound(to: Float.self)) }

    @inline(__always) func panel(_ j: Int) -> UnsafePointer<UInt16> { UnsafePointer(data + j * kp * 32) }

    /// The weights as fp32 again, [n, k] (what the bf16 GEMM multiplies by).
    public func unpacked(into w: UnsafeMutablePointer<Float>) {
        for j in 0..<panels {
            let panel = data + j * kp * 32
            for col in 0..<min(32, n - j * 32) {
                for kk in 0..<k { w[(j * 32 + col) * k + kk] = bf16ToFloat(panel[((kk >> 1) * 32 + col) * 2 + (kk & 1)]) }
            }
        }
    }
}

// MARK: - GEMM

extension BF16Kernel {
    /// The detected unit's kernel, or the scalar emulation (no unit, or VIDATTN_REFERENCE=1).
    public static var current: BF16Kernel {
        if KernelMode.useReference { return .reference }
        switch BF16Unit.detected {
        case .amx: return .amx
        case .avx512bf16: return .avx512bf16
        case .emulated: return .reference
        }
    }
}

/// Rows per row block of the bf16 and int8 GEMMs (its converted A block is reused across
/// every B panel).
let reducedRowBlock = 256

/// Work items of the bf16 and int8 GEMMs: row blocks of up to `reducedRowBlock` rows, split
/// finer (down to one 32-row strip) before columns are, since each item converts its A rows
/// once and column chunks would repeat that work. Returns rows per block, column chunks per
/// row block, items and workers.
func blockedItems(m: Int, panels: Int, threads: Int) -> (blockRows: Int, nChunks: Int, items: Int, workers: Int) {
    let strips = (m + 31) / 32
    let wantItems = threads > 1 ? 4 * threads : 1
    let stripsPerBlock = max(1, min(reducedRowBlock / 32, strips / wantItems))
    let rowBlocks = (strips + stripsPerBlock - 1) / stripsPerBlock
    let nChunks = rowBlocks >= wantItems ? 1 : min(panels, (wantItems + rowBlocks - 1) / rowBlocks)
    let items = rowBlocks * nChunks
    return (stripsPerBlock * 32, nChunks, items, min(threads, items))
}

/// C = act(A · Bᵀ + bias) · multiplier + residual (+ C when accumulate), A [m, k] fp32 rounded
/// to bf16 as it is packed, B the packed bf16 weight; fp32 accumulation. Returns false (C
/// untouched) if scratch memory cannot be had.
public func gemmBF16(m: Int, a: UnsafePointer<Float>, lda: Int, packedB: PackedBF16B, accumulate: Bool,
                     c: UnsafeMutablePointer<Float>, ldc: Int, epilogue: GemmEpilogue = .none,
                     kernel: BF16Kernel = .current, threads: Int = Threads.count) -> Bool {
    let n = packedB.n, k = packedB.k, kp = packedB.kp, panels = packedB.panels
    if m == 0 || n == 0 { return true }
    FlopCounter.addGemm(2 * m * n * k)
    let (blockRows, nChunks, items, workers) = blockedItems(m: m, panels: panels, threads: threads)
    // Per worker: the bf16 A block (blockRows × kp halves) and a 32×32 fp32 result block.
    // Per worker: the result block, the bf16 A block, and one bf16 row being converted.
    let aHalves = (blockRows * kp + 1) / 2
    let perWorker = 32 * 32 + aHalves + (kp + 1) / 2
    guard let scratch = ScratchPool.shared.take(workers * perWorker) else { return false }
    defer { ScratchPool.shared.give(scratch) }
    let base = scratch.p
    parallelDynamic(items, threads: workers) { item, worker in
        let rb = item / nChunks, nc = item % nChunks
        let r0 = rb * blockRows, rows = min(blockRows, m - r0)
        let jp0 = nc * panels / nChunks, jp1 = (nc + 1) * panels / nChunks
        let wbase = base + worker * perWorker
        let tile = wbase
        let ab = UnsafeMutableRawPointer(wbase + 32 * 32).bindMemory(to: UInt16.self, capacity: blockRows * kp)
        // Pack: rows rounded to bf16 into 32-row strips of 32×32 blocks (each 16-row half a
        // contiguous 1 KiB tile), K and the last strip's missing rows zero.
        let paddedRows = (rows + 31) / 32 * 32
        let row16 = UnsafeMutableRawPointer(wbase + 32 * 32 + aHalves).bindMemory(to: UInt16.self, capacity: kp)
        for r in 0..<paddedRows {
            let strip = ab + (r / 32) * 32 * kp + (r % 32) * 32
            if r >= rows {
                for kb in 0..<(kp / 32) { (strip + kb * 1024).initialize(repeating: 0, count: 32) }
                continue
            }
            vidattn_f32_to_bf16(a + (r0 + r) * lda, row16, k)
            if kp > k { (row16 + k).initialize(repeating: 0, count: kp - k) }
            for kb in 0..<(kp / 32) { (strip + kb * 1024).update(from: row16 + kb * 32, count: 32) }
        }
        if kernel == .amx { vidattn_amx_begin() }
        for jp in jp0..<jp1 {
            let bp = packedB.panel(jp)
            let j0 = jp * 32, nr = min(32, n - j0)
            for s in stride(from: 0, to: rows, by: 32) {
                let aStrip = UnsafePointer(ab + s * kp)
                let mr = min(32, rows - s), i0 = r0 + s
                // Full blocks go straight to C (accumulating onto it when asked); edge blocks
                // through the 32×32 scratch block.
                let direct = mr == 32 && nr == 32
                let out = direct ? c + i0 * ldc + j0 : tile
                let ldo = direct ? ldc : 32
                let acc: Int32 = direct && accumulate ? 1 : 0
                switch kernel {
                case .amx: vidattn_amx_bf16_32x32(kp, aStrip, bp, out, ldo, acc)
                case .avx512bf16: vidattn_avx512bf16_32x32(kp, aStrip, bp, out, ldo, acc)
                case .reference: vidattn_bf16_32x32_ref(kp, aStrip, bp, out, ldo, acc)
                }
                for r in 0..<mr {
                    let i = i0 + r
                    let crow = c + i * ldc + j0
                    if !direct {
                        let trow = tile + r * 32
                        if accumulate {
                            var j = 0
                            while j + 16 <= nr { vstore(vload(trow + j) + vload(crow + j), trow + j); j += 16 }
                            while j < nr { trow[j] += crow[j]; j += 1 }
                        }
                        crow.update(from: trow, count: nr)
                    }
                    if !epilogue.isNone { applyEpilogue(epilogue, crow, i, j0, nr) }
                }
            }
        }
        if kernel == .amx { vidattn_amx_end() }
    }
    return true
}
