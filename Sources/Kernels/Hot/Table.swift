import KernelTypes

// This compilation's entry points. The same sources are compiled into `Kernels` (the
// library's baseline instruction set) and into `KernelsAVX512` (x86-64-v4); see
// Dispatch.swift for the choice between them.

#if VIDATTN_AVX512
let compiledISA = "avx512"
#else
let compiledISA = "avx2"
#endif

/// The hot loops of this compilation.
public let compiledKernels = KernelTable(
    isa: compiledISA,
    microKernel: microKernel12x32,
    packBPanel: packBPanel,
    gemmItem: gemmItem,
    epilogueTile: applyEpilogueTile,
    attentionItems: attentionItems,
    attentionItemsBF16: attentionItemsBF16,
    shortAttentionItems: shortAttentionItems,
    softmaxRows: softmaxRows,
    layerNormRows: layerNormRows,
    activation: activationRow,
    erf: erfRow)
