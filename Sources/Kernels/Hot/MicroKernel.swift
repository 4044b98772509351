import KernelTypes
import CSleef
import CKernels

// The 12×32 register-blocked micro-kernel shared by SGEMM and fused attention.
//
// C[12×32] = alpha · Σ_k A(r, k) · B(k, 0..<32) + beta · C (+ bias[0..<32] on every row)
// A is read as a[k * aStep + r] (a packed 12-row panel when aStep == 12, or any
// k-major buffer with a wider row), B as 32 contiguous floats at b + k * ldb.
// AVX-512: 24 zmm accumulators, two B loads and twelve broadcasts per k.
// AVX2 (16 ymm registers): the same tile as four 6×16 sub-tiles, each with twelve
// ymm accumulators, two B loads and six broadcasts per k, so the packed layouts are
// the same for both instruction sets.

/// Rows of the micro-kernel's C tile (rows of a packed A panel).
public let MR = 12
/// Columns of the micro-kernel's C tile (columns of a packed B panel).
public let NR = 32

@inline(__always)
func storeRow(
    _ p: UnsafeMutablePointer<Float>, _ x: Vec, _ y: Vec, _ alpha: Float, _ beta: Float,
    _ bias: UnsafePointer<Float>?
) {
    let va = Vec(repeating: alpha)
    var u: Vec, w: Vec
    if beta == 0 {
        u = x * va; w = y * va
    } else if beta == 1 {
        u = vload(p).addingProduct(x, va); w = vload(p + 16).addingProduct(y, va)
    } else {
        let vb = Vec(repeating: beta)
        u = (vload(p) * vb).addingProduct(x, va); w = (vload(p + 16) * vb).addingProduct(y, va)
    }
    if let bias { u += vload(bias); w += vload(bias + 16) }
    vstore(u, p); vstore(w, p + 16)
}

#if VIDATTN_AVX512
/// C[12×32] = alpha · A·B + beta · C (+ bias on every row), A k-major with row step aStep, B rows ldb apart.
@inline(never)
public func microKernel12x32(
    _ kc: Int,
    _ a: UnsafePointer<Float>, _ aStep: Int,
    _ b: UnsafePointer<Float>, _ ldb: Int,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int,
    _ alpha: Float, _ beta: Float, _ bias: UnsafePointer<Float>? = nil
) {
    // The C tile's 24 lines are asked for (for writing) before the products, so that their
    // trip from L3 or memory (for ownership also when beta is 0) overlaps the K loop instead of
    // stalling the stores. Measured on Emerald Rapids (`bench/ab.py --gemm`, 2 threads, 15
    // rounds): 6272×192→768 0.931, 25088×96→288 0.953, 25088×96→384 0.972, 1568×384→1536 0.983,
    // 6272×192→576 1.038 of the time (the small-K shapes, where a tile's loop is short).
    for r in 0..<MR { vidattn_prefetch_l1w(c + r * ldc); vidattn_prefetch_l1w(c + r * ldc + NR - 1) }
    microKernel12x32Body(kc, a, aStep, b, ldb, c, ldc, alpha, beta, bias, rowBeta: nil)
}

/// C[12×32] = A·B: attention's scores and its first key block's P·V. With α and β as the
/// variables of `microKernel12x32`, each of the twelve rows compared β with 0 and 1 and
/// multiplied by α as it was stored. Measured on Emerald Rapids (scores only, 2 threads,
/// alternating in one process): [192, 392, 32] 0.987 and [12, 3137, 64] 0.990 of the time,
/// swin3d_t int8 forwards 0.986.
@inline(never)
func microKernel12x32Overwrite(
    _ kc: Int,
    _ a: UnsafePointer<Float>, _ aStep: Int,
    _ b: UnsafePointer<Float>, _ ldb: Int,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int
) {
    microKernel12x32Body(kc, a, aStep, b, ldb, c, ldc, 1, 0, nil, rowBeta: nil)
}

