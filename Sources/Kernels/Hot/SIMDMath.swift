import KernelTypes
#if canImport(Glibc)
import Glibc
#endif
import CSleef

/// Vector transcendental functions over 16 floats: exp inline (below), tanh from SLEEF
/// (1-ulp variant; one call on AVX-512 builds, two on AVX2), erf a rational fit.

/// The vector every kernel computes in: 16 floats (one zmm register, two ymm on AVX2).
public typealias Vec = SIMD16<Float>

/// Below ln(FLT_MIN) exp is subnormal: `vexp` and `sexp` return an exact 0 there, so no
/// subnormal probability ever reaches a later multiply (they cost assists on Intel).
public let expSubnormalBelow: Float = -87.33654
/// Above ln(FLT_MAX) exp overflows: `vexp` and `sexp` return +inf there.
public let expOverflowAbove: Float = 88.722_84
// The polynomial of `vexp` / `sexp`: e^r ≈ 1 + r·(c1 + r·(c2 + … + r·c6)) on |r| ≤ ln 2 / 2,
// fitted for least relative error (bench/exp_fit.py).
@usableFromInline let expC1: Float = 1.0
@usableFromInline let expC2: Float = 0.499_999_94
@usableFromInline let expC3: Float = 0.166_664_32
@usableFromInline let expC4: Float = 0.041_668_002
@usableFromInline let expC5: Float = 0.008_374_156_4
@usableFromInline let expC6: Float = 0.001_384_365_1

/// e^x per lane, exactly 0 where the result would be subnormal (no FTZ needed downstream),
/// +inf above ln(FLT_MAX), NaN for NaN. Inline (the SLEEF call it replaces spilled the softmax
/// loops' registers around every call): n = round(x · log2 e) with the 1.5 · 2^23 shifter,
/// r = x − n · ln 2 in two parts (|r| ≤ ln 2 / 2), e^r by a degree-6 polynomial (relative error
/// of the fit 2e-9), and 2^n by vscalefps on AVX-512, else as two factors 2^(n − ⌊n/2⌋) · 2^⌊n/2⌋
/// so that n = 128 and n = −126 stay normal. Within 1.3 ulp of e^x (ExpTests); `sexp` is the same
/// computation on one lane.
@inlinable @inline(__always) public func vexp(_ x: Vec) -> Vec {
    let shifter = Vec(repeating: 12_582_912)  // 1.5 · 2^23
    let t = shifter.addingProduct(x, Vec(repeating: 1.442_695_04))
    let n = t - shifter
    let r = x.addingProduct(n, Vec(repeating: -0.693_359_375)).addingProduct(n, Vec(repeating: 2.121_944_4e-4))
    var p = Vec(repeating: expC6)
    p = Vec(repeating: expC5).addingProduct(p, r)
    p = Vec(repeating: expC4).addingProduct(p, r)
    p = Vec(repeating: expC3).addingProduct(p, r)
    p = Vec(repeating: expC2).addingProduct(p, r)
    p = Vec(repeating: expC1).addingProduct(p, r)
    p = Vec(repeating: 1).addingProduct(p, r)
    #if VIDATTN_AVX512
    // p · 2^n in one vscalefps: the same bits as the two factors below (checked over 8.4 M
    // softmax and 16.8 M tanh-GELU values), nine instructions fewer.
    let scaled = _mm512_scalef_ps(p, n)
    #else
    let ni = unsafeBitCast(t, to: SIMD16<Int32>.self) &- 0x4B40_0000
    let half = ni &>> 1
    let s1 = unsafeBitCast((half &+ 127) &<< 23, to: Vec.self)
    let s2 = unsafeBitCast((ni &- half &+ 127) &<< 23, to: Vec.self)
    let scaled = p * s1 * s2
    #endif
    return scaled.replacing(with: 0, where: x .< expSubnormalBelow)
        .replacing(with: .infinity, where: x .> expOverflowAbove)
}

// The polynomial of `vexp2`: 2^f ≈ c0 + f·(c1 + … + f·c6) on |f| ≤ 1/2, fitted for least
// relative error (`bench/exp_fit.py --exp2 6`: 1.9e-9).
@usableFromInline let exp2C0: Float = 1.0
@usableFromInline let exp2C1: Float = 0.693_147_206
@usableFromInline let exp2C2: Float = 0.240_226_469
@usableFromInline let exp2C3: Float = 0.055_503_288
@usableFromInline let exp2C4: Float = 0.009_618_489
@usableFromInline let exp2C5: Float = 0.001_339_993_2
@usableFromInline let exp2C6: Float = 1.534_580_5e-4

