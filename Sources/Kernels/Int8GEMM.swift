#if canImport(Glibc)
import Glibc
#endif
import CKernels

// int8 GEMM for Linear layers (dynamic quantization): weights quantized once per output
// channel (symmetric, scale = max|w| / 127) and packed in groups of four K values, the
// layout both AMX (tdpbssd) and AVX512-VNNI (vpdpbusd) read; activations quantized per row
// (per token) as each row block is packed (symmetric, scale = max|x| / 127); int32
// accumulation; the result dequantized (acc · scale_row · scale_col) and bias, activation,
// multiplier and residual applied in fp32 as the 32×32 blocks are written. VNNI multiplies
// uint8 by int8, so there the rows are stored as q + 128 and 128 · Σ_k w_q(k, n) is taken off
// each column. Micro-kernels: Sources/CKernels/int8.c.

/// Which unit runs the int8 products (chosen once per process from the CPU and `VIDATTN_MAX_ISA`).
public enum Int8Unit: String, Sendable {
    /// AMX-INT8 tiles (tdpbssd): Sapphire Rapids and later.
    case amx
    /// AVX512-VNNI (vpdpbusd): Cascade Lake, Ice Lake, Zen 4, Sapphire Rapids.
    case avx512vnni = "avx512_vnni"
    /// Neither: the fp32 kernels on the dequantized weights and quantized-then-dequantized
    /// inputs (the same quantization error, no speed-up).
    case emulated

    /// The unit this CPU offers (AMX-INT8, then AVX512-VNNI, else the emulation), capped by VIDATTN_MAX_ISA.
    public static let detected: Int8Unit = {
        let i = CPU.info
        let cap = ISALevel.cap
        if i.amx_int8 != 0 && i.amx_tile != 0 && i.amx_permitted != 0 && cap >= .amx { return .amx }
        if i.avx512_vnni != 0 && i.avx512bw != 0 && cap >= .avx512 { return .avx512vnni }
        return .emulated
    }()
}

// MARK: - Packed weights

/// A Linear weight [n, k] quantized per output channel to int8 and packed in panels of 32
/// columns, K padded with zeros to a multiple of 64: panel j at j · kp · 32 bytes, element
/// (k, n) of the panel at `vidattn_int8_panel_index(k, n)` (K blocks of 64, each two compact
/// 1 KiB tiles of 16 columns, groups of four K values together). A quarter of the fp32 weight's memory
/// (plus a scale and a column sum per output).
public final class PackedInt8B: @unchecked Sendable {
    /// Reduction length (K) and output columns (N) of the weight.
    public let k: Int, n: Int
    /// K rounded up to a multiple of 64.
    public let kp: Int
    /// Number of 32-column panels.
    public let panels: Int
    let data: UnsafeMutablePointer<Int8>
    /// Per output column: the weight scale (0 past n) and Σ_k w_q (for the VNNI offset).
    let scales: UnsafeMutablePointer<Float>
    let colSums: UnsafeMutablePointer<Int32>
    private let raw: UnsafeMutablePointer<Float>

    /// Quantizes and packs weight [n, k] (row stride ldw). Returns nil when the memory cannot
    /// be had.
    public convenience init?(weight w: UnsafePointer<Float>, n: Int, k: Int, ldw: Int) {
        self.init(n: n, k: k) { .f32(w + $0 * ldw) }
    }

