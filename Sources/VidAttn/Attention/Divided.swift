// Divided space-time attention (TimeSformer), on q, k, v laid out [B, H, 1+F·P, d]
// with the CLS token first and patch tokens frame-major (token 1 + f·P + p).
//
// Two CLS schemes exist in the reference code (docs/attention.md):
//  - `.clsAllKeys` (lucidrains TimeSformer-pytorch, Motionformer): the CLS query
//    attends to all 1+F·P keys; every patch query attends to {CLS} ∪ its group.
//  - `.perFrameCopy` (HF / original TimeSformer): temporal attention runs on
//    patch tokens only (the CLS output row is zero: CLS gets no temporal update);
//    spatial attention runs per frame on [CLS, frame], and the CLS output is the
//    mean of its F per-frame outputs. The temporal dense layer is the model's.
import Kernels

/// How the patch tokens of a divided attention step are grouped.
public enum DividedGrouping: Int32, Sendable {
    /// Groups of F tokens: one spatial position across frames.
    case time = 0
    /// Groups of P tokens: one frame.
    case space = 1
}

/// What the CLS token attends to in divided attention.
public enum DividedCLSScheme: Int32, Sendable {
    case clsAllKeys = 0
    case perFrameCopy = 1
}

/// Shape of a divided-attention call.
public struct DividedShape: Sendable {
    /// Batch, heads, frames F, patches per frame P and head width of a divided attention call.
    public var batch: Int, heads: Int, frames: Int, patches: Int, headDim: Int
    /// A shape from its parts.
    public init(batch: Int, heads: Int, frames: Int, patches: Int, headDim: Int) {
        self.batch = batch; self.heads = heads; self.frames = frames; self.patches = patches; self.headDim = headDim
    }
    var tokens: Int { 1 + frames * patches }
}

