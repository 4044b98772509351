import KernelTypes

// The tiles of fused attention (driver and scalar reference: Attention.swift).
// Scores are computed transposed (keys × queries) with the 12×32 micro-kernel, so
// the running max and sum of the online softmax are vertical vector operations and
// the probability block is already in the k-major layout the P·V product reads.

let attnQT = 96  // queries per tile (multiple of 12 and of 32)
let attnKB = 96  // keys per block (multiple of 12)

/// Scratch floats per worker of the tiled path, in the order attentionItems carves them.
public func attentionScratchPerWorker(_ a: AttentionArgs) -> Int {
    let l = AttentionLayout(a)
    return attnHeader + l.kSize + l.vSize + l.qSize + l.sSize + l.oSize + 3 * attnQT + 64
}

/// Floats at the start of a worker's scratch that record which (batch, head) its packed K and V
/// belong to (an Int; −1: none), so that a worker taking items one chunk at a time packs a head
/// again only when it changes.
let attnHeader = 16

/// Marks a worker's scratch as holding no packed head (before its first `attentionItems`).
public func resetAttentionScratch(_ scratch: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(scratch).storeBytes(of: -1, as: Int.self)
}

struct AttentionLayout {
    let qTiles: Int, dPad: Int, packV: Bool, kSize: Int, vSize: Int, qSize: Int, sSize: Int, oSize: Int
    init(_ a: AttentionArgs) {
        qTiles = (a.nq + attnQT - 1) / attnQT
        let nkPad = (a.nk + MR - 1) / MR * MR
        dPad = (a.d + NR - 1) / NR * NR
        // V is copied into dense rows of dPad floats once per head unless it already is so: for
        // d not a multiple of 32, and for rows read in place far apart (a qkv Linear's output,
        // 3 · 768 floats apart in ViViT-B: every key a page of its own). Measured on Emerald
        // Rapids (ViViT-B, 2 threads, forwards alternating in one process): 0.956 of the fp32
        // forward's time, 0.961 at int8.
        packV = a.d % NR != 0 || a.v.rowStride != dPad
        kSize = nkPad * a.d
        vSize = packV ? max(a.nk, 1) * dPad : 0
        qSize = attnQT * max(a.d, 1)
        sSize = attnKB * attnQT + 16
        oSize = attnQT * dPad
    }
}

/// Whether the items of `a` go head by head (see `attentionItem`): a bias shared by the batch,
/// as Video Swin's windows share one bias per head (dense with batch stride 0, or strips).
@inline(__always)
func attentionHeadMajor(_ a: AttentionArgs) -> Bool {
    (a.bias.map { $0.batchStride == 0 } ?? (a.stripBias != nil)) && a.heads > 1 && a.batch > 1
}

/// The item (b · heads + h) · qTiles + query tile taken i-th: i itself, or, head-major, every
/// batch entry of head 0 first, then of head 1, … so that one head's bias serves many windows
/// in a row from cache. Measured on Sapphire Rapids (swin3d_t, bf16): the bias loads were the
/// hottest spot of the scores pass when the heads alternated (3 heads × 614 KB at N = 392).
@inline(__always)
func attentionItem(_ i: Int, _ a: AttentionArgs, qTiles: Int, headMajor: Bool) -> Int {
    guard headMajor else { return i }
    let perHead = a.batch * qTiles
    let h = i / perHead, r = i % perHead
    return ((r / qTiles) * a.heads + h) * qTiles + r % qTiles
}

