import Glibc
import XCTest
@testable import Kernels

/// vexp / sexp (the library's own exp, Hot/SIMDMath.swift) against float64 exp: within 2 ulp
/// everywhere in the normal range (bench/exp_fit.py measures 1.33 ulp for the same steps
/// without fused multiply-adds), the vector and the scalar forms bit for bit the same, and
/// the edges exact.
final class ExpTests: XCTestCase {
    func testWithinTwoUlpAndLanesAgree() {
        var worst = 0.0, worstX: Float = 0
        var x: Float = -87.33
        while x < 88.72 {
            var lanes = Vec()
            for l in 0..<16 { lanes[l] = x + Float(l) * 0.000_37 }
            let v = vexp(lanes)
            for l in 0..<16 where lanes[l] < 88.72 {
                let s = sexp(lanes[l])
                XCTAssertEqual(v[l].bitPattern, s.bitPattern, "vexp and sexp differ at \(lanes[l])")
                let ref = Glibc.exp(Double(lanes[l]))
                let ulp = abs(Double(s) - ref) / Double(Float(ref).ulp)
                if ulp > worst { worst = ulp; worstX = lanes[l] }
            }
            x += 0.013_7
        }
        XCTAssertLessThanOrEqual(worst, 2, "exp(\(worstX)) is \(worst) ulp off")
    }

    func testEdges() {
        let xs: [Float] = [0, -0.0, 1, -1, 88.72, 88.8, 1e10, .infinity, -.infinity, -87.4, -1e10, .nan, -87.33]
        var lanes = Vec()
        for (i, x) in xs.enumerated() { lanes[i] = x }
        let v = vexp(lanes)
        XCTAssertEqual(v[0], 1); XCTAssertEqual(v[1], 1)
        XCTAssertEqual(v[2], Float(M_E), accuracy: Float(M_E).ulp)
        XCTAssertEqual(v[3], Float(1 / M_E), accuracy: Float(1 / M_E).ulp)
        XCTAssertTrue(v[4].isFinite && v[4] > 3.3e38, "exp(88.72) = \(v[4])")
        XCTAssertEqual(v[5], .infinity); XCTAssertEqual(v[6], .infinity); XCTAssertEqual(v[7], .infinity)
        XCTAssertEqual(v[8], 0); XCTAssertEqual(v[9], 0); XCTAssertEqual(v[10], 0)
        XCTAssertTrue(v[11].isNaN)
        XCTAssertGreaterThanOrEqual(v[12], Float.leastNormalMagnitude)
        for (i, x) in xs.enumerated() {
            let s = sexp(x)
            XCTAssertTrue(s.isNaN ? v[i].isNaN : s == v[i], "sexp(\(x)) = \(s), vexp gives \(v[i])")
        }
    }

    /// vexp2 (the attention softmax's exp): within 1.5 ulp of 2^y over the normal range, exact at
    /// integers, 0 below −126 and for −inf, NaN for NaN.
    func testExp2WithinOneAndAHalfUlp() {
        var worst = 0.0, worstY: Float = 0
        var y: Float = -126
        while y < 127 {
            var lanes = Vec()
            for l in 0..<16 { lanes[l] = y + Float(l) * 0.000_53 }
            let v = vexp2(lanes)
            for l in 0..<16 where lanes[l] < 127 {
                let ref = Glibc.exp2(Double(lanes[l]))
                let ulp = abs(Double(v[l]) - ref) / Double(Float(ref).ulp)
                if ulp > worst { worst = ulp; worstY = lanes[l] }
            }
            y += 0.019_3
        }
        XCTAssertLessThanOrEqual(worst, 1.5, "2^\(worstY) is \(worst) ulp off")
        let ys: [Float] = [0, -126, -126.001, -.infinity, .nan, 10, -3, -1e10]
        var lanes = Vec()
        for (i, y) in ys.enumerated() { lanes[i] = y }
        let v = vexp2(lanes)
        XCTAssertEqual(v[0], 1); XCTAssertEqual(v[1], Float.leastNormalMagnitude)
        XCTAssertEqual(v[2], 0); XCTAssertEqual(v[3], 0); XCTAssertTrue(v[4].isNaN)
        XCTAssertEqual(v[5], 1024); XCTAssertEqual(v[6], 0.125); XCTAssertEqual(v[7], 0)
    }

    /// vexpShifted(s, expShift(m)) is e^(s − m) up to the rounding of s · log2 e and of the shift:
    /// relative error within (|s| + |m|) · 1e-7 + 3 ulp.
    func testShiftedExpMatchesExpOfDifference() {
        var worst = 0.0
        for mi in 0..<40 {
            let m = Float(mi) * 2.7 - 50
            var s = Vec()
            for l in 0..<16 { s[l] = m - Float(l) * 3.1 - Float(mi % 7) * 0.37 }
            let e = vexpShifted(s, expShift(Vec(repeating: m)))
            for l in 0..<16 {
                let ref = Glibc.exp(Double(s[l]) - Double(m))
                let rel = abs(Double(e[l]) - ref) / ref
                let bound = Double(abs(s[l]) + abs(m)) * 1e-7 + 3 * Double(Float.ulpOfOne)
                worst = max(worst, rel / bound)
            }
        }
        XCTAssertLessThanOrEqual(worst, 1, "e^(s − m) off by \(worst) of its bound")
    }
}