    /// Quantizes and packs a weight [n, k] whose row j is `row(j)`: fp32, or bf16 / f16 values
    /// read in place (a row at a time is widened to fp32 for the quantizer; no copy of the whole
    /// weight). Returns nil when the memory cannot be had.
    public init?(n: Int, k: Int, row: (Int) -> WeightRow) {
        self.k = k; self.n = n
        kp = max(64, (k + 63) / 64 * 64)
        panels = (n + 31) / 32
        let cols = panels * 32
        let (bytes, o) = cols.multipliedReportingOverflow(by: kp)
        if o { return nil }
        guard let raw = allocFloats(bytes / 4 + 2 * cols) else { return nil }
        self.raw = raw
        data = UnsafeMutableRawPointer(raw).bindMemory(to: Int8.self, capacity: bytes)
        scales = raw + bytes / 4
        colSums = UnsafeMutableRawPointer(raw + bytes / 4 + cols).bindMemory(to: Int32.self, capacity: cols)
        data.initialize(repeating: 0, count: bytes)
        scales.initialize(repeating: 0, count: cols)
        colSums.initialize(repeating: 0, count: cols)
        let data = self.data, scales = self.scales, colSums = self.colSums, kp = self.kp
        parallelFor(panels) { j, _ in
            withUnsafeTemporaryAllocation(of: Int8.self, capacity: max(k, 1)) { q in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: max(k, 1)) { wide in
                    let panel = data + j * kp * 32
                    for col in 0..<min(32, n - j * 32) {
                        let o = j * 32 + col
                        let src = row(o).floats(k, scratch: wide.baseAddress!)
                        scales[o] = vidattn_quantize_row_s8(src, k, q.baseAddress!, 0)
                        var sum: Int32 = 0
                        for kk in 0..<k {
                            panel[vidattn_int8_panel_index(kk, col)] = q[kk]
                            sum += Int32(q[kk])
                        }
                        colSums[o] = sum
                    }
                }
            }
        }
    }

    deinit { freeFloats(raw) }

    @inline(__always) func panel(_ j: Int) -> UnsafePointer<Int8> { UnsafePointer(data + j * kp * 32) }

    /// The dequantized weights, [n, k] (what the int8 GEMM multiplies by).
    public func dequantized(into w: UnsafeMutablePointer<Float>) {
        for o in 0..<n {
            let panel = data + (o / 32) * kp * 32, col = o % 32, s = scales[o]
            for kk in 0..<k { w[o * k + kk] = Float(panel[vidattn_int8_panel_index(kk, col)]) * s }
        }
    }

    /// Bytes held (weights, scales and sums).
    public var bytes: Int { panels * 32 * (kp + 8) }
}

/// y = dequantize(quantize(x)) for a rows × cols block (row stride ldx; y dense): the
/// activation rounding of the int8 path, for the emulation and the tests.
public func fakeQuantizeRows(
    rows: Int, cols: Int, _ x: UnsafePointer<Float>, _ ldx: Int,
    into y: UnsafeMutablePointer<Float>, threads: Int = Threads.count
) {
    parallelFor(rows, threads: threads) { r, _ in
        withUnsafeTemporaryAllocation(of: Int8.self, capacity: max(cols, 1)) { q in
            let s = vidattn_quantize_row_s8(x + r * ldx, cols, q.baseAddress!, 0)
            for j in 0..<cols { y[r * cols + j] = Float(q[j]) * s }
        }
    }
}

// MARK: - GEMM

/// Which 32×32 block kernel runs: the detected unit, or the scalar int8 reference.
public enum Int8Kernel: Sendable {
    case amx, avx512vnni, reference

    /// The kernel new calls use: the reference under VIDATTN_REFERENCE, else the detected unit's.
    public static var current: Int8Kernel {
        if KernelMode.useReference { return .reference }
        switch Int8Unit.detected {
        case .amx: return .amx
        case .avx512vnni: return .avx512vnni
        case .emulated: return .reference
        }
    }
}

/// C = act(dequant(quant(A) · B) + bias) · multiplier + residual (+ C when accumulate), with A
/// [m, k] fp32 quantized per row as it is packed and B the packed int8 weight. Returns false
/// (C untouched) if scratch memory cannot be had.
public func gemmInt8(
    m: Int, a: UnsafePointer<Float>, lda: Int, packedB: PackedInt8B, accumulate: Bool,
    c: UnsafeMutablePointer<Float>, ldc: Int, epilogue: GemmEpilogue = .none,
    kernel: Int8Kernel = .current, threads: Int = Threads.count
) -> Bool {
    gemmInt8(
        m: m, a: .rows(a, lda), packedB: packedB, accumulate: accumulate, c: .rows(c, ldc), epilogue: epilogue,
        kernel: kernel, threads: threads)
}