/// Tiled attention for items lo..<hi in the order of `attentionItem`
/// (item = (b · heads + h) · qTiles + query tile), with a scratch from `resetAttentionScratch`
/// or an earlier call (K and V are packed again only for another head).
func attentionItems(_ a: AttentionArgs, _ lo: Int, _ hi: Int, _ scratch: UnsafeMutablePointer<Float>) {
    let lay = AttentionLayout(a)
    let qTiles = lay.qTiles, dPad = lay.dPad, packV = lay.packV
    let kSize = lay.kSize, vSize = lay.vSize, qSize = lay.qSize, sSize = lay.sSize, oSize = lay.oSize
    let header = UnsafeMutableRawPointer(scratch)
    var p = scratch + attnHeader
    let kp = p; p += kSize
    let vp = p; p += vSize
    let qt = p; p += qSize
    let st = p; p += sSize
    let ob = p; p += oSize
    let m = p, l = p + attnQT, alpha = p + 2 * attnQT
    var packedHead = header.load(as: Int.self)
    defer { header.storeBytes(of: packedHead, as: Int.self) }
    let headMajor = attentionHeadMajor(a)
    for i in lo..<hi {
        let item = attentionItem(i, a, qTiles: qTiles, headMajor: headMajor)
        let bh = item / qTiles, qtile = item % qTiles
        let b = bh / a.heads, h = bh % a.heads
        if bh != packedHead {
            packKeys(a, b, h, kp)
            if packV { packValues(a, b, h, vp, dPad) }
            packedHead = bh
        }
        let vbase: UnsafePointer<Float>, ldv: Int
        if packV {
            vbase = UnsafePointer(vp); ldv = dPad
        } else {
            vbase = a.v.base + b * a.v.batchStride + h * a.v.headStride; ldv = a.v.rowStride
        }
        attentionTile(
            a, b, h, qtile * attnQT, UnsafePointer(kp), vbase, ldv, dPad,
            qt, st, ob, m, l, alpha)
    }
}

/// Short-sequence attention for (batch, head) items lo..<hi; scratch holds
/// ⌈nk/16⌉·16 + d + 32 floats.
func shortAttentionItems(_ a: AttentionArgs, _ lo: Int, _ hi: Int, _ scratch: UnsafeMutablePointer<Float>) {
    let sLen = (a.nk + 15) / 16 * 16
    let s = scratch, acc = s + sLen + 16
    for item in lo..<hi { shortHead(a, item / a.heads, item % a.heads, s, acc) }
}

/// K of head (b, h) into 12-key panels: panel p holds K[12p + r][i] at i·12 + r.
@inline(__always)
func packKeys(_ a: AttentionArgs, _ b: Int, _ h: Int, _ dst: UnsafeMutablePointer<Float>) {
    let base = a.k.base + b * a.k.batchStride + h * a.k.headStride
    var j0 = 0
    let d16 = a.d / 16 * 16
    while j0 < a.nk {
        let nr = min(MR, a.nk - j0)
        let d = dst + j0 * a.d
        let src = base + j0 * a.k.rowStride
        // Sixteen dimensions at a time through an in-register transpose, the rest one by one.
        // Measured on Emerald Rapids without AMX (swin3d_t int8, 2 threads, perf): the share of
        // the forward in `attentionItems`, where the packing is inlined, 6.1 % → 2.7 %.
        for i in stride(from: 0, to: d16, by: 16) { transposeIntoPanel12(src + i, a.k.rowStride, rows: nr, d + i * MR) }
        if d16 == a.d { j0 += MR; continue }
        for r in 0..<nr {
            let src = base + (j0 + r) * a.k.rowStride
            for i in d16..<a.d { d[i * MR + r] = src[i] }
        }
        if nr < MR { for i in d16..<a.d { for r in nr..<MR { d[i * MR + r] = 0 } } }
        j0 += MR
    }
}

/// V of head (b, h) into dense rows of dPad floats (zero-padded; see AttentionLayout.packV).
@inline(__always)
func packValues(_ a: AttentionArgs, _ b: Int, _ h: Int, _ dst: UnsafeMutablePointer<Float>, _ dPad: Int) {
    let base = a.v.base + b * a.v.batchStride + h * a.v.headStride
    for j in 0..<a.nk {
        let src = base + j * a.v.rowStride, d = dst + j * dPad
        for i in 0..<a.d { d[i] = src[i] }
        for i in a.d..<dPad { d[i] = 0 }
    }
}

