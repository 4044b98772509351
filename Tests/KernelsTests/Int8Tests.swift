import XCTest
import CKernels
@testable import Kernels

/// int8 GEMM: every kernel this CPU can run against the scalar int8 reference (bit for bit:
/// integer sums, the same dequantization), the quantizer's two paths against each other, and
/// the whole against fp32 (the quantization error, stated bound). Kernels the CPU lacks are
/// reported by name as not run.
final class Int8Tests: XCTestCase {
    var runnable: [(Int8Kernel, String)] {
        let i = CPU.info
        var ks: [(Int8Kernel, String)] = [(.reference, "reference")]
        if i.amx_int8 != 0 && i.amx_permitted != 0 { ks.append((.amx, "amx")) }
        if i.avx512_vnni != 0 && i.avx512bw != 0 { ks.append((.avx512vnni, "avx512_vnni")) }
        return ks
    }

    func testPackedLayout() {
        // Element (k, n) of a panel sits at (k / 64) · 2048 + (n / 16) · 1024 + ((k % 64) / 4 · 16
        // + n % 16) · 4 + k % 4 (worked out by hand here, not through the library's helper).
        let n = 45, k = 70
        let w = Buf(n * k, seed: 4)
        let p = PackedInt8B(weight: w.p, n: n, k: k, ldw: k)!
        XCTAssertEqual(p.kp, 128)
        var q = [Int8](repeating: 0, count: k)
        func row(_ o: Int) -> [Int8] {
            _ = vidattn_quantize_row_s8(w.p + o * k, k, &q, 0)
            return q
        }
        let panel0 = p.panel(0), panel1 = p.panel(1)
        XCTAssertEqual(panel0[1024 + (1 * 16 + 4) * 4 + 3], row(20)[7], "(7, 20): second tile")
        XCTAssertEqual(panel1[(1 * 16 + 3) * 4 + 1], row(35)[5], "(5, 3)")
        XCTAssertEqual(panel1[2048 + (1 * 16 + 12) * 4 + 1], row(44)[69], "(69, 12)")
        XCTAssertEqual(panel1[2048 + (1 * 16 + 13) * 4 + 1], 0, "columns past N are zero")
        XCTAssertEqual(panel1[2048 + (4 * 16 + 2) * 4], 0, "K past k is zero")
    }

    func testQuantizerPathsAgree() {
        let k = 203
        let x = Buf(k, seed: 21, scale: 3)
        x.p[5] = -7.5; x.p[9] = 0  // the largest magnitude maps to -127
        var q0 = [Int8](repeating: 0, count: k), q1 = q0
        let s0 = vidattn_quantize_row_s8_path(x.c, k, &q0, 0, 0)
        XCTAssertEqual(s0, 7.5 / 127, accuracy: 1e-9)
        XCTAssertEqual(q0[5], -127)
        for j in 0..<k {
            XCTAssertEqual(Float(q0[j]), (x.p[j] * (127 / 7.5)).rounded(.toNearestOrEven), accuracy: 0, "element \(j)")
        }
        if CPU.info.avx512bw != 0 {
            let s1 = vidattn_quantize_row_s8_path(x.c, k, &q1, 0, 1)
            XCTAssertEqual(s0, s1)
            XCTAssertEqual(q0, q1)
            var f = [Int8](repeating: 0, count: k)
            _ = vidattn_quantize_row_s8_path(x.c, k, &f, 1, 1)
            XCTAssertEqual(f.map { $0 ^ -128 }, q0, "flipped form is q + 128")
        } else {
            print("int8 quantizer: AVX-512 path not run (CPU lacks AVX512BW)")
        }
        // Straight into the strip layout: chunks of 64 at a stride, padding 0 (0x80 flipped).
        let kp = 256, stride = 100
        for path: Int32 in CPU.info.avx512bw != 0 ? [0, 1] : [0] {
            for flip: Int32 in [0, 1] {
                var blocks = [Int8](repeating: 7, count: (kp / 64) * stride)
                let sb = vidattn_quantize_row_s8_blocks_path(x.c, k, kp, &blocks, stride, flip, path)
                XCTAssertEqual(sb, s0, "path \(path) flip \(flip): scale")
                for j in 0..<kp {
                    let want: Int8 = j < k ? q0[j] : 0
                    XCTAssertEqual(
                        blocks[(j / 64) * stride + j % 64], flip != 0 ? want ^ -128 : want,
                        "path \(path) flip \(flip): element \(j)")
                }
                XCTAssertEqual(blocks[64], 7, "nothing written between chunks")
            }
        }
        let zero = Buf(40)
        for i in 0..<40 { zero.p[i] = 0 }
        var qz = [Int8](repeating: 1, count: 40)
        XCTAssertEqual(vidattn_quantize_row_s8(zero.c, 40, &qz, 0), 0)
        XCTAssertEqual(qz, [Int8](repeating: 0, count: 40))
    }

