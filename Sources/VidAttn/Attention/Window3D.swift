// 3-D shifted-window multi-head self-attention (Video Swin / torchvision
// `shifted_window_attention_3d`, docs/attention.md), and patch merging.
//
// x [B, T, H, W, C] → y [B, T, H, W, C]: window and shift clamped to the input,
// zero padding to whole windows, cyclic shift, partition, qkv, attention with the
// 3-D relative position bias (+ −100 between shift regions), proj, and back. The
// shift, padding and partition are one gather (and one scatter) of token rows;
// the −100 mask is applied inside the attention kernel from per-token region
// labels, so no [windows, N, N] mask tensor is built.
import Kernels
import Synchronization

/// Weights of one `ShiftedWindowAttention3d`.
public final class WindowAttention3DWeights: @unchecked Sendable {
    /// Model width C and attention heads.
    public let channels: Int, heads: Int
    /// Window size (t, h, w) in tokens.
    public let window: (Int, Int, Int)
    /// qkv (C → 3C) and proj (C → C), at the load's precision like every Linear.
    let qkv: Linear, proj: Linear
    let table: Tensor  // [(2Wd−1)(2Wh−1)(2Ww−1), heads]
    /// The relative index of each window length asked for (built at the first forward that needs
    /// it, freed with the weights).
    private let indices = Mutex<[Int: RelativeIndex]>([:])
    /// The table row of every element of the strips (`stripBias`), built at first use.
    private let stripIndex = Mutex<RelativeIndex?>(nil)

    /// qkv [3C, C], proj [C, C] in PyTorch Linear layout; table as in the checkpoint.
    public convenience init(
        channels c: Int, heads: Int, window: (Int, Int, Int),
        qkvWeight: UnsafePointer<Float>, qkvBias: UnsafePointer<Float>?,
        projWeight: UnsafePointer<Float>, projBias: UnsafePointer<Float>?,
        relativePositionTable: UnsafePointer<Float>
    ) throws {
        try require(c > 0 && heads > 0 && c % heads == 0, "channels \(c) must be a positive multiple of heads \(heads)")
        let q = try Linear(copying: qkvWeight, bias: qkvBias, out: 3 * c, in: c)
        let p = try Linear(copying: projWeight, bias: projBias, out: c, in: c)
        try self.init(
            channels: c, heads: heads, window: window, qkv: q, proj: p,
            relativePositionTable: relativePositionTable)
    }

    /// From Linears already built (a checkpoint's, at its precision) and the bias table.
    init(
        channels c: Int, heads: Int, window: (Int, Int, Int), qkv: Linear, proj: Linear,
        relativePositionTable: UnsafePointer<Float>
    ) throws {
        try require(c > 0 && heads > 0 && c % heads == 0, "channels \(c) must be a positive multiple of heads \(heads)")
        try require(window.0 > 0 && window.1 > 0 && window.2 > 0, "window sizes must be positive")
        try require(
            qkv.inFeatures == c && qkv.outFeatures == 3 * c && proj.inFeatures == c && proj.outFeatures == c,
            "window attention: qkv must be \(c)→\(3 * c) and proj \(c)→\(c)")
        channels = c; self.heads = heads; self.window = window
        self.qkv = qkv; self.proj = proj
        let rows = (2 * window.0 - 1) * (2 * window.1 - 1) * (2 * window.2 - 1)
        table = try copyTensor(relativePositionTable, [rows, heads])
    }

    /// Bias for a window clamped to n tokens, query-major [heads, query, key] (what the bf16
    /// attention tiles read): the top-left n×n block of the configured window's relative index
    /// (the reference's quirk, docs/attention.md).
    func relativeBias(tokens n: Int) throws -> Tensor {
        let index = try indices.withLock { cache in
            if let cached = cache[n] { return cached }
            let made = try RelativeIndex(window: window, tokens: n)
            cache[n] = made
            return made
        }
        let out = try Tensor(shape: [heads, n, n])
        expand(index, count: n * n, into: out.data, headStride: n * n)
        return out
    }