/// C[12×32] = A·B + diag(rowBeta)·C: attention's P·V step, whose rows of O are rescaled by
/// the online softmax's α as they are loaded (a pass of its own over O before).
@inline(never)
func microKernel12x32RowBeta(
    _ kc: Int,
    _ a: UnsafePointer<Float>, _ aStep: Int,
    _ b: UnsafePointer<Float>, _ ldb: Int,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int, rowBeta: UnsafePointer<Float>
) {
    microKernel12x32Body(kc, a, aStep, b, ldb, c, ldc, 1, 1, nil, rowBeta: rowBeta)
}

/// C[12×32] = A·B + D, row r of D at rows[r] + col: attention's scores with Video Swin's bias
/// strips added as the tile is stored (the same bits as storing A·B and adding D after, a pass
/// of its own over the score block before). D's rows come from L2: they are prefetched first,
/// to arrive while the products run. Measured on Emerald Rapids (swin3d_t, 2 threads, forwards
/// alternating in one process): int8 0.977 and fp32 0.989 of the time; perf put the scores'
/// share (kernel and bias pass) at 20.1 % of the int8 forward before and 18.8 % after.
@inline(never)
func microKernel12x32AddRows(
    _ kc: Int,
    _ a: UnsafePointer<Float>, _ aStep: Int,
    _ b: UnsafePointer<Float>, _ ldb: Int,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int,
    rows: UnsafePointer<UnsafePointer<Float>>, col: Int
) {
    for r in 0..<MR { vidattn_prefetch_l1(rows[r] + col); vidattn_prefetch_l1(rows[r] + col + 31) }
    microKernel12x32Body(kc, a, aStep, b, ldb, c, ldc, 1, 0, nil, rowBeta: nil, rowAdd: rows, rowAddCol: col)
}