/// Batch entry b's region labels, or nil when they are all equal and so penalise nothing (Swin's
/// windows away from the shifted edges: 49 of the 64 in swin3d_t's first stage at 16 × 224²).
@inline(__always)
func mixedRegionLabels(_ a: AttentionArgs, _ b: Int) -> UnsafePointer<UInt8>? {
    guard let all = a.regionLabels else { return nil }
    let lab = all + b * a.regionStride, first = lab[0]
    for i in 1..<max(a.nq, a.nk, 1) where lab[i] != first { return lab }
    return nil
}

/// Scores for key block [j0, j0+kv) into st (keys × 96 queries), with bias, region penalties
/// (`lab`: the batch entry's labels, see mixedRegionLabels) and mask applied; rows of masked keys
/// become −inf. Each 12-key panel takes its bias, penalties and mask right after its products,
/// while its rows are in L1.
@inline(__always)
func scoreBlock(
    _ a: AttentionArgs, _ b: Int, _ h: Int, _ q0: Int, _ qv: Int, _ j0: Int, _ kv: Int,
    _ kp: UnsafePointer<Float>, _ qt: UnsafePointer<Float>, _ st: UnsafeMutablePointer<Float>,
    _ lab: UnsafePointer<UInt8>?
) {
    // Only the 32-query panels holding a valid query (a sequence's last tile is often short:
    // 392 = 4 · 96 + 8, 197 = 2 · 96 + 5).
    let qPanels = (qv + NR - 1) / NR
    withUnsafeTemporaryAllocation(of: Vec.self, capacity: attnQT / 16) { ql in
        if let lab {
            // Query labels as float vectors once per block, then one compare per key row and run.
            for c in 0..<(attnQT / 16) {
                var v = Vec(repeating: -1)
                for l in 0..<16 where c * 16 + l < qv { v[l] = Float(lab[q0 + c * 16 + l]) }
                ql[c] = v
            }
        }
        // Strips go in as the products are stored; a dense bias, labels and mask after.
        let fused = a.bias == nil ? a.stripBias : nil
        let terms = ScoreTerms(b: b, h: h, q0: q0, qv: qv, j0: j0, lab: lab, ql: ql.baseAddress!)
        withUnsafeTemporaryAllocation(of: UnsafePointer<Float>.self, capacity: MR) { rows in
            let rp = rows.baseAddress!
            var r0 = 0
            while r0 < kv {
                let apanel = kp + (j0 + r0) * a.d
                if let sb = fused {
                    // Each key's strip row at the tile's first query (keys past the block: the last one's).
                    let valid = min(MR, kv - r0), at = sb.base + q0
                    sb.forEachRow(head: h, first: j0 + r0, count: valid) { r, row in rp[r] = at + row }
                    for r in valid..<MR { rp[r] = rp[valid - 1] }
                    for qp in 0..<qPanels {
                        microKernel12x32AddRows(
                            a.d, apanel, MR, qt + qp * NR * a.d, NR, st + r0 * attnQT + qp * NR, attnQT,
                            rows: UnsafePointer(rp), col: qp * NR)
                    }
                } else {
                    for qp in 0..<qPanels {
                        microKernel12x32Overwrite(
                            a.d, apanel, MR, qt + qp * NR * a.d, NR, st + r0 * attnQT + qp * NR, attnQT)
                    }
                }
                addScoreTerms(a, terms, r0, min(kv, r0 + MR), st)
                r0 += MR
            }
        }
    }
}

/// What a score block adds to its rows besides the products (see scoreBlock).
struct ScoreTerms {
    let b: Int, h: Int, q0: Int, qv: Int, j0: Int
    let lab: UnsafePointer<UInt8>?
    /// The query labels as float vectors (with `lab`).
    let ql: UnsafePointer<Vec>
}

