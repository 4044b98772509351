// Plain data shared by the kernel compilations: the arguments of the hot loops and
// the table of entry points each compilation exports. No SIMD code lives here, so
// the types are the same whichever instruction set a kernel module was built for.

// MARK: - Arguments

/// A [B, H, N, d] tensor view: element (b, h, n, i) at
/// `base + b·batchStride + h·headStride + n·rowStride + i`.
public struct HeadView<P> {
    /// Element (0, 0, 0, 0).
    public var base: P
    /// Elements between consecutive batches, heads and rows (0 broadcasts).
    public var batchStride: Int, headStride: Int, rowStride: Int
    /// A view of `base` with the given strides (in elements).
    public init(_ base: P, batchStride: Int, headStride: Int, rowStride: Int) {
        self.base = base; self.batchStride = batchStride
        self.headStride = headStride; self.rowStride = rowStride
    }
}

/// An attention bias over tokens a = t·plane + p (t < frames, p < plane) that depends only on
/// (tᵢ − tⱼ, pᵢ, pⱼ) for query i and key j: Video Swin's relative position bias, whose table row
/// is a sum of the two tokens' frame, row and column offsets. Stored per head and key position
/// pⱼ as a strip of (2·frames − 1)·plane floats over (tᵢ − tⱼ + frames − 1, pᵢ), in which key
/// j's bias over all queries is one contiguous slice: element (h, i, j) at base + h·headStride +
/// pⱼ·(2·frames − 1)·plane + (frames − 1 − tⱼ)·plane + i. 144 KB per head for an 8×7×7 window
/// where the [N, N] bias takes 614 KB, so that it can stay in L2 across windows.
public struct StripBias {
    /// Head 0's first strip.
    public var base: UnsafePointer<Float>
    /// Floats between heads; tokens per frame; frames per window.
    public var headStride: Int, plane: Int, frames: Int
    /// A strip bias over the given layout.
    public init(base: UnsafePointer<Float>, headStride: Int, plane: Int, frames: Int) {
        self.base = base; self.headStride = headStride; self.plane = plane; self.frames = frames
    }
    /// Floats past a row's last query that readers may load (whole 32-query panels of a row;
    /// only the valid queries' sums are used): the storage extends this far past the last head.
    public static let readPastRow = 32
    /// Offset from base of key j's bias row in head h (query i at row + i).
    @inlinable @inline(__always)
    public func row(head h: Int, key j: Int) -> Int {
        let tj = j / plane
        return row(head: h, frame: tj, position: j - tj * plane)
    }
    /// The same for a key given as its frame tⱼ and position pⱼ in the frame (the one formula).
    @inlinable @inline(__always)
    func row(head h: Int, frame tj: Int, position pj: Int) -> Int {
        h * headStride + pj * (2 * frames - 1) * plane + (frames - 1 - tj) * plane
    }
    /// `row(head: h, key: j)` for the keys j = first, first + 1, …, first + count − 1, passed to
    /// `body(i, row)` for the i-th: one integer division for all of them (the frame and position
    /// of the next key by a step), where `row` divides per key.
    @inlinable @inline(__always)
    public func forEachRow(head h: Int, first: Int, count: Int, _ body: (Int, Int) -> Void) {
        var tj = first / plane, pj = first - tj * plane
        for i in 0..<count {
            body(i, row(head: h, frame: tj, position: pj))
            pj += 1
            if pj == plane { pj = 0; tj += 1 }
        }
    }
}

/// Fused attention O = softmax(scale · Q·Kᵀ + bias) · V over [B, H, N, d] views.
public struct AttentionArgs {
    /// Batch size, heads, query rows, key rows, head width.
    public var batch: Int, heads: Int, nq: Int, nk: Int, d: Int
    /// Queries [B, H, nq, d].
    public var q: HeadView<UnsafePointer<Float>>
    /// Keys [B, H, nk, d].
    public var k: HeadView<UnsafePointer<Float>>
    /// Values [B, H, nk, d].
    public var v: HeadView<UnsafePointer<Float>>
    /// Output [B, H, nq, d].
    public var o: HeadView<UnsafeMutablePointer<Float>>
    /// Factor on Q·Kᵀ before the softmax (usually 1/√d).
    public var scale: Float
    /// Additive bias, element (b, h, i, j) at base + b·batchStride + h·headStride
    /// + i·rowStride + j. Zero strides broadcast.
    public var bias: HeadView<UnsafePointer<Float>>? = nil
    /// The bias is stored key-major: element (b, h, i, j) at base + b·batchStride +
    /// h·headStride + j·rowStride + i. Lets the tiled kernel add it with vector loads.
    public var biasKeyMajor: Bool = false
    /// A bias given by strips instead (Video Swin's relative position bias; see `StripBias`),
    /// shared by the batch; read only when `bias` is nil.
    public var stripBias: StripBias? = nil
    /// Key mask, nonzero = attend: element (b, j) at keyMask + b·keyMaskStride + j.
    public var keyMask: UnsafePointer<UInt8>? = nil
    /// Elements between the key masks of consecutive batches (0 broadcasts).
    public var keyMaskStride: Int = 0
    /// Optional probabilities out, contiguous [B, H, nq, nk].
    public var probs: UnsafeMutablePointer<Float>? = nil
    /// Region labels for self-attention (nq == nk), element (b, i) at
    /// regionLabels + b·regionStride + i: scores between tokens of different
    /// labels get `regionPenalty` added (Swin's shifted-window mask, −100).
    public var regionLabels: UnsafePointer<UInt8>? = nil
    /// Elements between the region labels of consecutive batches.
    public var regionStride: Int = 0
    /// Added to scores between tokens of different regions.
    public var regionPenalty: Float = -100

