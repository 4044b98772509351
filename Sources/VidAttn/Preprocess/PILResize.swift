// The antialiased bilinear resize of 8-bit RGB that HF's image processors apply
// (transformers 5.x: torchvision's uint8 kernel; older versions: Pillow). Both use a
// triangle filter widened by the downscale factor, a horizontal then a vertical pass,
// and fixed-point weights, each pass rounded and clipped to 8 bits; they differ in the
// weights' precision: Pillow 22 bits, torch int16 with the most bits the largest weight
// allows. Written from the algorithm's description so that HF's preprocessing is reproduced.

enum PILResize {
    static let pillowPrecision = 32 - 8 - 2

    /// Normalised filter taps of each output index: (first input index, weights).
    static func weights(inSize: Int, outSize: Int) -> [(Int, [Double])] {
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1)
        let support = 1.0 * filterScale
        var out: [(Int, [Double])] = []
        for x in 0..<outSize {
            let center = (Double(x) + 0.5) * scale
            let xmin = max(Int(center - support + 0.5), 0)
            let xmax = min(Int(center + support + 0.5), inSize)
            var w: [Double] = []
            var total = 0.0
            for i in xmin..<xmax {
                let t = (Double(i) - center + 0.5) / filterScale
                let v = max(0, 1 - abs(t))
                w.append(v); total += v
            }
            out.append((xmin, w.map { total != 0 ? $0 / total : 0 }))
        }
        return out
    }

    /// Fixed-point taps and their precision in bits.
    static func taps(inSize: Int, outSize: Int, torchPrecision: Bool) -> (taps: [(Int, [Int64])], precision: Int) {
        let ws = weights(inSize: inSize, outSize: outSize)
        var precision = pillowPrecision
        if torchPrecision {
            var maxW = 0.0
            for (_, w) in ws { for v in w { maxW = max(maxW, v) } }
            precision = 0
            while precision < 15 && Int(0.5 + maxW * Double(1 << (precision + 1))) < (1 << 15) { precision += 1 }
        }
        let one = Double(1 << precision)
        let fixed: [(Int, [Int64])] = ws.map { item in
            let k: [Int64] = item.1.map { n in
                let v = n * one
                return Int64((v < 0 ? v - 0.5 : v + 0.5).rounded(.towardZero))
            }
            return (item.0, k)
        }
        return (fixed, precision)
    }

    @inline(__always) static func clip8(_ v: Int64, _ precision: Int) -> UInt8 {
        UInt8(truncatingIfNeeded: min(max(v >> Int64(precision), 0), 255))
    }

    /// One pass with taps `tx` (precision p bits) along an axis (stride between taps `step`),
    /// for `lines` lines whose first elements `lineOf` gives in src and dst.
    static func pass(_ src: UnsafePointer<UInt8>, lines: Int, n2: Int, step: Int, taps tx: [(Int, [Int64])], precision p: Int,
                     into dst: UnsafeMutablePointer<UInt8>, lineOf: (Int) -> (Int, Int)) {
        let half = Int64(1) << Int64(p - 1)
        for line in 0..<lines {
            let (base, base2) = lineOf(line)
            for x in 0..<n2 {
                let (x0, k) = tx[x]
                for c in 0..<3 {
                    var acc = half
                    for i in 0..<k.count { acc += Int64(src[base + (x0 + i) * step + c]) * k[i] }
                    dst[base2 + x * step + c] = clip8(acc, p)
                }
            }
        }
    }

    /// A resize of h×w frames to h2×w2: the taps of both passes, computed once.
    struct Plan {
        let h: Int, w: Int, h2: Int, w2: Int
        let horizontal: (taps: [(Int, [Int64])], precision: Int)?
        let vertical: (taps: [(Int, [Int64])], precision: Int)?
        init(h: Int, w: Int, toH h2: Int, toW w2: Int, torchPrecision: Bool) {
            self.h = h; self.w = w; self.h2 = h2; self.w2 = w2
            horizontal = w2 != w ? taps(inSize: w, outSize: w2, torchPrecision: torchPrecision) : nil
            vertical = h2 != h ? taps(inSize: h, outSize: h2, torchPrecision: torchPrecision) : nil
        }
        /// Scratch bytes one `resize` call needs.
        var scratchBytes: Int { h * w2 * 3 }
    }

    /// src [h, w, 3] → dst [h2, w2, 3], with `scratch` of plan.scratchBytes for the
    /// intermediate (horizontal pass first, as Pillow and torchvision do).
    static func resize(_ src: UnsafePointer<UInt8>, _ plan: Plan, scratch: UnsafeMutablePointer<UInt8>,
                       into dst: UnsafeMutablePointer<UInt8>) {
        let (h, w, h2, w2) = (plan.h, plan.w, plan.h2, plan.w2)
        // After the horizontal pass the frame is h × w2; written to dst when it is the last pass.
        let mid: UnsafePointer<UInt8>
        if let hp = plan.horizontal {
            let out = plan.vertical == nil ? dst : scratch
            pass(src, lines: h, n2: w2, step: 3, taps: hp.taps, precision: hp.precision, into: out) { y in (y * w * 3, y * w2 * 3) }
            mid = UnsafePointer(out)
        } else {
            mid = src
        }
        if let vp = plan.vertical {
            pass(mid, lines: w2, n2: h2, step: w2 * 3, taps: vp.taps, precision: vp.precision, into: dst) { x in (x * 3, x * 3) }
        } else if plan.horizontal == nil {
            dst.update(from: src, count: h * w * 3)
        }
    }
}
