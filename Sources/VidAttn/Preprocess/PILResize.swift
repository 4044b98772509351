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

    /// One pass along an axis of length n (stride between taps `step`), for `lines` lines.
    static func pass(_ src: [UInt8], lines: Int, n: Int, n2: Int, lineStride: Int, lineStride2: Int, step: Int,
                     torchPrecision: Bool, into dst: inout [UInt8], lineOf: (Int) -> (Int, Int)) {
        let (tx, p) = taps(inSize: n, outSize: n2, torchPrecision: torchPrecision)
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
        _ = (lineStride, lineStride2)
    }

    /// src [h, w, 3] → [h2, w2, 3].
    static func resize(_ src: UnsafePointer<UInt8>, h: Int, w: Int, toH h2: Int, toW w2: Int,
                       torchPrecision: Bool = false) -> [UInt8] {
        var cur = Array(UnsafeBufferPointer(start: src, count: h * w * 3))
        var cw = w
        if w2 != w {
            var next = [UInt8](repeating: 0, count: h * w2 * 3)
            pass(cur, lines: h, n: w, n2: w2, lineStride: w * 3, lineStride2: w2 * 3, step: 3,
                 torchPrecision: torchPrecision, into: &next) { y in (y * w * 3, y * w2 * 3) }
            cur = next; cw = w2
        }
        if h2 != h {
            var next = [UInt8](repeating: 0, count: h2 * cw * 3)
            let width = cw
            pass(cur, lines: width, n: h, n2: h2, lineStride: 3, lineStride2: 3, step: width * 3,
                 torchPrecision: torchPrecision, into: &next) { x in (x * 3, x * 3) }
            cur = next
        }
        return cur
    }
}
