import Foundation
import CKernels
import XCTest
@testable import Kernels

/// bf16 attention (AttentionPrecision.bf16) on every bf16 unit this CPU has and on the scalar
/// emulation of the block kernels (every CPU: checks the layouts where no unit runs), against the
/// Double reference run on bf16-rounded scale·Q, K and V. What remains is the rounding of P
/// to bf16 and fp32 accumulation order: tolerance 3e-3 · max|V| (max |V| = 1 here; measured
/// 4e-4 .. 1.1e-3 on AMX and AVX512-BF16). Each unit
/// must also differ from the fp32 kernel (the bf16 path ran). Units the CPU lacks are named as
/// not run.
final class AttentionBF16Tests: XCTestCase {
    func units() -> [(BF16Kernel, String)] {
        let i = CPU.info
        var u: [(BF16Kernel, String)] = [(.reference, "scalar emulation")]
        if i.amx_bf16 != 0 && i.amx_permitted != 0 { u.append((.amx, "amx")) }
        if i.avx512_bf16 != 0 { u.append((.avx512bf16, "avx512_bf16")) }
        return u
    }

    func round(_ b: Buf, scale: Float = 1) -> Buf {
        let r = Buf(b.count)
        for i in 0..<b.count { r.p[i] = bf16ToFloat(bf16Round(b.p[i] * scale)) }
        return r
    }

    func testAgainstRoundedReference() {
        let us = units()
        print(
            "bf16 attention units run here: \(us.map(\.1)); not run: "
                + (["amx", "avx512_bf16"].filter { n in !us.contains { $0.1 == n } }.joined(separator: ", ")))
        // (heads, nq, nk, d, bias, key-major bias, region labels, key mask)
        let cases: [(Int, Int, Int, Int, Bool, Bool, Bool, Bool)] = [
            (2, 97, 97, 64, false, false, false, false), (1, 200, 197, 40, true, false, false, false),
            (2, 61, 300, 32, true, true, false, true), (1, 392, 392, 32, true, false, true, false),
            (1, 33, 5, 96, false, false, false, true), (1, 70, 150, 96, true, false, false, false)
        ]
        for (h, nq, nk, d, useBias, keyMajor, regions, useMask) in cases {
            let scale = 1 / Float(d).squareRoot()
            let q = Buf(h * nq * d, seed: 1, scale: 2), k = Buf(h * nk * d, seed: 2, scale: 2),
                v = Buf(h * nk * d, seed: 3)
            let bias = Buf(h * nq * nk, seed: 4)
            var labels = [UInt8](repeating: 0, count: nq), mask = [UInt8](repeating: 1, count: nk)
            for i in 0..<nq { labels[i] = UInt8(i % 3) }
            for j in 0..<nk where j % 7 == 3 { mask[j] = 0 }
            let o16 = Buf(h * nq * d), o32 = Buf(h * nq * d), oRef = Buf(h * nq * d)
            func view(_ p: UnsafePointer<Float>, _ n: Int) -> HeadView<UnsafePointer<Float>> {
                HeadView(p, batchStride: 0, headStride: n * d, rowStride: d)
            }
            let qr = round(q, scale: scale), kr = round(k), vr = round(v)
            labels.withUnsafeBufferPointer { lp in
                mask.withUnsafeBufferPointer { mp in
                    var a = AttentionArgs(
                        batch: 1, heads: h, nq: nq, nk: nk, d: d, q: view(q.c, nq), k: view(k.c, nk),
                        v: view(v.c, nk), o: HeadView(o32.p, batchStride: 0, headStride: nq * d, rowStride: d),
                        scale: scale)
                    if useBias {
                        a.bias = HeadView(bias.c, batchStride: 0, headStride: nq * nk, rowStride: keyMajor ? nq : nk)
                        a.biasKeyMajor = keyMajor
                    }
                    if regions && nq == nk { a.regionLabels = lp.baseAddress; a.regionStride = 0 }
                    if useMask { a.keyMask = mp.baseAddress; a.keyMaskStride = 0 }
                    XCTAssertTrue(withOptimised { attention(a, threads: 2) })
                    var ar = a
                    ar.q = view(qr.c, nq); ar.k = view(kr.c, nk); ar.v = view(vr.c, nk); ar.scale = 1
                    ar.o.base = oRef.p
                    attentionReference(ar)
                    a.o.base = o16.p
                    // Budget 1 byte of packed K and V: every head is its own group.
                    for (unit, name) in us {
                        for budget in [1, 1 << 30] {
                            for i in 0..<(h * nq * d) { o16.p[i] = .nan }
                            XCTAssertTrue(attentionBF16(a, threads: 2, unit: unit, packedBudget: budget))
                            let err = maxAbsDiff(o16.c, oRef.c, h * nq * d);
                            print("bf16 attention \(name) nq=\(nq) nk=\(nk) d=\(d): max error \(err)")
                            XCTAssertLessThanOrEqual(err, 3e-3, "\(name) h=\(h) nq=\(nq) nk=\(nk) d=\(d)")
                            XCTAssertGreaterThan(maxAbsDiff(o16.c, o32.c, h * nq * d), 0, "\(name): same as fp32")
                        }
                    }
                }
            }
        }
    }

