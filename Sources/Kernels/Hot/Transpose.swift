import KernelTypes
import CSleef

// 16×16 float block transpose, used by the packing routines.
// dst[c · ldd + r] = src[r · lds + c] for r, c in 0..<16 (0 for rows past a limit).

#if VIDATTN_AVX512
/// permutex2var index vectors for the four butterfly stages (block 8, 4, 2, 1):
/// `lo` gathers the first halves of each 2b-group from rows i and i+b, `hi` the second.
private let transposeIndices: [(lo: __m512i, hi: __m512i)] = [8, 4, 2, 1].map { b in
    var lo = SIMD16<Int32>(), hi = SIMD16<Int32>()
    for c in 0..<16 {
        let g = c / (2 * b), w = c % (2 * b)
        lo[c] = Int32(w < b ? g * 2 * b + w : 16 + g * 2 * b + w - b)
        hi[c] = Int32(w < b ? g * 2 * b + b + w : 16 + g * 2 * b + w)
    }
    return (unsafeBitCast(lo, to: __m512i.self), unsafeBitCast(hi, to: __m512i.self))
}

/// Transposes the 16 vectors of `rows` in place (row i, lane c ↔ row c, lane i).
@inline(__always)
private func transposeInRegisters(_ rows: UnsafeMutablePointer<Vec>) {
    var b = 8, stage = 0
    while b >= 1 {
        let (lo, hi) = transposeIndices[stage]
        for g in stride(from: 0, to: 16, by: 2 * b) {
            for i in g..<(g + b) {
                let x = rows[i], y = rows[i + b]
                rows[i] = _mm512_permutex2var_ps(x, lo, y)
                rows[i + b] = _mm512_permutex2var_ps(x, hi, y)
            }
        }
        b /= 2; stage += 1
    }
}

/// Rows from `rows` on are read as zeros (not read at all).
@inline(__always)
func transpose16x16(
    _ src: UnsafePointer<Float>, _ lds: Int, _ dst: UnsafeMutablePointer<Float>, _ ldd: Int, rows n: Int = 16
) {
    withUnsafeTemporaryAllocation(of: Vec.self, capacity: 16) { rows in
        for r in 0..<16 { rows[r] = r < n ? vload(src + r * lds) : Vec() }
        transposeInRegisters(rows.baseAddress!)
        for r in 0..<16 { vstore(rows[r], dst + r * ldd) }
    }
}

/// Sixteen columns of a 12-row panel (attention's K panels, the SGEMM's packed A panels):
/// dst[c · 12 + r] = src[r · lds + c] for c < 16 and r < 12, zeros for the rows from `rows` on
/// (a sequence's or a matrix's last panel). The 16 outputs of 12 floats are contiguous; each
/// is stored as a full vector in increasing order, so the 4 lanes past one are overwritten by
/// the next, and the last is stored partially.
@inline(__always)
func transposeIntoPanel12(_ src: UnsafePointer<Float>, _ lds: Int, rows: Int, _ dst: UnsafeMutablePointer<Float>) {
    withUnsafeTemporaryAllocation(of: Vec.self, capacity: 16) { r in
        for i in 0..<16 { r[i] = i < rows ? vload(src + i * lds) : Vec() }
        transposeInRegisters(r.baseAddress!)
        for c in 0..<15 { vstore(r[c], dst + c * 12) }
        vstorePartial(r[15], dst + 15 * 12, 12)
    }
}
#else
@inline(__always)
func transposeIntoPanel12(_ src: UnsafePointer<Float>, _ lds: Int, rows: Int, _ dst: UnsafeMutablePointer<Float>) {
    for c in 0..<16 { for r in 0..<12 { dst[c * 12 + r] = r < rows ? src[r * lds + c] : 0 } }
}

@inline(__always)
func transpose16x16(
    _ src: UnsafePointer<Float>, _ lds: Int, _ dst: UnsafeMutablePointer<Float>, _ ldd: Int, rows n: Int = 16
) {
    for r in 0..<16 { for c in 0..<16 { dst[c * ldd + r] = r < n ? src[r * lds + c] : 0 } }
}
#endif
