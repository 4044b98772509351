// The approximations of trajectory attention's spatial step (docs/attention.md).
// Each reduces, per (batch, head), to factors W [N, L] and M [L, F·d] with
// Ỹ[n, f, :] = (W·M)[n, f·d ..< f·d+d], divided by (W·Z)[n, f] for Performer.
import Kernels
import Synchronization

final class SpatialFactors {
    let B: Int, H: Int, F: Int, P: Int, d: Int, L: Int
    let normalise: Bool
    let w: UnsafeMutablePointer<Float>  // [B·H, N, L]
    let m: UnsafeMutablePointer<Float>  // [B·H, L, F·d]
    let z: UnsafeMutablePointer<Float>?  // [B·H, L, F]

    /// q, k, v: [B, H, cls + F·P, d]; `cls` = 1 skips a leading CLS row per head.
    init?(
        B: Int, H: Int, F: Int, P: Int, d: Int, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
        v: UnsafePointer<Float>, approx: TrajectoryApprox, cls: Int = 1
    ) {
        let N = F * P
        switch approx {
        case .nystrom(let l), .orthoformer(let l, _): L = l; normalise = false
        case .performer(_, let mf): L = mf; normalise = true
        case .none: return nil
        }
        self.B = B; self.H = H; self.F = F; self.P = P; self.d = d
        // Once every stored property is set, a failing init runs deinit, which frees
        // the three buffers; before that, each buffer is freed here.
        guard let w = allocFloats(B * H * N * L) else { return nil }
        guard let m = allocFloats(B * H * L * F * d) else { freeFloats(w); return nil }
        self.w = w; self.m = m
        z = normalise ? allocFloats(B * H * L * F) : nil
        if normalise && z == nil { return nil }
        let T = cls + N, L = self.L
        let zz = z
        let failed = Atomic<Bool>(false)
        parallelFor(B * H) { bh, _ in
            // Patch tokens of this (b, h): rows 1... of [B, H, 1+N, d].
            let qh = q + bh * T * d + cls * d, kh = k + bh * T * d + cls * d, vh = v + bh * T * d + cls * d
            let wb = w + bh * N * L, mb = m + bh * L * F * d
            let ok: Bool
            switch approx {
            case .nystrom: ok = nystromFactors(N, F, P, d, L, qh, kh, vh, wb, mb)
            case .orthoformer(_, let start): ok = orthoformerFactors(N, F, P, d, L, start, qh, kh, vh, wb, mb)
            case .performer(let omega, _):
                ok = performerFactors(N, F, P, d, L, omega, qh, kh, vh, wb, mb, zz! + bh * L * F)
            case .none: ok = true
            }
            if !ok { failed.store(true, ordering: .relaxed) }
        }
        if failed.load(ordering: .relaxed) { return nil }
    }

    deinit { freeFloats(w); freeFloats(m); freeFloats(z) }

    /// Ỹ for patch queries s0 ..< s0+tq of batch b, into y [tq, F, H·d]; false if out of memory.
    func trajectoryTile(b: Int, s0: Int, tq: Int, into y: UnsafeMutablePointer<Float>) -> Bool {
        let N = F * P, C = H * d, Fd = F * d
        return withScratch(tq * Fd + tq * F) { tmp -> Bool in
            let den = tmp + tq * Fd
            for h in 0..<H {
                let bh = b * H + h
                guard
                    sgemm(
                        transA: false, transB: false, m: tq, n: Fd, k: L, alpha: 1,
                        a: w + (bh * N + s0) * L, lda: L, b: m + bh * L * Fd, ldb: Fd, beta: 0,
                        c: tmp, ldc: Fd, threads: 1)
                else { return false }
                if let z,
                    !sgemm(
                        transA: false, transB: false, m: tq, n: F, k: L, alpha: 1,
                        a: w + (bh * N + s0) * L, lda: L, b: z + bh * L * F, ldb: F, beta: 0,
                        c: den, ldc: F, threads: 1)
                {
                    return false
                }
                for i in 0..<tq {
                    for f in 0..<F {
                        let src = tmp + i * Fd + f * d, dst = y + (i * F + f) * C + h * d
                        if z != nil {
                            let inv = den[i * F + f] > 0 ? 1 / den[i * F + f] : 0  // underflow: no mass
                            for t in 0..<d { dst[t] = src[t] * inv }
                        } else {
                            dst.update(from: src, count: d)
                        }
                    }
                }
            }
            return true
        } ?? false
    }
}