/// The tile loop of the entries above: C = alpha · A·B + β_r · C (+ bias, or row r of D at
/// rowAdd[r] + rowAddCol when given), β_r = rowBeta[r] when given, else beta. Each entry inlines
/// it with its own constants.
@inline(__always)
func microKernel12x32Body(
    _ kc: Int,
    _ a: UnsafePointer<Float>, _ aStep: Int,
    _ b: UnsafePointer<Float>, _ ldb: Int,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int,
    _ alpha: Float, _ beta: Float, _ bias: UnsafePointer<Float>?, rowBeta: UnsafePointer<Float>?,
    rowAdd: UnsafePointer<UnsafePointer<Float>>? = nil, rowAddCol: Int = 0
) {
    var c0a = Vec(), c0b = Vec()
    var c1a = Vec(), c1b = Vec()
    var c2a = Vec(), c2b = Vec()
    var c3a = Vec(), c3b = Vec()
    var c4a = Vec(), c4b = Vec()
    var c5a = Vec(), c5b = Vec()
    var c6a = Vec(), c6b = Vec()
    var c7a = Vec(), c7b = Vec()
    var c8a = Vec(), c8b = Vec()
    var c9a = Vec(), c9b = Vec()
    var c10a = Vec(), c10b = Vec()
    var c11a = Vec(), c11b = Vec()
    var ap = a, bp = b
    var k = 0
    // Prefetch A 16 and B 8 k-steps ahead: in the SGEMM both panels come from L2 (K blocks of
    // up to 1024). Measured on Emerald Rapids (vidattn_sgemm, 1 and 2 threads, alternating in
    // one process): 1.00–1.12× at the Linear shapes, 4/8/16/32 steps ahead all alike.
    let pfa = 16 * aStep, pfb = 8 * ldb
    while k < kc {
        let b0 = vload(bp), b1 = vload(bp + 16)
        vidattn_prefetch_l1(bp + pfb); vidattn_prefetch_l1(bp + pfb + 16); vidattn_prefetch_l1(ap + pfa)
        var a: Vec
        a = Vec(repeating: ap[0]); c0a.addProduct(a, b0); c0b.addProduct(a, b1)
        a = Vec(repeating: ap[1]); c1a.addProduct(a, b0); c1b.addProduct(a, b1)
        a = Vec(repeating: ap[2]); c2a.addProduct(a, b0); c2b.addProduct(a, b1)
        a = Vec(repeating: ap[3]); c3a.addProduct(a, b0); c3b.addProduct(a, b1)
        a = Vec(repeating: ap[4]); c4a.addProduct(a, b0); c4b.addProduct(a, b1)
        a = Vec(repeating: ap[5]); c5a.addProduct(a, b0); c5b.addProduct(a, b1)
        a = Vec(repeating: ap[6]); c6a.addProduct(a, b0); c6b.addProduct(a, b1)
        a = Vec(repeating: ap[7]); c7a.addProduct(a, b0); c7b.addProduct(a, b1)
        a = Vec(repeating: ap[8]); c8a.addProduct(a, b0); c8b.addProduct(a, b1)
        a = Vec(repeating: ap[9]); c9a.addProduct(a, b0); c9b.addProduct(a, b1)
        a = Vec(repeating: ap[10]); c10a.addProduct(a, b0); c10b.addProduct(a, b1)
        a = Vec(repeating: ap[11]); c11a.addProduct(a, b0); c11b.addProduct(a, b1)
        ap += aStep; bp += ldb; k += 1
    }
    storeRow(c, c0a, c0b, alpha, rowBeta.map { $0[0] } ?? beta, rowAdd.map { $0[0] + rowAddCol } ?? bias)
    storeRow(c + ldc, c1a, c1b, alpha, rowBeta.map { $0[1] } ?? beta, rowAdd.map { $0[1] + rowAddCol } ?? bias)
    storeRow(c + 2 * ldc, c2a, c2b, alpha, rowBeta.map { $0[2] } ?? beta, rowAdd.map { $0[2] + rowAddCol } ?? bias)
    storeRow(c + 3 * ldc, c3a, c3b, alpha, rowBeta.map { $0[3] } ?? beta, rowAdd.map { $0[3] + rowAddCol } ?? bias)
    storeRow(c + 4 * ldc, c4a, c4b, alpha, rowBeta.map { $0[4] } ?? beta, rowAdd.map { $0[4] + rowAddCol } ?? bias)
    storeRow(c + 5 * ldc, c5a, c5b, alpha, rowBeta.map { $0[5] } ?? beta, rowAdd.map { $0[5] + rowAddCol } ?? bias)
    storeRow(c + 6 * ldc, c6a, c6b, alpha, rowBeta.map { $0[6] } ?? beta, rowAdd.map { $0[6] + rowAddCol } ?? bias)
    storeRow(c + 7 * ldc, c7a, c7b, alpha, rowBeta.map { $0[7] } ?? beta, rowAdd.map { $0[7] + rowAddCol } ?? bias)
    storeRow(c + 8 * ldc, c8a, c8b, alpha, rowBeta.map { $0[8] } ?? beta, rowAdd.map { $0[8] + rowAddCol } ?? bias)
    storeRow(c + 9 * ldc, c9a, c9b, alpha, rowBeta.map { $0[9] } ?? beta, rowAdd.map { $0[9] + rowAddCol } ?? bias)
    storeRow(c + 10 * ldc, c10a, c10b, alpha, rowBeta.map { $0[10] } ?? beta, rowAdd.map { $0[10] + rowAddCol } ?? bias)
    storeRow(c + 11 * ldc, c11a, c11b, alpha, rowBeta.map { $0[11] } ?? beta, rowAdd.map { $0[11] + rowAddCol } ?? bias)
}