/// A dense bias, region penalties and mask on key rows r0..<r1 of a score block (a strip bias
/// went in with the products, `microKernel12x32AddRows`).
@inline(__always)
func addScoreTerms(_ a: AttentionArgs, _ t: ScoreTerms, _ r0: Int, _ r1: Int, _ st: UnsafeMutablePointer<Float>) {
    let q0 = t.q0, qv = t.qv, j0 = t.j0
    // A key row's bias over the tile's queries, contiguous (key-major).
    @inline(__always) func addRow(_ r: Int, _ brow: UnsafePointer<Float>) {
        let row = st + r * attnQT
        var qi = 0
        while qi + 16 <= qv { vstore(vload(row + qi) + vload(brow + qi), row + qi); qi += 16 }
        while qi < qv { row[qi] += brow[qi]; qi += 1 }
    }
    if let bias = a.bias {
        let bb = bias.base + t.b * bias.batchStride + t.h * bias.headStride
        if a.biasKeyMajor {
            for r in r0..<r1 { addRow(r, bb + (j0 + r) * bias.rowStride + q0) }
        } else {
            for qi in 0..<qv {
                let brow = bb + (q0 + qi) * bias.rowStride + j0
                for r in r0..<r1 { st[r * attnQT + qi] += brow[r] }
            }
        }
    }
    if let lab = t.lab {
        let pen = Vec(repeating: a.regionPenalty), zero = Vec()
        for r in r0..<r1 {
            let lk = Vec(repeating: Float(lab[j0 + r])), row = st + r * attnQT
            for c in 0..<((qv + 15) / 16) {
                let add = zero.replacing(with: pen, where: t.ql[c] .!= lk)
                vstore(vload(row + c * 16) + add, row + c * 16)
            }
        }
    }
    if let mask = a.keyMask {
        let mrow = mask + t.b * a.keyMaskStride + j0
        let width = (qv + NR - 1) / NR * NR
        for r in r0..<r1 where mrow[r] == 0 {
            let row = st + r * attnQT
            for c in stride(from: 0, to: width, by: 16) { vstore(Vec(repeating: -.infinity), row + c) }
        }
    }
}