    /// The bias as strips (`StripBias`, read by the fp32 attention tiles for any window clamped
    /// from this one): per head, h·w strips of (2·t − 1)·h·w floats.
    func stripBias() throws -> (Tensor, StripBias) {
        let index = try stripIndex.withLock { cached in
            if let cached { return cached }
            let made = try RelativeIndex(stripsOf: window)
            cached = made
            return made
        }
        // Zeros after the last head: the tiles read whole 32-query panels of a strip row
        // (StripBias.readPastRow).
        let size = heads * index.count
        let out = try Tensor(shape: [size + StripBias.readPastRow])
        expand(index, count: index.count, into: out.data, headStride: index.count)
        (out.data + size).update(repeating: 0, count: StripBias.readPastRow)
        let sb = StripBias(
            base: UnsafePointer(out.data), headStride: index.count, plane: window.1 * window.2, frames: window.0)
        return (out, sb)
    }

    /// Table rows at `index` (count per head) into o + h · headStride for every head h.
    private func expand(_ index: RelativeIndex, count n: Int, into o: UnsafeMutablePointer<Float>, headStride: Int) {
        let H = heads, (tp, ip) = (table.pointer, index.pointer)
        let rows = table.shape[0]
        // Per head, from its own contiguous column of the table (copied into a small row so the
        // lookups stay in L1), in chunks so that few heads still split evenly.
        let chunks = max(1, min(n / 256 + 1, 32 / max(H, 1)))
        withExtendedLifetime(index) {
            parallelFor(H * chunks) { item, _ in
                let h = item / chunks, c = item % chunks
                let lo = c * n / chunks, hi = (c + 1) * n / chunks
                withUnsafeTemporaryAllocation(of: Float.self, capacity: rows) { col in
                    for r in 0..<rows { col[r] = tp[r * H + h] }
                    gatherFloats(UnsafePointer(col.baseAddress!), ip + lo, hi - lo, into: o + h * headStride + lo)
                }
            }
        }
    }
}

/// The table row of every element of a `StripBias`, or of every (query, key) pair of a window
/// clamped to n tokens (the top-left n×n block of the configured window's relative index),
/// query-major.
private final class RelativeIndex: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Int32>
    let count: Int

    /// The rows of a `StripBias` of one head: key position pⱼ, then dt = tᵢ − tⱼ + t − 1, then pᵢ.
    init(stripsOf window: (Int, Int, Int)) throws {
        let (wd, wh, ww) = window
        let P = wh * ww
        count = (2 * wd - 1) * P * P
        guard let index = allocCounted(Int32.self, count) else {
            throw VidAttnError(.outOfMemory, "window attention: cannot allocate the bias strip index")
        }
        for pj in 0..<P {
            for dt in 0..<(2 * wd - 1) {
                for pi in 0..<P {
                    index[(pj * (2 * wd - 1) + dt) * P + pi] = Int32(
                        dt * (2 * wh - 1) * (2 * ww - 1) + (pi / ww - pj / ww + wh - 1) * (2 * ww - 1)
                            + (pi % ww - pj % ww + ww - 1))
                }
            }
        }
        pointer = index
    }

    init(window: (Int, Int, Int), tokens n: Int) throws {
        let (wd, wh, ww) = window
        count = n * n
        guard let index = allocCounted(Int32.self, n * n) else {
            throw VidAttnError(.outOfMemory, "window attention: cannot allocate the \(n)×\(n) bias index")
        }
        for b in 0..<n {
            let (bd, bh, bw) = (b / (wh * ww), (b / ww) % wh, b % ww)
            for a in 0..<n {
                let (ad, ah, aw) = (a / (wh * ww), (a / ww) % wh, a % ww)
                index[a * n + b] = Int32(
                    (ad - bd + wd - 1) * (2 * wh - 1) * (2 * ww - 1) + (ah - bh + wh - 1) * (2 * ww - 1)
                        + (aw - bw + ww - 1))
            }
        }
        pointer = index
    }

    deinit { freeCounted(pointer) }
}

