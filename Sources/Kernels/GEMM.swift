import Synchronization

// Packed single-precision GEMM.
//
//   C = act(alpha · op(A) · op(B) + beta · C + bias) · multiplier + residual
//
// Row-major storage throughout. op(A) is M×K (A stored M×K, or K×M when
// transposed); op(B) is K×N (B stored K×N, or N×K when transposed, the layout
// of PyTorch `Linear` weights). bias has N entries (one per column of C).
//
// Blocking: B is packed once per call (or once per model, `PackedB`) into
// KC×32 panels; each worker owns blocks of MC rows of C, packs the matching
// A block into 12-row panels (kept in L2), and sweeps the 32-column panels of B,
// each used by every A panel of the block in turn. With K blocks of up to 1024 a B
// panel (up to 128 KB) does not fit L1: the micro-kernel streams both panels from L2
// with software prefetch (Hot/MicroKernel.swift). Work items are row blocks times column
// chunks of B panels, cut by `gemmSplit` to move the fewest bytes; with at most 8 B panels
// (N ≤ 256) an untransposed A is read in place, unpacked (unless rounded to bf16 as packed).

/// Cache blocking of the packed SGEMM, derived from this CPU's cache sizes at first use
/// (CPUID via sysconf), overridable for experiments (`VIDATTN_GEMM_KC`, `VIDATTN_GEMM_MC`, `VIDATTN_GEMM_DIRECT_A`)
/// and settable by benchmarks. Changing it affects later calls; `PackedB` keeps the K
/// block it was packed with.
public struct GemmBlocking: Sendable, Equatable {
    /// Most K steps per block. A K×32 B panel (4·32·KC bytes) is reused across every
    /// 12-row A panel of a row block, so it should stay in L1 with room for the A stream.
    public var kcMax: Int
    /// Most rows per row block: its packed A block (4·MC·KC bytes) stays in L2 while the
    /// B panels stream past it, and it is the unit of work handed to a thread.
    public var mcMax: Int
    /// Most B panels (32 columns each) for which A is read in place rather than packed. 8 (it was
    /// 4): at N = 192 (6 panels) a packed A block served too few tiles to repay its packing.
    /// Measured on Emerald Rapids (`bench/ab.py --gemm`, 2 threads, 15 rounds):
    /// 6272×768→192 0.928, 6272×384→192 0.915 of the time, 25088×384→96 0.992.
    public var directAPanels: Int

    /// A blocking from explicit limits (rounded to whole micro-kernel rows, K at least 16).
    public init(kcMax: Int, mcMax: Int, directAPanels: Int = 8) {
        self.kcMax = max(16, kcMax); self.mcMax = max(MR, mcMax / MR * MR); self.directAPanels = directAPanels
    }

    /// The blocking for caches of `l1d` and `l2` bytes (per core). Measured on Sapphire
    /// Rapids (BENCHMARKS.md, `VIDATTN_DEMO_AB`): K blocks below 768 lose 5–25% (C is
    /// reloaded per block), and the A block wants most of L2 (MC 480 beat 240 by 5–10% and
    /// 60 by 10–16% at K = 768); beyond that it is flat.
    public static func forCaches(l1d: Int, l2: Int) -> GemmBlocking {
        let l2b = l2 > 0 ? l2 : 1 << 20
        let kc = 1024
        // A block in about three quarters of L2 at K = 768 (1 MiB L2 -> 252 rows, 2 MiB -> 480).
        let mc = min(480, max(48, (l2b * 3 / 4) / (4 * 768) / MR * MR))
        return GemmBlocking(kcMax: kc, mcMax: mc)
    }

    /// What this machine uses unless a benchmark sets another.
    public static let detected: GemmBlocking = {
        let c = CPU.caches
        var b = forCaches(l1d: c.l1d, l2: c.l2)
        if let s = getenvString("VIDATTN_GEMM_KC"), let v = Int(s), v > 0 { b.kcMax = v }
        if let s = getenvString("VIDATTN_GEMM_MC"), let v = Int(s), v > 0 { b.mcMax = max(MR, v / MR * MR) }
        if let s = getenvString("VIDATTN_GEMM_DIRECT_A"), let v = Int(s), v >= 0 { b.directAPanels = v }
        return b
    }()

    private static let _current = Mutex<GemmBlocking>(detected)
    /// The blocking new calls use (thread-safe).
    public static var current: GemmBlocking {
        get { _current.withLock { $0 } }
        set { _current.withLock { $0 = newValue } }
    }

    /// K block length for a K of `k`: K split into equal blocks of at most kcMax.
    @inline(__always) func kc(_ k: Int) -> Int {
        let blocks = max(1, (k + kcMax - 1) / kcMax)
        return max(1, (k + blocks - 1) / blocks)
    }
}