    /// Region labels per batch entry, as testRegionLabelsPerBatchEntry for fp32: entries with all
    /// labels equal skip the label pass, one differing only in its last token keeps its penalty,
    /// on every unit; with a query-major bias (the sums of full blocks start from it).
    func testRegionLabelsPerBatchEntry() {
        let n = 100, d = 32, batch = 3
        let q = Buf(batch * n * d, seed: 1, scale: 2), k = Buf(batch * n * d, seed: 2, scale: 2),
            v = Buf(batch * n * d, seed: 3), bias = Buf(n * n, seed: 4)
        var labels = [UInt8](repeating: 0, count: batch * n)
        for i in 0..<n { labels[n + i] = 2 }
        labels[3 * n - 1] = 1
        let o16 = Buf(batch * n * d), oRef = Buf(batch * n * d), oNone = Buf(batch * n * d)
        let hv = { (p: UnsafePointer<Float>) in HeadView(p, batchStride: n * d, headStride: 0, rowStride: d) }
        let qr = round(q, scale: 0.25), kr = round(k), vr = round(v)
        labels.withUnsafeBufferPointer { lp in
            var a = AttentionArgs(
                batch: batch, heads: 1, nq: n, nk: n, d: d, q: hv(q.c), k: hv(k.c), v: hv(v.c),
                o: HeadView(o16.p, batchStride: n * d, headStride: 0, rowStride: d), scale: 0.25)
            a.bias = HeadView(bias.c, batchStride: 0, headStride: 0, rowStride: n)
            a.regionLabels = lp.baseAddress; a.regionStride = n
            var ar = a
            ar.q = hv(qr.c); ar.k = hv(kr.c); ar.v = hv(vr.c); ar.scale = 1; ar.o.base = oRef.p
            attentionReference(ar)
            ar.regionLabels = nil; ar.o.base = oNone.p
            attentionReference(ar)
            for (unit, name) in units() {
                for i in 0..<(batch * n * d) { o16.p[i] = .nan }
                XCTAssertTrue(attentionBF16(a, threads: 2, unit: unit))
                XCTAssertLessThanOrEqual(maxAbsDiff(o16.c, oRef.c, batch * n * d), 3e-3, name)
            }
        }
        let last = 2 * n * d
        XCTAssertGreaterThan(maxAbsDiff(oRef.c + last, oNone.c + last, n * d), 1e-2, "the penalty matters")
    }

    func testForwardUsesBF16OnlyWhenAskedAndLongEnough() {
        // Without a bf16 unit attention stays fp32 at every length.
        let unit = BF16Unit.detected.hasKernels
        let d = 64
        // 20 tokens: the short-query path; bf16AttentionMinKeys − 2: fewer keys than the
        // threshold; 100 and longer: bf16 where the CPU has a unit.
        for n in [20, bf16AttentionMinKeys - 2, 100, 1061] {
            let q = Buf(n * d, seed: 5), k = Buf(n * d, seed: 6), v = Buf(n * d, seed: 7), o1 = Buf(n * d),
                o2 = Buf(n * d)
            let view = { (p: UnsafePointer<Float>) in HeadView(p, batchStride: 0, headStride: 0, rowStride: d) }
            var a = AttentionArgs(
                batch: 1, heads: 1, nq: n, nk: n, d: d, q: view(q.c), k: view(k.c), v: view(v.c),
                o: HeadView(o1.p, batchStride: 0, headStride: 0, rowStride: d), scale: 0.125)
            XCTAssertTrue(withOptimised { attention(a) })
            a.o.base = o2.p
            XCTAssertTrue(withOptimised { AttentionPrecision.$bf16.withValue(true) { attention(a) } })
            let diff = maxAbsDiff(o1.c, o2.c, n * d)
            if n <= 24 || n < bf16AttentionMinKeys || !unit {
                XCTAssertEqual(diff, 0, "below the threshold, or without a bf16 unit, attention stays fp32")
            } else {
                XCTAssertGreaterThan(diff, 0)
                XCTAssertLessThan(diff, 3e-3)
            }
        }
    }

