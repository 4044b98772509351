import CKernels
import XCTest
@testable import Kernels

/// The bf16 GEMM: rounding, the packed layout, and every block kernel the CPU has (AMX,
/// AVX512-BF16) against the scalar emulation and an fp64 reference on the rounded inputs.
/// Kernels the machine cannot run are reported as not run, by name.
final class BF16Tests: XCTestCase {
    func testRoundingToNearestEven() {
        XCTAssertEqual(bf16Round(1.0), 0x3F80)
        XCTAssertEqual(bf16Round(Float(bitPattern: 0x3F80_8000)), 0x3F80)  // tie, even below
        XCTAssertEqual(bf16Round(Float(bitPattern: 0x3F81_8000)), 0x3F82)  // tie, even above
        XCTAssertEqual(bf16Round(Float(bitPattern: 0x3F80_8001)), 0x3F81)
        XCTAssertEqual(bf16Round(.infinity), 0x7F80)
        XCTAssertEqual(bf16Round(-.infinity), 0xFF80)
        XCTAssertTrue(bf16ToFloat(bf16Round(.nan)).isNaN)
        XCTAssertEqual(bf16ToFloat(bf16Round(-2.5)), -2.5)
        // Every conversion path gives the same bits as bf16Round.
        let info = CPU.info
        var xs: [Float] = [0, -0, 1, .infinity, -.infinity, .nan, Float.greatestFiniteMagnitude, 1e-40, -3.3e38]
        var s: UInt32 = 12345
        for _ in 0..<2000 { s = s &* 1664525 &+ 1013904223; xs.append(Float(bitPattern: s)) }
        for path: Int32 in [0, 1] {
            if path == 1 && (info.avx512_bf16 == 0 || info.avx512bw == 0) {
                print("bf16 conversion path vcvtne2ps2bf16: not run (CPU lacks AVX512-BF16)")
                continue
            }
            var out = [UInt16](repeating: 0, count: xs.count)
            vidattn_f32_to_bf16_path(xs, &out, xs.count, path)
            for (x, h) in zip(xs, out) {
                if x.isNaN { XCTAssertTrue(bf16ToFloat(h).isNaN, "path \(path): NaN"); continue }
                XCTAssertEqual(h, bf16Round(x), "path \(path): \(x.bitPattern)")
            }
            // Straight into the strip layout: chunks of 32 at a stride, zeros past k.
            let k = 203, kp = 224, stride = 40
            var blocks = [UInt16](repeating: 0xFFFF, count: (kp / 32) * stride)
            vidattn_f32_to_bf16_blocks_path(Array(xs[0..<k]), k, kp, &blocks, stride, path)
            for j in 0..<kp {
                let h = blocks[(j / 32) * stride + j % 32]
                if j >= k { XCTAssertEqual(h, 0, "path \(path): padding at \(j)"); continue }
                if xs[j].isNaN { XCTAssertTrue(bf16ToFloat(h).isNaN); continue }
                XCTAssertEqual(h, bf16Round(xs[j]), "path \(path) blocks: element \(j)")
            }
            XCTAssertEqual(blocks[32], 0xFFFF, "nothing written between chunks")
        }
        // fp32 → bf16-valued fp32, every path, into another buffer and in place (the SGEMM
        // rounds its packed A in place): the bits of bf16Round, NaNs the scalar path's bits.
        var want = [Float](repeating: 0, count: xs.count)
        vidattn_round_to_bf16_f32_path(xs, &want, xs.count, 0)
        for path: Int32 in [0, 1, 2] {
            if path == 2 && info.avx512f == 0 {
                print("bf16 rounding path avx512: not run (CPU lacks AVX-512)")
                continue
            }
            var out = [Float](repeating: 7, count: xs.count), inPlace = xs
            vidattn_round_to_bf16_f32_path(xs, &out, xs.count, path)
            inPlace.withUnsafeMutableBufferPointer {
                vidattn_round_to_bf16_f32_path($0.baseAddress!, $0.baseAddress!, $0.count, path)
            }
            for i in 0..<xs.count {
                XCTAssertEqual(out[i].bitPattern, want[i].bitPattern, "round path \(path): \(xs[i].bitPattern)")
                XCTAssertEqual(inPlace[i].bitPattern, want[i].bitPattern, "round path \(path) in place")
                if !xs[i].isNaN { XCTAssertEqual(want[i].bitPattern, UInt32(bf16Round(xs[i])) << 16) }
            }
        }
        // fp32 → bf16-valued fp32 (the inputs of the emulation on fp32 kernels), rows of a
        // strided block.
        let rows = 7, cols = 250, ld = 283
        var rounded = [Float](repeating: 7, count: rows * cols)
        xs.withUnsafeBufferPointer { roundToBF16(rows: rows, cols: cols, $0.baseAddress!, ld, into: &rounded) }
        for i in 0..<(rows * cols) {
            let x = xs[(i / cols) * ld + i % cols]
            if x.isNaN { XCTAssertTrue(rounded[i].isNaN, "roundToBF16: NaN"); continue }
            XCTAssertEqual(rounded[i].bitPattern, UInt32(bf16Round(x)) << 16, "roundToBF16: \(x.bitPattern)")
        }
    }

