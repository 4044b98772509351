import XCTest
@testable import Kernels

/// Fused attention against the materialising Double-accumulating reference.
/// Tolerance: 2e-6 absolute on outputs of O(1) inputs, 1e-6 on probabilities.
final class AttentionTests: XCTestCase {
    struct Case {
        var b = 1, h = 1, nq = 1, nk = 1, d = 64
        var bias = false, broadcastBias = false, mask = false, probs = false
    }

    func run(_ t: Case, threads: Int = 2, line: UInt = #line) {
        let q = Buf(t.b * t.h * t.nq * t.d, seed: 1, scale: 2)
        let k = Buf(t.b * t.h * t.nk * t.d, seed: 2, scale: 2)
        let v = Buf(t.b * t.h * t.nk * t.d, seed: 3)
        let bias = Buf(t.h * t.nq * t.nk, seed: 4)
        var mask = [UInt8](repeating: 1, count: t.b * t.nk)
        if t.mask {
            for i in mask.indices where (i * 7) % 5 == 0 { mask[i] = 0 }
            if t.b > 1 { for j in 0..<t.nk { mask[t.nk + j] = 0 } }  // batch 1: every key masked
        }
        let o1 = Buf(t.b * t.h * t.nq * t.d), o2 = Buf(t.b * t.h * t.nq * t.d)
        let p1 = Buf(t.b * t.h * t.nq * t.nk), p2 = Buf(t.b * t.h * t.nq * t.nk)
        func view(_ p: UnsafePointer<Float>, _ n: Int) -> HeadView<UnsafePointer<Float>> {
            HeadView(p, batchStride: t.h * n * t.d, headStride: n * t.d, rowStride: t.d)
        }
        mask.withUnsafeBufferPointer { mp in
            var a = AttentionArgs(
                batch: t.b, heads: t.h, nq: t.nq, nk: t.nk, d: t.d,
                q: view(q.c, t.nq), k: view(k.c, t.nk), v: view(v.c, t.nk),
                o: HeadView(o1.p, batchStride: t.h * t.nq * t.d, headStride: t.nq * t.d, rowStride: t.d),
                scale: 1 / Float(t.d).squareRoot())
            if t.bias {
                a.bias = HeadView(
                    bias.c, batchStride: 0, headStride: t.broadcastBias ? 0 : t.nq * t.nk, rowStride: t.nk)
            }
            if t.mask { a.keyMask = mp.baseAddress; a.keyMaskStride = t.nk }
            if t.probs { a.probs = p1.p }
            XCTAssertTrue(withOptimised { attention(a, threads: threads) })
            a.o.base = o2.p
            if t.probs { a.probs = p2.p }
            attentionReference(a)
        }
        let err = maxAbsDiff(o1.c, o2.c, t.b * t.h * t.nq * t.d)
        XCTAssertLessThanOrEqual(err, 2e-6, "\(t)", line: line)
        if t.probs {
            XCTAssertLessThanOrEqual(maxAbsDiff(p1.c, p2.c, t.b * t.h * t.nq * t.nk), 1e-6, "probs \(t)", line: line)
        }
    }

    /// Q, K and V read in place from one [b, n, 3, h, d] buffer (a qkv Linear's output: rows far
    /// apart), the key panels packed 16 dimensions at a time where d allows and the rest one by
    /// one; n not a multiple of the 12-key panels.
    func testInterleavedQKV() {
        for (n, d) in [(133, 32), (101, 40), (100, 64), (37, 24)] {
            let b = 2, h = 2, row = 3 * h * d
            let qkv = Buf(b * n * row, seed: 11, scale: 2)
            let o1 = Buf(b * h * n * d), o2 = Buf(b * h * n * d)
            func view(_ part: Int) -> HeadView<UnsafePointer<Float>> {
                HeadView(qkv.c + part * h * d, batchStride: n * row, headStride: d, rowStride: row)
            }
            var a = AttentionArgs(
                batch: b, heads: h, nq: n, nk: n, d: d, q: view(0), k: view(1), v: view(2),
                o: HeadView(o1.p, batchStride: h * n * d, headStride: n * d, rowStride: d),
                scale: 1 / Float(d).squareRoot())
            XCTAssertTrue(withOptimised { attention(a, threads: 2) })
            a.o.base = o2.p
            attentionReference(a)
            XCTAssertLessThanOrEqual(maxAbsDiff(o1.c, o2.c, b * h * n * d), 2e-6, "n \(n), d \(d)")
        }
    }

