import CKernels
import Synchronization

// The blocked loop shared by the bf16 and int8 GEMMs (BF16GEMM.swift, Int8GEMM.swift).
//
// A is converted once, in parallel, into 32-row strips (bf16 or int8, the layout of the 32×32
// block kernels). The work items are pairs (chunk of B panels, group of strips): for each
// strip of its group an item walks K in chunks and, per chunk, every panel of its chunk.
// Sizes come from the cache sizes at run time:
// - a K chunk of one A strip (32 rows × kc) fits L1, so it is read from L1 by every panel;
// - a chunk of B panels (all of K) fits half of L2, so it streams from L2, not L3.
// Measured on Sapphire Rapids (one core, 1568×768→2304 bf16 on AMX, the same block kernel,
// best of 10): this order 1,050–1,100 GFLOP/s against 550–600 for the row-block order it
// replaced (A streaming from L2 past a B panel that no longer fit in L1). The partial sums
// of the blocks a strip × panel chunk owns stay in place across K chunks (in C for full
// fp32 blocks, else in a per-worker slot), so `finish` sees each strip × chunk once, complete.

/// How the bf16 and int8 GEMMs cut their work.
public struct ReducedBlocking {
    let strips: Int, panels: Int, kp: Int
    /// K elements per chunk (a multiple of 64, at most kp).
    let kc: Int
    /// Panel chunks, and the most panels one holds.
    let chunks: Int, chunkPanels: Int
    /// Strip groups.
    let groups: Int
    /// Workers of the blocked loop (at most the items) and of the packing (at most the strips).
    let workers: Int, packWorkers: Int
    var items: Int { chunks * groups }

    init(m: Int, panels: Int, kp: Int, elemBytes: Int, threads: Int) {
        let caches = CPU.caches
        let l1 = caches.l1d > 0 ? caches.l1d : 32 << 10
        let l2 = caches.l2 > 0 ? caches.l2 : 1 << 20
        self.panels = panels; self.kp = kp
        strips = (m + 31) / 32
        kc = max(64, min(kp, (ReducedBlocking.kcOverride ?? l1 / (32 * elemBytes)) / 64 * 64))
        let maxPanels = max(1, (l2 / 2) / (32 * kp * elemBytes))
        chunks = (panels + maxPanels - 1) / maxPanels
        chunkPanels = (panels + chunks - 1) / chunks
        // Enough items for the dynamic hand-out to even out a slow core (4 per worker), but
        // up to 16 strips per group so a B chunk is fetched into L2 for many strips.
        let want = threads > 1 ? 4 * threads : 1
        let perGroup = max(1, min(16, strips * chunks / want))
        groups = (strips + perGroup - 1) / perGroup
        workers = max(1, min(threads, chunks * groups))
        packWorkers = max(1, min(threads, strips))
    }

    /// `VIDATTN_REDUCED_KC`: the K chunk in elements, for experiments (vidattn-demo sets it
    /// between calls to alternate chunk sizes in one process).
    nonisolated(unsafe) public static var kcOverride: Int? = getenvString("VIDATTN_REDUCED_KC").flatMap { Int($0) }
        .flatMap { $0 > 0 ? $0 : nil }

    /// fp32 outputs of at least this many bytes that are not added to leave the AMX bf16 GEMM
    /// through the worker's slot with streaming stores (`vidattn_store_blocks_nt`): no read for
    /// ownership of C's lines, no eviction of A and B. Default: four times this core's L2 (8 MiB
    /// on Sapphire Rapids); `VIDATTN_STREAMING_STORES=0` turns it off. Measured there
    /// (BENCHMARKS.md, session 9; `VIDATTN_DEMO_STREAM`): 3–6 points more of the tile peak per
    /// GEMM at 2 threads on outputs of 14.5–29 MB (1–2 at 4.8 MB, below the default), 0.94–0.96
    /// of the time of a TimeSformer-B bf16 forward, ViViT-B unchanged. The int8 GEMM does not
    /// use them: the same change there measured 1.03–1.05 of the time of TimeSformer-B and
    /// swin3d_t int8 forwards. Settable between calls.
    nonisolated(unsafe) public static var streamingStoresMinBytes: Int = {
        if getenvString("VIDATTN_STREAMING_STORES") == "0" { return .max }
        let l2 = CPU.caches.l2 > 0 ? CPU.caches.l2 : 1 << 20
        return 4 * l2
    }()