/// Row softmax in place over `rows` rows of `cols` (single-threaded).
@inline(__always) func softmaxInPlace(_ x: UnsafeMutablePointer<Float>, _ rows: Int, _ cols: Int, ld: Int? = nil) {
    softmaxRows(
        SoftmaxArgs(rows: rows, cols: cols, x: UnsafePointer(x), ldx: ld ?? cols, y: x, ldy: ld ?? cols),
        threads: 1)
}

/// C[m, n] = A[m, k]·B[k, n] (or ·Bᵀ when bT), single-threaded.
@inline(__always)
func mm(
    _ m: Int, _ n: Int, _ k: Int, _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int, bT: Bool = false, alpha: Float = 1, beta: Float = 0
) -> Bool {
    sgemm(
        transA: false, transB: bT, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
        beta: beta, c: c, ldc: ldc, threads: 1)
}

/// M[l, f·d + j] = Σ_p softmax_p(lq_l · k_{f,p}) · v_{f,p,j}, for all frames.
func perFrameLandmarkValues(
    _ F: Int, _ P: Int, _ d: Int, _ L: Int, _ lq: UnsafePointer<Float>,
    _ k: UnsafePointer<Float>, _ v: UnsafePointer<Float>, _ m: UnsafeMutablePointer<Float>
) -> Bool {
    withScratch(L * P) { s in
        for f in 0..<F {
            guard mm(L, P, d, lq, d, k + f * P * d, d, s, P, bT: true) else { return false }
            softmaxInPlace(s, L, P)
            guard mm(L, d, P, UnsafePointer(s), P, v + f * P * d, d, m + f * d, F * d) else { return false }
        }
        return true
    } ?? false
}