/// The same tile with A read in place, row-major (A(r, k) = a[r · lda + k]): for GEMMs
/// with few B panels, where packing A would cost about as much as using it.
/// Written out like microKernel12x32 on purpose: sharing the body through an inlined
/// accumulator struct and an addressing closure made the compiler spill 38 zmm
/// registers inside this loop (objdump), where this form keeps all 24 accumulators.
@inline(never)
public func microKernel12x32RowA(
    _ kc: Int,
    _ a: UnsafePointer<Float>, _ lda: Int,
    _ b: UnsafePointer<Float>, _ ldb: Int,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int,
    _ alpha: Float, _ beta: Float, _ bias: UnsafePointer<Float>? = nil
) {
    var c0a = Vec(), c0b = Vec()
    var c1a = Vec(), c1b = Vec()
    var c2a = Vec(), c2b = Vec()
    var c3a = Vec(), c3b = Vec()
    var c4a = Vec(), c4b = Vec()
    var c5a = Vec(), c5b = Vec()
    var c6a = Vec(), c6b = Vec()
    var c7a = Vec(), c7b = Vec()
    var c8a = Vec(), c8b = Vec()
    var c9a = Vec(), c9b = Vec()
    var c10a = Vec(), c10b = Vec()
    var c11a = Vec(), c11b = Vec()
    // Two bases four rows apart keep every row within base + {0,1,2,4}·lda addressing.
    let a0 = a, a4 = a + 4 * lda, a8 = a + 8 * lda, l2 = 2 * lda, l3 = 3 * lda
    var bp = b
    var k = 0
    // Every 16 k (one cache line of each A row), prefetch the line two ahead in all twelve rows.
    // Measured on Emerald Rapids (vidattn_sgemm, alternating in one process): 25088×384→96
    // 1.16–1.25×, 6272×768→96 1.05–1.08×, 25088×96→96 1.00–1.07× at 1 and 2 threads; one or two
    // lines ahead alike, four less; swin3d_t fp32 forwards 0.985 of the time.
    while k < kc {
        let b0 = vload(bp), b1 = vload(bp + 16)
        if k & 15 == 0 {
            let o = k + 32
            vidattn_prefetch_l1(a0 + o); vidattn_prefetch_l1(a0 + lda + o); vidattn_prefetch_l1(a0 + l2 + o)
            vidattn_prefetch_l1(a0 + l3 + o); vidattn_prefetch_l1(a4 + o); vidattn_prefetch_l1(a4 + lda + o)
            vidattn_prefetch_l1(a4 + l2 + o); vidattn_prefetch_l1(a4 + l3 + o); vidattn_prefetch_l1(a8 + o)
            vidattn_prefetch_l1(a8 + lda + o); vidattn_prefetch_l1(a8 + l2 + o); vidattn_prefetch_l1(a8 + l3 + o)
        }
        var v: Vec
        v = Vec(repeating: a0[k]); c0a.addProduct(v, b0); c0b.addProduct(v, b1)
        v = Vec(repeating: a0[lda + k]); c1a.addProduct(v, b0); c1b.addProduct(v, b1)
        v = Vec(repeating: a0[l2 + k]); c2a.addProduct(v, b0); c2b.addProduct(v, b1)
        v = Vec(repeating: a0[l3 + k]); c3a.addProduct(v, b0); c3b.addProduct(v, b1)
        v = Vec(repeating: a4[k]); c4a.addProduct(v, b0); c4b.addProduct(v, b1)
        v = Vec(repeating: a4[lda + k]); c5a.addProduct(v, b0); c5b.addProduct(v, b1)
        v = Vec(repeating: a4[l2 + k]); c6a.addProduct(v, b0); c6b.addProduct(v, b1)
        v = Vec(repeating: a4[l3 + k]); c7a.addProduct(v, b0); c7b.addProduct(v, b1)
        v = Vec(repeating: a8[k]); c8a.addProduct(v, b0); c8b.addProduct(v, b1)
        v = Vec(repeating: a8[lda + k]); c9a.addProduct(v, b0); c9b.addProduct(v, b1)
        v = Vec(repeating: a8[l2 + k]); c10a.addProduct(v, b0); c10b.addProduct(v, b1)
        v = Vec(repeating: a8[l3 + k]); c11a.addProduct(v, b0); c11b.addProduct(v, b1)
        bp += ldb; k += 1
    }
    storeRow(c, c0a, c0b, alpha, beta, bias)
    storeRow(c + ldc, c1a, c1b, alpha, beta, bias)
    storeRow(c + 2 * ldc, c2a, c2b, alpha, beta, bias)
    storeRow(c + 3 * ldc, c3a, c3b, alpha, beta, bias)
    storeRow(c + 4 * ldc, c4a, c4b, alpha, beta, bias)
    storeRow(c + 5 * ldc, c5a, c5b, alpha, beta, bias)
    storeRow(c + 6 * ldc, c6a, c6b, alpha, beta, bias)
    storeRow(c + 7 * ldc, c7a, c7b, alpha, beta, bias)
    storeRow(c + 8 * ldc, c8a, c8b, alpha, beta, bias)
    storeRow(c + 9 * ldc, c9a, c9b, alpha, beta, bias)
    storeRow(c + 10 * ldc, c10a, c10b, alpha, beta, bias)
    storeRow(c + 11 * ldc, c11a, c11b, alpha, beta, bias)
}
#else
/// C[12×32] = alpha · A·B + beta · C (+ bias on every row), as four 6×16 ymm sub-tiles.
public func microKernel12x32(
    _ kc: Int,
    _ a: UnsafePointer<Float>, _ aStep: Int,
    _ b: UnsafePointer<Float>, _ ldb: Int,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int,
    _ alpha: Float, _ beta: Float, _ bias: UnsafePointer<Float>? = nil
) {
    for rh in 0..<2 {
        for ch in 0..<2 {
            subTile6x16(
                kc, a + 6 * rh, 1, aStep, b + 16 * ch, ldb, c + 6 * rh * ldc + 16 * ch, ldc, alpha, beta,
                bias.map { $0 + 16 * ch })
        }
    }
}