@inline(__always)
func attentionTile(
    _ a: AttentionArgs, _ b: Int, _ h: Int, _ q0: Int,
    _ kp: UnsafePointer<Float>, _ vbase: UnsafePointer<Float>, _ ldv: Int, _ dPad: Int,
    _ qt: UnsafeMutablePointer<Float>, _ st: UnsafeMutablePointer<Float>,
    _ ob: UnsafeMutablePointer<Float>, _ m: UnsafeMutablePointer<Float>,
    _ l: UnsafeMutablePointer<Float>, _ alpha: UnsafeMutablePointer<Float>
) {
    let d = a.d
    let qv = min(attnQT, a.nq - q0)
    // Qᵀ in up to three 32-query panels (those with a valid query), pre-scaled: panel p holds
    // scale·Q[32p + c][i] at i·32 + c.
    let qPanels = (qv + NR - 1) / NR
    let qbase = a.q.base + b * a.q.batchStride + h * a.q.headStride
    // Sixteen queries × sixteen dimensions at a time through an in-register transpose, the
    // remaining dimensions one by one, then the scale (the same products as scaling each
    // element as it is copied). Measured on Emerald Rapids (swin3d_t int8, d = 32, 2 threads,
    // forwards alternating in one process): 0.94–0.95 of the forward's time against copying
    // element by element, whose strided scalar stores were 27 % of the tile function's samples.
    let d16 = d / 16 * 16, ld = a.q.rowStride, scale = Vec(repeating: a.scale)
    for p in 0..<qPanels {
        let dst = qt + p * NR * d
        for c0 in stride(from: 0, to: NR, by: 16) {
            let first = p * NR + c0, rows = max(0, min(16, qv - first))
            let src = qbase + (q0 + first) * ld
            for i in stride(from: 0, to: d16, by: 16) { transpose16x16(src + i, ld, dst + i * NR + c0, NR, rows: rows) }
            for c in 0..<16 {
                for i in d16..<d { dst[i * NR + c0 + c] = c < rows ? src[c * ld + i] : 0 }
            }
        }
        for i in stride(from: 0, to: NR * d, by: 16) { vstore(vload(dst + i) * scale, dst + i) }
    }
    let ninf = Vec(repeating: -.infinity)
    for c in stride(from: 0, to: attnQT, by: 16) { vstore(ninf, m + c); vstore(Vec(), l + c) }

    let labels = mixedRegionLabels(a, b)
    var j0 = 0
    while j0 < a.nk {
        let kv = min(attnKB, a.nk - j0)
        scoreBlock(a, b, h, q0, qv, j0, kv, kp, qt, st, labels)
        // Online softmax over this block, one 32-query panel (two vectors per key) at a time.
        for c in stride(from: 0, to: qPanels * NR, by: NR) { softmaxPanel(st + c, kv, m + c, l + c, alpha + c) }
        // O = Pᵀ·V for the first block, then O = Pᵀ·V + diag(α)·O (the rows rescaled by the
        // softmax step as the kernel loads them). Rows past qv in the last 12-row panel hold
        // values never written out.
        let vblk = vbase + j0 * ldv
        var r0 = 0
        while r0 < qv {
            for dp in stride(from: 0, to: dPad, by: NR) {
                if j0 == 0 {
                    microKernel12x32Overwrite(kv, st + r0, attnQT, vblk + dp, ldv, ob + r0 * dPad + dp, dPad)
                } else {
                    microKernel12x32RowBeta(
                        kv, st + r0, attnQT, vblk + dp, ldv, ob + r0 * dPad + dp, dPad, rowBeta: alpha + r0)
                }
            }
            r0 += MR
        }
        j0 += kv
    }
    // Normalise and write out.
    let obase = a.o.base + b * a.o.batchStride + h * a.o.headStride
    for qi in 0..<qv {
        let inv: Float = l[qi] > 0 ? 1 / l[qi] : 0
        let src = ob + qi * dPad, dst = obase + (q0 + qi) * a.o.rowStride
        var i = 0
        let vi = Vec(repeating: inv)
        while i + 16 <= d { vstore(vload(src + i) * vi, dst + i); i += 16 }
        while i < d { dst[i] = src[i] * inv; i += 1 }
    }
    if let probs = a.probs { writeProbs(a, b, h, q0, qv, kp, qt, st, m, l, probs) }
}

/// The running maximum of one column of 16 queries of a score block (rows `attnQT` apart) over
/// `kv` keys, from `start`: four independent maxima (one chain of `kv` dependent maxima was
/// latency-bound). NaN scores are skipped.
@inline(__always)
func columnMax(_ p: UnsafePointer<Float>, _ kv: Int, _ start: Vec) -> Vec {
    var m0 = start, m1 = start, m2 = start, m3 = start
    var r = 0
    while r + 4 <= kv {
        let s0 = vload(p + r * attnQT), s1 = vload(p + (r + 1) * attnQT)
        let s2 = vload(p + (r + 2) * attnQT), s3 = vload(p + (r + 3) * attnQT)
        m0 = m0.replacing(with: s0, where: s0 .> m0); m1 = m1.replacing(with: s1, where: s1 .> m1)
        m2 = m2.replacing(with: s2, where: s2 .> m2); m3 = m3.replacing(with: s3, where: s3 .> m3)
        r += 4
    }
    while r < kv { let s = vload(p + r * attnQT); m0 = m0.replacing(with: s, where: s .> m0); r += 1 }
    m0 = m0.replacing(with: m1, where: m1 .> m0); m2 = m2.replacing(with: m3, where: m3 .> m2)
    return m0.replacing(with: m2, where: m2 .> m0)
}

