// The antialiased bilinear resize of 8-bit RGB that HF's image processors apply
// (transformers 5.x: torchvision's uint8 kernel; older versions: Pillow). Both use a
// triangle filter widened by the downscale factor, a horizontal then a vertical pass,
// and fixed-point weights, each pass rounded and clipped to 8 bits; they differ in the
// weights' precision: Pillow 22 bits, torch int16 with the most bits the largest weight
// allows. Written from the algorithm's description so that HF's preprocessing is reproduced.

import Kernels

enum PILResize {
    static let pillowPrecision = 32 - 8 - 2

    /// Fixed-point filter taps of one pass (n → n2), in counted buffers: output x reads
    /// `count[x]` inputs from `first[x]` with weights `k[x · maxK ..< x · maxK + count[x]]`,
    /// `precision` fractional bits.
    final class Taps {
        let n2: Int, maxK: Int, precision: Int
        let first: UnsafeMutablePointer<Int>, count: UnsafeMutablePointer<Int>, k: UnsafeMutablePointer<Int64>

        init(inSize n: Int, outSize n2: Int, torchPrecision: Bool) throws {
            let scale = Double(n) / Double(n2)
            let filterScale = max(scale, 1), support = filterScale
            self.n2 = n2
            maxK = Int((2 * support).rounded(.up)) + 2
            // One allocation at a time, freeing the earlier ones when a later one fails.
            let oom = VidAttnError(.outOfMemory, "preprocessing: cannot allocate resize taps")
            guard let size = checkedProduct(n2, maxK), let first = allocCounted(Int.self, n2) else { throw oom }
            guard let count = allocCounted(Int.self, n2) else {
                freeCounted(first)
                throw oom
            }
            guard let k = allocCounted(Int64.self, size) else {
                freeCounted(first); freeCounted(count)
                throw oom
            }
            guard let w = allocCounted(Double.self, size) else {
                freeCounted(first); freeCounted(count); freeCounted(k)
                throw oom
            }
            defer { freeCounted(w) }
            self.first = first; self.count = count; self.k = k
            // Normalised triangle weights of each output index.
            var maxW = 0.0
            for x in 0..<n2 {
                let center = (Double(x) + 0.5) * scale
                let xmin = max(Int(center - support + 0.5), 0), xmax = min(Int(center + support + 0.5), n)
                first[x] = xmin; count[x] = max(0, min(xmax - xmin, maxK))
                var total = 0.0
                for i in 0..<count[x] {
                    let t = (Double(xmin + i) - center + 0.5) / filterScale
                    w[x * maxK + i] = max(0, 1 - abs(t)); total += w[x * maxK + i]
                }
                for i in 0..<count[x] {
                    w[x * maxK + i] = total != 0 ? w[x * maxK + i] / total : 0
                    maxW = max(maxW, w[x * maxK + i])
                }
            }
            var p = pillowPrecision
            if torchPrecision {
                p = 0
                while p < 15 && Int(0.5 + maxW * Double(1 << (p + 1))) < (1 << 15) { p += 1 }
            }
            precision = p
            let one = Double(1 << p)
            for x in 0..<n2 {
                for i in 0..<count[x] {
                    let v = w[x * maxK + i] * one
                    k[x * maxK + i] = Int64((v < 0 ? v - 0.5 : v + 0.5).rounded(.towardZero))
                }
            }
        }

        deinit { freeCounted(first); freeCounted(count); freeCounted(k) }
    }

    @inline(__always) static func clip8(_ v: Int64, _ precision: Int) -> UInt8 {
        UInt8(truncatingIfNeeded: min(max(v >> Int64(precision), 0), 255))
    }

    /// One pass with `taps` along an axis (stride between taps `step`), for `lines` lines whose
    /// first elements `lineOf` gives in src and dst.
    static func pass(
        _ src: UnsafePointer<UInt8>, lines: Int, step: Int, taps t: Taps,
        into dst: UnsafeMutablePointer<UInt8>, lineOf: (Int) -> (Int, Int)
    ) {
        let p = t.precision, half = Int64(1) << Int64(p - 1)
        for line in 0..<lines {
            let (base, base2) = lineOf(line)
            for x in 0..<t.n2 {
                let x0 = t.first[x], kk = t.k + x * t.maxK, kn = t.count[x]
                for c in 0..<3 {
                    var acc = half
                    for i in 0..<kn { acc += Int64(src[base + (x0 + i) * step + c]) * kk[i] }
                    dst[base2 + x * step + c] = clip8(acc, p)
                }
            }
        }
    }

    /// A resize of h×w frames to h2×w2: the taps of both passes, computed once.
    struct Plan {
        let h: Int, w: Int, h2: Int, w2: Int
        let horizontal: Taps?, vertical: Taps?
        init(h: Int, w: Int, toH h2: Int, toW w2: Int, torchPrecision: Bool) throws {
            self.h = h; self.w = w; self.h2 = h2; self.w2 = w2
            horizontal = w2 != w ? try Taps(inSize: w, outSize: w2, torchPrecision: torchPrecision) : nil
            vertical = h2 != h ? try Taps(inSize: h, outSize: h2, torchPrecision: torchPrecision) : nil
        }
        /// Scratch bytes one `resize` call needs.
        var scratchBytes: Int { h * w2 * 3 }
    }

    /// src [h, w, 3] → dst [h2, w2, 3], with `scratch` of plan.scratchBytes for the
    /// intermediate (horizontal pass first, as Pillow and torchvision do).
    static func resize(
        _ src: UnsafePointer<UInt8>, _ plan: Plan, scratch: UnsafeMutablePointer<UInt8>,
        into dst: UnsafeMutablePointer<UInt8>
    ) {
        let (h, w, w2) = (plan.h, plan.w, plan.w2)
        // After the horizontal pass the frame is h × w2; written to dst when it is the last pass.
        let mid: UnsafePointer<UInt8>
        if let hp = plan.horizontal {
            let out = plan.vertical == nil ? dst : scratch
            pass(src, lines: h, step: 3, taps: hp, into: out) { y in (y * w * 3, y * w2 * 3) }
            mid = UnsafePointer(out)
        } else {
            mid = src
        }
        if let vp = plan.vertical {
            pass(mid, lines: w2, step: w2 * 3, taps: vp, into: dst) { x in (x * 3, x * 3) }
        } else if plan.horizontal == nil {
            dst.update(from: src, count: h * w * 3)
        }
    }
}