/// C[12×32] = A·B.
@inline(__always)
func microKernel12x32Overwrite(
    _ kc: Int,
    _ a: UnsafePointer<Float>, _ aStep: Int,
    _ b: UnsafePointer<Float>, _ ldb: Int,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int
) {
    microKernel12x32(kc, a, aStep, b, ldb, c, ldc, 1, 0)
}

/// C[12×32] = A·B + diag(rowBeta)·C (rows rescaled first, then accumulated).
func microKernel12x32RowBeta(
    _ kc: Int,
    _ a: UnsafePointer<Float>, _ aStep: Int,
    _ b: UnsafePointer<Float>, _ ldb: Int,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int, rowBeta: UnsafePointer<Float>
) {
    for r in 0..<MR where rowBeta[r] != 1 {
        let row = c + r * ldc, s = Vec(repeating: rowBeta[r])
        if rowBeta[r] == 0 {
            vstore(Vec(), row); vstore(Vec(), row + 16)
        } else {
            vstore(vload(row) * s, row); vstore(vload(row + 16) * s, row + 16)
        }
    }
    microKernel12x32(kc, a, aStep, b, ldb, c, ldc, 1, 1)
}

/// C[12×32] = A·B + D, row r of D at rows[r] + col.
func microKernel12x32AddRows(
    _ kc: Int,
    _ a: UnsafePointer<Float>, _ aStep: Int,
    _ b: UnsafePointer<Float>, _ ldb: Int,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int,
    rows: UnsafePointer<UnsafePointer<Float>>, col: Int
) {
    microKernel12x32(kc, a, aStep, b, ldb, c, ldc, 1, 0)
    for r in 0..<MR {
        let row = c + r * ldc, d = rows[r] + col
        vstore(vload(row) + vload(d), row); vstore(vload(row + 16) + vload(d + 16), row + 16)
    }
}

/// The same tile with A read in place, row-major (A(r, k) = a[r · lda + k]).
public func microKernel12x32RowA(
    _ kc: Int,
    _ a: UnsafePointer<Float>, _ lda: Int,
    _ b: UnsafePointer<Float>, _ ldb: Int,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int,
    _ alpha: Float, _ beta: Float, _ bias: UnsafePointer<Float>? = nil
) {
    for rh in 0..<2 {
        for ch in 0..<2 {
            subTile6x16(
                kc, a + 6 * rh * lda, lda, 1, b + 16 * ch, ldb, c + 6 * rh * ldc + 16 * ch, ldc, alpha, beta,
                bias.map { $0 + 16 * ch })
        }
    }
}

typealias Half = SIMD8<Float>

@inline(__always)
func storeHalfRow(
    _ p: UnsafeMutablePointer<Float>, _ x: Half, _ y: Half, _ alpha: Float, _ beta: Float,
    _ bias: UnsafePointer<Float>?
) {
    let raw = UnsafeMutableRawPointer(p), va = Half(repeating: alpha)
    var x = x * va, y = y * va
    if beta != 0 {
        let vb = Half(repeating: beta)
        x.addProduct(vb, raw.loadUnaligned(as: Half.self))
        y.addProduct(vb, raw.loadUnaligned(fromByteOffset: 32, as: Half.self))
    }
    if let bias {
        let braw = UnsafeRawPointer(bias)
        x += braw.loadUnaligned(as: Half.self); y += braw.loadUnaligned(fromByteOffset: 32, as: Half.self)
    }
    raw.storeBytes(of: x, as: Half.self)
    raw.storeBytes(of: y, toByteOffset: 32, as: Half.self)
}