    func testPackedLayoutRoundTrips() {
        let n = 45, k = 70
        let w = Buf(n * k, seed: 3)
        let p = PackedBF16B(weight: w.p, n: n, k: k, ldw: k)!
        XCTAssertEqual(p.kp, 96)
        XCTAssertEqual(p.panels, 2)
        let back = Buf(n * k)
        p.unpacked(into: back.p)
        for i in 0..<(n * k) { XCTAssertEqual(back.p[i], bf16ToFloat(bf16Round(w.p[i]))) }
        // Element (k, n) of a panel sits at (k / 32) · 1024 + (n / 16) · 512 + ((k % 32) / 2 · 16
        // + n % 16) · 2 + k % 2 (worked out by hand here, not through the library's helper).
        let panel0 = p.panel(0), panel1 = p.panel(1)
        XCTAssertEqual(panel0[512 + (3 * 16 + 4) * 2 + 1], bf16Round(w.p[20 * k + 7]), "(7, 20): second tile")
        XCTAssertEqual(panel1[(2 * 16 + 3) * 2 + 1], bf16Round(w.p[(32 + 3) * k + 5]), "(5, 3)")
        XCTAssertEqual(panel1[2048 + (2 * 16 + 12) * 2 + 1], bf16Round(w.p[(32 + 12) * k + 69]), "(69, 12)")
        XCTAssertEqual(panel1[2048 + (2 * 16 + 13) * 2 + 1], 0, "columns past N are zero")
        XCTAssertEqual(panel1[2048 + (8 * 16 + 2) * 2], 0, "K past k is zero")
    }

    func kernels() -> [BF16Kernel] {
        var ks: [BF16Kernel] = [.reference]
        let i = CPU.info
        if i.amx_bf16 != 0 && i.amx_permitted != 0 {
            ks.append(.amx)
        } else {
            print("bf16 kernel amx: not run (CPU lacks AMX-BF16 or the permission)")
        }
        if i.avx512_bf16 != 0 {
            ks.append(.avx512bf16)
        } else {
            print("bf16 kernel avx512_bf16: not run (CPU lacks AVX512-BF16)")
        }
        return ks
    }