    /// Attention without bias, masks or probabilities (set those fields afterwards).
    public init(
        batch: Int, heads: Int, nq: Int, nk: Int, d: Int,
        q: HeadView<UnsafePointer<Float>>, k: HeadView<UnsafePointer<Float>>,
        v: HeadView<UnsafePointer<Float>>, o: HeadView<UnsafeMutablePointer<Float>>,
        scale: Float
    ) {
        self.batch = batch; self.heads = heads; self.nq = nq; self.nk = nk; self.d = d
        self.q = q; self.k = k; self.v = v; self.o = o; self.scale = scale
    }
}

/// Row softmax: y = softmax(scale · x + bias) along each row of `cols` floats.
///
/// `bias` (optional) has its own row stride (0 broadcasts one row to all);
/// `mask` (optional, nonzero = keep) likewise. Masked entries get probability
/// 0; a row with every entry masked becomes all zeros. fp32 accumulation,
/// max-subtracted. `x` and `y` may alias.
public struct SoftmaxArgs {
    /// Rows, and floats per row.
    public var rows: Int, cols: Int
    /// Input and its row stride.
    public var x: UnsafePointer<Float>, ldx: Int
    /// Output and its row stride.
    public var y: UnsafeMutablePointer<Float>, ldy: Int
    /// Factor on x before the bias.
    public var scale: Float = 1
    /// Optional additive bias and its row stride (0 broadcasts one row).
    public var bias: UnsafePointer<Float>? = nil, ldBias: Int = 0
    /// Optional keep-mask (nonzero = keep) and its row stride.
    public var mask: UnsafePointer<UInt8>? = nil, ldMask: Int = 0

    /// A plain row softmax (scale 1, no bias, no mask).
    public init(
        rows: Int, cols: Int, x: UnsafePointer<Float>, ldx: Int,
        y: UnsafeMutablePointer<Float>, ldy: Int
    ) {
        self.rows = rows; self.cols = cols; self.x = x; self.ldx = ldx; self.y = y; self.ldy = ldy
    }
}

/// LayerNorm rows: y = (x − mean) / √(var + eps) · gamma + beta (biased variance).
public struct LayerNormArgs {
    /// Floats per row.
    public var cols: Int
    /// Input and its row stride.
    public var x: UnsafePointer<Float>, ldx: Int
    /// Output and its row stride (may alias x).
    public var y: UnsafeMutablePointer<Float>, ldy: Int
    /// Optional per-column scale and shift (nil: 1 and 0).
    public var gamma: UnsafePointer<Float>?, beta: UnsafePointer<Float>?
    /// Added to the variance.
    public var eps: Float
    /// LayerNorm arguments (rows are passed to the row functions).
    public init(
        cols: Int, x: UnsafePointer<Float>, ldx: Int, y: UnsafeMutablePointer<Float>, ldy: Int,
        gamma: UnsafePointer<Float>?, beta: UnsafePointer<Float>?, eps: Float
    ) {
        self.cols = cols; self.x = x; self.ldx = ldx; self.y = y; self.ldy = ldy
        self.gamma = gamma; self.beta = beta; self.eps = eps
    }
}

/// Activation applied in GEMM epilogues and as standalone kernels.
public enum Activation: Int32, Sendable {
    /// Identity.
    case none = 0
    /// Exact GELU, 0.5·x·(1 + erf(x/√2)) (PyTorch `gelu`, `approximate='none'`).
    case gelu = 1
    /// Tanh GELU, 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) (`approximate='tanh'`).
    case geluTanh = 2
    /// tanh(x).
    case tanh = 3
    /// max(x, 0).
    case relu = 4
}

