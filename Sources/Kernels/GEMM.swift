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
// A block into 12-row panels, and sweeps the 32-column panels of B, keeping one
// B panel in L1 while it walks the A panels.

/// Cache blocking of the packed SGEMM, derived from this CPU's cache sizes at first use
/// (CPUID via sysconf), overridable for experiments (`VIDATTN_GEMM_KC`, `VIDATTN_GEMM_MC`)
/// and settable by benchmarks. Changing it affects later calls; `PackedB` keeps the K
/// block it was packed with.
public struct GemmBlocking: Sendable, Equatable {
    /// Most K steps per block. A K×32 B panel (4·32·KC bytes) is reused across every
    /// 12-row A panel of a row block, so it should stay in L1 with room for the A stream.
    public var kcMax: Int
    /// Most rows per row block: its packed A block (4·MC·KC bytes) stays in L2 while the
    /// B panels stream past it, and it is the unit of work handed to a thread.
    public var mcMax: Int
    /// Most B panels (32 columns each) for which A is read in place rather than packed.
    public var directAPanels: Int

    public init(kcMax: Int, mcMax: Int, directAPanels: Int = 4) {
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

/// Extra work fused into the GEMM after the last K block of each tile.
public struct GemmEpilogue {
    public var bias: UnsafePointer<Float>?
    public var activation: Activation
    public var residual: UnsafePointer<Float>?
    public var ldResidual: Int
    /// Element-wise factor [M, N] (row stride ldMultiplier), applied after the activation:
    /// a gated unit (GEGLU's x · gelu(gate)) as one GEMM for x with the gate as multiplier.
    public var multiplier: UnsafePointer<Float>?
    public var ldMultiplier: Int

    public init(bias: UnsafePointer<Float>? = nil, activation: Activation = .none,
                residual: UnsafePointer<Float>? = nil, ldResidual: Int = 0,
                multiplier: UnsafePointer<Float>? = nil, ldMultiplier: Int = 0) {
        self.bias = bias; self.activation = activation
        self.residual = residual; self.ldResidual = ldResidual
        self.multiplier = multiplier; self.ldMultiplier = ldMultiplier
    }
    public static var none: GemmEpilogue { GemmEpilogue() }
    var isNone: Bool { bias == nil && activation == .none && residual == nil && multiplier == nil }
}

/// op(B) packed into the micro-kernel's panel layout. Build one per weight
/// matrix at load time and reuse it across calls.
///
/// Layout: for each K block starting at p0 (length kc), for each 32-column
/// panel j: kc × 32 floats, at offset p0 · nPadded + j · kc · 32. Columns past
/// N are zero.
public final class PackedB: @unchecked Sendable {
    public let k: Int
    public let n: Int
    public let nPadded: Int
    /// K block length of the panels.
    public let kc: Int
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
        parallelFor(kBlocks * panels) { item, _ in
            let pb = item / panels, j = item % panels
            let p0 = pb * kcBlock, kc = min(kcBlock, k - p0)
            packBPanel(transposed, b, ldb, p0, kc, j * NR, n, data + p0 * nPadded + j * kc * NR)
        }
    }

    deinit {
        if let pooled { ScratchPool.shared.give(pooled) } else { freeFloats(data) }
    }

    @inline(__always) func panel(_ p0: Int, _ kc: Int, _ j: Int) -> UnsafePointer<Float> {
        UnsafePointer(data + p0 * nPadded + j * kc * NR)
    }
}

@inline(__always)
func packBPanel(_ trans: Bool, _ b: UnsafePointer<Float>, _ ldb: Int, _ p0: Int, _ kc: Int,
                _ j0: Int, _ n: Int, _ dst: UnsafeMutablePointer<Float>) {
    let nr = min(NR, n - j0)
    if !trans {
        for kk in 0..<kc {
            let src = b + (p0 + kk) * ldb + j0, d = dst + kk * NR
            if nr == NR {
                vstore(vload(src), d); vstore(vload(src + 16), d + 16)
            } else {
                for j in 0..<nr { d[j] = src[j] }
                for j in nr..<NR { d[j] = 0 }
            }
        }
    } else {
        // 16×16 block transposes, then the ragged edges one element at a time.
        let src = b + j0 * ldb + p0
        let kFull = kc / 16 * 16, jFull = nr / 16 * 16
        for jb in stride(from: 0, to: jFull, by: 16) {
            for kb in stride(from: 0, to: kFull, by: 16) {
                transpose16x16(src + jb * ldb + kb, ldb, dst + kb * NR + jb, NR)
            }
        }
        for j in 0..<nr {
            let row = src + j * ldb
            let kStart = j < jFull ? kFull : 0
            for kk in kStart..<kc { dst[kk * NR + j] = row[kk] }
        }
        if nr < NR { for kk in 0..<kc { for j in nr..<NR { dst[kk * NR + j] = 0 } } }
    }
}

/// Packs rows i0..<i0+mc, columns p0..<p0+kc of op(A) into 12-row panels
/// (k-major, rows past M zero).
@inline(__always)
func packABlock(_ trans: Bool, _ a: UnsafePointer<Float>, _ lda: Int, _ i0: Int, _ mc: Int,
                _ p0: Int, _ kc: Int, _ dst: UnsafeMutablePointer<Float>) {
    var r0 = 0
    while r0 < mc {
        let mr = min(MR, mc - r0)
        let d = dst + r0 * kc
        if !trans {
            for r in 0..<mr {
                let src = a + (i0 + r0 + r) * lda + p0
                for kk in 0..<kc { d[kk * MR + r] = src[kk] }
            }
        } else {
            for kk in 0..<kc {
                let src = a + (p0 + kk) * lda + i0 + r0
                for r in 0..<mr { d[kk * MR + r] = src[r] }
            }
        }
        if mr < MR { for kk in 0..<kc { for r in mr..<MR { d[kk * MR + r] = 0 } } }
        r0 += MR
    }
}

/// C = act(alpha·op(A)·op(B) + beta·C + bias) + residual, with op(B) packed.
/// Returns false (C untouched) if scratch memory cannot be allocated.
public func sgemm(transA: Bool, m: Int, k: Int, alpha: Float,
                  a: UnsafePointer<Float>, lda: Int, packedB: PackedB, beta: Float,
                  c: UnsafeMutablePointer<Float>, ldc: Int,
                  epilogue: GemmEpilogue = .none, threads: Int = Threads.count) -> Bool {
    let n = packedB.n
    if m == 0 || n == 0 { return true }
    FlopCounter.addGemm(2 * m * n * k)
    if k == 0 {
        // No product: C = act(beta·C + bias) + residual.
        for i in 0..<m {
            let row = c + i * ldc
            for j in 0..<n { row[j] = beta == 0 ? 0 : beta * row[j] }
            applyEpilogue(epilogue, row, i, 0, n)
        }
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
    let wantItems = threads > 1 ? 4 * threads : 1
    // Rows are split first (each item then packs its A rows once and sweeps its B panels);
    // columns only when there are too few 12-row panels to go round.
    var mBlocks = min(rowPanels, max((rowPanels * MR + blocking.mcMax - 1) / blocking.mcMax, wantItems))
    var nChunks = 1
    if mBlocks < wantItems { nChunks = min(panels, (wantItems + mBlocks - 1) / mBlocks) }
    let MC = (rowPanels + mBlocks - 1) / mBlocks * MR
    mBlocks = (rowPanels * MR + MC - 1) / MC
    let items = mBlocks * nChunks
    let workers = min(threads, items)
    // With few B panels a packed A block would serve few tiles; read A in place.
    let directA = !transA && panels <= blocking.directAPanels
    guard let aBuf = ScratchPool.shared.take(workers * MC * KC) else { return false }
    defer { ScratchPool.shared.give(aBuf) }
    let aScratch = aBuf.p

    parallelDynamic(items, threads: workers) { item, worker in
        let mi = item / nChunks, nc = item % nChunks
        let rowLo = mi * MC, rowHi = min(m, (mi + 1) * MC)
        let jp0 = nc * panels / nChunks, jp1 = (nc + 1) * panels / nChunks
        let ap = aScratch + worker * MC * KC
        var i0 = rowLo
        while i0 < rowHi {
            let mc = min(MC, rowHi - i0)
            let fullRows = directA ? mc / MR * MR : 0   // rows read in place, not packed
            for pb in 0..<kBlocks {
                let p0 = pb * KC, kc = min(KC, k - p0)
                if mc > fullRows { packABlock(transA, a, lda, i0 + fullRows, mc - fullRows, p0, kc, ap + fullRows * kc) }
                let blockBeta: Float = pb == 0 ? beta : 1
                let last = pb == kBlocks - 1
                for jp in jp0..<jp1 {
                    let j0 = jp * NR, nr = min(NR, n - j0)
                    let bpanel = packedB.panel(p0, kc, jp)
                    var r0 = 0
                    while r0 < mc {
                        let mr = min(MR, mc - r0)
                        let cp = c + (i0 + r0) * ldc + j0
                        if r0 < fullRows && nr == NR {
                            microKernel12x32RowA(kc, a + (i0 + r0) * lda + p0, lda, bpanel, NR, cp, ldc, alpha, blockBeta)
                        } else if r0 < fullRows {   // ragged N edge: this panel packed on its own
                            packABlock(false, a, lda, i0 + r0, MR, p0, kc, ap + r0 * kc)
                            microKernelPartial(kc, mr, nr, ap + r0 * kc, MR, bpanel, NR, cp, ldc, alpha, blockBeta)
                        } else if mr == MR && nr == NR {
                            microKernel12x32(kc, ap + r0 * kc, MR, bpanel, NR, cp, ldc, alpha, blockBeta)
                        } else {
                            microKernelPartial(kc, mr, nr, ap + r0 * kc, MR, bpanel, NR, cp, ldc, alpha, blockBeta)
                        }
                        if last && !epilogue.isNone {
                            for r in 0..<mr { applyEpilogue(epilogue, cp + r * ldc, i0 + r0 + r, j0, nr) }
                        }
                        r0 += MR
                    }
                }
            }
            i0 += mc
        }
    }
    return true
}

/// C = act(alpha·op(A)·op(B) + beta·C + bias) + residual (packs B per call).
public func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                  a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                  beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int,
                  epilogue: GemmEpilogue = .none, threads: Int = Threads.count) -> Bool {
    if KernelMode.useReference {
        sgemmReference(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                       b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, epilogue: epilogue)
        return true
    }
    guard let pb = PackedB(transposed: transB, k: k, n: n, b: b, ldb: ldb, scratch: true) else { return false }
    return sgemm(transA: transA, m: m, k: k, alpha: alpha, a: a, lda: lda, packedB: pb, beta: beta,
                 c: c, ldc: ldc, epilogue: epilogue, threads: threads)
}

/// Applies bias, activation and residual to columns j0..<j0+nr of row i.
@inline(__always)
func applyEpilogue(_ e: GemmEpilogue, _ row: UnsafeMutablePointer<Float>, _ i: Int, _ j0: Int, _ nr: Int) {
    var j = 0
    while j < nr {
        let w = min(16, nr - j)
        var v = w == 16 ? vload(row + j) : vloadPartial(row + j, w)
        if let bias = e.bias { v += w == 16 ? vload(bias + j0 + j) : vloadPartial(bias + j0 + j, w) }
        v = activate(v, e.activation)
        if let mul = e.multiplier {
            let mp = mul + i * e.ldMultiplier + j0 + j
            v *= w == 16 ? vload(mp) : vloadPartial(mp, w)
        }
        if let res = e.residual {
            let rp = res + i * e.ldResidual + j0 + j
            v += w == 16 ? vload(rp) : vloadPartial(rp, w)
        }
        if w == 16 { vstore(v, row + j) } else { vstorePartial(v, row + j, w) }
        j += 16
    }
}

/// Scalar reference SGEMM (fp32 accumulation in k order), same contract.
public func sgemmReference(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                           a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                           beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int,
                           epilogue: GemmEpilogue = .none) {
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
public func sgemmPackedReference(m: Int, a: UnsafePointer<Float>, lda: Int, packedB pb: PackedB, beta: Float,
                                 c: UnsafeMutablePointer<Float>, ldc: Int, epilogue: GemmEpilogue = .none) {
    let k = pb.k, n = pb.n, kc = pb.kc
    FlopCounter.addGemm(2 * m * n * k)
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
