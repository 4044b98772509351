import XCTest
import CKernels
@testable import Kernels
import Foundation

/// Softmax, LayerNorm and activations: SIMD against scalar reference, and
/// against closed-form values computed in Double.
final class ElementwiseTests: XCTestCase {
    func testSoftmaxMatchesReference() {
        for (rows, cols) in [(1, 1), (3, 15), (4, 16), (7, 33), (2, 1000)] {
            let x = Buf(rows * cols, seed: 1, scale: 5), bias = Buf(cols, seed: 2)
            let y1 = Buf(rows * cols), y2 = Buf(rows * cols)
            var s = SoftmaxArgs(rows: rows, cols: cols, x: x.c, ldx: cols, y: y1.p, ldy: cols)
            s.scale = 0.7; s.bias = bias.c; s.ldBias = 0
            withOptimised { softmaxRows(s) }
            s.y = y2.p
            softmaxRowsReference(s)
            XCTAssertLessThanOrEqual(maxAbsDiff(y1.c, y2.c, rows * cols), 1e-6, "\(rows)x\(cols)")
            // Each row sums to one.
            for r in 0..<rows {
                var sum: Double = 0
                for j in 0..<cols { sum += Double(y1.p[r * cols + j]) }
                XCTAssertEqual(sum, 1, accuracy: 1e-5)
            }
        }
    }

    func testSoftmaxMaskAndLargeMagnitudes() {
        let cols = 37
        let x = Buf(2 * cols, seed: 3, scale: 1e4)
        var mask = [UInt8](repeating: 1, count: 2 * cols)
        for j in 0..<cols { mask[j] = j % 3 == 0 ? 0 : 1; mask[cols + j] = 0 }  // row 1 fully masked
        let y = Buf(2 * cols)
        mask.withUnsafeBufferPointer { mp in
            var s = SoftmaxArgs(rows: 2, cols: cols, x: x.c, ldx: cols, y: y.p, ldy: cols)
            s.mask = mp.baseAddress; s.ldMask = cols
            withOptimised { softmaxRows(s) }
        }
        var sum: Float = 0
        for j in 0..<cols {
            XCTAssertTrue(y.p[j].isFinite)
            if j % 3 == 0 { XCTAssertEqual(y.p[j], 0) }
            sum += y.p[j]
            XCTAssertEqual(y.p[cols + j], 0, "fully masked row is all zeros")
        }
        XCTAssertEqual(sum, 1, accuracy: 1e-5)
    }

    func testLayerNorm() {
        for (rows, cols, scale) in [(1, 1, Float(1)), (5, 17, 1), (3, 768, 1), (2, 96, 1e4), (4, 50, 1e-3)] {
            let x = Buf(rows * cols, seed: 5, scale: scale)
            for i in 0..<(rows * cols) { x.p[i] += 3 * scale }  // offset mean
            let g = Buf(cols, seed: 6), b = Buf(cols, seed: 7)
            let y1 = Buf(rows * cols), y2 = Buf(rows * cols)
            withOptimised {
                layerNorm(
                    rows: rows, cols: cols, x: x.c, ldx: cols, y: y1.p, ldy: cols, gamma: g.c, beta: b.c, eps: 1e-6)
            }
            layerNormReference(
                rows: rows, cols: cols, x: x.c, ldx: cols, y: y2.p, ldy: cols, gamma: g.c, beta: b.c, eps: 1e-6)
            XCTAssertLessThanOrEqual(maxAbsDiff(y1.c, y2.c, rows * cols), 2e-5, "\(rows)x\(cols) scale \(scale)")
        }
    }