/// 2^y per lane for y ≤ 127, exactly 0 below −126 (where 2^y would be subnormal) and for −inf,
/// NaN for NaN: n = round(y) with the 1.5 · 2^23 shifter, f = y − n exactly, 2^f by a degree-6
/// polynomial, then · 2^n (vscalefps on AVX-512). Within 1.5 ulp of 2^y (ExpTests).
@inlinable @inline(__always) public func vexp2(_ y: Vec) -> Vec {
    let shifter = Vec(repeating: 12_582_912)  // 1.5 · 2^23
    let t = y + shifter
    let n = t - shifter
    let f = y - n
    var p = Vec(repeating: exp2C6)
    p = Vec(repeating: exp2C5).addingProduct(p, f)
    p = Vec(repeating: exp2C4).addingProduct(p, f)
    p = Vec(repeating: exp2C3).addingProduct(p, f)
    p = Vec(repeating: exp2C2).addingProduct(p, f)
    p = Vec(repeating: exp2C1).addingProduct(p, f)
    p = Vec(repeating: exp2C0).addingProduct(p, f)
    #if VIDATTN_AVX512
    let scaled = _mm512_scalef_ps(p, n)
    #else
    let ni = unsafeBitCast(t, to: SIMD16<Int32>.self) &- 0x4B40_0000
    let scaled = p * unsafeBitCast((ni &+ 127) &<< 23, to: Vec.self)
    #endif
    return scaled.replacing(with: 0, where: y .< -126)
}

/// log2 e, the factor between a score and its `vexpShifted` exponent.
public let log2e: Float = 1.442_695_04

/// e^(s − m) per lane as 2^(s · log2 e − c), with c = `expShift(m)` (m · log2 e, rounded) and
/// the subtraction inside one fused multiply-add: eleven vector instructions where vexp(s − m)
/// took fifteen (objdump).
/// Every value of a softmax row and its running sum share c, so c's rounding cancels in the
/// normalisation.
@inlinable @inline(__always) public func vexpShifted(_ s: Vec, _ c: Vec) -> Vec {
    vexp2((-c).addingProduct(s, Vec(repeating: log2e)))
}

/// The shift `vexpShifted` takes for a running maximum m (−inf stays −inf).
@inlinable @inline(__always) public func expShift(_ m: Vec) -> Vec { m * Vec(repeating: log2e) }

#if VIDATTN_AVX512
/// tanh per lane (SLEEF, 1 ulp).
@inlinable @inline(__always) public func vtanh(_ x: Vec) -> Vec { Sleef_tanhf16_u10(x) }
#else
/// tanh per lane (SLEEF on two ymm halves, 1 ulp).
@inlinable @inline(__always) public func vtanh(_ x: Vec) -> Vec {
    Vec(lowHalf: Sleef_tanhf8_u10(x.lowHalf), highHalf: Sleef_tanhf8_u10(x.highHalf))
}
#endif

#if VIDATTN_AVX512
// verf's table (bench/erf_fit.py): erf(a)/a on [0, 4) in 16 intervals of 1/4, interval i a
// polynomial of degree 6 in t = a − (i + 1/2)/4; coefficient k of every interval in one vector.
@inlinable @inline(__always) var erfTable0: Vec {
    Vec(
        1.1225296, 1.0776451, 0.9971854, 0.8960858, 0.78967845, 0.68957824, 0.6021192, 0.5290614, 0.46933928,
        0.42072296, 0.38087416, 0.34780943, 0.31999683, 0.29629576, 0.27586198, 0.2580645)
}
@inlinable @inline(__always) var erfTable1: Vec {
    Vec(
        -0.09315495, -0.25944608, -0.3738974, -0.42438942, -0.4190262, -0.37761343, -0.3210135, -0.26427495, -0.2150581,
        -0.17545958, -0.14465763, -0.120876245, -0.102378264, -0.08778756, -0.07609925, -0.0665972)
}
@inlinable @inline(__always) var erfTable2: Vec {
    Vec(
        -0.36564565, -0.28849658, -0.1652637, -0.039728574, 0.054193765, 0.10426817, 0.11707452, 0.10740081, 0.08886299,
        0.06987124, 0.05395979, 0.041753683, 0.032696284, 0.025998376, 0.020990679, 0.017186034)
}
@inlinable @inline(__always) var erfTable3: Vec {
    Vec(
        0.055377312, 0.14298537, 0.17534515, 0.1516022, 0.09623072, 0.03903347, -0.0013741036, -0.021311771,
        -0.02627104, -0.023638383, -0.018693207, -0.014000446, -0.010334816, -0.0076757884, -0.0057853768, -0.0044342536
    )
}
@inlinable @inline(__always) var erfTable4: Vec {
    Vec(
        0.10662785, 0.06292102, 0.0017811978, -0.044805452, -0.060671426, -0.05056918, -0.02975052, -0.011172625,
        -4.2508975e-05, 0.0044231303, 0.005058628, 0.0042152135, 0.0031287314, 0.002232273, 0.00158737, 0.0011427932)
}
@inlinable @inline(__always) var erfTable5: Vec {
    Vec(
        -0.019447936, -0.04622645, -0.046478067, -0.02557352, -0.0006928317, 0.014380583, 0.016916716, 0.012061867,
        0.005922696, 0.0016810142, -0.0003055263, -0.0008642917, -0.00081523566, -0.0006131727, -0.00042753975,
        -0.000293256)
}
@inlinable @inline(__always) var erfTable6: Vec {
    Vec(
        -0.024458585, -0.009502615, 0.008507155, 0.01729782, 0.014250527, 0.0055570607, -0.0015504936, -0.0042168894,
        -0.0036215447, -0.0020102006, -0.0007390591, -9.757068e-05, 0.00011488491, 0.00013772915, 0.00010684178,
        7.329738e-05)
}