extension Ops {
    /// Divided space-time attention. q, k, v, out: [B, H, 1+F·P, d] contiguous.
    /// `frameMask` ([B, F] bytes, nonzero = real frame) is honoured by `.clsAllKeys`:
    /// padded frames are never attended by time groups or by the CLS query.
    public static func dividedAttention(
        _ sh: DividedShape, grouping: DividedGrouping, scheme: DividedCLSScheme,
        q: UnsafePointer<Float>?, k: UnsafePointer<Float>?,
        v: UnsafePointer<Float>?, out: UnsafeMutablePointer<Float>?,
        scale: Float? = nil, frameMask: UnsafePointer<UInt8>? = nil
    ) throws {
        let profiled = Profile.begin(.attention); defer { Profile.end(profiled, .attention) }
        let B = sh.batch, H = sh.heads, F = sh.frames, P = sh.patches, d = sh.headDim
        try require(
            B >= 0 && H >= 0 && F > 0 && P > 0 && d > 0,
            "divided attention needs batch, heads >= 0 and frames, patches, head_dim > 0 "
                + "(got \(B), \(H), \(F), \(P), \(d))")
        guard let total = checkedProduct(B, H, 1 + F * P, d), checkedProduct(B, H, F * P, 1 + max(F, P)) != nil else {
            throw VidAttnError(.invalidArgument, "divided attention sizes overflow")
        }
        if B == 0 || H == 0 { return }
        let q = try nonNull(q, "q"), k = try nonNull(k, "k"), v = try nonNull(v, "v"), out = try nonNull(out, "out")
        if scheme == .perFrameCopy && frameMask != nil {
            throw VidAttnError(.unsupported, "frame masks are only defined for the CLS-attends-all scheme")
        }
        let s = scale ?? 1 / Float(d).squareRoot()
        try require(s.isFinite, "scale must be finite")
        _ = total

        let N = F * P, T = 1 + N
        let G = grouping == .time ? P : F  // groups per (b, h)
        let L = grouping == .time ? F : P  // tokens per group
        let withCLSKey = scheme == .clsAllKeys || grouping == .space
        let withCLSQuery = scheme == .perFrameCopy && grouping == .space
        let nk = L + (withCLSKey ? 1 : 0), nq = L + (withCLSQuery ? 1 : 0)
        let groups = B * H * G
        // Patch token index of the i-th member of group g.
        @inline(__always) func member(_ g: Int, _ i: Int) -> Int {
            grouping == .time ? 1 + i * P + g : 1 + g * P + i
        }
        guard let bufs = ScratchPool.shared.take(groups * nq * d, groups * nk * d, groups * nk * d, groups * nq * d)
        else { throw VidAttnError(.outOfMemory, "divided attention: cannot allocate group buffers") }
        defer { bufs.forEach(ScratchPool.shared.give) }
        let qb = bufs[0], kb = bufs[1], vb = bufs[2], ob = bufs[3]
        let timeMask = frameMask != nil && grouping == .time
        // The key mask of the time groups (padded frames), from the counted allocator.
        var maskBuf: UnsafeMutablePointer<UInt8>? = nil
        if timeMask {
            guard let mb = allocCounted(UInt8.self, groups * nk) else {
                throw VidAttnError(.outOfMemory, "divided attention: cannot allocate the frame mask")
            }
            mb.initialize(repeating: 1, count: groups * nk)
            maskBuf = mb
        }
        defer { freeCounted(maskBuf) }

        // Gather.
        let qg = qb.p, kg = kb.p, vg = vb.p, og = ob.p
        parallelFor(B * H) { bh, _ in
            let base = bh * T * d
            for g in 0..<G {
                let gi = bh * G + g
                var qr = qg + gi * nq * d, kr = kg + gi * nk * d, vr = vg + gi * nk * d
                if withCLSQuery { qr.update(from: q + base, count: d); qr += d }
                if withCLSKey {
                    kr.update(from: k + base, count: d); vr.update(from: v + base, count: d)
                    kr += d; vr += d
                }
                for i in 0..<L {
                    let t = base + member(g, i) * d
                    (qr + i * d).update(from: q + t, count: d)
                    (kr + i * d).update(from: k + t, count: d)
                    (vr + i * d).update(from: v + t, count: d)
                }
            }
        }
        if let mb = maskBuf, let fm = frameMask {
            for gi in 0..<groups {
                let b = gi / (H * G)
                for f in 0..<F { mb[gi * nk + 1 + f] = fm[b * F + f] != 0 ? 1 : 0 }
            }
        }
        let view = { (p: UnsafePointer<Float>, n: Int) in HeadView(p, batchStride: n * d, headStride: 0, rowStride: d) }
        var args = AttentionArgs(
            batch: groups, heads: 1, nq: nq, nk: nk, d: d,
            q: view(UnsafePointer(qg), nq), k: view(UnsafePointer(kg), nk), v: view(UnsafePointer(vg), nk),
            o: HeadView(og, batchStride: nq * d, headStride: 0, rowStride: d), scale: s)
        if let mb = maskBuf { args.keyMask = UnsafePointer(mb); args.keyMaskStride = nk }
        let ok = Kernels.attention(args)
        if !ok { throw VidAttnError(.outOfMemory, "divided attention: cannot allocate attention scratch") }

        // Scatter patch outputs; CLS handled below.
        parallelFor(B * H) { bh, _ in
            let base = bh * T * d
            for g in 0..<G {
                let gi = bh * G + g
                let orow = og + gi * nq * d + (withCLSQuery ? d : 0)
                for i in 0..<L { (out + base + member(g, i) * d).update(from: orow + i * d, count: d) }
            }
        }
        switch (scheme, grouping) {
        case (.perFrameCopy, .time):
            for bh in 0..<(B * H) { (out + bh * T * d).update(repeating: 0, count: d) }
        case (.perFrameCopy, .space):
            // CLS = mean over frames of the per-frame CLS outputs.
            for bh in 0..<(B * H) {
                let dst = out + bh * T * d
                for t in 0..<d {
                    var acc: Float = 0
                    for g in 0..<G { acc += og[(bh * G + g) * nq * d + t] }
                    dst[t] = acc / Float(G)
                }
            }
        case (.clsAllKeys, _):
            // CLS query over all 1+N keys; padded frames' tokens masked.
            var clsMask: UnsafeMutablePointer<UInt8>? = nil
            if let fm = frameMask {
                guard let cm = allocCounted(UInt8.self, B * T) else {
                    throw VidAttnError(.outOfMemory, "divided attention: cannot allocate the CLS key mask")
                }
                cm.initialize(repeating: 1, count: B * T)
                for b in 0..<B {
                    for f in 0..<F where fm[b * F + f] == 0 {
                        for p in 0..<P { cm[b * T + 1 + f * P + p] = 0 }
                    }
                }
                clsMask = cm
            }
            defer { freeCounted(clsMask) }
            let hv = { (p: UnsafePointer<Float>) in HeadView(p, batchStride: H * T * d, headStride: T * d, rowStride: d)
            }
            var ca = AttentionArgs(
                batch: B, heads: H, nq: 1, nk: T, d: d, q: hv(q), k: hv(k), v: hv(v),
                o: HeadView(out, batchStride: H * T * d, headStride: T * d, rowStride: d), scale: s)
            if let cm = clsMask { ca.keyMask = UnsafePointer(cm); ca.keyMaskStride = T }
            let ok2 = Kernels.attention(ca)
            if !ok2 { throw VidAttnError(.outOfMemory, "divided attention: cannot allocate CLS scratch") }
        }
    }
}