    /// The scores of one step (`vidattn_bf16_scores`) against the unit's 32×32 block kernel per 32
    /// keys, for d = 32, 64 (on AMX the query strip stays in tiles) and 96: the same sums in the
    /// same order, so the same bits. With a bias starting the first three blocks' sums (rows
    /// `bstride` apart; AMX loads its accumulator tiles from it), against the block kernel
    /// accumulating onto a copy of that bias block. AMX and AVX512-BF16 are named when not run.
    func testScoresMatchTheBlockKernel() {
        let i = CPU.info
        var units: [(Int32, BF16BlockKernel)] = [(0, vidattn_bf16_32x32_ref)]
        if i.avx512_bf16 != 0 {
            units.append((1, vidattn_avx512bf16_32x32))
        } else {
            print("bf16 attention scores, avx512_bf16: not run (CPU lacks AVX512-BF16)")
        }
        if i.amx_bf16 != 0 && i.amx_permitted != 0 {
            units.append((2, vidattn_amx_bf16_32x32))
        } else {
            print("bf16 attention scores, amx: not run (no AMX-BF16 or no permission)")
        }
        let nb = 5, nbias = 3, bstride = nb * 32 + 7
        var bias = [Float](repeating: 0, count: 32 * bstride)
        for j in 0..<bias.count { bias[j] = Float((j * 31) % 97) / 13 - 3 }
        for (unit, kernel) in units {
            for dp in [32, 64, 96] {
                var q = [UInt16](repeating: 0, count: 32 * dp), k = [UInt16](repeating: 0, count: nb * 32 * dp)
                for j in 0..<q.count { q[j] = bf16Round(Float((j * 7919) % 211) / 97 - 1) }
                for j in 0..<k.count { k[j] = bf16Round(Float((j * 104_729) % 223) / 101 - 1) }
                for withBias in [false, true] {
                    var s = [Float](repeating: .nan, count: nb * 1024), ref = s
                    if unit == 2 { vidattn_amx_begin() }
                    vidattn_bf16_scores(unit, dp, q, k, Int32(nb), &s, withBias ? bias : nil, bstride, Int32(nbias))
                    for b in 0..<nb {
                        let fromBias = withBias && b < nbias
                        if fromBias {
                            for r in 0..<32 {
                                for c in 0..<32 { ref[b * 1024 + r * 32 + c] = bias[r * bstride + b * 32 + c] }
                            }
                        }
                        k.withUnsafeBufferPointer { kp in
                            ref.withUnsafeMutableBufferPointer { rp in
                                kernel(
                                    dp, q, kp.baseAddress! + b * dp * 32, rp.baseAddress! + b * 1024, 32,
                                    fromBias ? 1 : 0, nil)
                            }
                        }
                    }
                    if unit == 2 { vidattn_amx_end() }
                    let what = "unit \(unit), d = \(dp), bias \(withBias)"
                    XCTAssertFalse(s.contains { $0.isNaN }, "\(what): every score written")
                    let differ = zip(s, ref).filter { $0.0.bitPattern != $0.1.bitPattern }.count
                    XCTAssertEqual(differ, 0, "\(what): scores that differ from the block kernel's")
                }
            }
        }
    }

    /// K and V packing (CKernels/bf16.c): both paths write every element of both panels, the
    /// same bits; elements checked by hand against the B panel layout; padding zero.
    func testPackKVPathsAgree() {
        let n = 45, d = 40, dp = 64, nkp = 64, ldk = 50, ldv = 41
        let k = Buf(n * ldk, seed: 11), v = Buf(n * ldv, seed: 12)
        let paths: [Int32] = CPU.info.avx512_bf16 != 0 && CPU.info.avx512bw != 0 ? [0, 1] : [0]
        if paths.count == 1 { print("K/V packing AVX-512 path: not run (CPU lacks AVX512-BF16)") }
        var results: [([UInt16], [UInt16])] = []
        for path in paths {
            var kp = [UInt16](repeating: 0xFFFF, count: nkp * dp), vp = kp
            vidattn_pack_kv_bf16_path(k.c, ldk, v.c, ldv, n, d, dp, nkp, &kp, &vp, path)
            // Key 37, d 21: key panel 1, column 5, K block 0, pair 10, second of the pair.
            XCTAssertEqual(kp[dp * 32 + (10 * 16 + 5) * 2 + 1], bf16Round(k.p[37 * ldk + 21]), "path \(path)")
            // Key 20, column 33 of V: d panel 1, column 1, key block 0, pair 10, first.
            XCTAssertEqual(vp[nkp * 32 + (10 * 16 + 1) * 2], bf16Round(v.p[20 * ldv + 33]), "path \(path)")
            // Key 19, column 17 of K's transpose = d 17 of key 19: tile 1 (keys 16-31), pair 8, second.
            XCTAssertEqual(kp[512 + (8 * 16 + 3) * 2 + 1], bf16Round(k.p[19 * ldk + 17]), "path \(path)")
            XCTAssertEqual(kp[dp * 32 + 512 + (2 * 16 + 15) * 2], 0, "path \(path): key 47 is padding")
            XCTAssertEqual(kp[1024 + (4 * 16 + 0) * 2], 0, "path \(path): d 40 (K block 1, pair 4) is padding")
            XCTAssertFalse(kp.contains(0xFFFF) || vp.contains(0xFFFF), "path \(path): every element written")
            results.append((kp, vp))
        }
        if results.count == 2 {
            XCTAssertEqual(results[0].0, results[1].0)
            XCTAssertEqual(results[0].1, results[1].1)
        }
    }