    func testKernelsMatchReferenceBitForBit() {
        print("int8 kernels run here: \(runnable.map(\.1).joined(separator: ", "))")
        // K = 96: VNNI stops before the padding of the last K block (as for 200 and 777). The
        // last shapes run K in several chunks and B in several panel chunks (ReducedGEMM).
        for (m, n, k) in [(70, 45, 200), (32, 32, 64), (41, 40, 96), (5, 70, 777), (40, 70, 3200), (33, 1300, 2000)] {
            let a = Buf(m * k, seed: 22), w = Buf(n * k, seed: 23), bias = Buf(n, seed: 24), res = Buf(m * n, seed: 25)
            let pb = PackedInt8B(weight: w.c, n: n, k: k, ldw: k)!
            let ep = GemmEpilogue(bias: bias.c, activation: .gelu, residual: res.c, ldResidual: n)
            // Also C overwritten, with the whole epilogue and with a bias alone (VNNI adds the bias
            // as it dequantizes the registers, and then has no epilogue pass).
            for (accumulate, e) in [(false, ep), (false, GemmEpilogue(bias: bias.c)), (false, GemmEpilogue())] {
                let ref = Buf(m * n), got = Buf(m * n)
                XCTAssertTrue(
                    gemmInt8(
                        m: m, a: a.c, lda: k, packedB: pb, accumulate: accumulate, c: ref.p, ldc: n, epilogue: e,
                        kernel: .reference))
                for (kern, name) in runnable where name != "reference" {
                    XCTAssertTrue(
                        gemmInt8(
                            m: m, a: a.c, lda: k, packedB: pb, accumulate: accumulate, c: got.p, ldc: n, epilogue: e,
                            kernel: kern))
                    XCTAssertEqual(maxAbsDiff(got.c, ref.c, m * n), 0, "\(name) overwritten m=\(m) n=\(n) k=\(k)")
                }
            }
            let ref = Buf(m * n, seed: 26), c0 = Buf(copying: ref)
            XCTAssertTrue(
                gemmInt8(
                    m: m, a: a.c, lda: k, packedB: pb, accumulate: true, c: ref.p, ldc: n,
                    epilogue: ep, kernel: .reference))
            for (kern, name) in runnable where name != "reference" {
                let c = Buf(copying: c0)
                XCTAssertTrue(
                    gemmInt8(
                        m: m, a: a.c, lda: k, packedB: pb, accumulate: true, c: c.p, ldc: n,
                        epilogue: ep, kernel: kern))
                XCTAssertEqual(maxAbsDiff(c.c, ref.c, m * n), 0, "\(name) m=\(m) n=\(n) k=\(k)")
            }
            // The reference against the definition: Σ q_a·q_w · s_a · s_w, then the epilogue.
            let wq = Buf(n * k)
            pb.dequantized(into: wq.p)
            let aq = Buf(m * k)
            fakeQuantizeRows(rows: m, cols: k, a.c, k, into: aq.p)
            let want = Buf(copying: c0)
            sgemmReference(
                transA: false, transB: true, m: m, n: n, k: k, alpha: 1, a: aq.c, lda: k, b: wq.c, ldb: k,
                beta: 1, c: want.p, ldc: n, epilogue: ep)
            XCTAssertLessThanOrEqual(maxAbsDiff(ref.c, want.c, m * n), 1e-5 * Float(k), "definition m=\(m)")
        }
    }