extension Ops {
    /// Shifted-window attention on x [B, T, H, W, C] (already layer-normed, or normed here by
    /// `norm`), into y.
    /// `shift` is the configured shift ((0,0,0) for even blocks, window/2 for odd).
    public static func windowAttention3D(
        batch B: Int, t T: Int, h H: Int, w W: Int,
        x: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>?,
        weights wt: WindowAttention3DWeights, shift: (Int, Int, Int),
        norm: LayerNorm? = nil, accumulate: Bool = false
    ) throws {
        try require(B >= 0 && T > 0 && H > 0 && W > 0, "window attention needs positive T, H, W (got \(T), \(H), \(W))")
        let C = wt.channels, nh = wt.heads, d = C / nh
        guard checkedProduct(B, T + 8, H + 8, W + 8, 3 * C) != nil else {
            throw VidAttnError(.invalidArgument, "window attention sizes overflow")
        }
        if B == 0 { return }
        let x = try nonNull(x, "x"), y = try nonNull(y, "y")
        // Clamp window and shift to the input (torchvision `_get_window_and_shift_size`).
        let size = [T, H, W]
        var win = [wt.window.0, wt.window.1, wt.window.2], sh = [shift.0, shift.1, shift.2]
        for i in 0..<3 where size[i] <= win[i] { win[i] = size[i]; sh[i] = 0 }
        let padded = (0..<3).map { (size[$0] + win[$0] - 1) / win[$0] * win[$0] }
        let nWin = (0..<3).map { padded[$0] / win[$0] }
        let N = win[0] * win[1] * win[2], windows = nWin[0] * nWin[1] * nWin[2]
        let rows = B * windows * N
        let shifted = sh.contains { $0 > 0 }

        // Source position (or −1 for padding) of every window token, and its region label.
        // (Each freed on its own: when the second allocation fails the first must not leak.)
        let tablesOOM = VidAttnError(.outOfMemory, "window attention: cannot allocate the \(windows)×\(N) token tables")
        guard let src = allocCounted(Int.self, windows * N) else { throw tablesOOM }
        defer { freeCounted(src) }
        guard let labels = allocCounted(UInt8.self, windows * N) else { throw tablesOOM }
        defer { freeCounted(labels) }
        src.initialize(repeating: -1, count: windows * N)
        labels.initialize(repeating: 0, count: windows * N)
        func region(_ axis: Int, _ p: Int) -> Int {
            if sh[axis] == 0 { return 2 }
            return p < padded[axis] - win[axis] ? 0 : (p < padded[axis] - sh[axis] ? 1 : 2)
        }
        for wi in 0..<windows {
            let wd = wi / (nWin[1] * nWin[2]), wh = (wi / nWin[2]) % nWin[1], ww = wi % nWin[2]
            for a in 0..<N {
                let ad = a / (win[1] * win[2]), ah = (a / win[2]) % win[1], aw = a % win[2]
                let p = [wd * win[0] + ad, wh * win[1] + ah, ww * win[2] + aw]  // in the shifted, padded volume
                let o = (0..<3).map { (p[$0] + sh[$0]) % padded[$0] }  // roll by −shift
                if o[0] < T && o[1] < H && o[2] < W { src[wi * N + a] = (o[0] * H + o[1]) * W + o[2] }
                if shifted { labels[wi * N + a] = UInt8(9 * region(0, p[0]) + 3 * region(1, p[1]) + region(2, p[2])) }
            }
        }
        // The fp32 tiles read the bias as strips (L2-resident across windows; the [N, N] bias
        // came from memory for every window and head); the bf16 path reads it dense, query-major.
        let strips = !attentionTakesBF16(nq: N, nk: N)
        let (bias, stripBias) = strips ? try wt.stripBias() : (try wt.relativeBias(tokens: N), nil)
        let volume = T * H * W
        // Gather (shift + pad + partition) of batch entry × window `item` into `dst` [N, C]. With
        // `norm`, the window's tokens are normed as they arrive (in cache then; a norm over the
        // whole volume was a pass of its own): the padding stays zero, as the reference pads
        // after its norm.
        func gather(_ item: Int, into dst: UnsafeMutablePointer<Float>) {
            let b = item / windows, wi = item % windows
            var padding = false
            for a in 0..<N {
                let row = dst + a * C, s = src[wi * N + a]
                if s < 0 {
                    row.update(repeating: 0, count: C)
                    padding = true
                } else {
                    row.update(from: x + (b * volume + s) * C, count: C)
                }
            }
            guard let norm else { return }
            if !padding {
                norm.inPlace(dst, rows: N)
            } else {
                for a in 0..<N where src[wi * N + a] >= 0 { norm.inPlace(dst + a * C, rows: 1) }
            }
        }
        // Scatter of `item`'s rows (reverse partition, roll back, crop) into y, or added onto y
        // (each token of the volume is one window token's, so no two items touch the same row).
        func scatter(_ item: Int, from res: UnsafePointer<Float>) {
            let b = item / windows, wi = item % windows
            for a in 0..<N {
                let s = src[wi * N + a]
                if s < 0 { continue }
                let out = y + (b * volume + s) * C, r = res + a * C
                if accumulate { addInPlace(out, r, C) } else { out.update(from: r, count: C) }
            }
        }
        // The attention of `count` windows whose qkv rows start at `qkv`, into `o`.
        func windowArgs(
            _ qkv: UnsafePointer<Float>, _ o: UnsafeMutablePointer<Float>, windows count: Int,
            labels lab: UnsafePointer<UInt8>?
        ) -> AttentionArgs {
            let view = { (off: Int) in HeadView(qkv + off, batchStride: N * 3 * C, headStride: d, rowStride: 3 * C) }
            var a = AttentionArgs(
                batch: count, heads: nh, nq: N, nk: N, d: d, q: view(0), k: view(C), v: view(2 * C),
                o: HeadView(o, batchStride: N * C, headStride: d, rowStride: C), scale: 1 / Float(d).squareRoot())
            if let stripBias {
                a.stripBias = stripBias
            } else {
                a.bias = HeadView(bias.pointer, batchStride: 0, headStride: N * N, rowStride: N)
            }
            if shifted { a.regionLabels = lab; a.regionStride = N }
            return a
        }
        let oom = VidAttnError(.outOfMemory, "window attention: cannot allocate \(rows)×\(C) window buffers")
        let items = B * windows
        if items >= 2 * Threads.count {
            // One window start to end on one thread (gather, qkv, the window's heads, proj,
            // scatter) when there are at least two windows per worker: its qkv rows (3·N·C
            // floats) and outputs stay in L2 instead of crossing memory for the whole volume
            // between the steps; the same bits. Measured on Emerald Rapids (swin3d_t, 2 threads,
            // forwards alternating): 0.917–0.920 of the int8 forward's time, 0.977 of fp32's
            // (at 4 windows per worker, which left out stage 3: 0.951–0.967). Profiled as
            // attention (the Linears inside run on the workers).
            let workers = min(Threads.count, items), per = 5 * N * C
            guard let buf = ScratchPool.shared.take(workers * per) else { throw oom }
            defer { ScratchPool.shared.give(buf) }
            let failed = Atomic<Bool>(false)
            let profiled = Profile.begin(.attention)
            withExtendedLifetime(bias) {
                parallelDynamic(items, threads: workers) { item, w in
                    if failed.load(ordering: .relaxed) { return }
                    let xw = buf.p + w * per, qkv = xw + N * C, ow = qkv + 3 * N * C
                    gather(item, into: xw)
                    do {
                        try wt.qkv(xw, rows: N, into: qkv, threads: 1)
                        let lab = UnsafePointer(labels) + (item % windows) * N
                        guard Kernels.attention(windowArgs(qkv, ow, windows: 1, labels: lab), threads: 1) else {
                            failed.store(true, ordering: .relaxed); return
                        }
                        try wt.proj(ow, rows: N, into: xw, threads: 1)
                    } catch {
                        failed.store(true, ordering: .relaxed); return
                    }
                    scatter(item, from: xw)
                }
            }
            Profile.end(profiled, .attention)
            if failed.load(ordering: .relaxed) { throw oom }
            return
        }
        guard let bufs = ScratchPool.shared.take(rows * C, rows * 3 * C, rows * C) else { throw oom }
        defer { bufs.forEach(ScratchPool.shared.give) }
        let xw = bufs[0], qkv = bufs[1], ow = bufs[2]
        parallelFor(items) { item, _ in gather(item, into: xw.p + item * N * C) }
        try wt.qkv(xw.p, rows: rows, into: qkv.p)
        // Attention per batch item: windows × heads, bias per head, region labels per window.
        // (Profiled as attention; qkv and proj count as linear, the gathers as other.)
        let profiled = Profile.begin(.attention)
        let ok2: Bool = withExtendedLifetime(bias) {
            (0..<B).allSatisfy { b in
                Kernels.attention(
                    windowArgs(
                        qkv.p + b * windows * N * 3 * C, ow.p + b * windows * N * C, windows: windows,
                        labels: UnsafePointer(labels)))
            }
        }
        Profile.end(profiled, .attention)
        guard ok2 else { throw VidAttnError(.outOfMemory, "window attention: attention scratch") }
        // proj, in place into xw.
        try wt.proj(ow.p, rows: rows, into: xw.p)
        parallelFor(items) { item, _ in scatter(item, from: xw.p + item * N * C) }
    }

