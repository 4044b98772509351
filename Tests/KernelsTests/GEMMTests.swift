import XCTest
@testable import Kernels

/// Packed SGEMM against the scalar reference.
/// Tolerance: |C − C_ref| ≤ 2e-6 · (1 + Σ_k |A_ik·B_kj|) per element.
final class GEMMTests: XCTestCase {
    func check(
        m: Int, n: Int, k: Int, transA: Bool, transB: Bool, alpha: Float = 1, beta: Float = 0,
        epilogue: (bias: Bool, act: Activation, residual: Bool) = (false, .none, false),
        multiplier: Bool = false, threads: Int = 2, line: UInt = #line
    ) {
        let a = Buf(m * k, seed: 1), b = Buf(k * n, seed: 2), c0 = Buf(m * n, seed: 3)
        let bias = Buf(n, seed: 4), res = Buf(m * n, seed: 5), mul = Buf(m * (n + 3), seed: 6)
        let lda = transA ? m : k, ldb = transB ? k : n
        let cOpt = Buf(copying: c0), cRef = Buf(copying: c0)
        let ep = GemmEpilogue(
            bias: epilogue.bias ? bias.c : nil, activation: epilogue.act,
            residual: epilogue.residual ? res.c : nil, ldResidual: n,
            multiplier: multiplier ? mul.c : nil, ldMultiplier: n + 3)
        let ok = withOptimised {
            sgemm(
                transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a.c, lda: max(lda, 1),
                b: b.c, ldb: max(ldb, 1), beta: beta, c: cOpt.p, ldc: max(n, 1), epilogue: ep, threads: threads)
        }
        XCTAssertTrue(ok, line: line)
        sgemmReference(
            transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a.c, lda: max(lda, 1),
            b: b.c, ldb: max(ldb, 1), beta: beta, c: cRef.p, ldc: max(n, 1), epilogue: ep)
        let bound = 2e-6 * Float(1 + k) * max(1, abs(alpha)) + 1e-6
        let err = maxAbsDiff(cOpt.c, cRef.c, m * n)
        XCTAssertLessThanOrEqual(err, bound, "m=\(m) n=\(n) k=\(k) tA=\(transA) tB=\(transB)", line: line)
    }

    func testShapesAndTransposes() {
        let shapes = [
            (1, 1, 1), (12, 32, 1), (13, 33, 7), (11, 31, 300), (100, 70, 257), (250, 129, 513),
            (1, 200, 64), (200, 1, 64), (37, 64, 0),
            (250, 96, 1500), (61, 128, 70), (49, 100, 33),  // A read in place (≤ 8 panels)
            (100, 300, 257), (40, 700, 100), (130, 290, 50)  // A packed (> 8 panels)
        ]
        for (m, n, k) in shapes {
            for ta in [false, true] { for tb in [false, true] { check(m: m, n: n, k: k, transA: ta, transB: tb) } }
        }
    }

    /// The work split: one thread takes whole row blocks; two threads get at least eight items,
    /// column chunks where B is large against A (392×768→2304) and row blocks alone where A is
    /// (3137×768→3072); blocks never exceed mcMax rows or the panels there are.
    func testWorkSplit() {
        XCTAssertTrue(gemmSplit(rowPanels: 262, panels: 96, k: 768, threads: 1, mcMax: 480) == (7, 1))
        let small = gemmSplit(rowPanels: 33, panels: 72, k: 768, threads: 2, mcMax: 480)
        XCTAssertGreaterThan(small.nChunks, 1)
        XCTAssertGreaterThanOrEqual(small.mBlocks * small.nChunks, 8)
        let tall = gemmSplit(rowPanels: 262, panels: 96, k: 768, threads: 2, mcMax: 480)
        XCTAssertEqual(tall.nChunks, 1)
        XCTAssertGreaterThanOrEqual(tall.mBlocks, 8)
        for (rp, panels, k) in [(1, 1, 5), (1, 40, 64), (3, 2, 9), (33, 72, 3072), (523, 6, 768), (2091, 3, 96)] {
            for threads in [2, 3, 8] {
                let s = gemmSplit(rowPanels: rp, panels: panels, k: k, threads: threads, mcMax: 480)
                XCTAssertTrue(
                    (1...rp).contains(s.mBlocks) && (1...panels).contains(s.nChunks), "\(rp) \(panels) \(threads)")
                XCTAssertGreaterThanOrEqual(s.mBlocks * s.nChunks, min(4 * threads, rp * panels))
                XCTAssertLessThanOrEqual((rp + s.mBlocks - 1) / s.mBlocks * MR, max(480, MR))
            }
        }
    }

