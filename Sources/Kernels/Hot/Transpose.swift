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

/// Rows from `rows` on are read as zeros (not read at all).
@inline(__always)
func transpose16x16(
    _ src: UnsafePointer<Float>, _ lds: Int, _ dst: UnsafeMutablePointer<Float>, _ ldd: Int, rows n: Int = 16
) {
    var r0 = n > 0 ? vload(src) : Vec()
    var r1 = 1 < n ? vload(src + 1 * lds) : Vec()
    var r2 = 2 < n ? vload(src + 2 * lds) : Vec()
    var r3 = 3 < n ? vload(src + 3 * lds) : Vec()
    var r4 = 4 < n ? vload(src + 4 * lds) : Vec()
    var r5 = 5 < n ? vload(src + 5 * lds) : Vec()
    var r6 = 6 < n ? vload(src + 6 * lds) : Vec()
    var r7 = 7 < n ? vload(src + 7 * lds) : Vec()
    var r8 = 8 < n ? vload(src + 8 * lds) : Vec()
    var r9 = 9 < n ? vload(src + 9 * lds) : Vec()
    var r10 = 10 < n ? vload(src + 10 * lds) : Vec()
    var r11 = 11 < n ? vload(src + 11 * lds) : Vec()
    var r12 = 12 < n ? vload(src + 12 * lds) : Vec()
    var r13 = 13 < n ? vload(src + 13 * lds) : Vec()
    var r14 = 14 < n ? vload(src + 14 * lds) : Vec()
    var r15 = 15 < n ? vload(src + 15 * lds) : Vec()
    transposeInRegisters(
        &r0, &r1, &r2, &r3, &r4, &r5, &r6, &r7,
        &r8, &r9, &r10, &r11, &r12, &r13, &r14, &r15)
    vstore(r0, dst)
    vstore(r1, dst + 1 * ldd)
    vstore(r2, dst + 2 * ldd)
    vstore(r3, dst + 3 * ldd)
    vstore(r4, dst + 4 * ldd)
    vstore(r5, dst + 5 * ldd)
    vstore(r6, dst + 6 * ldd)
    vstore(r7, dst + 7 * ldd)
    vstore(r8, dst + 8 * ldd)
    vstore(r9, dst + 9 * ldd)
    vstore(r10, dst + 10 * ldd)
    vstore(r11, dst + 11 * ldd)
    vstore(r12, dst + 12 * ldd)
    vstore(r13, dst + 13 * ldd)
    vstore(r14, dst + 14 * ldd)
    vstore(r15, dst + 15 * ldd)
}

/// Sixteen columns of a 12-row panel (attention's K panels, the SGEMM's packed A panels):
/// dst[c · 12 + r] = src[r · lds + c] for c < 16 and r < 12, zeros for the rows from `rows` on
/// (a sequence's or a matrix's last panel). The 16 outputs of 12 floats are contiguous; each
/// is stored as a full vector in increasing order, so the 4 lanes past one are overwritten by
/// the next, and the last is stored partially.
@inline(__always)
func transposeIntoPanel12(_ src: UnsafePointer<Float>, _ lds: Int, rows n: Int, _ dst: UnsafeMutablePointer<Float>) {
    var r0 = n > 0 ? vload(src) : Vec()
    var r1 = 1 < n ? vload(src + 1 * lds) : Vec()
    var r2 = 2 < n ? vload(src + 2 * lds) : Vec()
    var r3 = 3 < n ? vload(src + 3 * lds) : Vec()
    var r4 = 4 < n ? vload(src + 4 * lds) : Vec()
    var r5 = 5 < n ? vload(src + 5 * lds) : Vec()
    var r6 = 6 < n ? vload(src + 6 * lds) : Vec()
    var r7 = 7 < n ? vload(src + 7 * lds) : Vec()
    var r8 = 8 < n ? vload(src + 8 * lds) : Vec()
    var r9 = 9 < n ? vload(src + 9 * lds) : Vec()
    var r10 = 10 < n ? vload(src + 10 * lds) : Vec()
    var r11 = 11 < n ? vload(src + 11 * lds) : Vec()
    var r12 = Vec()
    var r13 = Vec()
    var r14 = Vec()
    var r15 = Vec()
    transposeInRegisters(
        &r0, &r1, &r2, &r3, &r4, &r5, &r6, &r7,
        &r8, &r9, &r10, &r11, &r12, &r13, &r14, &r15)
    vstore(r0, dst)
    vstore(r1, dst + 12)
    vstore(r2, dst + 24)
    vstore(r3, dst + 36)
    vstore(r4, dst + 48)
    vstore(r5, dst + 60)
    vstore(r6, dst + 72)
    vstore(r7, dst + 84)
    vstore(r8, dst + 96)
    vstore(r9, dst + 108)
    vstore(r10, dst + 120)
    vstore(r11, dst + 132)
    vstore(r12, dst + 144)
    vstore(r13, dst + 156)
    vstore(r14, dst + 168)
    vstorePartial(r15, dst + 180, 12)
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
