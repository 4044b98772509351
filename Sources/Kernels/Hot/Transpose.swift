import KernelTypes
import CSleef

// 16×16 float block transpose, used by the packing routines.
// dst[c · ldd + r] = src[r · lds + c] for r, c in 0..<16 (0 for rows past a limit).

#if VIDATTN_AVX512
/// One butterfly of the transpose: x and y become the two halves `lo` and `hi` pick.
@inline(__always)
private func butterfly(_ x: inout Vec, _ y: inout Vec, _ lo: __m512i, _ hi: __m512i) {
    let a = x, b = y
    x = _mm512_permutex2var_ps(a, lo, b)
    y = _mm512_permutex2var_ps(a, hi, b)
}

/// The rows r0…r15 transposed in registers (row i, lane c ↔ row c, lane i): four butterfly
/// stages (blocks of 8, 4, 2, 1) of two-source permutes. Spelled out, one local per row: a loop
/// over a row array went through the stack, and its index vectors through a global array.
@inline(__always)
private func transposeInRegisters(
    _ r0: inout Vec, _ r1: inout Vec, _ r2: inout Vec, _ r3: inout Vec,
    _ r4: inout Vec, _ r5: inout Vec, _ r6: inout Vec, _ r7: inout Vec,
    _ r8: inout Vec, _ r9: inout Vec, _ r10: inout Vec, _ r11: inout Vec,
    _ r12: inout Vec, _ r13: inout Vec, _ r14: inout Vec, _ r15: inout Vec
) {
    let lo8 = unsafeBitCast(SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23), to: __m512i.self)
    let hi8 = unsafeBitCast(
        SIMD16<Int32>(8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31), to: __m512i.self)
    let lo4 = unsafeBitCast(SIMD16<Int32>(0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27), to: __m512i.self)
    let hi4 = unsafeBitCast(SIMD16<Int32>(4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31), to: __m512i.self)
    let lo2 = unsafeBitCast(SIMD16<Int32>(0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29), to: __m512i.self)
    let hi2 = unsafeBitCast(SIMD16<Int32>(2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31), to: __m512i.self)
    let lo1 = unsafeBitCast(SIMD16<Int32>(0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30), to: __m512i.self)
    let hi1 = unsafeBitCast(SIMD16<Int32>(1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31), to: __m512i.self)
    butterfly(&r0, &r8, lo8, hi8); butterfly(&r1, &r9, lo8, hi8)
    butterfly(&r2, &r10, lo8, hi8); butterfly(&r3, &r11, lo8, hi8)
    butterfly(&r4, &r12, lo8, hi8); butterfly(&r5, &r13, lo8, hi8)
    butterfly(&r6, &r14, lo8, hi8); butterfly(&r7, &r15, lo8, hi8)
    butterfly(&r0, &r4, lo4, hi4); butterfly(&r1, &r5, lo4, hi4)
    butterfly(&r2, &r6, lo4, hi4); butterfly(&r3, &r7, lo4, hi4)
    butterfly(&r8, &r12, lo4, hi4); butterfly(&r9, &r13, lo4, hi4)
    butterfly(&r10, &r14, lo4, hi4); butterfly(&r11, &r15, lo4, hi4)
    butterfly(&r0, &r2, lo2, hi2); butterfly(&r1, &r3, lo2, hi2)
    butterfly(&r4, &r6, lo2, hi2); butterfly(&r5, &r7, lo2, hi2)
    butterfly(&r8, &r10, lo2, hi2); butterfly(&r9, &r11, lo2, hi2)
    butterfly(&r12, &r14, lo2, hi2); butterfly(&r13, &r15, lo2, hi2)
    butterfly(&r0, &r1, lo1, hi1); butterfly(&r2, &r3, lo1, hi1)
    butterfly(&r4, &r5, lo1, hi1); butterfly(&r6, &r7, lo1, hi1)
    butterfly(&r8, &r9, lo1, hi1); butterfly(&r10, &r11, lo1, hi1)
    butterfly(&r12, &r13, lo1, hi1); butterfly(&r14, &r15, lo1, hi1)
}