    /// The softmax step in C (CKernels/bf16.c), both paths, against Double: new maxima exact,
    /// rescale factors to 1e-6 relative, sums to 1e-4 (the probabilities' degree-3 polynomial is
    /// within 7.5e-5 of 2^f: bench/exp_fit.py --exp2 3), P within one bf16 rounding of exp(s − m);
    /// masked (−inf) scores give exactly 0, and a row of only −inf keeps m = −inf, alpha 0.
    func testSoftmaxStepPathsAgainstDouble() {
        let nb = 3
        var s0 = [Float](repeating: 0, count: nb * 1024)
        var seed: UInt32 = 7
        for i in 0..<s0.count {
            seed = seed &* 1664525 &+ 1013904223; s0[i] = Float(Int(seed >> 9) % 4001 - 2000) / 100
        }
        for i in stride(from: 5, to: s0.count, by: 11) { s0[i] = -.infinity }
        for b in 0..<nb { for j in 0..<32 { s0[b * 1024 + 3 * 32 + j] = -.infinity } }  // row 3: all masked
        var m0 = [Float](repeating: -.infinity, count: 32), l0 = [Float](repeating: 0, count: 32)
        for r in 0..<32 where r % 2 == 0 && r != 3 { m0[r] = 5; l0[r] = 2 }  // a previous step
        let paths: [Int32] = CPU.info.avx512_bf16 != 0 && CPU.info.avx512bw != 0 ? [0, 1] : [0]
        if paths.count == 1 { print("softmax step AVX-512 path: not run (CPU lacks AVX512-BF16)") }
        for path in paths {
            var sc = s0, m = m0, l = l0, alpha = [Float](repeating: 9, count: 32)
            var p = [UInt16](repeating: 0xFFFF, count: nb * 1024)
            vidattn_softmax_step_bf16_path(&sc, Int32(nb), &m, &l, &alpha, &p, path)
            for r in 0..<32 {
                var mx = Double(m0[r])
                for b in 0..<nb { for j in 0..<32 { mx = max(mx, Double(s0[b * 1024 + r * 32 + j])) } }
                let safe = mx == -.infinity ? 0 : mx
                XCTAssertEqual(Double(m[r]), mx, "path \(path) row \(r): max")
                let wantAlpha = m0[r] == -.infinity ? 0 : Foundation.exp(Double(m0[r]) - safe)
                XCTAssertEqual(
                    Double(alpha[r]), wantAlpha, accuracy: 1e-6 * max(wantAlpha, 1e-30), "path \(path) row \(r)")
                var sum = Double(l0[r]) * wantAlpha
                for b in 0..<nb {
                    for j in 0..<32 {
                        let x = Double(s0[b * 1024 + r * 32 + j]), e = x == -.infinity ? 0 : Foundation.exp(x - safe)
                        sum += e
                        let got = Double(bf16ToFloat(p[b * 1024 + r * 32 + j]))
                        if e == 0 { XCTAssertEqual(got, 0, "path \(path): masked score"); continue }
                        XCTAssertEqual(got, e, accuracy: e / 128, "path \(path) row \(r) key \(b * 32 + j)")
                    }
                }
                XCTAssertEqual(Double(l[r]), sum, accuracy: 1e-4 * max(sum, 1e-30), "path \(path) row \(r): sum")
            }
            XCTAssertEqual(m[3], -.infinity); XCTAssertEqual(alpha[3], 0); XCTAssertEqual(l[3], 0)
        }
    }
}
