import KernelTypes
import CKernels

// Fused attention with Q·Kᵀ and P·V on a bf16 unit (AMX tdpbf16ps or AVX512-BF16
// vdpbf16ps, through the 32×32 block kernels of Sources/CKernels/bf16.c), fp32
// accumulation and the fp32 online softmax (driver: Attention.swift).
//
// Per head, K is packed once as bf16 B panels (32 keys per panel, d the reduction axis) and
// V as B panels (32 of d's columns per panel, keys the reduction axis), by the driver, for a
// group of heads shared by all workers. Per tile of 32 queries, scale·Q becomes one bf16 A
// strip; for each step of up to 256 keys the scores S (32×32 row-major blocks) come from the
// block kernel, bias and masks are added in fp32, and the online-softmax step in C
// (`vidattn_softmax_step_bf16`) updates m and l and writes P = exp(S − m) as bf16 straight
// into the A strip of the P·V product; O is rescaled here and accumulated by the block kernel.

let bf16KeyBlocks = 8  // 32-key blocks per softmax step (256 keys)

struct BF16AttentionLayout {
    let dp: Int, dPad: Int, dPanels: Int, nkp: Int, keyPanels: Int, qTiles: Int
    let kHalves: Int, vHalves: Int, qHalves: Int
    init(_ a: AttentionArgs) {
        dp = max(32, (a.d + 31) / 32 * 32)
        dPad = dp
        dPanels = dp / 32
        nkp = max(32, (a.nk + 31) / 32 * 32)
        keyPanels = nkp / 32
        qTiles = (a.nq + 31) / 32
        kHalves = nkp * dp
        vHalves = dPanels * nkp * 32
        qHalves = 32 * dp
    }
    /// bf16 values of one packed head (K and V panels).
    var headHalves: Int { kHalves + vHalves }
    /// Floats of scratch per worker: the Q strip and P (bf16), then S, O, m, l and the step's
    /// rescale factors (fp32).
    var floats: Int { (qHalves + bf16KeyBlocks * 1024) / 2 + 8 + bf16KeyBlocks * 1024 + 32 * dPad + 3 * 32 }
}

/// Scratch floats per worker of the bf16 path.
public func attentionBF16ScratchPerWorker(_ a: AttentionArgs) -> Int { BF16AttentionLayout(a).floats }

/// bf16 attention for items lo..<hi (item = (b · heads + h) · ⌈nq/32⌉ + query tile), K and V
/// of pair p = b · heads + h packed at `packed + (p − firstPair) · headHalves`, with one
/// worker's scratch, on block kernel `unit` (AMX: the tile state is set up here; the scalar
/// emulation checks the layout on any CPU).
func attentionItemsBF16(
    _ a: AttentionArgs, _ lo: Int, _ hi: Int, _ firstPair: Int, _ packed: UnsafePointer<UInt16>,
    _ scratch: UnsafeMutablePointer<Float>, _ unit: BF16Kernel
) {
    let L = BF16AttentionLayout(a)
    let halves = UnsafeMutableRawPointer(scratch).bindMemory(
        to: UInt16.self, capacity: L.qHalves + bf16KeyBlocks * 1024)
    let qs = halves, pb = qs + L.qHalves
    let fl = scratch + (L.qHalves + bf16KeyBlocks * 1024) / 2 + 8
    let s = fl, o = s + bf16KeyBlocks * 1024, m = o + 32 * L.dPad, l = m + 32, alpha = l + 32
    let amx = unit == .amx
    let kernel = amx ? vidattn_amx_bf16_32x32 : unit == .avx512bf16 ? vidattn_avx512bf16_32x32 : vidattn_bf16_32x32_ref
    let unitCode: Int32 = amx ? 2 : unit == .avx512bf16 ? 1 : 0
    if amx { vidattn_amx_begin() }
    defer { if amx { vidattn_amx_end() } }
    for item in lo..<hi {
        let bh = item / L.qTiles, qt = item % L.qTiles
        let b = bh / a.heads, h = bh % a.heads
        let kpan = packed + (bh - firstPair) * L.headHalves, vpan = kpan + L.kHalves
        bf16QueryTile(a, b, h, qt * 32, L, kpan, vpan, qs, pb, s, o, m, l, alpha, kernel, unitCode)
    }
}

/// Packs K and V of pairs lo..<hi for `attentionItemsBF16`, pair p at dst + (p − lo) · headHalves.
func packHeadsBF16(_ a: AttentionArgs, _ lo: Int, _ hi: Int, _ dst: UnsafeMutablePointer<UInt16>) {
    let L = BF16AttentionLayout(a)
    for p in lo..<hi {
        let kpan = dst + (p - lo) * L.headHalves
        packHeadBF16(a, p / a.heads, p % a.heads, L, kpan, kpan + L.kHalves)
    }
}

