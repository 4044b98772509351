#if canImport(Glibc)
import Glibc
#endif
import Kernels
// Seeded Gaussian orthogonal random features for Performer (FAVOR+).
//
// Follows the construction of docs/attention.md (blocks of d orthonormal rows
// from the QR of a Gaussian matrix, rows rescaled by the norms of Gaussian rows)
// with this library's own generator: the same seed gives the same matrix on
// every platform, but not PyTorch's matrix (its Gaussian stream cannot be
// reproduced); pass a projection in to match a PyTorch run exactly.

/// xoshiro256** seeded through splitmix64, with Box–Muller normals.
public struct SeededNormal {
    var s: (UInt64, UInt64, UInt64, UInt64)
    var spare: Double? = nil

    /// A generator seeded from `seed` (splitmix64 expansion into the state).
    public init(seed: UInt64) {
        var x = seed
        func splitmix() -> UInt64 {
            x &+= 0x9E3779B97F4A7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
            z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
            return z ^ (z >> 31)
        }
        s = (splitmix(), splitmix(), splitmix(), splitmix())
    }

    mutating func nextU64() -> UInt64 {
        let r = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3; s.2 ^= t
        s.3 = s.3 << 45 | s.3 >> 19
        return r
    }

    /// Uniform in (0, 1).
    mutating func uniform() -> Double { (Double(nextU64() >> 11) + 0.5) / 9007199254740992.0 }

    /// The next standard normal sample (Box–Muller, the spare value kept for the next call).
    public mutating func next() -> Double {
        if let z = spare { spare = nil; return z }
        let u1 = uniform(), u2 = uniform()
        let r = (-2 * log(u1)).squareRoot(), th = 2 * Double.pi * u2
        spare = r * sin(th)
        return r * cos(th)
    }
}

/// Ω [m, d] row-major: orthonormal d-row blocks scaled by χ(d) row norms. Every buffer,
/// the Gram–Schmidt scratch included, comes from the counted allocator.
public func performerProjection(features m: Int, dim d: Int, seed: UInt64) throws -> Tensor {
    var rng = SeededNormal(seed: seed)
    let omega = try Tensor(shape: [m, d])
    // g: a Gaussian d×d; q: its orthonormalised columns, q[c·d + i] = component i of column c.
    // Each freed on its own: when a later allocation fails the earlier ones must not leak.
    let oom = VidAttnError(.outOfMemory, "performer projection: cannot allocate \(d)×\(d) scratch")
    guard let dd = checkedProduct(d, d), let g = allocCounted(Double.self, dd) else { throw oom }
    defer { freeCounted(g) }
    guard let q = allocCounted(Double.self, dd) else { throw oom }
    defer { freeCounted(q) }
    guard let col = allocCounted(Double.self, d) else { throw oom }
    defer { freeCounted(col) }
    var row = 0
    while row < m {
        // Gaussian d×d, Gram–Schmidt (twice, for stability) on its columns.
        for i in 0..<(d * d) { g[i] = rng.next() }
        for c in 0..<d {
            for i in 0..<d { col[i] = g[i * d + c] }
            for _ in 0..<2 {
                for p in 0..<c {
                    var dot = 0.0
                    for i in 0..<d { dot += q[p * d + i] * col[i] }
                    for i in 0..<d { col[i] -= dot * q[p * d + i] }
                }
            }
            var n = 0.0
            for i in 0..<d { n += col[i] * col[i] }
            n = n.squareRoot()
            for i in 0..<d { q[c * d + i] = col[i] / n }
        }
        // Rows of Qᵀ are the columns of Q.
        for c in 0..<d where row < m {
            for i in 0..<d { omega.data[row * d + i] = Float(q[c * d + i]) }
            row += 1
        }
    }
    for r in 0..<m {
        var n = 0.0
        for _ in 0..<d { let z = rng.next(); n += z * z }
        let s = Float(n.squareRoot())
        for i in 0..<d { omega.data[r * d + i] *= s }
    }
    return omega
}