/// Sixteen rows of 16 floats `lds` apart, rows from min(n, limit) on read as zeros (not read at
/// all), transposed in registers (result c holds column c). `limit` is a constant at each use, so
/// the compiler folds the rows it zeroes into the shuffles.
@inline(__always)
private func transposedRows(_ src: UnsafePointer<Float>, _ lds: Int, _ n: Int, limit: Int) -> Rows16 {
    var r: Rows16 = (
        0 < n && 0 < limit ? vload(src + 0 * lds) : Vec(),
        1 < n && 1 < limit ? vload(src + 1 * lds) : Vec(),
        2 < n && 2 < limit ? vload(src + 2 * lds) : Vec(),
        3 < n && 3 < limit ? vload(src + 3 * lds) : Vec(),
        4 < n && 4 < limit ? vload(src + 4 * lds) : Vec(),
        5 < n && 5 < limit ? vload(src + 5 * lds) : Vec(),
        6 < n && 6 < limit ? vload(src + 6 * lds) : Vec(),
        7 < n && 7 < limit ? vload(src + 7 * lds) : Vec(),
        8 < n && 8 < limit ? vload(src + 8 * lds) : Vec(),
        9 < n && 9 < limit ? vload(src + 9 * lds) : Vec(),
        10 < n && 10 < limit ? vload(src + 10 * lds) : Vec(),
        11 < n && 11 < limit ? vload(src + 11 * lds) : Vec(),
        12 < n && 12 < limit ? vload(src + 12 * lds) : Vec(),
        13 < n && 13 < limit ? vload(src + 13 * lds) : Vec(),
        14 < n && 14 < limit ? vload(src + 14 * lds) : Vec(),
        15 < n && 15 < limit ? vload(src + 15 * lds) : Vec()
    )
    transposeInRegisters(
        &r.0, &r.1, &r.2, &r.3, &r.4, &r.5, &r.6, &r.7,
        &r.8, &r.9, &r.10, &r.11, &r.12, &r.13, &r.14, &r.15)
    return r
}

/// Sixteen vectors (rows of a 16×16 block).
private typealias Rows16 = (Vec, Vec, Vec, Vec, Vec, Vec, Vec, Vec, Vec, Vec, Vec, Vec, Vec, Vec, Vec, Vec)

/// Stores the sixteen vectors `stride` floats apart, the last one's first `last` lanes only.
@inline(__always)
private func storeRows(_ r: Rows16, _ dst: UnsafeMutablePointer<Float>, _ stride: Int, last: Int) {
    vstore(r.0, dst); vstore(r.1, dst + stride); vstore(r.2, dst + 2 * stride); vstore(r.3, dst + 3 * stride)
    vstore(r.4, dst + 4 * stride); vstore(r.5, dst + 5 * stride); vstore(r.6, dst + 6 * stride)
    vstore(r.7, dst + 7 * stride); vstore(r.8, dst + 8 * stride); vstore(r.9, dst + 9 * stride)
    vstore(r.10, dst + 10 * stride); vstore(r.11, dst + 11 * stride); vstore(r.12, dst + 12 * stride)
    vstore(r.13, dst + 13 * stride); vstore(r.14, dst + 14 * stride)
    if last == 16 { vstore(r.15, dst + 15 * stride) } else { vstorePartial(r.15, dst + 15 * stride, last) }
}

/// Rows from `rows` on are read as zeros (not read at all).
@inline(__always)
func transpose16x16(
    _ src: UnsafePointer<Float>, _ lds: Int, _ dst: UnsafeMutablePointer<Float>, _ ldd: Int, rows n: Int = 16
) {
    storeRows(transposedRows(src, lds, n, limit: 16), dst, ldd, last: 16)
}

/// Sixteen columns of a 12-row panel (attention's K panels, the SGEMM's packed A panels):
/// dst[c · 12 + r] = src[r · lds + c] for c < 16 and r < 12, zeros for the rows from `rows` on
/// (a sequence's or a matrix's last panel). The 16 outputs of 12 floats are contiguous; each
/// is stored as a full vector in increasing order, so the 4 lanes past one are overwritten by
/// the next, and the last is stored partially.
@inline(__always)
func transposeIntoPanel12(_ src: UnsafePointer<Float>, _ lds: Int, rows n: Int, _ dst: UnsafeMutablePointer<Float>) {
    storeRows(transposedRows(src, lds, n, limit: 12), dst, 12, last: 12)
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