/// One online-softmax step for a 32-query panel of a score block (`st` at the panel's first
/// column, rows `attnQT` apart): the new maxima into m, the scores replaced by e^(s − m) (as
/// `vexpShifted`), l = l · α + Σ e, and α = e^(mOld − m) (by the same shifts) into alpha. Rows
/// whose every score so far is −inf keep m = −inf and shift by 0. Measured on Emerald Rapids
/// with a C model of the tile ([12, 3137, 64], one thread, five runs): the softmax's share of
/// the tile's time 13.7–16.7 % → 11.1–11.9 % against one 16-query column at a time with one
/// chain of maxima and vexp(s − m); in the library itself the difference (about 3 %) stayed
/// inside the machine's noise (0.993–0.996 per pair, quartiles ±5 %).
@inline(__always)
func softmaxPanel(
    _ st: UnsafeMutablePointer<Float>, _ kv: Int, _ m: UnsafeMutablePointer<Float>,
    _ l: UnsafeMutablePointer<Float>, _ alpha: UnsafeMutablePointer<Float>
) {
    let ninf = Vec(repeating: -.infinity)
    let old0 = vload(m), old1 = vload(m + 16)
    let mx0 = columnMax(st, kv, old0), mx1 = columnMax(st + 16, kv, old1)
    let sh0 = expShift(mx0.replacing(with: 0, where: mx0 .== ninf))
    let sh1 = expShift(mx1.replacing(with: 0, where: mx1 .== ninf))
    let al0 = vexp2(expShift(old0) - sh0), al1 = vexp2(expShift(old1) - sh1)
    var sum0 = Vec(), sum1 = Vec()
    for r in 0..<kv {
        let row = st + r * attnQT
        let e0 = vexpShifted(vload(row), sh0), e1 = vexpShifted(vload(row + 16), sh1)
        vstore(e0, row); vstore(e1, row + 16)
        sum0 += e0; sum1 += e1
    }
    vstore(mx0, m); vstore(mx1, m + 16)
    vstore(sum0.addingProduct(vload(l), al0), l); vstore(sum1.addingProduct(vload(l + 16), al1), l + 16)
    vstore(al0, alpha); vstore(al1, alpha + 16)
}

/// Second pass for callers that want the attention map: recompute each score
/// block and write exp(s − m) / l, transposed back to [query, key].
func writeProbs(
    _ a: AttentionArgs, _ b: Int, _ h: Int, _ q0: Int, _ qv: Int,
    _ kp: UnsafePointer<Float>, _ qt: UnsafePointer<Float>, _ st: UnsafeMutablePointer<Float>,
    _ m: UnsafePointer<Float>, _ l: UnsafePointer<Float>, _ probs: UnsafeMutablePointer<Float>
) {
    let base = probs + ((b * a.heads + h) * a.nq + q0) * a.nk
    let labels = mixedRegionLabels(a, b)
    var j0 = 0
    while j0 < a.nk {
        let kv = min(attnKB, a.nk - j0)
        scoreBlock(a, b, h, q0, qv, j0, kv, kp, qt, st, labels)
        // Sixteen queries at a time, with the shifts of the tile's softmax (softmaxPanel).
        for c in stride(from: 0, to: qv, by: 16) {
            let mv = vload(m + c), lv = vload(l + c)
            let shift = expShift(mv.replacing(with: 0, where: mv .== Vec(repeating: -.infinity)))
            let inv = (Vec(repeating: 1) / lv).replacing(with: 0, where: .!(lv .> 0))
            for r in 0..<kv {
                let e = vexpShifted(vload(st + r * attnQT + c), shift) * inv
                for j in 0..<min(16, qv - c) { base[(c + j) * a.nk + j0 + r] = e[j] }
            }
        }
        j0 += kv
    }
}

