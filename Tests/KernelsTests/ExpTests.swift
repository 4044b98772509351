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
}