/// The quantized A of an int8 GEMM: `ceil(m/32)` strips of 32 rows × kp int8 values (kp = K
/// rounded up to 64) in the block layout of the kernels (ckernels.h; uint8 = q + 128 for VNNI,
/// so strips are for one kernel), strip s at s · 32 · kp bytes, then one scale per row (rows
/// past m: 0 and zero values). One GEMM can write them for the next whose K is its N
/// (`gemmInt8(m:a:lda:packedB:epilogue:intoStrips:)`), which reads them without quantizing.
public struct Int8Strips {
    /// The strips' values and the row scales.
    public let values: UnsafeMutablePointer<Int8>, scales: UnsafeMutablePointer<Float>

    /// Floats of memory that strips of `m` rows of K = `k` take.
    public static func floats(rows m: Int, k: Int) -> Int {
        let strips = (m + 31) / 32
        return strips * 32 * (max(64, (k + 63) / 64 * 64) / 4 + 1)
    }

    /// Strips laid out in `memory` (`floats(rows: m, k: k)` floats).
    public init(_ memory: UnsafeMutablePointer<Float>, rows m: Int, k: Int) {
        let strips = (m + 31) / 32, kp = max(64, (k + 63) / 64 * 64)
        values = UnsafeMutableRawPointer(memory).bindMemory(to: Int8.self, capacity: strips * 32 * kp)
        scales = memory + strips * 32 * kp / 4
    }
}

/// Whether the int8 GEMM of `m` rows by `packedB` can write its output as strips: each work
/// item then has to hold whole rows (all N columns), which it does when the weight fits the
/// L2 share its blocking gives one chunk of B panels.
public func int8WritesWholeRows(m: Int, packedB: PackedInt8B, threads: Int = Threads.count) -> Bool {
    ReducedBlocking(m: m, panels: packedB.panels, kp: packedB.kp, elemBytes: 1, threads: threads).chunks == 1
}

/// act(dequant(quant(A) · B) + bias) · multiplier + residual written as the quantized A strips
/// of a following int8 GEMM whose K is this one's N: each strip's 32 rows, complete, go through
/// the epilogue in a per-worker buffer and are quantized from there (from L2, where the hidden
/// activations would otherwise be written out and read back for the next GEMM's quantization).
/// The same bits as writing C and letting the next GEMM quantize it. Needs
/// `int8WritesWholeRows(m:packedB:threads:)` (precondition); returns false when scratch memory
/// cannot be had.
public func gemmInt8(
    m: Int, a: UnsafePointer<Float>, lda: Int, packedB: PackedInt8B, epilogue: GemmEpilogue = .none,
    intoStrips strips: Int8Strips, kernel: Int8Kernel = .current, threads: Int = Threads.count
) -> Bool {
    gemmInt8(
        m: m, a: .rows(a, lda), packedB: packedB, accumulate: false, c: .strips(strips), epilogue: epilogue,
        kernel: kernel, threads: threads)
}

/// C = act(dequant(A · B) + bias) · multiplier + residual (+ C when accumulate) with A given as
/// quantized strips (`Int8Strips` of m rows and K = packedB.k, written for the same kernel).
public func gemmInt8(
    m: Int, strips: Int8Strips, packedB: PackedInt8B, accumulate: Bool, c: UnsafeMutablePointer<Float>,
    ldc: Int, epilogue: GemmEpilogue = .none, kernel: Int8Kernel = .current, threads: Int = Threads.count
) -> Bool {
    gemmInt8(
        m: m, a: .strips(strips), packedB: packedB, accumulate: accumulate, c: .rows(c, ldc), epilogue: epilogue,
        kernel: kernel, threads: threads)
}

/// Where an int8 GEMM reads A from (fp32 rows, quantized as they are packed, or ready strips) and
/// where it writes C (fp32 rows, or the next GEMM's strips).
enum Int8Operand {
    case rows(UnsafePointer<Float>, Int)
    case strips(Int8Strips)
}