    /// bf16 GEMM calls that wrote C with streaming stores so far (for the tests).
    public static var streamedCalls: Int { streamed.load(ordering: .relaxed) }
    static let streamed = Atomic<Int>(0)

    /// Whether an AMX GEMM writes its fp32 output C [m, n] (row stride ldc) through the slots and
    /// streaming stores: not added to, rows 64-byte aligned, at least `streamingStoresMinBytes`
    /// (counted in `streamedCalls` when so).
    static func streams(amx: Bool, accumulate: Bool, c: UnsafeMutablePointer<Float>?, ldc: Int, m: Int, n: Int) -> Bool
    {
        guard amx, !accumulate, let c, Int(bitPattern: c) % 64 == 0, ldc % 16 == 0,
            4 * m * n >= streamingStoresMinBytes
        else { return false }
        streamed.add(1, ordering: .relaxed)
        return true
    }

    func panelRange(_ chunk: Int) -> Range<Int> { chunk * panels / chunks..<(chunk + 1) * panels / chunks }
    func stripRange(_ group: Int) -> Range<Int> { group * strips / groups..<(group + 1) * strips / groups }
}

/// Rows 0..<mr of the fp32 blocks of panels `pr` (block j at slot + (j − pr.lowerBound)·1024) to C
/// at row i0, column 32·pr.lowerBound: the full panels with streaming stores, a partial last one
/// (N not a multiple of 32) with plain ones.
func streamSlotBlocks(
    _ slot: UnsafePointer<Float>, panels pr: Range<Int>, n: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
    i0: Int, mr: Int
) {
    let full = pr.upperBound * 32 <= n ? pr.count : pr.count - 1
    vidattn_store_blocks_nt(slot, Int32(full), c + i0 * ldc + pr.lowerBound * 32, ldc, Int32(mr))
    if full < pr.count {
        let j = pr.upperBound - 1, tile = slot + full * 1024
        for r in 0..<mr { (c + (i0 + r) * ldc + j * 32).update(from: tile + r * 32, count: n - j * 32) }
    }
}

/// Runs `pack(strip, worker)` for every strip (all of A), then the blocked loop: for each
/// item's strips, K chunks and panels, `block(strip, panel, k0, kLen, first, slot, worker)`
/// (first: the strip's first K chunk; slot: the panel's index within its chunk), and after a
/// strip's last K chunk `finish(strip, panels, worker)` once for the chunk's panels (slot of
/// panel j: j − panels.lowerBound), so row-wise work sees the chunk's columns in one piece.
/// With `amx`, each worker's tiles are configured for its items and released after.
func runReducedGemm(
    _ b: ReducedBlocking, amx: Bool,
    pack: (_ strip: Int, _ worker: Int) -> Void,
    block: (_ strip: Int, _ panel: Int, _ k0: Int, _ kLen: Int, _ first: Bool, _ slot: Int, _ worker: Int) -> Void,
    finish: (_ strip: Int, _ panels: Range<Int>, _ worker: Int) -> Void
) {
    parallelFor(b.strips, threads: b.packWorkers) { s, w in pack(s, w) }
    parallelDynamic(b.items, threads: b.workers) { item, worker in
        let pr = b.panelRange(item % b.chunks), sr = b.stripRange(item / b.chunks)
        if amx { vidattn_amx_begin() }
        for s in sr {
            for k0 in stride(from: 0, to: b.kp, by: b.kc) {
                let kLen = min(b.kc, b.kp - k0)
                for j in pr { block(s, j, k0, kLen, k0 == 0, j - pr.lowerBound, worker) }
            }
            finish(s, pr, worker)
        }
        if amx { vidattn_amx_end() }
    }
}