    func testShapes() {
        run(Case())  // one query, one key
        run(Case(b: 2, h: 3, nq: 97, nk: 97, d: 64))  // one past the tile sizes
        run(Case(b: 1, h: 2, nq: 5, nk: 300, d: 32))
        run(Case(b: 1, h: 2, nq: 300, nk: 5, d: 64))
        run(Case(b: 1, h: 1, nq: 200, nk: 197, d: 40))  // d not a multiple of 16
        run(Case(b: 1, h: 1, nq: 13, nk: 29, d: 7))
        run(Case(b: 1, h: 2, nq: 8, nk: 8, d: 96))
        run(Case(b: 1, h: 1, nq: 400, nk: 400, d: 128))
    }

    func testBiasMaskAndProbs() {
        run(Case(b: 2, h: 3, nq: 50, nk: 110, d: 32, bias: true))
        run(Case(b: 2, h: 3, nq: 50, nk: 110, d: 32, bias: true, broadcastBias: true))
        run(Case(b: 2, h: 2, nq: 100, nk: 130, d: 64, mask: true))
        run(Case(b: 2, h: 2, nq: 33, nk: 98, d: 24, bias: true, mask: true, probs: true))
        run(Case(b: 1, h: 1, nq: 1, nk: 1, d: 1, probs: true))
    }

    func testKeyMajorBiasAndRegionLabels() {
        // The same bias stored key-major gives the same result as query-major; region labels
        // agree with the reference (tiled path: 150 queries; short path: 20).
        for n in [150, 20] {
            let d = 32
            let q = Buf(n * d, seed: 1), k = Buf(n * d, seed: 2), v = Buf(n * d, seed: 3)
            let bias = Buf(n * n, seed: 4), biasT = Buf(n * n)
            for i in 0..<n { for j in 0..<n { biasT.p[j * n + i] = bias.p[i * n + j] } }
            let labels = (0..<n).map { UInt8(($0 * 7 / n) % 3) }
            let o1 = Buf(n * d), o2 = Buf(n * d), o3 = Buf(n * d)
            let hv = { (p: UnsafePointer<Float>) in HeadView(p, batchStride: 0, headStride: 0, rowStride: d) }
            labels.withUnsafeBufferPointer { lp in
                var a = AttentionArgs(
                    batch: 1, heads: 1, nq: n, nk: n, d: d, q: hv(q.c), k: hv(k.c), v: hv(v.c),
                    o: HeadView(o1.p, batchStride: 0, headStride: 0, rowStride: d), scale: 0.2)
                a.regionLabels = lp.baseAddress
                a.bias = HeadView(bias.c, batchStride: 0, headStride: 0, rowStride: n)
                XCTAssertTrue(withOptimised { attention(a) })
                a.o.base = o2.p; a.bias = HeadView(biasT.c, batchStride: 0, headStride: 0, rowStride: n);
                a.biasKeyMajor = true
                XCTAssertTrue(withOptimised { attention(a) })
                a.o.base = o3.p
                attentionReference(a)
            }
            XCTAssertLessThanOrEqual(maxAbsDiff(o1.c, o2.c, n * d), 1e-6)
            XCTAssertLessThanOrEqual(maxAbsDiff(o2.c, o3.c, n * d), 2e-6)
        }
    }