/// Extra work fused into the GEMM after the last K block of each tile.
public struct GemmEpilogue {
    /// Optional per-column bias (N floats), added first.
    public var bias: UnsafePointer<Float>?
    /// Applied after the bias.
    public var activation: Activation
    /// Optional [M, N] term added last, row stride ldResidual.
    public var residual: UnsafePointer<Float>?
    /// Row stride of `residual`.
    public var ldResidual: Int
    /// Element-wise factor [M, N] (row stride ldMultiplier), applied after the activation:
    /// a gated unit (GEGLU's x · gelu(gate)) as one GEMM for x with the gate as multiplier.
    public var multiplier: UnsafePointer<Float>?
    /// Row stride of `multiplier`.
    public var ldMultiplier: Int

    /// An epilogue from its parts (all optional).
    public init(
        bias: UnsafePointer<Float>? = nil, activation: Activation = .none,
        residual: UnsafePointer<Float>? = nil, ldResidual: Int = 0,
        multiplier: UnsafePointer<Float>? = nil, ldMultiplier: Int = 0
    ) {
        self.bias = bias; self.activation = activation
        self.residual = residual; self.ldResidual = ldResidual
        self.multiplier = multiplier; self.ldMultiplier = ldMultiplier
    }
    /// Nothing fused.
    public static var none: GemmEpilogue { GemmEpilogue() }
    /// Nothing to apply.
    public var isNone: Bool { bias == nil && activation == .none && residual == nil && multiplier == nil }
}

// MARK: - Work plans (made by the drivers in Kernels, run by the hot loops)

/// One packed SGEMM call, split into items of (row block, column chunk).
public struct GemmPlan {
    /// op(A) = Aᵀ (A stored K×M).
    public var transA: Bool
    /// C is m×n; the product runs over k.
    public var m: Int, n: Int, k: Int
    /// C = alpha·op(A)·B + beta·C.
    public var alpha: Float, beta: Float
    /// A and its row stride.
    public var a: UnsafePointer<Float>, lda: Int
    /// C and its row stride.
    public var c: UnsafeMutablePointer<Float>, ldc: Int
    /// Fused after the last K block of each tile.
    public var epilogue: GemmEpilogue
    /// Packed B: K blocks of `kc` rows; panel (p0, j) at b + p0 · nPadded + j · kc · 32.
    public var b: UnsafePointer<Float>, nPadded: Int, kc: Int
    /// Rows per row block, column chunks per row block, K blocks, B panels.
    public var mc: Int, nChunks: Int, kBlocks: Int, panels: Int
    /// A is read in place (full 12-row panels) instead of packed.
    public var directA: Bool
    /// mc · kc floats per worker for packed A.
    public var aScratch: UnsafeMutablePointer<Float>
    /// A's values are rounded to bf16 as they are packed (bf16 on the fp32 kernels).
    public var roundA: Bool
    /// A plan from its parts (made by `sgemm`).
    public init(
        transA: Bool, m: Int, n: Int, k: Int, alpha: Float, beta: Float,
        a: UnsafePointer<Float>, lda: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
        epilogue: GemmEpilogue, b: UnsafePointer<Float>, nPadded: Int, kc: Int,
        mc: Int, nChunks: Int, kBlocks: Int, panels: Int, directA: Bool,
        aScratch: UnsafeMutablePointer<Float>, roundA: Bool = false
    ) {
        self.transA = transA; self.m = m; self.n = n; self.k = k; self.alpha = alpha; self.beta = beta
        self.a = a; self.lda = lda; self.c = c; self.ldc = ldc; self.epilogue = epilogue
        self.b = b; self.nPadded = nPadded; self.kc = kc
        self.mc = mc; self.nChunks = nChunks; self.kBlocks = kBlocks; self.panels = panels
        self.directA = directA; self.aScratch = aScratch; self.roundA = roundA
    }
}

// MARK: - Entry points

/// Which 32×32 bf16 block kernel runs (Sources/CKernels/bf16.c): AMX tiles, AVX512-BF16, or
/// the scalar emulation of the same contract (any CPU).
public enum BF16Kernel: Sendable {
    case amx, avx512bf16, reference
}

