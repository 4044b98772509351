import CKernels

// Element-wise helpers on float vectors for the model code (residual adds, position tables,
// pooling): in one place, vectorised, instead of loops repeated across the model files.

/// dst[i] += src[i] for n floats (dst and src must not overlap unless equal).
public func addInPlace(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ n: Int) {
    var i = 0
    while i + 16 <= n { vstore(vload(dst + i) + vload(src + i), dst + i); i += 16 }
    while i < n { dst[i] += src[i]; i += 1 }
}

/// x[i] /= d for n floats (a true division, as PyTorch's mean does, not a reciprocal product).
public func divideInPlace(_ x: UnsafeMutablePointer<Float>, _ d: Float, _ n: Int) {
    var i = 0
    let v = Vec(repeating: d)
    while i + 16 <= n { vstore(vload(x + i) / v, x + i); i += 16 }
    while i < n { x[i] /= d; i += 1 }
}

/// dst [C] = the mean of `rows` rows of C floats starting at src, rows `stride` floats apart.
public func meanOfRows(
    _ src: UnsafePointer<Float>, rows: Int, stride: Int, channels C: Int,
    into dst: UnsafeMutablePointer<Float>
) {
    dst.update(repeating: 0, count: C)
    if rows == 0 { return }
    for r in 0..<rows { addInPlace(dst, src + r * stride, C) }
    divideInPlace(dst, Float(rows), C)
}

/// dst[i] = table[index[i]] for n entries (every index within the table): AVX-512 gathers
/// where the CPU has them and VIDATTN_MAX_ISA allows, scalar loads otherwise.
public func gatherFloats(
    _ table: UnsafePointer<Float>, _ index: UnsafePointer<Int32>, _ n: Int, into dst: UnsafeMutablePointer<Float>
) {
    vidattn_gather_f32_path(table, index, n, dst, gatherPath)
}

private let gatherPath: Int32 = CPU.info.avx512f != 0 && CPU.info.os_avx512 != 0 && ISALevel.cap >= .avx512 ? 1 : 0