    /// A `StripBias` gives the same bits as the same bias stored dense and key-major: the tiled
    /// path (a window of 8 × 7 × 7 tokens and the clamped first 150 of one, 3 × 12 = 36 tokens) and
    /// the short path (20 and 24 tokens), on the fast kernels and the reference; two heads, two
    /// windows, shifted-window labels. NaN before and after each head's strips (`readPastRow`
    /// floats of it) shows a read past them that reaches a result; the tiles do load up to that
    /// many floats past a row for whole 32-query panels, whose extra sums are never used.
    func testStripBiasMatchesDenseBias() {
        for (frames, plane, n) in [(8, 49, 392), (8, 49, 150), (3, 12, 36), (8, 49, 20), (2, 12, 24)] {
            let d = 32, heads = 2, batch = 2
            let pad = StripBias.readPastRow
            let per = (2 * frames - 1) * plane * plane + pad
            let strips = Buf(heads * per + pad, seed: 5)
            for h in 0...heads { for i in 0..<pad { strips.p[h * per + i] = .nan } }
            let sb = StripBias(base: strips.c + pad, headStride: per, plane: plane, frames: frames)
            let dense = Buf(heads * n * n)
            for h in 0..<heads {
                for j in 0..<n {
                    for i in 0..<n { dense.p[(h * n + j) * n + i] = sb.base[sb.row(head: h, key: j) + i] }
                }
            }
            let q = Buf(batch * heads * n * d, seed: 1, scale: 2), k = Buf(batch * heads * n * d, seed: 2, scale: 2)
            let v = Buf(batch * heads * n * d, seed: 3)
            let labels = (0..<(batch * n)).map { UInt8($0 < n ? 0 : ($0 * 5 / n) % 3) }
            let o1 = Buf(batch * heads * n * d), o2 = Buf(batch * heads * n * d)
            let o3 = Buf(batch * heads * n * d), o4 = Buf(batch * heads * n * d)
            let hv = { (p: UnsafePointer<Float>) in
                HeadView(p, batchStride: heads * n * d, headStride: n * d, rowStride: d)
            }
            labels.withUnsafeBufferPointer { lp in
                var a = AttentionArgs(
                    batch: batch, heads: heads, nq: n, nk: n, d: d, q: hv(q.c), k: hv(k.c), v: hv(v.c),
                    o: HeadView(o1.p, batchStride: heads * n * d, headStride: n * d, rowStride: d), scale: 0.2)
                a.regionLabels = lp.baseAddress; a.regionStride = n
                a.stripBias = sb
                XCTAssertTrue(withOptimised { attention(a) })
                a.o.base = o3.p
                attentionReference(a)
                a.stripBias = nil
                a.bias = HeadView(dense.c, batchStride: 0, headStride: n * n, rowStride: n); a.biasKeyMajor = true
                a.o.base = o2.p
                XCTAssertTrue(withOptimised { attention(a) })
                a.o.base = o4.p
                attentionReference(a)
            }
            let count = batch * heads * n * d
            XCTAssertTrue(sameBits(o1.c, o2.c, count), "plane \(plane), n \(n)")
            XCTAssertTrue(sameBits(o3.c, o4.c, count), "reference, plane \(plane), n \(n)")
            XCTAssertLessThanOrEqual(maxAbsDiff(o1.c, o3.c, count), 2e-6, "plane \(plane), n \(n)")
        }
    }

    /// `StripBias.forEachRow` steps from key to key (one division per run) and must land where
    /// `row` does for every key, across frame boundaries and heads, from any first key.
    func testStripBiasRowRunsMatchRow() {
        let dummy = [Float](repeating: 0, count: 1)
        dummy.withUnsafeBufferPointer { p in
            for (frames, plane) in [(8, 49), (3, 12), (2, 1), (1, 5)] {
                let sb = StripBias(base: p.baseAddress!, headStride: 100_003, plane: plane, frames: frames)
                let n = frames * plane
                for h in 0..<2 {
                    for first in 0..<n {
                        let count = min(13, n - first)
                        var seen = 0
                        sb.forEachRow(head: h, first: first, count: count) { i, row in
                            XCTAssertEqual(i, seen)
                            XCTAssertEqual(
                                row, sb.row(head: h, key: first + i), "frames \(frames) plane \(plane) key \(first + i)"
                            )
                            seen += 1
                        }
                        XCTAssertEqual(seen, count)
                    }
                }
            }
        }
    }