    func testGemmAgainstRoundedReference() {
        // The last shapes run K in several chunks and B in several panel chunks (ReducedGEMM).
        for (m, k, n) in [(77, 100, 45), (32, 32, 32), (300, 768, 96), (5, 3, 70), (70, 1800, 45), (40, 3100, 300)] {
            let a = Buf(m * k, seed: 1), w = Buf(n * k, seed: 2, scale: 0.5), bias = Buf(n, seed: 4)
            let res = Buf(m * n, seed: 5), c0 = Buf(m * n, seed: 6)
            let packed = PackedBF16B(weight: w.p, n: n, k: k, ldw: k)!
            for accumulate in [false, true] {
                // fp64 reference on bf16-rounded inputs, then the fp32 epilogue.
                var want = [Float](repeating: 0, count: m * n)
                for i in 0..<m {
                    for j in 0..<n {
                        var s = 0.0
                        for p in 0..<k {
                            s +=
                                Double(bf16ToFloat(bf16Round(a.p[i * k + p])))
                                * Double(bf16ToFloat(bf16Round(w.p[j * k + p])))
                        }
                        var v = Float(s) + (accumulate ? c0.p[i * n + j] : 0) + bias.p[j]
                        v = activate(v, .gelu)
                        want[i * n + j] = v + res.p[i * n + j]
                    }
                }
                for kernel in kernels() {
                    let c = Buf(copying: c0)
                    let ok = gemmBF16(
                        m: m, a: a.p, lda: k, packedB: packed, accumulate: accumulate, c: c.p, ldc: n,
                        epilogue: GemmEpilogue(bias: bias.p, activation: .gelu, residual: res.p, ldResidual: n),
                        kernel: kernel, threads: 2)
                    XCTAssertTrue(ok)
                    var err: Float = 0
                    for i in 0..<(m * n) { err = max(err, abs(c.p[i] - want[i])) }
                    XCTAssertLessThan(
                        err, 2e-5 * Float(k).squareRoot(), "\(kernel) \(m)x\(k)x\(n) accumulate \(accumulate)")
                }
            }
        }
    }

    func testSGEMMRoundingAAsItPacksIsBitIdentical() {
        // bf16 on the fp32 kernels: the SGEMM rounding A as it packs it against rounding A first
        // (N ≤ 128 would read A in place; K in two blocks; a ragged M and N; an epilogue).
        for (m, k, n) in [(37, 100, 96), (50, 1500, 70), (13, 64, 300)] {
            let a = Buf(m * k, seed: 51), w = Buf(n * k, seed: 52), bias = Buf(n, seed: 53)
            let pb = PackedB(transposed: true, k: k, n: n, b: w.c, ldb: k)!
            let ar = Buf(m * k), want = Buf(m * n), got = Buf(m * n)
            roundToBF16(rows: m, cols: k, a.c, k, into: ar.p)
            let e = GemmEpilogue(bias: bias.c, activation: .gelu)
            XCTAssertTrue(
                sgemm(
                    transA: false, m: m, k: k, alpha: 1, a: ar.c, lda: k, packedB: pb, beta: 0, c: want.p, ldc: n,
                    epilogue: e))
            XCTAssertTrue(
                sgemm(
                    transA: false, m: m, k: k, alpha: 1, a: a.c, lda: k, packedB: pb, beta: 0, c: got.p, ldc: n,
                    epilogue: e, roundA: true))
            XCTAssertTrue(sameBits(got.c, want.c, m * n), "\(m)x\(k)x\(n): rounding while packing differs")
        }
    }

    func testStreamingStoresAreBitIdentical() {
        // Outputs written through the slots with streaming stores (forced by a zero threshold)
        // against the same GEMMs with the tiles stored into C: the same bits, with an epilogue,
        // ragged m and n (a partial last panel), K in several chunks; an unaligned ldc keeps the
        // plain stores. AMX only.
        guard kernels().contains(.amx) else {
            print("bf16 streaming stores (amx): not run (CPU lacks AMX-BF16 or the permission)")
            return
        }
        let saved = ReducedBlocking.streamingStoresMinBytes
        defer { ReducedBlocking.streamingStoresMinBytes = saved }
        for (m, k, n, ldc) in [(300, 1800, 700, 704), (77, 100, 96, 96), (64, 64, 64, 64), (40, 96, 64, 67)] {
            let a = Buf(m * k, seed: 1), w = Buf(n * k, seed: 2, scale: 0.5), bias = Buf(n, seed: 3)
            let res = Buf(m * n, seed: 4)
            let packed = PackedBF16B(weight: w.p, n: n, k: k, ldw: k)!
            let epilogue = GemmEpilogue(bias: bias.p, activation: .gelu, residual: res.p, ldResidual: n)
            var outs: [[Float]] = []
            var streamed: [Int] = []
            for threshold in [Int.max, 0] {
                ReducedBlocking.streamingStoresMinBytes = threshold
                let c = Buf(m * ldc, seed: 5)
                let before = ReducedBlocking.streamedCalls
                XCTAssertTrue(
                    gemmBF16(
                        m: m, a: a.p, lda: k, packedB: packed, accumulate: false, c: c.p, ldc: ldc,
                        epilogue: epilogue, kernel: .amx, threads: 2))
                streamed.append(ReducedBlocking.streamedCalls - before)
                outs.append((0..<(m * ldc)).map { c.p[$0] })
            }
            XCTAssertEqual(streamed, [0, ldc % 16 == 0 ? 1 : 0], "\(m)x\(k)x\(n) ldc \(ldc): streaming taken")
            XCTAssertEqual(
                outs[0].map(\.bitPattern), outs[1].map(\.bitPattern),
                "\(m)x\(k)x\(n) ldc \(ldc): streamed output differs")
        }
    }