    /// Patch merging with the reduction weight as PyTorch stores it ([2C, 4C], row-major),
    /// packed for this call (the C API's entry; models pack theirs once at load).
    public static func patchMerging(
        batch B: Int, t T: Int, h H: Int, w W: Int, c C: Int,
        x: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>?,
        normWeight: UnsafePointer<Float>?, normBias: UnsafePointer<Float>?,
        reductionWeight: UnsafePointer<Float>?, eps: Float = 1e-5
    ) throws {
        try require(C > 0 && C <= 1 << 20, "channels must be positive (got \(C))")
        let r = try nonNull(reductionWeight, "reduction_weight")
        let reduction = try Linear(copying: r, bias: nil, out: 2 * C, in: 4 * C)
        try patchMerging(
            batch: B, t: T, h: H, w: W, c: C, x: x, y: y, normWeight: normWeight, normBias: normBias,
            reduction: reduction, eps: eps)
    }

    /// Patch merging (spatial 2×2, time untouched): x [B, T, H, W, C] →
    /// y [B, T, ⌈H/2⌉, ⌈W/2⌉, 2C] = Linear_{4C→2C}(LN([x00, x10, x01, x11])).
    public static func patchMerging(
        batch B: Int, t T: Int, h H: Int, w W: Int, c C: Int,
        x: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>?,
        normWeight: UnsafePointer<Float>?, normBias: UnsafePointer<Float>?,
        reduction: Linear, eps: Float = 1e-5
    ) throws {
        let profiled = Profile.begin(.linear); defer { Profile.end(profiled, .linear) }
        try require(B >= 0 && T > 0 && H > 0 && W > 0 && C > 0, "patch merging needs positive sizes")
        try require(
            reduction.inFeatures == 4 * C && reduction.outFeatures == 2 * C,
            "reduction must map \(4 * C) to \(2 * C) channels (got \(reduction.inFeatures)→\(reduction.outFeatures))",
            status: .shapeMismatch)
        if B == 0 { return }
        let x = try nonNull(x, "x"), y = try nonNull(y, "y")
        let H2 = (H + 1) / 2, W2 = (W + 1) / 2, rows = B * T * H2 * W2
        guard let cat = ScratchPool.shared.take(rows * 4 * C) else {
            throw VidAttnError(.outOfMemory, "patch merging: cannot allocate \(rows)×\(4 * C)")
        }
        defer { ScratchPool.shared.give(cat) }
        parallelFor(B * T) { bt, _ in
            for i in 0..<H2 {
                for j in 0..<W2 {
                    let dst = cat.p + ((bt * H2 + i) * W2 + j) * 4 * C
                    for (phase, (di, dj)) in [(0, 0), (1, 0), (0, 1), (1, 1)].enumerated() {
                        let hh = 2 * i + di, ww = 2 * j + dj, out = dst + phase * C
                        if hh < H && ww < W {
                            out.update(from: x + ((bt * H + hh) * W + ww) * C, count: C)
                        } else {
                            out.update(repeating: 0, count: C)
                        }
                    }
                }
            }
        }
        Kernels.layerNorm(
            rows: rows, cols: 4 * C, x: cat.p, ldx: 4 * C, y: cat.p, ldy: 4 * C,
            gamma: normWeight, beta: normBias, eps: eps)
        try reduction(cat.p, rows: rows, into: y)
    }
}

@inline(__always)
func withOptionalPointer<R>(_ a: Tensor?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    withExtendedLifetime(a) { body(a?.pointer) }
}