@inline(__always)
func shortHead(
    _ a: AttentionArgs, _ b: Int, _ h: Int, _ s: UnsafeMutablePointer<Float>, _ acc: UnsafeMutablePointer<Float>
) {
    let d = a.d
    let qb = a.q.base + b * a.q.batchStride + h * a.q.headStride
    let kb = a.k.base + b * a.k.batchStride + h * a.k.headStride
    let vb = a.v.base + b * a.v.batchStride + h * a.v.headStride
    let ob = a.o.base + b * a.o.batchStride + h * a.o.headStride
    let mask = a.keyMask.map { $0 + b * a.keyMaskStride }
    let dFull = d / 16 * 16
    for i in 0..<a.nq {
        let qi = qb + i * a.q.rowStride
        var mx = -Float.infinity
        for j in 0..<a.nk {
            let kj = kb + j * a.k.rowStride
            // Two accumulators (no chain of dependent FMAs at d = 64), summed as a tree.
            var vs = Vec(), vs2 = Vec(), t = 0
            while t + 32 <= dFull {
                vs.addProduct(vload(qi + t), vload(kj + t)); vs2.addProduct(vload(qi + t + 16), vload(kj + t + 16))
                t += 32
            }
            if t < dFull { vs.addProduct(vload(qi + t), vload(kj + t)); t += 16 }
            var dot = hsum(vs + vs2)
            while t < d { dot += qi[t] * kj[t]; t += 1 }
            var sc = dot * a.scale
            if let bias = a.bias {
                sc +=
                    bias.base[
                        b * bias.batchStride + h * bias.headStride
                            + (a.biasKeyMajor ? j * bias.rowStride + i : i * bias.rowStride + j)]
            } else if let sb = a.stripBias {
                sc += sb.base[sb.row(head: h, key: j) + i]
            }
            if let lab = a.regionLabels, lab[b * a.regionStride + i] != lab[b * a.regionStride + j] {
                sc += a.regionPenalty
            }
            if let m = mask, m[j] == 0 { sc = -.infinity }
            s[j] = sc
            mx = max(mx, sc)
        }
        let oi = ob + i * a.o.rowStride
        if mx == -.infinity {
            for t in 0..<d { oi[t] = 0 }
            if let p = a.probs { for j in 0..<a.nk { p[((b * a.heads + h) * a.nq + i) * a.nk + j] = 0 } }
            continue
        }
        var sum: Float = 0
        var j = 0
        let vm = Vec(repeating: mx)
        while j + 16 <= a.nk { let e = vexp(vload(s + j) - vm); vstore(e, s + j); sum += hsum(e); j += 16 }
        if j < a.nk {
            let e = vexp(vloadPartial(s + j, a.nk - j, fill: -.infinity) - vm)
            vstorePartial(e, s + j, a.nk - j); sum += hsum(e)
        }
        let inv = 1 / sum
        // P·V, 64 columns at a time in registers across the keys (accumulating in memory put a
        // store-to-load round trip on every key).
        var t = 0
        while t + 64 <= dFull {
            var a0 = Vec(), a1 = Vec(), a2 = Vec(), a3 = Vec()
            for j in 0..<a.nk {
                let vj = vb + j * a.v.rowStride + t, pj = Vec(repeating: s[j])
                a0.addProduct(pj, vload(vj)); a1.addProduct(pj, vload(vj + 16))
                a2.addProduct(pj, vload(vj + 32)); a3.addProduct(pj, vload(vj + 48))
            }
            vstore(a0, acc + t); vstore(a1, acc + t + 16); vstore(a2, acc + t + 32); vstore(a3, acc + t + 48)
            t += 64
        }
        while t < dFull {
            var a0 = Vec()
            for j in 0..<a.nk { a0.addProduct(Vec(repeating: s[j]), vload(vb + j * a.v.rowStride + t)) }
            vstore(a0, acc + t)
            t += 16
        }
        while t < d {
            var x: Float = 0
            for j in 0..<a.nk { x += s[j] * vb[j * a.v.rowStride + t] }
            acc[t] = x
            t += 1
        }
        let vi = Vec(repeating: inv)
        t = 0
        while t < dFull { vstore(vload(acc + t) * vi, oi + t); t += 16 }
        while t < d { oi[t] = acc[t] * inv; t += 1 }
        if let p = a.probs {
            let row = p + ((b * a.heads + h) * a.nq + i) * a.nk
            for j in 0..<a.nk { row[j] = s[j] * inv }
        }
    }
}
