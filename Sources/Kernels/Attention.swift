#if canImport(Glibc)
import Glibc
#endif
// Fused exact attention, flash style:  O = softmax(scale · Q·Kᵀ + bias) · V
//
// Shapes [B, H, N, d] described by strides, so Q, K and V can be read straight
// out of a packed qkv buffer. Never materialises N×N: each worker holds a tile of
// 96 queries and walks the keys in blocks of 96 with an online softmax.
// The tiles themselves: Hot/AttentionTile.swift.

/// The precision of the attention products in the calling thread's forward. Set by models
/// loaded at bf16 or int8 around each forward (docs/precision.md); read by `attention` on the
/// calling thread.
public enum AttentionPrecision {
    /// Q·Kᵀ and P·V on the bf16 unit (fp32 accumulation and softmax) for sequences of at
    /// least `bf16AttentionMinKeys` keys, when the CPU has a bf16 unit and no probabilities
    /// are asked for; fp32 otherwise.
    @TaskLocal public static var bf16 = false
}

/// Below this many keys (one 32-key block) attention stays fp32 at bf16 precision. Measured on
/// Sapphire Rapids, bf16 / fp32 time per pair alternating in one process (`VIDATTN_DEMO_ATTN=
/// HxNxD vidattn-demo`, 2 threads): [96, 32, 64] 0.34, [96, 64, 64] 0.43, [96, 197, 64] 0.56,
/// [192, 392, 32] 0.47, [12, 3137, 64] 0.30. (Until the scores of a step became one C call,
/// K and V were packed by a vectorised routine and bias, labels and masks one vector pass,
/// short sequences lost in bf16 and the threshold was 1024 keys.) `VIDATTN_BF16_ATTENTION_MIN_KEYS`
/// overrides it, for experiments.
public let bf16AttentionMinKeys: Int = getenvString("VIDATTN_BF16_ATTENTION_MIN_KEYS").flatMap { Int($0) } ?? 32

/// Whether `attention` would take the bf16 path for these arguments on this thread (models
/// lay out their bias query-major for it; the fp32 tiles read it key-major).
public func attentionTakesBF16(nq: Int, nk: Int, probabilities: Bool = false) -> Bool {
    !KernelMode.useReference && nq > shortQueryLimit && AttentionPrecision.bf16 && nk >= bf16AttentionMinKeys
        && !probabilities && BF16Unit.detected.hasKernels
}

/// Runs fused attention. Returns false only if scratch memory could not be allocated.
@discardableResult
public func attention(_ args: AttentionArgs, threads: Int = Threads.count) -> Bool {
    if KernelMode.useReference { attentionReference(args); return true }
    let a = args
    if a.batch == 0 || a.heads == 0 || a.nq == 0 { return true }
    FlopCounter.addAttention(4 * a.batch * a.heads * a.nq * a.nk * a.d)
    if a.nq <= shortQueryLimit { return attentionShort(a, threads: threads) }
    // (The bf16 tiles read a dense query-major bias; a strip bias stays on the fp32 tiles.)
    if a.stripBias == nil && attentionTakesBF16(nq: a.nq, nk: a.nk, probabilities: a.probs != nil) {
        return attentionBF16(a, threads: threads)
    }
    let qTiles = (a.nq + attnQT - 1) / attnQT
    let items = a.batch * a.heads * qTiles
    let workers = min(max(threads, 1), items)
    // Per-worker scratch: a header (the head packed), packed K, (padded V), Qᵀ panels, scores,
    // O accumulator, m, l, alpha.
    let perWorker = attentionScratchPerWorker(a)
    guard let buf = ScratchPool.shared.take(workers * perWorker) else { return false }
    defer { ScratchPool.shared.give(buf) }
    let scratch = buf.p

    let run = FP32Kernels.selected.attentionItems
    for w in 0..<workers { resetAttentionScratch(scratch + w * perWorker) }
    // Chunks of query tiles from a shared counter, about 16 per worker, so that a worker on a
    // slower core takes fewer (static halves waited for the slower one). Measured on Emerald
    // Rapids against the halves (2 threads, alternating in one process): [12, 3137, 64] 0.98,
    // swin3d_t and ViViT-B fp32 forwards 1.00 and 0.99 of the time on a quiet machine.
    let chunk = max(1, items / (16 * workers))
    parallelDynamic((items + chunk - 1) / chunk, threads: workers) { c, w in
        run(a, c * chunk, min(items, (c + 1) * chunk), scratch + w * perWorker)
    }
    return true
}