enum Int8Result {
    case rows(UnsafeMutablePointer<Float>, Int)
    case strips(Int8Strips)
}

func gemmInt8(
    m: Int, a input: Int8Operand, packedB: PackedInt8B, accumulate: Bool, c output: Int8Result,
    epilogue: GemmEpilogue, kernel: Int8Kernel, threads: Int
) -> Bool {
    let n = packedB.n, k = packedB.k, kp = packedB.kp, panels = packedB.panels
    if m == 0 || n == 0 { return true }
    FlopCounter.addGemm(2 * m * n * k)
    let b = ReducedBlocking(m: m, panels: panels, kp: kp, elemBytes: 1, threads: threads)
    // (Constants from here on: a `var` captured by the closures below costs a dynamic
    // exclusivity check per read, 7 % of a small-K GEMM in perf.)
    let given: Int8Strips?
    if case .strips(let st) = input { given = st } else { given = nil }
    let outStrips: Int8Strips?, cRows: UnsafeMutablePointer<Float>?, ldc: Int
    switch output {
    case .rows(let p, let ld): cRows = p; ldc = ld; outStrips = nil
    case .strips(let st):
        precondition(b.chunks == 1 && !accumulate, "int8 strips output needs whole rows per item")
        outStrips = st; ldc = panels * 32; cRows = nil
    }
    // Scratch (floats): A as int8 strips and the row scales unless given; per worker a 32×32
    // int32 slot for each panel of a chunk, and 32 fp32 rows of C when C goes to strips.
    let aWords = given == nil ? b.strips * 32 * kp / 4 + b.strips * 32 : 0
    let slotWords = b.chunkPanels * 1024, rowWords = outStrips == nil ? 0 : 32 * ldc
    guard let scratch = ScratchPool.shared.take(max(1, aWords + b.workers * (slotWords + rowWords))) else {
        return false
    }
    defer { ScratchPool.shared.give(scratch) }
    let ab: UnsafeMutablePointer<Int8>, rowScale: UnsafeMutablePointer<Float>
    if let given {
        ab = given.values; rowScale = given.scales
    } else {
        ab = UnsafeMutableRawPointer(scratch.p).bindMemory(to: Int8.self, capacity: b.strips * 32 * kp)
        rowScale = scratch.p + b.strips * 32 * kp / 4
    }
    let slots = UnsafeMutableRawPointer(scratch.p + aWords).bindMemory(
        to: Int32.self, capacity: b.workers * slotWords)
    let rowBuffers = scratch.p + aWords + b.workers * slotWords
    // Row i0 of the strip's fp32 output: in C, or in the worker's row buffer.
    @inline(__always) func cStrip(_ s: Int, _ w: Int) -> UnsafeMutablePointer<Float> {
        if let cRows { return cRows + s * 32 * ldc }
        return rowBuffers + w * rowWords
    }
    let flip: Int32 = kernel == .avx512vnni ? 1 : 0
    let pad: Int8 = flip != 0 ? -128 : 0
    let k4 = (k + 3) / 4 * 4
    let epilogueTile = FP32Kernels.selected.epilogueTile
    // On VNNI a block's last K chunk is finished in the kernel (`vidattn_avx512vnni_u8s8_32x32_dq`):
    // dequantized from the registers into C with the bias added unless C is added to, so no
    // int32 block goes through memory and a bias-only epilogue has no pass of its own. Measured
    // on Emerald Rapids without AMX (2 threads, forwards alternating with the int32 blocks and
    // the separate dequantization in one process): 0.91–0.96 of the time of TimeSformer-B int8,
    // 0.94–0.95 of swin3d_t int8.
    let fused = kernel == .avx512vnni
    let bias = fused && !accumulate ? epilogue.bias : nil
    var restEpilogue = epilogue
    if bias != nil { restEpilogue.bias = nil }
    let rest = restEpilogue
    // Rows of `x` (row stride ld, 32 rows from global row i0, mr of them real) quantized into
    // strip `dst` (each 16-row half of a 64-value block a contiguous 1 KiB tile); rows past mr
    // get padding (0x80 in the VNNI form) and scale 0.
    @inline(__always) func quantizeStrip(
        _ x: UnsafePointer<Float>, _ ld: Int, _ mr: Int, _ kx: Int, _ kpx: Int,
        _ dst: UnsafeMutablePointer<Int8>, _ scales: UnsafeMutablePointer<Float>
    ) {
        for r in 0..<32 {
            if r < mr {
                scales[r] = vidattn_quantize_row_s8_blocks(x + r * ld, kx, kpx, dst + r * 64, 2048, flip)
            } else {
                scales[r] = 0
                for kb in 0..<(kpx / 64) { (dst + kb * 2048 + r * 64).initialize(repeating: pad, count: 64) }
            }
        }
    }
    runReducedGemm(
        b, amx: kernel == .amx,
        pack: { s, _ in
            guard given == nil, case .rows(let a, let lda) = input else { return }
            quantizeStrip(a + s * 32 * lda, lda, min(32, m - s * 32), k, kp, ab + s * 32 * kp, rowScale + s * 32)
        },
        block: { s, j, k0, kLen, first, slot, w in
            let out = slots + w * slotWords + slot * 1024
            let acc: Int32 = first ? 0 : 1
            let aS = UnsafePointer(ab + s * 32 * kp + k0 * 32), bP = packedB.panel(j) + k0 * 32
            // VNNI stops at the last group of four real K values (the padding to 64 multiplies
            // zeros; 96 → 128 was a quarter of Swin's stage-1 products).
            let kq = min(kLen, k4 - k0)
            if fused && k0 + kLen == kp {
                let i0 = s * 32
                UnsafeRawPointer(aS).withMemoryRebound(to: UInt8.self, capacity: 32 * kLen) {
                    vidattn_avx512vnni_u8s8_32x32_dq(
                        kq, $0, bP, first ? nil : UnsafePointer(out), cStrip(s, w) + j * 32, ldc,
                        Int32(min(32, m - i0)), Int32(min(32, n - j * 32)), rowScale + i0, packedB.scales + j * 32,
                        packedB.colSums + j * 32, bias.map { $0 + j * 32 }, accumulate ? 1 : 0)
                }
                return
            }
            switch kernel {
            case .amx: vidattn_amx_s8_32x32(kLen, aS, bP, out, 32, acc)
            case .avx512vnni:
                UnsafeRawPointer(aS).withMemoryRebound(to: UInt8.self, capacity: 32 * kLen) {
                    vidattn_avx512vnni_u8s8_32x32(kq, $0, bP, out, 32, acc)
                }
            case .reference: vidattn_s8_32x32_ref(kLen, aS, bP, out, 32, acc)
            }
        },
        finish: { s, pr, w in
            let i0 = s * 32, mr = min(32, m - i0), j0 = pr.lowerBound * 32, j1 = min(n, pr.upperBound * 32)
            let cs = cStrip(s, w)
            for j in pr where !fused {
                let nr = min(32, n - j * 32)
                vidattn_dequant_i32_32x32(
                    slots + w * slotWords + (j - pr.lowerBound) * 1024, cs + j * 32, ldc,
                    Int32(mr), Int32(nr), rowScale + i0, packedB.scales + j * 32,
                    flip != 0 ? packedB.colSums + j * 32 : nil, accumulate ? 1 : 0)
            }
            if !rest.isNone {
                epilogueTile(rest, cs + j0, ldc, i0, mr, j0, j1 - j0)
            }
            if let outStrips {
                // The strip's rows are complete (one chunk holds every panel): quantized for the
                // next GEMM while they are in L2.
                let nextKp = max(64, (n + 63) / 64 * 64)
                quantizeStrip(cs, ldc, mr, n, nextKp, outStrips.values + s * 32 * nextKp, outStrips.scales + i0)
            }
        })
    return true
}