/// op(B) packed into the micro-kernel's panel layout. Build one per weight
/// matrix at load time and reuse it across calls.
///
/// Layout: for each K block starting at p0 (length kc), for each 32-column
/// panel j: kc × 32 floats, at offset p0 · nPadded + j · kc · 32. Columns past
/// N are zero.
public final class PackedB: @unchecked Sendable {
    /// Reduction length of op(B).
    public let k: Int
    /// Columns of op(B).
    public let n: Int
    /// N rounded up to whole 32-column panels.
    public let nPadded: Int
    /// K block length of the panels.
    public let kc: Int
    /// The packed panels (nPadded · K floats).
    public let data: UnsafeMutablePointer<Float>

    private let pooled: (p: UnsafeMutablePointer<Float>, count: Int)?

    /// Packs op(B) (K×N). Returns nil if the buffer cannot be allocated.
    /// `scratch`: borrow the memory from the scratch pool (for per-call packing).
    public init?(transposed: Bool, k: Int, n: Int, b: UnsafePointer<Float>, ldb: Int, scratch: Bool = false) {
        precondition(k >= 0 && n >= 0)
        self.k = k; self.n = n
        self.nPadded = (n + NR - 1) / NR * NR
        let kcBlock = GemmBlocking.current.kc(k)
        self.kc = kcBlock
        let (count, overflow) = k.multipliedReportingOverflow(by: nPadded)
        if overflow { return nil }
        if scratch {
            guard let buf = ScratchPool.shared.take(max(count, 1)) else { return nil }
            pooled = buf; data = buf.p
        } else {
            guard let p = allocFloats(max(count, 1)) else { return nil }
            pooled = nil; data = p
        }
        let panels = nPadded / NR
        let kBlocks = (k + kcBlock - 1) / kcBlock
        let data = self.data, nPadded = self.nPadded
        let pack = FP32Kernels.selected.packBPanel
        parallelFor(kBlocks * panels) { item, _ in
            let pb = item / panels, j = item % panels
            let p0 = pb * kcBlock, kc = min(kcBlock, k - p0)
            pack(transposed, b, ldb, p0, kc, j * NR, n, data + p0 * nPadded + j * kc * NR)
        }
    }

    deinit {
        if let pooled { ScratchPool.shared.give(pooled) } else { freeFloats(data) }
    }

    @inline(__always) func panel(_ p0: Int, _ kc: Int, _ j: Int) -> UnsafePointer<Float> {
        UnsafePointer(data + p0 * nPadded + j * kc * NR)
    }
}

/// How a GEMM of `rowPanels` 12-row panels and `panels` 32-column B panels (reduction length
/// `k`) is cut into work items: `mBlocks` row blocks (each of at most `mcMax` rows) times
/// `nChunks` column chunks. One thread takes every row block whole. With more threads there are
/// at least four items per thread (pulled from a shared counter, so that a slower core takes
/// fewer), and among the cuts that give that many, the one that moves the fewest bytes: every
/// row block streams its chunk of packed B, all chunks together the whole of B (k·32·panels
/// floats), and every column chunk packs the A rows of its block again (m·k floats, weighted
/// twice: read, transposed and written). Rows first was the rule before; it streamed B once per
/// row block, 8 times at 392×768→2304 where A is 1.2 MB and B 7 MB. Measured on Emerald Rapids
/// (`bench/ab.py --gemm`, 2 threads, 15 rounds): 392×768→2304 0.965, 392×3072→768 0.909 of the
/// time, 1568–1576 × 384–768 → 768–2304 0.99–1.03 (noise).
public func gemmSplit(rowPanels: Int, panels: Int, k: Int, threads: Int, mcMax: Int) -> (mBlocks: Int, nChunks: Int) {
    let minRowBlocks = min(rowPanels, max(1, (rowPanels * MR + mcMax - 1) / mcMax))
    if threads <= 1 { return (minRowBlocks, 1) }
    let want = 4 * threads
    let need = min(want, rowPanels * panels)
    let aFloats = Double(rowPanels * MR * k), bFloats = Double(panels * NR * k)
    var best = (mBlocks: min(rowPanels, max(minRowBlocks, want)), nChunks: 1)
    var bestCost = Double.infinity
    for nc in 1...max(1, min(panels, want)) {
        let mb = min(rowPanels, max(minRowBlocks, (want + nc - 1) / nc))
        if mb * nc < need { continue }
        let cost = Double(mb) * bFloats + 2 * Double(nc) * aFloats
        if cost < bestCost { bestCost = cost; best = (mb, nc) }
    }
    return best
}