/// Nyström (docs/attention.md): spatial landmarks, K1·pinv₆(K2)·(K3·v).
func nystromFactors(
    _ N: Int, _ F: Int, _ P: Int, _ d: Int, _ L: Int, _ q: UnsafePointer<Float>,
    _ k: UnsafePointer<Float>, _ v: UnsafePointer<Float>,
    _ w: UnsafeMutablePointer<Float>, _ m: UnsafeMutablePointer<Float>
) -> Bool {
    let scale = 1 / Float(d).squareRoot()
    return withScratch(N * d + 2 * L * d + 5 * L * L) { buf in
        let qs = buf, lq = qs + N * d, lk = lq + L * d
        let k2 = lk + L * d, zA = k2 + L * L, zB = zA + L * L, kz = zB + L * L, t = kz + L * L
        for i in 0..<(N * d) { qs[i] = q[i] * scale }
        // Landmarks: segment means over the patch-major order (p, f) of the tokens.
        let segs = N / L
        let nShort = N % L == 0 ? L : (segs + 1) * L - N
        var r = 0
        for l in 0..<L {
            let len = N % L == 0 ? segs : (l < nShort ? segs : segs + 1)
            let mq = lq + l * d, mk = lk + l * d
            for j in 0..<d { mq[j] = 0; mk[j] = 0 }
            for _ in 0..<len {
                let p = r / F, f = r % F, tok = f * P + p
                for j in 0..<d { mq[j] += qs[tok * d + j]; mk[j] += k[tok * d + j] }
                r += 1
            }
            let inv = 1 / Float(len)
            for j in 0..<d { mq[j] *= inv; mk[j] *= inv }
        }
        guard mm(N, L, d, qs, d, lk, d, w, L, bT: true) else { return false }; softmaxInPlace(w, N, L)  // K1, kept as W
        guard mm(L, L, d, lq, d, lk, d, k2, L, bT: true) else { return false }; softmaxInPlace(k2, L, L)
        guard perFrameLandmarkValues(F, P, d, L, lq, k, v, m) else { return false }
        // Z₀ = K2ᵀ / max column sum, then six Newton–Schulz steps.
        var maxCol: Float = 0
        for j in 0..<L {
            var c: Float = 0
            for i in 0..<L { c += k2[i * L + j] }
            maxCol = max(maxCol, c)
        }
        for i in 0..<L { for j in 0..<L { zA[i * L + j] = k2[j * L + i] / maxCol } }
        var zc = zA, zn = zB
        for _ in 0..<6 {
            guard mm(L, L, L, k2, L, zc, L, kz, L) else { return false }  // KZ = K2·Z
            for i in 0..<(L * L) { t[i] = -kz[i] }; for i in 0..<L { t[i * L + i] += 7 }
            guard mm(L, L, L, kz, L, t, L, zn, L) else { return false }  // KZ·(7I − KZ)
            for i in 0..<(L * L) { t[i] = -zn[i] }; for i in 0..<L { t[i * L + i] += 15 }
            guard mm(L, L, L, kz, L, t, L, zn, L) else { return false }  // KZ·(15I − …)
            for i in 0..<(L * L) { t[i] = -zn[i] }; for i in 0..<L { t[i * L + i] += 13 }
            guard mm(L, L, L, zc, L, t, L, zn, L, alpha: 0.25) else { return false }  // ¼·Z·(13I − …)
            swap(&zc, &zn)
        }
        // W·M = K1·(Z·M): keep W = K1 and fold Z into M (L×L×F·d instead of N×L×L).
        let fd = F * d
        guard let zm = allocFloats(L * fd) else { return false }
        defer { freeFloats(zm) }
        guard mm(L, fd, L, zc, L, m, fd, zm, fd) else { return false }
        m.update(from: zm, count: L * fd)
        return true
    } ?? false
}

/// Orthoformer (docs/attention.md): greedy max-min orthogonal landmarks from q, no inverse.
func orthoformerFactors(
    _ N: Int, _ F: Int, _ P: Int, _ d: Int, _ L: Int, _ start: Int, _ q: UnsafePointer<Float>,
    _ k: UnsafePointer<Float>, _ v: UnsafePointer<Float>,
    _ w: UnsafeMutablePointer<Float>, _ m: UnsafeMutablePointer<Float>
) -> Bool {
    let s4 = 1 / Float(d).squareRoot().squareRoot()
    return withScratch(3 * N * d + 2 * N + L * d) { buf in
        // selected: 1 where a token is already a landmark.
        let qs = buf, ks = qs + N * d, u = ks + N * d, best = u + N * d, lq = best + N, selected = lq + L * d
        for i in 0..<(N * d) { qs[i] = q[i] * s4; ks[i] = k[i] * s4 }
        for n in 0..<N {
            var ss: Float = 0
            for j in 0..<d { ss += qs[n * d + j] * qs[n * d + j] }
            let inv = 1 / max(ss.squareRoot(), 1e-12)
            for j in 0..<d { u[n * d + j] = qs[n * d + j] * inv }
            best[n] = -Float.infinity
        }
        selected.initialize(repeating: 0, count: N)
        selected[start] = 1
        var last = start
        for _ in 1..<L {
            var arg = -1, argVal = Float.infinity
            let ul = u + last * d
            for n in 0..<N {
                let un = u + n * d
                var acc = Vec(), j = 0
                while j + 16 <= d { acc.addProduct(vload(un + j), vload(ul + j)); j += 16 }
                var c = acc.sum()
                while j < d { c += un[j] * ul[j]; j += 1 }
                best[n] = max(best[n], abs(c))
                let val: Float = selected[n] != 0 ? 10 : best[n]
                if val < argVal { argVal = val; arg = n }
            }
            selected[arg] = 1
            last = arg
        }
        var l = 0
        for n in 0..<N where selected[n] != 0 { (lq + l * d).update(from: qs + n * d, count: d); l += 1 }
        guard mm(N, L, d, qs, d, lq, d, w, L, bT: true) else { return false }; softmaxInPlace(w, N, L)  // K1
        return perFrameLandmarkValues(F, P, d, L, lq, ks, v, m)
    } ?? false
}