    func testAlphaBeta() {
        check(m: 50, n: 40, k: 300, transA: false, transB: true, alpha: 0.5, beta: 1)
        check(m: 50, n: 40, k: 30, transA: true, transB: false, alpha: -2, beta: 0.25)
    }

    func testEpilogues() {
        for act in [Activation.none, .gelu, .geluTanh, .tanh, .relu] {
            check(m: 30, n: 70, k: 260, transA: false, transB: true, epilogue: (true, act, false))
        }
        check(m: 30, n: 70, k: 260, transA: false, transB: true, beta: 1, epilogue: (true, .none, true))
        check(m: 29, n: 45, k: 10, transA: false, transB: false, epilogue: (false, .gelu, true))
        // Gated units: x · multiplier, with and without bias / residual, ragged tiles.
        check(m: 30, n: 70, k: 260, transA: false, transB: true, epilogue: (true, .none, false), multiplier: true)
        check(m: 13, n: 33, k: 7, transA: false, transB: true, epilogue: (false, .gelu, true), multiplier: true)
    }

    func testEmptyDoesNothing() {
        let c = Buf(4, seed: 9), saved = Buf(copying: c)
        let a = Buf(4), b = Buf(4)
        XCTAssertTrue(
            sgemm(
                transA: false, transB: false, m: 0, n: 2, k: 2, alpha: 1, a: a.c, lda: 2, b: b.c,
                ldb: 2, beta: 0, c: c.p, ldc: 2))
        XCTAssertEqual(maxAbsDiff(c.c, saved.c, 4), 0)
    }

    /// K = 0: no product, C = act(beta·C + bias) + residual, row by row (the epilogue is one
    /// call over all of C there).
    func testZeroKAppliesTheEpilogueOnly() {
        let m = 3, n = 5
        let c = Buf(m * n, seed: 4), old = Buf(copying: c), bias = Buf(n, seed: 5), res = Buf(m * n, seed: 6)
        let b = Buf(1)
        guard let packed = PackedB(transposed: true, k: 0, n: n, b: b.c, ldb: 1) else { return XCTFail("pack") }
        let e = GemmEpilogue(bias: bias.c, activation: .relu, residual: res.c, ldResidual: n)
        XCTAssertTrue(
            sgemm(
                transA: false, m: m, k: 0, alpha: 1, a: b.c, lda: 1, packedB: packed, beta: 0.5, c: c.p, ldc: n,
                epilogue: e))
        for i in 0..<m {
            for j in 0..<n {
                let want = max(0, 0.5 * old.p[i * n + j] + bias.p[j]) + res.p[i * n + j]
                XCTAssertEqual(c.p[i * n + j], want, accuracy: 1e-6, "(\(i), \(j))")
            }
        }
    }

    func testThreadCountDoesNotChangeResults() {
        let m = 300, n = 200, k = 600
        let a = Buf(m * k, seed: 1), b = Buf(k * n, seed: 2)
        let c1 = Buf(m * n), c2 = Buf(m * n)
        withOptimised {
            _ = sgemm(
                transA: false, transB: true, m: m, n: n, k: k, alpha: 1, a: a.c, lda: k, b: b.c, ldb: k,
                beta: 0, c: c1.p, ldc: n, threads: 1)
            _ = sgemm(
                transA: false, transB: true, m: m, n: n, k: k, alpha: 1, a: a.c, lda: k, b: b.c, ldb: k,
                beta: 0, c: c2.p, ldc: n, threads: 2)
        }
        XCTAssertEqual(maxAbsDiff(c1.c, c2.c, m * n), 0, "results must be bit-identical across thread counts")
    }

    func testLargeMagnitudes() {
        let m = 20, n = 40, k = 100
        let a = Buf(m * k, seed: 1, scale: 1e4), b = Buf(k * n, seed: 2, scale: 1e4)
        let c = Buf(m * n), r = Buf(m * n)
        withOptimised {
            _ = sgemm(
                transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a: a.c, lda: k, b: b.c, ldb: n,
                beta: 0, c: c.p, ldc: n)
        }
        sgemmReference(
            transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a: a.c, lda: k, b: b.c, ldb: n,
            beta: 0, c: r.p, ldc: n)
        for i in 0..<(m * n) { XCTAssertEqual(c.p[i], r.p[i], accuracy: 2e-6 * 1e8 * Float(k)) }
    }
}