/// erf, within 3 ulp (ElementwiseTests: 1.98 at most), AVX-512: erf(x) = x · F(|x|) with
/// F = erf(a)/a from a table of 16 degree-6 polynomials on [0, 4) (each coefficient picked for
/// every lane by one vpermps of a register), and ±1 from 4 on (erfc(4) = 1.5e-8 rounds away). F
/// is smooth and even, so the relative error holds down to the smallest x. NaN gives NaN, ±inf
/// ±1. About half the work of the two-fit erf below (which the AVX2 build keeps: its vpermps
/// holds 8 lanes). Measured on Sapphire Rapids (BENCHMARKS.md, session 11): GELU over 1569 × 3072
/// values 0.77–0.87 ns per value against 1.14–1.43; alternated forward by forward in one process,
/// TimeSformer-B 0.95 of the time at bf16, 0.98 at int8 and fp32, swin3d_t bf16 0.97.
@inlinable @inline(__always) public func verf(_ x: Vec) -> Vec {
    let a = x.replacing(with: -x, where: x .< 0)
    let scaled = a * Vec(repeating: 4)
    let idx = _mm512_cvttps_epi32(scaled.replacing(with: 15, where: .!(scaled .< 15)))
    let t = a - Vec(repeating: 0.125).addingProduct(_mm512_cvtepi32_ps(idx), Vec(repeating: 0.25))
    @inline(__always) func c(_ table: Vec) -> Vec { _mm512_permutexvar_ps(idx, table) }
    var p = c(erfTable6)
    p = c(erfTable5).addingProduct(p, t)
    p = c(erfTable4).addingProduct(p, t)
    p = c(erfTable3).addingProduct(p, t)
    p = c(erfTable2).addingProduct(p, t)
    p = c(erfTable1).addingProduct(p, t)
    p = c(erfTable0).addingProduct(p, t)
    let one = Vec(repeating: 1)
    return (x * p).replacing(with: one.replacing(with: -one, where: x .< 0), where: a .>= Vec(repeating: 4))
}
#else
/// erf, within 3 ulp (ElementwiseTests), without a division (SLEEF's erff16_u10 took ~120 cycles
/// per vector on Sapphire Rapids, a rational fit with a division 2.3 ns per GELU value):
/// |x| < 1: x · P(x²), P of degree 6; 1 ≤ |x|: ±(1 − e^(−x²) · G(u)), u = (min(|x|, 4) − 2.5) / 1.5,
/// G of degree 10 (erfc · e^(x²), smooth; past 4 erf rounds to ±1). x² is split into its rounded
/// value and the rounding error so that e^(−x²) keeps its accuracy. Both fits: bench/erf_fit.py.
/// NaN gives NaN, ±inf ±1.
@inlinable @inline(__always) public func verf(_ x: Vec) -> Vec {
    let a = x.replacing(with: -x, where: x .< 0), z = a * a
    var p = Vec(repeating: 7.854_311_1e-05)
    p = Vec(repeating: -0.000_801_034_16).addingProduct(p, z)
    p = Vec(repeating: 0.005_188_346_4).addingProduct(p, z)
    p = Vec(repeating: -0.026_853_824).addingProduct(p, z)
    p = Vec(repeating: 0.112_835_85).addingProduct(p, z)
    p = Vec(repeating: -0.376_126_26).addingProduct(p, z)
    p = Vec(repeating: 1.128_379_1).addingProduct(p, z)
    let small = x * p
    let ac = a.replacing(with: 4, where: .!(a .<= 4))  // NaN stays in `a`, so in `small`
    let u = (ac - Vec(repeating: 2.5)) * Vec(repeating: 1 / 1.5)
    var g = Vec(repeating: 8.959_895e-05)
    g = Vec(repeating: -0.000_244_398_46).addingProduct(g, u)
    g = Vec(repeating: 0.000_384_718_15).addingProduct(g, u)
    g = Vec(repeating: -0.000_918_025_27).addingProduct(g, u)
    g = Vec(repeating: 0.002_411_323_8).addingProduct(g, u)
    g = Vec(repeating: -0.005_609_938_9).addingProduct(g, u)
    g = Vec(repeating: 0.012_489_152).addingProduct(g, u)
    g = Vec(repeating: -0.026_998_289).addingProduct(g, u)
    g = Vec(repeating: 0.056_110_334).addingProduct(g, u)
    g = Vec(repeating: -0.111_521_36).addingProduct(g, u)
    g = Vec(repeating: 0.210_806_37).addingProduct(g, u)
    let zc = ac * ac, zlo = (-zc).addingProduct(ac, ac)  // ac² = zc + zlo exactly
    let e = vexp(-zc) * g
    var big = Vec(repeating: 1) - e.addingProduct(e, -zlo)
    big.replace(with: -big, where: x .< 0)
    return small.replacing(with: big, where: a .>= Vec(repeating: 1))
}
#endif