/// C = act(alpha·op(A)·op(B) + beta·C + bias) + residual, with op(B) packed.
/// `roundA`: op(A)'s values rounded to bf16 (nearest even) as they are packed, the same bits as
/// rounding A first (`roundToBF16`) without the pass over A. Returns false (C untouched) if
/// scratch memory cannot be allocated.
public func sgemm(
    transA: Bool, m: Int, k: Int, alpha: Float,
    a: UnsafePointer<Float>, lda: Int, packedB: PackedB, beta: Float,
    c: UnsafeMutablePointer<Float>, ldc: Int,
    epilogue: GemmEpilogue = .none, roundA: Bool = false, threads: Int = Threads.count
) -> Bool {
    let n = packedB.n
    if m == 0 || n == 0 { return true }
    FlopCounter.addGemm(2 * m * n * k, fp32: true)
    if k == 0 {
        // No product: C = act(beta·C + bias) + residual.
        for i in 0..<m {
            let row = c + i * ldc
            for j in 0..<n { row[j] = beta == 0 ? 0 : beta * row[j] }
        }
        applyEpilogueTile(epilogue, c, ldc, 0, m, 0, n)
        return true
    }
    let blocking = GemmBlocking.current
    let KC = packedB.kc
    let panels = packedB.nPadded / NR
    let kBlocks = (k + KC - 1) / KC
    // Work items: row blocks of at most MC rows (whole 12-row panels, equal sizes) times
    // column chunks of B panels, enough items that threads pulling them one at a time from
    // a shared counter finish together even when one core runs slower than the other.
    let rowPanels = (m + MR - 1) / MR
    var (mBlocks, nChunks) = gemmSplit(
        rowPanels: rowPanels, panels: panels, k: k, threads: threads, mcMax: blocking.mcMax)
    let MC = (rowPanels + mBlocks - 1) / mBlocks * MR
    mBlocks = (rowPanels * MR + MC - 1) / MC
    let items = mBlocks * nChunks
    let workers = min(threads, items)
    // With few B panels a packed A block would serve few tiles; read A in place.
    let directA = !transA && !roundA && panels <= blocking.directAPanels
    guard let aBuf = ScratchPool.shared.take(workers * MC * KC) else { return false }
    defer { ScratchPool.shared.give(aBuf) }

    let plan = GemmPlan(
        transA: transA, m: m, n: n, k: k, alpha: alpha, beta: beta, a: a, lda: lda,
        c: c, ldc: ldc, epilogue: epilogue, b: UnsafePointer(packedB.data),
        nPadded: packedB.nPadded, kc: KC, mc: MC, nChunks: nChunks, kBlocks: kBlocks,
        panels: panels, directA: directA, aScratch: aBuf.p, roundA: roundA)
    let run = FP32Kernels.selected.gemmItem
    parallelDynamic(items, threads: workers) { item, worker in run(plan, item, worker) }
    return true
}

/// C = act(alpha·op(A)·op(B) + beta·C + bias) + residual (packs B per call).
public func sgemm(
    transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
    a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int,
    epilogue: GemmEpilogue = .none, threads: Int = Threads.count
) -> Bool {
    if KernelMode.useReference {
        sgemmReference(
            transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
            b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, epilogue: epilogue)
        return true
    }
    guard let pb = PackedB(transposed: transB, k: k, n: n, b: b, ldb: ldb, scratch: true) else { return false }
    return sgemm(
        transA: transA, m: m, k: k, alpha: alpha, a: a, lda: lda, packedB: pb, beta: beta,
        c: c, ldc: ldc, epilogue: epilogue, threads: threads)
}

/// Scalar reference SGEMM (fp32 accumulation in k order), same contract.
public func sgemmReference(
    transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
    a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int,
    epilogue: GemmEpilogue = .none
) {
    for i in 0..<m {
        for j in 0..<n {
            var s: Float = 0
            for p in 0..<k {
                let av = transA ? a[p * lda + i] : a[i * lda + p]
                let bv = transB ? b[j * ldb + p] : b[p * ldb + j]
                s += av * bv
            }
            var v = alpha * s + (beta == 0 ? 0 : beta * c[i * ldc + j])
            if let bias = epilogue.bias { v += bias[j] }
            v = activate(v, epilogue.activation)
            if let mp = epilogue.multiplier { v *= mp[i * epilogue.ldMultiplier + j] }
            if let r = epilogue.residual { v += r[i * epilogue.ldResidual + j] }
            c[i * ldc + j] = v
        }
    }
}

/// Scalar reference of the pre-packed SGEMM (fp32 accumulation in k order), reading B from
/// its packed panels: what `VIDATTN_REFERENCE=1` runs for every model Linear.
public func sgemmPackedReference(
    m: Int, a: UnsafePointer<Float>, lda: Int, packedB pb: PackedB, beta: Float,
    c: UnsafeMutablePointer<Float>, ldc: Int, epilogue: GemmEpilogue = .none
) {
    let k = pb.k, n = pb.n, kc = pb.kc
    FlopCounter.addGemm(2 * m * n * k, fp32: true)
    for i in 0..<m {
        for j in 0..<n {
            var s: Float = 0
            for p in 0..<k {
                let p0 = p / kc * kc, len = min(kc, k - p0)
                s += a[i * lda + p] * pb.panel(p0, len, j / NR)[(p - p0) * NR + j % NR]
            }
            var v = s + (beta == 0 ? 0 : beta * c[i * ldc + j])
            if let bias = epilogue.bias { v += bias[j] }
            v = activate(v, epilogue.activation)
            if let mp = epilogue.multiplier { v *= mp[i * epilogue.ldMultiplier + j] }
            if let r = epilogue.residual { v += r[i * epilogue.ldResidual + j] }
            c[i * ldc + j] = v
        }
    }
}