/// The bf16 path (Hot/AttentionBF16.swift). The (batch, head) pairs go in groups whose packed
/// K and V (bf16 panels) take at most `bf16PackedBudget` bytes: each group is packed once, in
/// parallel, then its 32-query tiles are handed out one at a time from a shared counter.
/// `unit` and `packedBudget` are parameters for the tests (every block kernel; several groups).
func attentionBF16(
    _ a: AttentionArgs, threads: Int, unit: BF16Kernel = .current,
    packedBudget: Int = bf16PackedBudget
) -> Bool {
    let L = BF16AttentionLayout(a)
    let pairs = a.batch * a.heads
    let groupPairs = max(1, min(pairs, packedBudget / (2 * L.headHalves)))
    let workers = min(max(threads, 1), groupPairs * L.qTiles)
    let perWorker = attentionBF16ScratchPerWorker(a)
    let packedFloats = (groupPairs * L.headHalves + 1) / 2
    guard let buf = ScratchPool.shared.take(packedFloats + workers * perWorker) else { return false }
    defer { ScratchPool.shared.give(buf) }
    let packed = UnsafeMutableRawPointer(buf.p).bindMemory(to: UInt16.self, capacity: groupPairs * L.headHalves)
    let scratch = buf.p + packedFloats
    let run = FP32Kernels.selected.attentionItemsBF16
    for p0 in stride(from: 0, to: pairs, by: groupPairs) {
        let gp = min(groupPairs, pairs - p0)
        parallelRanges(gp, threads: min(workers, gp)) { lo, hi, _ in
            packHeadsBF16(a, p0 + lo, p0 + hi, packed + lo * L.headHalves)
        }
        let headMajor = gp == pairs && attentionHeadMajor(a)
        parallelDynamic(gp * L.qTiles, threads: workers) { i, w in
            let item = p0 * L.qTiles + attentionItem(i, a, qTiles: L.qTiles, headMajor: headMajor)
            run(a, item, item + 1, p0, UnsafePointer(packed), scratch + w * perWorker, unit)
        }
    }
    return true
}

/// Bytes of packed K and V the bf16 attention holds at once (ViViT-B's 12 heads of 3137
/// tokens take 9.6 MB).
let bf16PackedBudget = 32 << 20

/// Sequences of at most this many queries (the temporal groups of divided
/// attention, windows of a few tokens) skip the tiled path, whose 96-query tile
/// would mostly compute padding.
let shortQueryLimit = 24

/// Short-sequence attention: one query at a time, scores in a small buffer,
/// vectorised over d. Work is split over (batch, head) pairs.
func attentionShort(_ a: AttentionArgs, threads: Int) -> Bool {
    let items = a.batch * a.heads
    let perItem = a.nq * a.nk * max(a.d, 16)
    let chunk = max(1, min(items, 16384 / max(perItem, 1)))
    let chunks = (items + chunk - 1) / chunk
    let workers = min(max(threads, 1), chunks)
    let sLen = (a.nk + 15) / 16 * 16
    guard let buf = ScratchPool.shared.take(workers * (sLen + a.d + 32)) else { return false }
    defer { ScratchPool.shared.give(buf) }
    let run = FP32Kernels.selected.shortAttentionItems
    parallelFor(chunks, threads: workers) { ci, w in
        run(a, ci * chunk, min(items, (ci + 1) * chunk), buf.p + w * (sLen + a.d + 32))
    }
    return true
}

/// Scalar reference: materialises one row of scores at a time, accumulates in Double.
public func attentionReference(_ a: AttentionArgs) {
    var scores = [Double](repeating: 0, count: max(a.nk, 1))
    for b in 0..<a.batch {
        for h in 0..<a.heads {
            let qb = a.q.base + b * a.q.batchStride + h * a.q.headStride
            let kb = a.k.base + b * a.k.batchStride + h * a.k.headStride
            let vb = a.v.base + b * a.v.batchStride + h * a.v.headStride
            let ob = a.o.base + b * a.o.batchStride + h * a.o.headStride
            for i in 0..<a.nq {
                var mx = -Double.infinity
                for j in 0..<a.nk {
                    var s = 0.0
                    for t in 0..<a.d { s += Double(qb[i * a.q.rowStride + t]) * Double(kb[j * a.k.rowStride + t]) }
                    s *= Double(a.scale)
                    if let bias = a.bias {
                        let off = a.biasKeyMajor ? j * bias.rowStride + i : i * bias.rowStride + j
                        s += Double(bias.base[b * bias.batchStride + h * bias.headStride + off])
                    } else if let sb = a.stripBias {
                        s += Double(sb.base[sb.row(head: h, key: j) + i])
                    }
                    if let lab = a.regionLabels, lab[b * a.regionStride + i] != lab[b * a.regionStride + j] {
                        s += Double(a.regionPenalty)
                    }
                    if let mask = a.keyMask, mask[b * a.keyMaskStride + j] == 0 { s = -.infinity }
                    scores[j] = s
                    mx = max(mx, s)
                }
                var sum = 0.0
                for j in 0..<a.nk {
                    scores[j] = mx == -.infinity ? 0 : (scores[j] - mx).exp()
                    sum += scores[j]
                }
                let inv = sum > 0 ? 1 / sum : 0
                for t in 0..<a.d {
                    var acc = 0.0
                    for j in 0..<a.nk { acc += scores[j] * Double(vb[j * a.v.rowStride + t]) }
                    ob[i * a.o.rowStride + t] = Float(acc * inv)
                }
                if let p = a.probs {
                    let row = p + ((b * a.heads + h) * a.nq + i) * a.nk
                    for j in 0..<a.nk { row[j] = Float(scores[j] * inv) }
                }
            }
        }
    }
}

private extension Double {
    func exp() -> Double { Glibc.exp(self) }
}