/// Kᵀ and V of head (b, h) as bf16 B panels (pair-interleaved along the reduction axis).
@inline(__always)
func packHeadBF16(
    _ a: AttentionArgs, _ b: Int, _ h: Int, _ L: BF16AttentionLayout,
    _ kpan: UnsafeMutablePointer<UInt16>, _ vpan: UnsafeMutablePointer<UInt16>
) {
    let kb = a.k.base + b * a.k.batchStride + h * a.k.headStride
    let vb = a.v.base + b * a.v.batchStride + h * a.v.headStride
    vidattn_pack_kv_bf16(kb, a.k.rowStride, vb, a.v.rowStride, a.nk, a.d, L.dp, L.nkp, kpan, vpan)
}

/// A bf16 block kernel's signature (vidattn_amx_bf16_32x32 and its siblings, ckernels.h).
typealias BF16BlockKernel = (
    Int, UnsafePointer<UInt16>?, UnsafePointer<UInt16>?, UnsafeMutablePointer<Float>?, Int, Int32, UnsafePointer<Float>?
) -> Void

@inline(__always)
func bf16QueryTile(
    _ a: AttentionArgs, _ b: Int, _ h: Int, _ q0: Int, _ L: BF16AttentionLayout,
    _ kpan: UnsafePointer<UInt16>, _ vpan: UnsafePointer<UInt16>,
    _ qs: UnsafeMutablePointer<UInt16>, _ pb: UnsafeMutablePointer<UInt16>,
    _ s: UnsafeMutablePointer<Float>, _ o: UnsafeMutablePointer<Float>,
    _ m: UnsafeMutablePointer<Float>, _ l: UnsafeMutablePointer<Float>,
    _ alpha: UnsafeMutablePointer<Float>,
    _ kernel: BF16BlockKernel,
    _ unitCode: Int32
) {
    let qv = min(32, a.nq - q0), dp = L.dp
    // scale·Q as one A strip: element (r, i) at (i/32)·1024 + r·32 + i%32; padding zero.
    let qb = a.q.base + b * a.q.batchStride + h * a.q.headStride
    withUnsafeTemporaryAllocation(of: Float.self, capacity: max(a.d, 1)) { tmp in
        let t = tmp.baseAddress!
        let sc = Vec(repeating: a.scale)
        for r in 0..<qv {
            let src = qb + (q0 + r) * a.q.rowStride
            var i = 0
            while i + 16 <= a.d { vstore(vload(src + i) * sc, t + i); i += 16 }
            while i < a.d { t[i] = a.scale * src[i]; i += 1 }
            vidattn_f32_to_bf16_blocks(t, a.d, dp, qs + r * 32, 1024)
        }
    }
    for r in qv..<32 { for kb in 0..<L.dPanels { (qs + kb * 1024 + r * 32).initialize(repeating: 0, count: 32) } }
    for r in 0..<32 { m[r] = -.infinity; l[r] = 0 }
    o.initialize(repeating: 0, count: 32 * L.dPad)
    // The head's query-major bias (row q at rowBias + q · biasStride), if any.
    let biasStride = a.bias?.rowStride ?? 0
    let rowBias = a.bias.flatMap { bias in
        a.biasKeyMajor ? nil : UnsafePointer(bias.base + b * bias.batchStride + h * bias.headStride)
    }
    let labels = mixedRegionLabels(a, b)
    var key0 = 0
    while key0 < a.nk {
        let nb = min(bf16KeyBlocks, (a.nk - key0 + 31) / 32)
        let kv = min(nb * 32, a.nk - key0)
        // A query-major bias starts the sums of the step's full 32 × 32 blocks (a full query
        // tile); bf16AddBiasAndMasks adds it to the rest.
        let biasRows = rowBias.map { $0 + q0 * biasStride + key0 }
        let biasBlocks = biasRows != nil && qv == 32 ? kv / 32 : 0
        vidattn_bf16_scores(
            unitCode, dp, qs, kpan + (key0 >> 5) * dp * 32, Int32(nb), s, biasRows, biasStride, Int32(biasBlocks))
        bf16AddBiasAndMasks(a, b, h, q0, qv, key0, kv, nb, biasRows, biasBlocks, labels, s)
        // Online softmax over the nb·32 keys of this step, in C (exp by vscalefps, P written as
        // bf16 straight into the A strip of P·V), then O rescaled row by row.
        vidattn_softmax_step_bf16(s, Int32(nb), m, l, alpha, pb)
        for r in 0..<32 where alpha[r] != 1 {
            let va = Vec(repeating: alpha[r]), orow = o + r * L.dPad
            for c in stride(from: 0, to: L.dPad, by: 16) { vstore(vload(orow + c) * va, orow + c) }
        }
        for c in 0..<L.dPanels {
            kernel(nb * 32, pb, vpan + c * L.nkp * 32 + key0 * 32, o + c * 32, L.dPad, 1, nil)
        }
        key0 += nb * 32
    }
    let ob = a.o.base + b * a.o.batchStride + h * a.o.headStride
    for r in 0..<qv {
        let inv: Float = l[r] > 0 ? 1 / l[r] : 0
        let src = o + r * L.dPad, dst = ob + (q0 + r) * a.o.rowStride
        for i in 0..<a.d { dst[i] = src[i] * inv }
    }
}

