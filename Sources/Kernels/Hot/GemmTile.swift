import CKernels
import KernelTypes

// The per-item work of the packed SGEMM (driver: GEMM.swift): packing, the
// micro-kernel sweep and the fused epilogue.

/// Runs one work item (row block mi × column chunk nc) of a GEMM plan on a worker.
func gemmItem(_ p: GemmPlan, _ item: Int, _ worker: Int) {
    let m = p.m, n = p.n, k = p.k, a = p.a, lda = p.lda, c = p.c, ldc = p.ldc
    let transA = p.transA, alpha = p.alpha, beta = p.beta, epilogue = p.epilogue
    let MC = p.mc, KC = p.kc, nChunks = p.nChunks, kBlocks = p.kBlocks, panels = p.panels
    let directA = p.directA, aScratch = p.aScratch
    var rest = epilogue; rest.bias = nil  // what is left after the kernels add the bias
    let mi = item / nChunks, nc = item % nChunks
    let rowLo = mi * MC, rowHi = min(m, (mi + 1) * MC)
    let jp0 = nc * panels / nChunks, jp1 = (nc + 1) * panels / nChunks
    let ap = aScratch + worker * MC * KC
    var i0 = rowLo
    while i0 < rowHi {
        let mc = min(MC, rowHi - i0)
        let fullRows = directA ? mc / MR * MR : 0  // rows read in place, not packed
        for pb in 0..<kBlocks {
            let p0 = pb * KC, kc = min(KC, k - p0)
            if mc > fullRows {
                packABlock(transA, a, lda, i0 + fullRows, mc - fullRows, p0, kc, ap + fullRows * kc)
                // bf16 on the fp32 kernels: the packed panels rounded while they are in cache
                // (the same bits as rounding A first; zero padding stays zero).
                if p.roundA {
                    let count = (mc - fullRows + MR - 1) / MR * MR * kc
                    vidattn_round_to_bf16_f32(ap + fullRows * kc, ap + fullRows * kc, count)
                }
            }
            let blockBeta: Float = pb == 0 ? beta : 1
            let last = pb == kBlocks - 1
            for jp in jp0..<jp1 {
                let j0 = jp * NR, nr = min(NR, n - j0)
                let bpanel = bPanel(p, p0, kc, jp)
                // The bias is added as the last K block's tile is stored; the rest of the
                // epilogue (activation, multiplier, residual) runs on the tile while it is in L1.
                let bias = last ? epilogue.bias.map { $0 + j0 } : nil
                var r0 = 0
                while r0 < mc {
                    let mr = min(MR, mc - r0)
                    let cp = c + (i0 + r0) * ldc + j0
                    if r0 < fullRows && nr == NR {
                        microKernel12x32RowA(
                            kc, a + (i0 + r0) * lda + p0, lda, bpanel, NR, cp, ldc, alpha, blockBeta, bias)
                    } else if r0 < fullRows {  // ragged N edge: this panel packed on its own
                        packABlock(false, a, lda, i0 + r0, MR, p0, kc, ap + r0 * kc)
                        microKernelPartial(kc, mr, nr, ap + r0 * kc, MR, bpanel, NR, cp, ldc, alpha, blockBeta, bias)
                    } else if mr == MR && nr == NR {
                        microKernel12x32(kc, ap + r0 * kc, MR, bpanel, NR, cp, ldc, alpha, blockBeta, bias)
                    } else {
                        microKernelPartial(kc, mr, nr, ap + r0 * kc, MR, bpanel, NR, cp, ldc, alpha, blockBeta, bias)
                    }
                    if last && !rest.isNone { applyEpilogueTile(rest, cp, ldc, i0 + r0, mr, j0, nr) }
                    r0 += MR
                }
            }
        }
        i0 += mc
    }
}

/// Panel j of K block p0 (length kc) of a packed B.
@inline(__always) func bPanel(_ p: GemmPlan, _ p0: Int, _ kc: Int, _ j: Int) -> UnsafePointer<Float> {
    p.b + p0 * p.nPadded + j * kc * NR
}

@inline(__always)
func packBPanel(
    _ trans: Bool, _ b: UnsafePointer<Float>, _ ldb: Int, _ p0: Int, _ kc: Int,
    _ j0: Int, _ n: Int, _ dst: UnsafeMutablePointer<Float>
) {
    let nr = min(NR, n - j0)
    if !trans {
        for kk in 0..<kc {
            let src = b + (p0 + kk) * ldb + j0, d = dst + kk * NR
            if nr == NR {
                vstore(vload(src), d); vstore(vload(src + 16), d + 16)
            } else {
                for j in 0..<nr { d[j] = src[j] }
                for j in nr..<NR { d[j] = 0 }
            }
        }
    } else {
        // 16×16 block transposes, then the ragged edges one element at a time.
        let src = b + j0 * ldb + p0
        let kFull = kc / 16 * 16, jFull = nr / 16 * 16
        for jb in stride(from: 0, to: jFull, by: 16) {
            for kb in stride(from: 0, to: kFull, by: 16) {
                transpose16x16(src + jb * ldb + kb, ldb, dst + kb * NR + jb, NR)
            }
        }
        for j in 0..<nr {
            let row = src + j * ldb
            let kStart = j < jFull ? kFull : 0
            for kk in kStart..<kc { dst[kk * NR + j] = row[kk] }
        }
        if nr < NR { for kk in 0..<kc { for j in nr..<NR { dst[kk * NR + j] = 0 } } }
    }
}