/// Scalar counterparts, used by the reference paths and by tails.
@inlinable @inline(__always) public func sexp(_ x: Float) -> Float {
    if !(x >= expSubnormalBelow) { return x.isNaN ? x : 0 }
    if x > expOverflowAbove { return .infinity }
    let shifter: Float = 12_582_912
    let t = shifter.addingProduct(x, 1.442_695_04)
    let n = t - shifter
    let r = x.addingProduct(n, -0.693_359_375).addingProduct(n, 2.121_944_4e-4)
    var p = expC5.addingProduct(expC6, r)
    p = expC4.addingProduct(p, r)
    p = expC3.addingProduct(p, r)
    p = expC2.addingProduct(p, r)
    p = expC1.addingProduct(p, r)
    p = Float(1).addingProduct(p, r)
    let ni = Int32(truncatingIfNeeded: t.bitPattern) &- 0x4B40_0000
    let half = ni >> 1
    let s1 = Float(bitPattern: UInt32(truncatingIfNeeded: (half &+ 127) << 23))
    let s2 = Float(bitPattern: UInt32(truncatingIfNeeded: (ni &- half &+ 127) << 23))
    return p * s1 * s2
}
/// Scalar erf (SLEEF, 1 ulp), for the references and ragged ends.
/// Scalar tanh (SLEEF, 1 ulp), for the references and ragged ends.
@inlinable @inline(__always) public func serf(_ x: Float) -> Float { Sleef_erff_u10(x) }
@inlinable @inline(__always) public func stanh(_ x: Float) -> Float { Sleef_tanhf_u10(x) }

/// The sum of the 16 lanes as a tree (8 + 8, 4 + 4, 2 + 2, 1 + 1). `Vec.sum()` adds them one
/// after another, 16 dependent additions (seen in `objdump`): in the short-sequence attention
/// that chain, once per dot product, was most of its time.
@inlinable @inline(__always) public func hsum(_ v: Vec) -> Float {
    let a = v.lowHalf + v.highHalf
    let b = a.lowHalf + a.highHalf
    let c = b.lowHalf + b.highHalf
    return c[0] + c[1]
}

/// Loads 16 floats (unaligned).
@inlinable @inline(__always) public func vload(_ p: UnsafePointer<Float>) -> Vec {
    UnsafeRawPointer(p).loadUnaligned(as: Vec.self)
}
/// Loads 16 floats (unaligned).
@inlinable @inline(__always) public func vload(_ p: UnsafeMutablePointer<Float>) -> Vec {
    UnsafeRawPointer(p).loadUnaligned(as: Vec.self)
}
/// Stores 16 floats (unaligned).
@inlinable @inline(__always) public func vstore(_ v: Vec, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vec.self)
}

/// Loads `n < 16` floats, filling the other lanes with `fill`.
@inlinable @inline(__always) public func vloadPartial(_ p: UnsafePointer<Float>, _ n: Int, fill: Float = 0) -> Vec {
    var v = Vec(repeating: fill)
    for i in 0..<n { v[i] = p[i] }
    return v
}
/// Stores the first n lanes of v (n < 16).
@inlinable @inline(__always) public func vstorePartial(_ v: Vec, _ p: UnsafeMutablePointer<Float>, _ n: Int) {
    for i in 0..<n { p[i] = v[i] }
}