    /// Region labels per batch entry (Swin's windows): entries whose labels are all equal take no
    /// penalty and skip the label pass (`mixedRegionLabels`); an entry that differs only in its
    /// last token must still get it. Tiled path (150 tokens) and short path (20).
    func testRegionLabelsPerBatchEntry() {
        for n in [150, 20] {
            let d = 32, batch = 3
            let q = Buf(batch * n * d, seed: 1, scale: 2), k = Buf(batch * n * d, seed: 2, scale: 2),
                v = Buf(batch * n * d, seed: 3)
            // Entry 0 all 0, entry 1 all 2, entry 2 all 0 but its last token 1.
            var labels = [UInt8](repeating: 0, count: batch * n)
            for i in 0..<n { labels[n + i] = 2 }
            labels[3 * n - 1] = 1
            let o = Buf(batch * n * d), oRef = Buf(batch * n * d), oNone = Buf(batch * n * d)
            let hv = { (p: UnsafePointer<Float>) in HeadView(p, batchStride: n * d, headStride: 0, rowStride: d) }
            labels.withUnsafeBufferPointer { lp in
                var a = AttentionArgs(
                    batch: batch, heads: 1, nq: n, nk: n, d: d, q: hv(q.c), k: hv(k.c), v: hv(v.c),
                    o: HeadView(o.p, batchStride: n * d, headStride: 0, rowStride: d), scale: 0.2)
                a.regionLabels = lp.baseAddress; a.regionStride = n
                XCTAssertTrue(withOptimised { attention(a) })
                a.o.base = oRef.p
                attentionReference(a)
                a.regionLabels = nil; a.o.base = oNone.p
                attentionReference(a)
            }
            XCTAssertLessThanOrEqual(maxAbsDiff(o.c, oRef.c, batch * n * d), 2e-6, "n = \(n)")
            // The last entry's penalty changed its output (the test would see a skipped pass).
            let last = 2 * n * d
            XCTAssertGreaterThan(maxAbsDiff(oRef.c + last, oNone.c + last, n * d), 1e-3, "n = \(n)")
        }
    }

    func testSingleThreadMatchesMultiThread() {
        run(Case(b: 1, h: 3, nq: 150, nk: 150, d: 64), threads: 1)
        run(Case(b: 1, h: 3, nq: 150, nk: 150, d: 64), threads: 3)
    }

    func testFullyMaskedQueriesGiveZeros() {
        let nq = 4, nk = 20, d = 16
        let q = Buf(nq * d), k = Buf(nk * d), v = Buf(nk * d), o = Buf(nq * d, seed: 9)
        let mask = [UInt8](repeating: 0, count: nk)
        mask.withUnsafeBufferPointer { mp in
            var a = AttentionArgs(
                batch: 1, heads: 1, nq: nq, nk: nk, d: d,
                q: HeadView(q.c, batchStride: 0, headStride: 0, rowStride: d),
                k: HeadView(k.c, batchStride: 0, headStride: 0, rowStride: d),
                v: HeadView(v.c, batchStride: 0, headStride: 0, rowStride: d),
                o: HeadView(o.p, batchStride: 0, headStride: 0, rowStride: d), scale: 0.25)
            a.keyMask = mp.baseAddress
            XCTAssertTrue(withOptimised { attention(a) })
        }
        for i in 0..<(nq * d) { XCTAssertEqual(o.p[i], 0) }
    }

    func testLargeScoresStayFinite() {
        let nq = 40, nk = 200, d = 64
        let q = Buf(nq * d, seed: 1, scale: 100), k = Buf(nk * d, seed: 2, scale: 100), v = Buf(nk * d, seed: 3)
        let o = Buf(nq * d)
        let a = AttentionArgs(
            batch: 1, heads: 1, nq: nq, nk: nk, d: d,
            q: HeadView(q.c, batchStride: 0, headStride: 0, rowStride: d),
            k: HeadView(k.c, batchStride: 0, headStride: 0, rowStride: d),
            v: HeadView(v.c, batchStride: 0, headStride: 0, rowStride: d),
            o: HeadView(o.p, batchStride: 0, headStride: 0, rowStride: d), scale: 1)
        XCTAssertTrue(withOptimised { attention(a) })
        for i in 0..<(nq * d) { XCTAssertTrue(o.p[i].isFinite && abs(o.p[i]) <= 1) }
    }
}