    func testActivationsAgainstClosedForm() {
        let n = 1000
        let x = Buf(n, seed: 8, scale: 8)
        x.p[0] = 0; x.p[1] = -20; x.p[2] = 20
        for act in [Activation.gelu, .geluTanh, .tanh, .relu] {
            let y = Buf(n), r = Buf(n)
            withOptimised { activation(act, x.c, y.p, n - 3) }  // odd tail
            activationReference(act, x.c, r.p, n - 3)
            for i in 0..<(n - 3) {
                let v = Double(x.p[i])
                let exact: Double
                switch act {
                case .gelu: exact = 0.5 * v * (1 + erf(v / 2.0.squareRoot()))
                case .geluTanh:
                    exact = 0.5 * v * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * (v + 0.044715 * v * v * v)))
                case .tanh: exact = Foundation.tanh(v)
                default: exact = max(v, 0)
                }
                XCTAssertEqual(Double(y.p[i]), exact, accuracy: 2e-6 * max(1, abs(exact)), "\(act) at \(v)")
                XCTAssertEqual(y.p[i], r.p[i], accuracy: 1e-6 * max(1, abs(r.p[i])))
            }
        }
    }

    /// The vector erf behind GELU (SIMDMath.swift) of the selected kernels (AVX-512: a table of
    /// polynomials; AVX2 and VIDATTN_MAX_ISA=avx2: two fits and an exponential) against Double's
    /// erf: within 3 ulp of the float result over [-6, 6], every interval edge of the table, and
    /// tiny arguments; odd, NaN and ±inf handled; a ragged tail.
    func testVectorErfWithinThreeUlp() {
        var xs: [Float] = [0, -0, .infinity, -.infinity, 0.85, -0.85, 0.8499999, 3.92, 1e-38, 1e-30, .nan]
        for i in 0...240_000 { xs.append(-6 + 12 * Float(i) / 240_000) }
        for e in 0..<400 { xs.append(Float(Foundation.pow(10.0, -Double(e) / 20))) }
        for edge in 1...16 {
            let b = Float(edge) / 4
            xs += [b, b.nextDown, b.nextUp, -b, -b.nextDown]
        }
        xs.append(0.75)  // 16k + 1 values: the last one takes the partial-vector path
        let neg = xs.map { -$0 }
        var y = [Float](repeating: 0, count: xs.count), yn = y
        vectorErf(xs, &y, xs.count)
        vectorErf(neg, &yn, xs.count)
        var worst: Double = 0, at: Float = 0
        for i in xs.indices {
            let x = xs[i], want = erf(Double(x))
            if x.isNaN { XCTAssertTrue(y[i].isNaN && yn[i].isNaN, "NaN at \(i)"); continue }
            XCTAssertEqual(yn[i], -y[i], "odd at \(x)")
            if x.isInfinite { XCTAssertEqual(y[i], x > 0 ? 1 : -1); continue }
            let ulp = Double(Float(abs(want)).ulp)
            let e = abs(Double(y[i]) - want) / max(ulp, Double(Float.leastNormalMagnitude))
            if e > worst { worst = e; at = x }
        }
        print("verf (\(FP32Kernels.isa)): max error \(worst) ulp at \(at)")
        XCTAssertLessThanOrEqual(worst, 3, "verf at \(at)")
    }

    func testGatherPathsAgree() {
        // Both paths against the definition, with lengths around the 16-wide vectors and indices
        // spread over a table (Swin's relative-position bias comes through here).
        let table = Buf(2535, seed: 40)
        for n in [0, 1, 15, 16, 17, 153_664 % 997] {
            var index = [Int32](repeating: 0, count: n)
            for i in 0..<n { index[i] = Int32((i * 7919 + 13) % 2535) }
            for path: Int32 in [0, 1] where path == 0 || CPU.info.avx512f != 0 {
                var dst = [Float](repeating: .nan, count: n)
                vidattn_gather_f32_path(table.c, index, n, &dst, path)
                for i in 0..<n where dst[i].bitPattern != table.p[Int(index[i])].bitPattern {
                    XCTFail("gather path \(path), n \(n): entry \(i)"); break
                }
            }
        }
        if CPU.info.avx512f == 0 { print("gather: AVX-512 path not run (this CPU lacks avx512f)") }
    }
}
