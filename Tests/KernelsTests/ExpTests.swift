import Glibc
import XCTest
@testable import Kernels

/// vexp / sexp (the library's own exp, Hot/SIMDMath.swift) against float64 exp: within 2 ulp
/// everywhere in the normal range (bench/exp_fit.py measures 1.33 ulp for the same steps
/// without fused multiply-adds), the vector and the scalar forms bit for bit the same, and
/// the edges exact.
final class ExpTests: XCTestCase {
    /// The largest error in ulp of `f` against `ref` over [lo, hi): sixteen lanes `lane` apart
    /// per call, calls `step` apart; `each(x, f(x))` sees every value.
    private func worstUlp(
        _ lo: Float, _ hi: Float, step: Float, lane: Float, _ f: (Vec) -> Vec, _ ref: (Double) -> Double,
        each: (Float, Float) -> Void = { _, _ in }
    ) -> (ulp: Double, at: Float) {
        var worst = 0.0, worstX: Float = 0
        var x = lo
        while x < hi {
            var lanes = Vec()
            for l in 0..<16 { lanes[l] = x + Float(l) * lane }
            let v = f(lanes)
            for l in 0..<16 where lanes[l] < hi {
                each(lanes[l], v[l])
                let r = ref(Double(lanes[l]))
                let ulp = abs(Double(v[l]) - r) / Double(Float(r).ulp)
                if ulp > worst { worst = ulp; worstX = lanes[l] }
            }
            x += step
        }
        return (worst, worstX)
    }

    func testWithinTwoUlpAndLanesAgree() {
        let (worst, at) = worstUlp(-87.33, 88.72, step: 0.013_7, lane: 0.000_37, vexp, Glibc.exp) { x, v in
            XCTAssertEqual(v.bitPattern, sexp(x).bitPattern, "vexp and sexp differ at \(x)")
        }
        XCTAssertLessThanOrEqual(worst, 2, "exp(\(at)) is \(worst) ulp off")
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
        let (worst, at) = worstUlp(-126, 127, step: 0.019_3, lane: 0.000_53, vexp2, Glibc.exp2)
        XCTAssertLessThanOrEqual(worst, 1.5, "2^\(at) is \(worst) ulp off")
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
