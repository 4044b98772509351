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
    /// AVX512-BF16 (vdpbf16ps) on a CPU that is not Intel (Zen 4); on Intel only when forced.
    case avx512bf16 = "avx512_bf16"
    /// AVX512-BF16 is there but runs at half the fp32 FMA rate (Intel cores; with AMX hidden or
    /// capped): bf16 runs as in the emulation, on the fp32 FMA kernels with bf16-rounded weights
    /// and inputs, which is faster there. Measured on Emerald Rapids without AMX (one core):
    /// vdpbf16ps 83–85 GFLOP/s, FMA 167–171; TimeSformer-B bf16 forwards 3.83 s on it against
    /// 2.10 s at fp32 (BENCHMARKS.md, session 13). `VIDATTN_BF16_UNIT=avx512_bf16` forces the
    /// AVX512-BF16 kernels (for testing them on such a CPU).
    case fma
    /// No bf16 unit: the fp32 kernels run on the bf16-rounded weights and activations.
    case emulated

    /// Whether the unit has bf16 kernels of its own; else (`fma`, `emulated`) bf16 runs on the
    /// fp32 kernels with bf16-rounded weights and inputs: the same numbers up to the order of
    /// the sums, no speed-up, fp32's memory for the weights, attention in fp32.
    public var hasKernels: Bool { self == .amx || self == .avx512bf16 }

    /// The unit's name with, where bf16 runs on the fp32 kernels, why (for messages).
    public var summary: String {
        switch self {
        case .amx, .avx512bf16: return rawValue
        case .fma: return "fma (the fp32 kernels on bf16-rounded weights: this CPU's AVX512-BF16 is slower)"
        case .emulated: return "emulated (the fp32 kernels on bf16-rounded weights: no bf16 unit)"
        }
    }

    /// The unit this CPU offers (AMX, then AVX512-BF16 where it beats fp32 FMA, else the
    /// emulation), capped by VIDATTN_MAX_ISA.
    public static let detected: BF16Unit = {
        let i = CPU.info
        let cap = ISALevel.cap
        if i.amx_bf16 != 0 && i.amx_tile != 0 && i.amx_permitted != 0 && cap >= .amx { return .amx }
        if i.avx512_bf16 != 0 && cap >= .avx512bf16 {
            let forced = getenvString("VIDATTN_BF16_UNIT") == BF16Unit.avx512bf16.rawValue
            return i.vendor_intel != 0 && !forced ? .fma : .avx512bf16
        }
        return .emulated
    }()
}

/// Instruction-set levels, lowest first; `VIDATTN_MAX_ISA=avx2|avx512|avx512_bf16|amx` caps
/// the kernels the library selects (for testing every path on a capable machine).
public enum ISALevel: Int, Comparable, Sendable, CaseIterable {
    case avx2 = 0, avx512, avx512bf16, amx

    /// The name VIDATTN_MAX_ISA and `vidattn info` use.
    public var name: String { ["avx2", "avx512", "avx512_bf16", "amx"][rawValue] }
    /// Levels order by capability (avx2 < avx512 < avx512_bf16 < amx).
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
public func roundToBF16(
    rows: Int, cols: Int, _ x: UnsafePointer<Float>, _ ldx: Int, into y: UnsafeMutablePointer<Float>,
    threads: Int = Threads.count
) {
    parallelFor(rows, threads: threads) { r, _ in vidattn_round_to_bf16_f32(x + r * ldx, y + r * cols, cols) }
}

// MARK: - Packed weights

/// One row of a weight to pack: fp32 values, or bf16 / f16 values read in place (unaligned
/// reads, as from a mapped safetensors file).
public enum WeightRow {
    case f32(UnsafePointer<Float>)
    case bf16(UnsafeRawPointer)
    case f16(UnsafeRawPointer)

    /// The row's first k values as fp32: in place for an fp32 row, else widened into `scratch`.
    func floats(_ k: Int, scratch: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        switch self {
        case .f32(let p): return p
        case .bf16(let p):
            for i in 0..<k {
                scratch[i] = Float(bitPattern: UInt32(p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16)
            }
        case .f16(let p):
            for i in 0..<k {
                scratch[i] = Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
            }
        }
        return UnsafePointer(scratch)
    }

    /// Element i rounded to bf16 (round to nearest even; bf16 values are taken as they are).
    @inline(__always) func bf16(_ i: Int) -> UInt16 {
        switch self {
        case .f32(let p): return bf16Round(p[i])
        case .bf16(let p): return p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
        case .f16(let p):
            return bf16Round(Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))))
        }
    }
}