    func testChainThroughStripsIsBitIdentical() {
        // act(A·W1ᵀ + b1) written as the next GEMM's bf16 A strips, then that GEMM from the
        // strips, against the same two GEMMs through an fp32 hidden tensor: the same bits. Ragged
        // m, n and K (several panel chunks and K chunks in the first shape).
        for (m, k, n, n2) in [(300, 1800, 700, 45), (77, 100, 45, 30), (5, 3, 33, 70)] {
            let a = Buf(m * k, seed: 1), w1 = Buf(n * k, seed: 2, scale: 0.5), b1 = Buf(n, seed: 3)
            let w2 = Buf(n2 * n, seed: 4, scale: 0.5), b2 = Buf(n2, seed: 5), y0 = Buf(m * n2, seed: 6)
            let p1 = PackedBF16B(weight: w1.p, n: n, k: k, ldw: k)!,
                p2 = PackedBF16B(weight: w2.p, n: n2, k: n, ldw: n)!
            for kernel in kernels() {
                let hidden = Buf(m * n), want = Buf(copying: y0), got = Buf(copying: y0)
                let e1 = GemmEpilogue(bias: b1.p, activation: .gelu), e2 = GemmEpilogue(bias: b2.p)
                XCTAssertTrue(
                    gemmBF16(
                        m: m, a: a.p, lda: k, packedB: p1, accumulate: false, c: hidden.p, ldc: n, epilogue: e1,
                        kernel: kernel, threads: 2))
                XCTAssertTrue(
                    gemmBF16(
                        m: m, a: hidden.p, lda: n, packedB: p2, accumulate: true, c: want.p, ldc: n2, epilogue: e2,
                        kernel: kernel, threads: 2))
                var strips = [UInt16](repeating: 0xFFFF, count: bf16StripsCount(rows: m, k: n))
                strips.withUnsafeMutableBufferPointer { sp in
                    XCTAssertTrue(
                        gemmBF16(
                            m: m, a: a.p, lda: k, packedB: p1, epilogue: e1, intoStrips: sp.baseAddress!,
                            kernel: kernel,
                            threads: 2))
                    XCTAssertTrue(
                        gemmBF16(
                            m: m, strips: sp.baseAddress!, packedB: p2, accumulate: true, c: got.p, ldc: n2,
                            epilogue: e2, kernel: kernel, threads: 2))
                }
                XCTAssertTrue(
                    sameBits(got.c, want.c, m * n2), "\(kernel) \(m)x\(k)x\(n)x\(n2): the strips chain differs")
                // Padding rows and K columns of the strips are zero.
                let kp = (n + 31) / 32 * 32, rows = (m + 31) / 32 * 32
                var padOK = true
                for r in 0..<rows {
                    for c in 0..<kp where r >= m || c >= n {
                        let idx = (r / 32) * 32 * kp + (c / 32) * 1024 + (r % 32) * 32 + c % 32
                        if strips[idx] != 0 { padOK = false }
                    }
                }
                XCTAssertTrue(padOK, "\(kernel) \(m)x\(n): nonzero padding in the strips")
            }
        }
    }
}