/// Performer FAVOR+ (docs/attention.md), per-frame linear attention with a given Ω [mf, d].
func performerFactors(
    _ N: Int, _ F: Int, _ P: Int, _ d: Int, _ mf: Int, _ omega: UnsafePointer<Float>,
    _ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>, _ v: UnsafePointer<Float>,
    _ w: UnsafeMutablePointer<Float>, _ m: UnsafeMutablePointer<Float>,
    _ z: UnsafeMutablePointer<Float>
) -> Bool {
    withScratch(N * mf + N * d) { buf in
        let phik = buf, xs = buf + N * mf
        guard favorFeatures(N, d, mf, omega, q, xs, w, isQuery: true, stabiliser: 1e-6, keyMaxPerRow: false) else {
            return false
        }
        guard favorFeatures(N, d, mf, omega, k, xs, phik, isQuery: false, stabiliser: 1e-6, keyMaxPerRow: false) else {
            return false
        }
        for f in 0..<F {
            // KV_f = φk_fᵀ·v_f [mf, d] → M[:, f·d...]; z_f = Σ_p φk_{f,p} → Z[:, f].
            guard
                sgemm(
                    transA: true, transB: false, m: mf, n: d, k: P, alpha: 1, a: phik + f * P * mf, lda: mf,
                    b: v + f * P * d, ldb: d, beta: 0, c: m + f * d, ldc: F * d, threads: 1)
            else { return false }
            for j in 0..<mf {
                var s: Float = 0
                for p in 0..<P { s += phik[(f * P + p) * mf + j] }
                z[j * F + f] = s
            }
        }
        return true
    } ?? false
}

/// FAVOR+ softmax-kernel features φ(x) [n, mf] of x [n, d]:
/// x' = d^−¼·x, U = x'·Ωᵀ, φ = mf^−½·(exp(U − ‖x'‖²/2 − max) + stabiliser), the max
/// taken per row for queries and over the whole tensor for keys (unless keyMaxPerRow).
func favorFeatures(
    _ n: Int, _ d: Int, _ mf: Int, _ omega: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
    _ xs: UnsafeMutablePointer<Float>, _ phi: UnsafeMutablePointer<Float>,
    isQuery: Bool, stabiliser: Float, keyMaxPerRow: Bool
) -> Bool {
    let s4 = 1 / Float(d).squareRoot().squareRoot()
    for i in 0..<(n * d) { xs[i] = x[i] * s4 }
    guard mm(n, mf, d, xs, d, omega, d, phi, mf, bT: true) else { return false }
    var globalMax = -Float.infinity
    if !isQuery && !keyMaxPerRow {
        var vm = Vec(repeating: -.infinity), i = 0
        while i + 16 <= n * mf { let u = vload(phi + i); vm = vm.replacing(with: u, where: u .> vm); i += 16 }
        globalMax = vm.max()
        while i < n * mf { globalMax = max(globalMax, phi[i]); i += 1 }
    }
    let norm = Vec(repeating: 1 / Float(mf).squareRoot()), eps = Vec(repeating: stabiliser)
    for r in 0..<n {
        var h: Float = 0
        for j in 0..<d { h += xs[r * d + j] * xs[r * d + j] }
        h *= 0.5
        let row = phi + r * mf
        var mx = globalMax
        if isQuery || keyMaxPerRow { mx = -Float.infinity; for j in 0..<mf { mx = max(mx, row[j]) } }
        let sub = Vec(repeating: h + mx)
        var j = 0
        while j + 16 <= mf { vstore(norm * (vexp(vload(row + j) - sub) + eps), row + j); j += 16 }
        while j < mf { row[j] = norm[0] * (sexp(row[j] - h - mx) + stabiliser); j += 1 }
    }
    return true
}