/// op(B) (K×N, from a PyTorch Linear weight [N, K]) as bf16 panels of 32 columns, K padded
/// with zeros to a multiple of 32: panel j at j · kp · 32, element (k, n) of the panel at
/// `vidattn_bf16_panel_index(k, n)` (K blocks of 32, each two compact 1 KiB tiles of 16
/// columns, pairs of K interleaved).
public final class PackedBF16B: @unchecked Sendable {
    /// Reduction length (K) and output columns (N) of the weight.
    public let k: Int, n: Int
    /// K rounded up to a multiple of 32.
    public let kp: Int
    /// Number of 32-column panels.
    public let panels: Int
    let data: UnsafeMutablePointer<UInt16>

    /// Packs weight [n, k] (row stride ldw). Returns nil when the memory cannot be had.
    public convenience init?(weight w: UnsafePointer<Float>, n: Int, k: Int, ldw: Int) {
        self.init(n: n, k: k) { .f32(w + $0 * ldw) }
    }

    /// Packs a weight [n, k] whose row j is `row(j)`: fp32, or bf16 / f16 values read in place
    /// (a mapped checkpoint: no fp32 copy is made). Returns nil when the memory cannot be had.
    public init?(n: Int, k: Int, row: (Int) -> WeightRow) {
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
                let src = row(j * 32 + col)
                for kk in 0..<k { panel[vidattn_bf16_panel_index(kk, col)] = src.bf16(kk) }
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
                for kk in 0..<k {
                    w[(j * 32 + col) * k + kk] = bf16ToFloat(panel[vidattn_bf16_panel_index(kk, col)])
                }
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
        // Models take the fp32 kernels on `fma`; a bf16 GEMM asked for there still runs on AVX512-BF16.
        case .avx512bf16, .fma: return .avx512bf16
        case .emulated: return .reference
        }
    }
}

/// C = act(A · Bᵀ + bias) · multiplier + residual (+ C when accumulate), A [m, k] fp32 rounded
/// to bf16 as it is packed, B the packed bf16 weight; fp32 accumulation. Returns false (C
/// untouched) if scratch memory cannot be had.
public func gemmBF16(
    m: Int, a: UnsafePointer<Float>, lda: Int, packedB: PackedBF16B, accumulate: Bool,
    c: UnsafeMutablePointer<Float>, ldc: Int, epilogue: GemmEpilogue = .none,
    kernel: BF16Kernel = .current, threads: Int = Threads.count
) -> Bool {
    gemmBF16(
        m: m, a: .rows(a, lda), packedB: packedB, accumulate: accumulate, c: .rows(c, ldc), epilogue: epilogue,
        kernel: kernel, threads: threads)
}

/// The bf16 A strips of a GEMM: `ceil(m/32)` strips of 32 rows × kp (kp = K rounded up to 32),
/// strip s at s · 32 · kp, element (r, k) at (k / 32) · 1024 + r · 32 + k % 32; rows past m and
/// the K padding zero. One GEMM can write them for the next (`gemmBF16(m:a:lda:packedB:epilogue:
/// intoStrips:)`), which then reads them without converting anything (`gemmBF16(m:strips:...)`).
public func bf16StripsCount(rows m: Int, k: Int) -> Int { (m + 31) / 32 * 32 * ((k + 31) / 32 * 32) }

/// act(A · Bᵀ + bias) · multiplier + residual written as the bf16 A strips of a following GEMM
/// whose K is this one's N (`strips` holds `bf16StripsCount(rows: m, k: packedB.n)` values): no
/// fp32 output is stored, the 32×32 blocks go from a per-worker slot through the epilogue to
/// bf16. The values equal those `gemmBF16(m:a:...)` would write to C followed by the next GEMM's
/// own rounding, bit for bit.
public func gemmBF16(
    m: Int, a: UnsafePointer<Float>, lda: Int, packedB: PackedBF16B, epilogue: GemmEpilogue = .none,
    intoStrips strips: UnsafeMutablePointer<UInt16>, kernel: BF16Kernel = .current, threads: Int = Threads.count
) -> Bool {
    gemmBF16(
        m: m, a: .rows(a, lda), packedB: packedB, accumulate: false, c: .strips(strips), epilogue: epilogue,
        kernel: kernel, threads: threads)
}