/// Adds bias and region penalties to the 32 × kv scores of this step and sets masked and
/// padding keys (and nothing else) to −inf. Scores of padding queries are left finite.
/// The keys' labels, mask and padding are read once per 16 keys; then one pass over the
/// step's scores, row by row, adds each row's bias and penalty and sets −inf in registers.
/// A key-major bias (read column by column) is added first, key by key. `biasRows`: a
/// query-major bias at (q0, key0), rows `a.bias.rowStride` apart, whose first `biasBlocks`
/// 32-key blocks the scores already hold (their sums started from it); `lab`: the batch entry's
/// region labels (nil: no penalty).
@inline(__always)
func bf16AddBiasAndMasks(
    _ a: AttentionArgs, _ b: Int, _ h: Int, _ q0: Int, _ qv: Int, _ key0: Int, _ kv: Int,
    _ nb: Int, _ biasRows: UnsafePointer<Float>?, _ biasBlocks: Int, _ lab: UnsafePointer<UInt8>?,
    _ s: UnsafeMutablePointer<Float>
) {
    let biasStride = a.bias?.rowStride ?? 0
    if let bias = a.bias, a.biasKeyMajor {
        let bb = bias.base + b * bias.batchStride + h * bias.headStride
        for j in 0..<kv {
            let col = bb + (key0 + j) * bias.rowStride + q0, at = s + (j >> 5) * 1024 + (j & 31)
            for r in 0..<qv { at[r * 32] += col[r] }
        }
    }
    let rowBias = biasBlocks < nb ? biasRows : nil  // what of the query-major bias is left to add
    let biasGroups = rowBias != nil ? 2 * biasBlocks : 0  // groups of 16 keys that have their bias
    let mrow = a.keyMask.map { $0 + b * a.keyMaskStride + key0 }
    if rowBias == nil && lab == nil && mrow == nil && kv == nb * 32 { return }
    let pen = Vec(repeating: a.regionPenalty), zero = Vec(repeating: 0), ninf = Vec(repeating: -.infinity)
    let iota = SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
    let groups = nb * 2, zeroI = SIMD16<Int32>(repeating: 0)
    withUnsafeTemporaryAllocation(of: SIMD16<Int32>.self, capacity: 2 * groups) { buffer in
        // Per 16 keys, once: their labels and which lanes are dead (padding or masked; −1). The
        // lanes are gathered into integer vectors and masks come from vector compares: writing
        // mask lanes one by one made the compiler select lane by lane in the row loop.
        let labels = buffer.baseAddress!, deads = labels + groups
        var firstDead = groups, lastDead = -1
        for g in 0..<groups {
            let j0 = g * 16, valid = min(max(kv - j0, 0), 16)
            // The 16 keys' bytes (mask or labels) widened; lanes past `valid` keep `fill`.
            func bytes(_ p: UnsafePointer<UInt8>, fill: Int32) -> SIMD16<Int32> {
                if valid == 16 {
                    return SIMD16<Int32>(truncatingIfNeeded: UnsafeRawPointer(p).loadUnaligned(as: SIMD16<UInt8>.self))
                }
                var v = SIMD16<Int32>(repeating: fill)
                for l in 0..<valid { v[l] = Int32(p[l]) }
                return v
            }
            let keep = mrow.map { bytes($0 + j0, fill: 1) } ?? SIMD16<Int32>(repeating: 1)
            let kl = lab.map { bytes($0 + key0 + j0, fill: 0) } ?? zeroI
            let dead = (iota .>= SIMD16<Int32>(repeating: Int32(valid))) .| (keep .== zeroI)
            labels[g] = kl
            deads[g] = zeroI.replacing(with: -1, where: dead)
            if any(dead) { firstDead = min(firstDead, g); lastDead = g }
        }
        let anyDead = lastDead >= 0
        // Without bias or labels only the groups holding a dead key change (TimeSformer's 197
        // keys: the last of 14 groups).
        let work =
            lab != nil
            ? 0..<groups
            : rowBias != nil
                ? min(biasGroups, anyDead ? firstDead : groups)..<groups
                : anyDead ? firstDead..<(lastDead + 1) : 0..<0
        // Then row by row, reading each bias row front to back (the hardware prefetches it; a
        // column of 32 rows per 16 keys missed the cache on Sapphire Rapids).
        for r in 0..<32 {
            let live = r < qv
            if !live && !anyDead { break }
            let bias = live ? rowBias.map { $0 + r * biasStride } : nil
            let queryLabel = live ? lab.map { SIMD16<Int32>(repeating: Int32($0[q0 + r])) } : nil
            for g in work {
                let row = s + (g >> 1) * 1024 + (g & 1) * 16 + r * 32
                var v = vload(row)
                if let bias, g >= biasGroups {
                    let valid = min(max(kv - g * 16, 0), 16)
                    v += valid == 16 ? vload(bias + g * 16) : vloadPartial(bias + g * 16, valid)
                }
                if let queryLabel { v += zero.replacing(with: pen, where: labels[g] .!= queryLabel) }
                if anyDead { v = v.replacing(with: ninf, where: deads[g] .!= zeroI) }
                vstore(v, row)
            }
        }
    }
}