    func testStripsChainIsBitForBit() {
        // fc1 → fc2 with fc1 writing fc2's quantized A strips against fc1 writing C and fc2
        // quantizing it, for every kernel here: the same bits, and the strips' padding (rows past
        // m, K past N) is what fc2's own packing writes. Shapes: ragged m, N not a multiple of
        // 32 or 64, K in several chunks (3200).
        for (m, k, n, n2) in [(70, 200, 45, 30), (33, 96, 384, 96), (5, 3200, 100, 70)] {
            let a = Buf(m * k, seed: 31), w1 = Buf(n * k, seed: 32, scale: 0.5), b1 = Buf(n, seed: 33)
            let w2 = Buf(n2 * n, seed: 34, scale: 0.5), b2 = Buf(n2, seed: 35), y0 = Buf(m * n2, seed: 36)
            let p1 = PackedInt8B(weight: w1.c, n: n, k: k, ldw: k)!
            let p2 = PackedInt8B(weight: w2.c, n: n2, k: n, ldw: n)!
            XCTAssertTrue(int8WritesWholeRows(m: m, packedB: p1, threads: 2))
            for (kernel, name) in runnable {
                let hidden = Buf(m * n), want = Buf(copying: y0), got = Buf(copying: y0)
                let e1 = GemmEpilogue(bias: b1.c, activation: .gelu), e2 = GemmEpilogue(bias: b2.c)
                XCTAssertTrue(
                    gemmInt8(
                        m: m, a: a.c, lda: k, packedB: p1, accumulate: false, c: hidden.p, ldc: n, epilogue: e1,
                        kernel: kernel, threads: 2))
                XCTAssertTrue(
                    gemmInt8(
                        m: m, a: hidden.c, lda: n, packedB: p2, accumulate: true, c: want.p, ldc: n2, epilogue: e2,
                        kernel: kernel, threads: 2))
                let floats = Int8Strips.floats(rows: m, k: n)
                var memory = [Float](repeating: .nan, count: floats)
                memory.withUnsafeMutableBufferPointer { mp in
                    let strips = Int8Strips(mp.baseAddress!, rows: m, k: n)
                    XCTAssertTrue(
                        gemmInt8(
                            m: m, a: a.c, lda: k, packedB: p1, epilogue: e1, intoStrips: strips, kernel: kernel,
                            threads: 2))
                    XCTAssertTrue(
                        gemmInt8(
                            m: m, strips: strips, packedB: p2, accumulate: true, c: got.p, ldc: n2, epilogue: e2,
                            kernel: kernel, threads: 2))
                    // Padding: rows past m and K past n hold 0 (0x80 for VNNI's uint8 form), and
                    // the rows past m have scale 0.
                    let kp = max(64, (n + 63) / 64 * 64), rows = (m + 31) / 32 * 32
                    let pad: Int8 = kernel == .avx512vnni ? -128 : 0
                    var padOK = true
                    for r in 0..<rows {
                        for c in 0..<kp where r >= m || c >= n {
                            let idx = (r / 32) * 32 * kp + (c / 64) * 2048 + (r % 32) * 64 + c % 64
                            if strips.values[idx] != pad { padOK = false }
                        }
                        if r >= m && strips.scales[r] != 0 { padOK = false }
                    }
                    XCTAssertTrue(padOK, "\(name) \(m)x\(n): wrong padding in the strips")
                }
                XCTAssertTrue(sameBits(got.c, want.c, m * n2), "\(name) \(m)x\(k)x\(n)x\(n2): the strips chain differs")
            }
        }
    }

    func testCloseToFP32() {
        let m = 64, n = 96, k = 768
        let a = Buf(m * k, seed: 27), w = Buf(n * k, seed: 28, scale: 0.05)
        let pb = PackedInt8B(weight: w.c, n: n, k: k, ldw: k)!
        let c8 = Buf(m * n), c32 = Buf(m * n)
        XCTAssertTrue(gemmInt8(m: m, a: a.c, lda: k, packedB: pb, accumulate: false, c: c8.p, ldc: n))
        sgemmReference(
            transA: false, transB: true, m: m, n: n, k: k, alpha: 1, a: a.c, lda: k, b: w.c, ldb: k,
            beta: 0, c: c32.p, ldc: n)
        var big: Float = 0
        for i in 0..<(m * n) { big = max(big, abs(c32.p[i])) }
        let err = maxAbsDiff(c8.c, c32.c, m * n)
        XCTAssertLessThanOrEqual(err, 0.03 * big, "int8 vs fp32: \(err) of \(big)")
        XCTAssertGreaterThan(err, 0, "int8 gave exactly the fp32 result: quantization did not happen")
    }

    func testWeightsTakeAQuarter() {
        let w = Buf(768 * 3072, seed: 29)
        let pb = PackedInt8B(weight: w.c, n: 3072, k: 768, ldw: 768)!
        XCTAssertLessThanOrEqual(Double(pb.bytes), 0.26 * Double(768 * 3072 * 4))
    }
}