/// C[6×16] = alpha · Σ_k A(r, k) · B(k, 0..<16) + beta · C with A(r, k) = a[r · rs + k · ks]:
/// twelve ymm accumulators, two B loads and six broadcasts per k.
@inline(never)
func subTile6x16(
    _ kc: Int, _ a: UnsafePointer<Float>, _ rs: Int, _ ks: Int,
    _ b: UnsafePointer<Float>, _ ldb: Int,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ beta: Float,
    _ bias: UnsafePointer<Float>?
) {
    var c0a = Half(), c0b = Half(), c1a = Half(), c1b = Half(), c2a = Half(), c2b = Half()
    var c3a = Half(), c3b = Half(), c4a = Half(), c4b = Half(), c5a = Half(), c5b = Half()
    // One pointer per row: the loop indexes them with ko, no per-row arithmetic.
    let p0 = a, p1 = a + rs, p2 = a + 2 * rs, p3 = a + 3 * rs, p4 = a + 4 * rs, p5 = a + 5 * rs
    var bp = UnsafeRawPointer(b), ko = 0
    let bStep = 4 * ldb
    for _ in 0..<kc {
        let b0 = bp.loadUnaligned(as: Half.self), b1 = bp.loadUnaligned(fromByteOffset: 32, as: Half.self)
        var v: Half
        v = Half(repeating: p0[ko]); c0a.addProduct(v, b0); c0b.addProduct(v, b1)
        v = Half(repeating: p1[ko]); c1a.addProduct(v, b0); c1b.addProduct(v, b1)
        v = Half(repeating: p2[ko]); c2a.addProduct(v, b0); c2b.addProduct(v, b1)
        v = Half(repeating: p3[ko]); c3a.addProduct(v, b0); c3b.addProduct(v, b1)
        v = Half(repeating: p4[ko]); c4a.addProduct(v, b0); c4b.addProduct(v, b1)
        v = Half(repeating: p5[ko]); c5a.addProduct(v, b0); c5b.addProduct(v, b1)
        bp += bStep; ko &+= ks
    }
    storeHalfRow(c, c0a, c0b, alpha, beta, bias)
    storeHalfRow(c + ldc, c1a, c1b, alpha, beta, bias)
    storeHalfRow(c + 2 * ldc, c2a, c2b, alpha, beta, bias)
    storeHalfRow(c + 3 * ldc, c3a, c3b, alpha, beta, bias)
    storeHalfRow(c + 4 * ldc, c4a, c4b, alpha, beta, bias)
    storeHalfRow(c + 5 * ldc, c5a, c5b, alpha, beta, bias)
}
#endif

/// The same product for a partial tile (mr ≤ 12 rows, nr ≤ 32 columns of C):
/// the full tile is computed into scratch (A and B must be readable for the
/// full 12×32, e.g. zero-padded panels) and only the valid part is merged.
@inline(never)
public func microKernelPartial(
    _ kc: Int, _ mr: Int, _ nr: Int,
    _ a: UnsafePointer<Float>, _ aStep: Int,
    _ b: UnsafePointer<Float>, _ ldb: Int,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int,
    _ alpha: Float, _ beta: Float, _ bias: UnsafePointer<Float>? = nil
) {
    withUnsafeTemporaryAllocation(of: Float.self, capacity: MR * NR) { tile in
        let t = tile.baseAddress!
        microKernel12x32(kc, a, aStep, b, ldb, t, NR, 1, 0)
        for r in 0..<mr {
            let crow = c + r * ldc, trow = t + r * NR
            if beta == 0 {
                for j in 0..<nr { crow[j] = alpha * trow[j] }
            } else {
                for j in 0..<nr { crow[j] = alpha * trow[j] + beta * crow[j] }
            }
            if let bias { for j in 0..<nr { crow[j] += bias[j] } }
        }
    }
}