/// C = act(A · Bᵀ + bias) · multiplier + residual (+ C when accumulate) with A given as bf16
/// strips (`bf16StripsCount(rows: m, k: packedB.k)` values, see there).
public func gemmBF16(
    m: Int, strips: UnsafePointer<UInt16>, packedB: PackedBF16B, accumulate: Bool,
    c: UnsafeMutablePointer<Float>, ldc: Int, epilogue: GemmEpilogue = .none,
    kernel: BF16Kernel = .current, threads: Int = Threads.count
) -> Bool {
    gemmBF16(
        m: m, a: .strips(strips), packedB: packedB, accumulate: accumulate, c: .rows(c, ldc), epilogue: epilogue,
        kernel: kernel, threads: threads)
}

/// Where a bf16 GEMM reads A from: fp32 rows (rounded as they are packed) or ready strips.
enum BF16Input {
    case rows(UnsafePointer<Float>, Int)
    case strips(UnsafePointer<UInt16>)
}

/// Where a bf16 GEMM writes C: fp32 rows, or the bf16 strips of the next GEMM's A.
enum BF16Output {
    case rows(UnsafeMutablePointer<Float>, Int)
    case strips(UnsafeMutablePointer<UInt16>)
}

func gemmBF16(
    m: Int, a input: BF16Input, packedB: PackedBF16B, accumulate: Bool, c output: BF16Output,
    epilogue: GemmEpilogue, kernel: BF16Kernel, threads: Int
) -> Bool {
    let n = packedB.n, k = packedB.k, kp = packedB.kp
    if m == 0 || n == 0 { return true }
    FlopCounter.addGemm(2 * m * n * k)
    let b = ReducedBlocking(m: m, panels: packedB.panels, kp: kp, elemBytes: 2, threads: threads)
    // Scratch (floats): A as bf16 strips unless given; per worker a 32×32 fp32 slot for each
    // panel of a chunk (the edge blocks' partial sums; every block's when C goes to strips).
    // (Constants only below: a `var` captured by the closures costs a dynamic exclusivity check
    // per read; see Int8GEMM.swift.)
    let given: UnsafePointer<UInt16>?
    if case .strips(let p) = input { given = p } else { given = nil }
    let aFloats = given == nil ? b.strips * 32 * kp / 2 : 0, slotFloats = b.chunkPanels * 1024
    guard let scratch = ScratchPool.shared.take(aFloats + b.workers * slotFloats) else { return false }
    defer { ScratchPool.shared.give(scratch) }
    let ab =
        given
        ?? UnsafePointer(
            UnsafeMutableRawPointer(scratch.p).bindMemory(to: UInt16.self, capacity: b.strips * 32 * kp))
    let slots = scratch.p + aFloats
    let c: UnsafeMutablePointer<Float>?, ldc: Int, outStrips: UnsafeMutablePointer<UInt16>?
    switch output {
    case .rows(let p, let ld): c = p; ldc = ld; outStrips = nil
    case .strips(let p): outStrips = p; c = nil; ldc = 0
    }
    let nextKp = packedB.panels * 32  // K of the GEMM reading the output strips, padded
    // One epilogue call per 32×32 block (per strip and chunk for rows in C), not per row:
    // measured on Sapphire Rapids (`VIDATTN_DEMO_CHAIN`, the fc1 → fc2 strips chain with its GELU,
    // 21 pairs alternated in one process) 0.96–0.97 of the MLP's time at 1576 and 3137 × 768 →
    // 3072, 0.92 at 25088 × 96 → 384, at 1 and 2 threads.
    let epilogueTile = FP32Kernels.selected.epilogueTile
    // A large fp32 output that is not added to goes through the slots too, and from there to
    // C with streaming stores (ReducedBlocking.streamingStoresMinBytes; rows 64-byte aligned).
    let streaming = ReducedBlocking.streams(amx: kernel == .amx, accumulate: accumulate, c: c, ldc: ldc, m: m, n: n)
    @inline(__always) func isDirect(_ s: Int, _ j: Int) -> Bool {
        !streaming && c != nil && s * 32 + 32 <= m && j * 32 + 32 <= n
    }
    // Unless C is added to, the bias is where each block's sums start (the block kernels load
    // it as the initial accumulator), not a pass of the epilogue. Measured on Sapphire Rapids
    // (TimeSformer-B bf16, perf): the epilogue passes 8.9 % of the forward before, 5.5 % after.
    let bias = accumulate ? nil : epilogue.bias
    var restEpilogue = epilogue
    if bias != nil { restEpilogue.bias = nil }
    let rest = restEpilogue
    let tail = n % 32  // columns of the last panel, when it is partial
    runReducedGemm(
        b, amx: kernel == .amx,
        pack: { s, _ in
            // Rows rounded to bf16 into the strip's 32×32 blocks (each 16-row half a contiguous
            // 1 KiB tile); K padding and the rows past m zero.
            guard case .rows(let a, let lda) = input else { return }
            let strip = UnsafeMutablePointer(mutating: ab) + s * 32 * kp
            for r in 0..<32 {
                let i = s * 32 + r
                if i < m {
                    vidattn_f32_to_bf16_blocks(a + i * lda, k, kp, strip + r * 32, 1024)
                } else {
                    for kb in 0..<(kp / 32) { (strip + kb * 1024 + r * 32).initialize(repeating: 0, count: 32) }
                }
            }
        },
        block: { s, j, k0, kLen, first, slot, w in
            // Full blocks accumulate straight in C (onto its old values when asked); edge blocks
            // in the worker's slot.
            let direct = isDirect(s, j)
            let out = direct ? c! + s * 32 * ldc + j * 32 : slots + w * slotFloats + slot * 1024
            let ldo = direct ? ldc : 32
            let acc: Int32 = !first || (direct && accumulate) ? 1 : 0
            let aS = UnsafePointer(ab + s * 32 * kp + k0 * 32), bP = packedB.panel(j) + k0 * 32
            @inline(__always) func run(_ start: UnsafePointer<Float>?) {
                switch kernel {
                case .amx: vidattn_amx_bf16_32x32(kLen, aS, bP, out, ldo, acc, start)
                case .avx512bf16: vidattn_avx512bf16_32x32(kLen, aS, bP, out, ldo, acc, start)
                case .reference: vidattn_bf16_32x32_ref(kLen, aS, bP, out, ldo, acc, start)
                }
            }
            guard let bias, first else { return run(nil) }
            if tail == 0 || j * 32 + 32 <= n { return run(bias + j * 32) }
            // The last, partial panel: its bias padded to 32 columns.
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 32) { padded in
                let p = padded.baseAddress!
                p.initialize(repeating: 0, count: 32)
                p.update(from: bias + j * 32, count: tail)
                run(UnsafePointer(p))
            }
        },
        finish: { s, pr, w in
            let i0 = s * 32, mr = min(32, m - i0), j0 = pr.lowerBound * 32, j1 = min(n, pr.upperBound * 32)
            if let outStrips {
                // Every block is in the slot: the epilogue, then bf16 into block (s, j) of the
                // next GEMM's A (the rows past m zero, like its own packing would leave them).
                for j in pr {
                    let tile = slots + w * slotFloats + (j - pr.lowerBound) * 1024, nr = min(32, n - j * 32)
                    let dst = outStrips + s * 32 * nextKp + j * 1024
                    if !rest.isNone { epilogueTile(rest, tile, 32, i0, mr, j * 32, nr) }
                    // One call per block (a call per row: 1.01–1.05 of the chain's time, measured
                    // with VIDATTN_DEMO_CHAIN as above).
                    vidattn_f32_block_to_bf16(tile, Int32(mr), Int32(nr), dst)
                }
                return
            }
            let c = c!
            if streaming {
                // The epilogue on the blocks in the slot, then the full blocks to C with streaming
                // stores and a partial last panel with plain ones.
                let slot = slots + w * slotFloats
                if !rest.isNone {
                    for j in pr {
                        let tile = slot + (j - pr.lowerBound) * 1024, nr = min(32, n - j * 32)
                        epilogueTile(rest, tile, 32, i0, mr, j * 32, nr)
                    }
                }
                streamSlotBlocks(slot, panels: pr, n: n, c: c, ldc: ldc, i0: i0, mr: mr)
                return
            }
            for j in pr where !isDirect(s, j) {
                let tile = slots + w * slotFloats + (j - pr.lowerBound) * 1024, nr = min(32, n - j * 32)
                for r in 0..<mr {
                    let crow = c + (i0 + r) * ldc + j * 32, trow = tile + r * 32
                    if accumulate {
                        for jj in 0..<nr { crow[jj] += trow[jj] }
                    } else {
                        crow.update(from: trow, count: nr)
                    }
                }
            }
            if !rest.isNone {
                epilogueTile(rest, c + i0 * ldc + j0, ldc, i0, mr, j0, j1 - j0)
            }
        })
    return true
}