/// Packs rows i0..<i0+mc, columns p0..<p0+kc of op(A) into 12-row panels
/// (k-major, rows past M zero).
@inline(__always)
func packABlock(
    _ trans: Bool, _ a: UnsafePointer<Float>, _ lda: Int, _ i0: Int, _ mc: Int,
    _ p0: Int, _ kc: Int, _ dst: UnsafeMutablePointer<Float>
) {
    var r0 = 0
    while r0 < mc {
        let mr = min(MR, mc - r0)
        let d = dst + r0 * kc
        if !trans {
            let src = a + (i0 + r0) * lda + p0
            // Sixteen k at a time through an in-register transpose (the layout of attention's
            // key panels), the rest one by one. Measured on Emerald Rapids (vidattn_sgemm,
            // alternating in one process, 2 threads): 1568×1536→384 1.10×, 1569×3072→768 1.06×
            // over element-by-element packing.
            let k16 = kc / 16 * 16
            for kk in stride(from: 0, to: k16, by: 16) { transposeIntoPanel12(src + kk, lda, rows: mr, d + kk * MR) }
            for r in 0..<mr {
                let row = src + r * lda
                for kk in k16..<kc { d[kk * MR + r] = row[kk] }
            }
        } else {
            for kk in 0..<kc {
                let src = a + (p0 + kk) * lda + i0 + r0
                for r in 0..<mr { d[kk * MR + r] = src[r] }
            }
        }
        if mr < MR { for kk in 0..<kc { for r in mr..<MR { d[kk * MR + r] = 0 } } }
        r0 += MR
    }
}

/// Applies the epilogue to rows i..<i+mr, columns j0..<j0+nr of one micro-tile (row r at
/// c + r·ldc), one call per tile with the activation chosen once. In the SGEMM the kernels
/// add the bias as they store (the old per-row epilogue, bias included, had cost 3–19 % of the
/// products; BENCHMARKS.md, session 6), so this runs only for an activation, a multiplier or a
/// residual.
@inline(never)
func applyEpilogueTile(
    _ e: GemmEpilogue, _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ i: Int, _ mr: Int,
    _ j0: Int, _ nr: Int
) {
    switch e.activation {
    case .none: epilogueRows(e, NoActivation.self, c, ldc, i, mr, j0, nr)
    case .gelu: epilogueRows(e, GELU.self, c, ldc, i, mr, j0, nr)
    case .geluTanh: epilogueRows(e, GELUTanh.self, c, ldc, i, mr, j0, nr)
    case .tanh: epilogueRows(e, Tanh.self, c, ldc, i, mr, j0, nr)
    case .relu: epilogueRows(e, ReLU.self, c, ldc, i, mr, j0, nr)
    }
}

/// The epilogue with the activation a type: one loop compiled per activation (with the
/// activation a value the loop was outlined and switched on it per vector). Measured on
/// Sapphire Rapids (`VIDATTN_DEMO_CHAIN`, the bf16 MLP with GELU into strips, alternating with
/// the value version in one process, 27 pairs): 0.95–0.96 of the MLP's time at 1576 and 3137 ×
/// 768 → 3072, 0.89–0.90 at 25088 × 96 → 384, 1 and 2 threads. One loop, with one call of
/// `A.apply`: with a second loop for the activation alone (what the fp32, bf16 and int8 GEMMs
/// ask for after adding the bias themselves), one incremental build left GELU's erf out of line,
/// called per vector from a copy the compiler shared with the tanh GELU's (`…Tm`, function
/// merging): 8.5 % of a TimeSformer-B int8 forward on Emerald Rapids (perf), 2.5 % as one loop;
/// a clean build of the two loops inlined it, and the one loop is as fast (TimeSformer-B fp32
/// 1.94–2.16 s against 2.06–2.20 s, processes alternating; session 13). After changing this,
/// check with `nm` that no `GELUO5apply` symbol is left.
@inline(__always)
func epilogueRows<A: VectorActivation>(
    _ e: GemmEpilogue, _ act: A.Type, _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ i: Int,
    _ mr: Int, _ j0: Int, _ nr: Int
) {
    for r in 0..<mr {
        let row = c + r * ldc
        var j = 0
        while j < nr {
            let w = min(16, nr - j)
            var v = w == 16 ? vload(row + j) : vloadPartial(row + j, w)
            if let bias = e.bias { v += w == 16 ? vload(bias + j0 + j) : vloadPartial(bias + j0 + j, w) }
            v = A.apply(v)
            if let mul = e.multiplier {
                let mp = mul + (i + r) * e.ldMultiplier + j0 + j
                v *= w == 16 ? vload(mp) : vloadPartial(mp, w)
            }
            if let res = e.residual {
                let rp = res + (i + r) * e.ldResidual + j0 + j
                v += w == 16 ? vload(rp) : vloadPartial(rp, w)
            }
            if w == 16 { vstore(v, row + j) } else { vstorePartial(v, row + j, w) }
            j += 16
        }
    }
}