/// The hot loops of one compilation of the kernel sources. `Kernels` holds the one built
/// for the library's baseline (x86-64-v3 by default) and `KernelsAVX512` the one built for
/// x86-64-v4; `Kernels` picks one per process from the CPU (docs/precision.md, "dispatch").
/// Threading, blocking and scratch memory stay with the callers.
public struct KernelTable: @unchecked Sendable {
    /// The instruction set the loops were compiled for: "avx2" or "avx512".
    public var isa: String
    /// C[12×32] = alpha · A·B + beta · C (+ a bias row of 32 when non-nil; see MicroKernel.swift
    /// for the operand layout).
    public var microKernel:
        (
            Int, UnsafePointer<Float>, Int, UnsafePointer<Float>, Int,
            UnsafeMutablePointer<Float>, Int, Float, Float, UnsafePointer<Float>?
        ) -> Void
    /// Packs a K×32 panel of op(B) (transposed, b, ldb, p0, kc, j0, n, dst).
    public var packBPanel: (Bool, UnsafePointer<Float>, Int, Int, Int, Int, Int, UnsafeMutablePointer<Float>) -> Void
    /// Runs work item `item` of a GEMM plan on worker `worker`.
    public var gemmItem: (GemmPlan, Int, Int) -> Void
    /// Bias, activation, multiplier and residual on rows i..<i+mr, columns j0..<j0+nr of C,
    /// `(epilogue, c, ldc, i, mr, j0, nr)` with row r at c + r·ldc: one call per block.
    public var epilogueTile: (GemmEpilogue, UnsafeMutablePointer<Float>, Int, Int, Int, Int, Int) -> Void
    /// Tiled attention for items lo..<hi (batch · heads · query tiles) with one worker's scratch.
    public var attentionItems: (AttentionArgs, Int, Int, UnsafeMutablePointer<Float>) -> Void
    /// bf16 attention (Q·Kᵀ and P·V on a bf16 unit) for items lo..<hi (batch · heads · 32-query
    /// tiles) with K and V of the (batch, head) pairs from `firstPair` on already packed, one
    /// worker's scratch, on the given block kernel.
    public var attentionItemsBF16:
        (
            AttentionArgs, Int, Int, Int, UnsafePointer<UInt16>, UnsafeMutablePointer<Float>,
            BF16Kernel
        ) -> Void
    /// Short-sequence attention for (batch, head) items lo..<hi with one worker's scratch.
    public var shortAttentionItems: (AttentionArgs, Int, Int, UnsafeMutablePointer<Float>) -> Void
    /// Softmax of rows lo..<hi.
    public var softmaxRows: (SoftmaxArgs, Int, Int) -> Void
    /// LayerNorm of rows lo..<hi.
    public var layerNormRows: (LayerNormArgs, Int, Int) -> Void
    /// y = act(x) over n floats.
    public var activation: (Activation, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void
    /// y = erf(x) over n floats with this compilation's vector erf (behind GELU).
    public var erf: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void

    /// A table from one compilation's functions.
    public init(
        isa: String,
        microKernel:
            @escaping (
                Int, UnsafePointer<Float>, Int, UnsafePointer<Float>, Int,
                UnsafeMutablePointer<Float>, Int, Float, Float, UnsafePointer<Float>?
            ) -> Void,
        packBPanel:
            @escaping (Bool, UnsafePointer<Float>, Int, Int, Int, Int, Int, UnsafeMutablePointer<Float>) -> Void,
        gemmItem: @escaping (GemmPlan, Int, Int) -> Void,
        epilogueTile: @escaping (GemmEpilogue, UnsafeMutablePointer<Float>, Int, Int, Int, Int, Int) -> Void,
        attentionItems: @escaping (AttentionArgs, Int, Int, UnsafeMutablePointer<Float>) -> Void,
        attentionItemsBF16:
            @escaping (
                AttentionArgs, Int, Int, Int, UnsafePointer<UInt16>,
                UnsafeMutablePointer<Float>, BF16Kernel
            ) -> Void,
        shortAttentionItems: @escaping (AttentionArgs, Int, Int, UnsafeMutablePointer<Float>) -> Void,
        softmaxRows: @escaping (SoftmaxArgs, Int, Int) -> Void,
        layerNormRows: @escaping (LayerNormArgs, Int, Int) -> Void,
        activation: @escaping (Activation, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void,
        erf: @escaping (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void
    ) {
        self.isa = isa; self.microKernel = microKernel; self.packBPanel = packBPanel; self.gemmItem = gemmItem
        self.epilogueTile = epilogueTile; self.attentionItems = attentionItems
        self.attentionItemsBF16 = attentionItemsBF16
        self.shortAttentionItems = shortAttentionItems; self.softmaxRows = softmaxRows
        self.layerNormRows = layerNormRows; self.activation = activation
        self.erf = erf
    }
}
