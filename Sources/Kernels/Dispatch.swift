#if canImport(Glibc)
import Glibc
#endif
import Synchronization
@_exported import KernelTypes
import KernelsAVX512

/// Forces the scalar reference implementations of every kernel (for parity
/// checks and bisecting). Set from `VIDATTN_REFERENCE=1` or at run time.
public enum KernelMode {
    private static let reference = Atomic<Bool>(getenvString("VIDATTN_REFERENCE") == "1")
    /// May be changed from any thread, also while kernels run (atomic, relaxed).
    public static var useReference: Bool {
        get { reference.load(ordering: .relaxed) }
        set { reference.store(newValue, ordering: .relaxed) }
    }
}

/// The environment variable `name`, nil when unset.
public func getenvString(_ name: String) -> String? {
    guard let p = getenv(name) else { return nil }
    return String(cString: p)
}

/// The fp32 hot loops this process runs (GEMM micro-kernels and packing, attention
/// tiles, softmax, LayerNorm, activations): the x86-64-v4 compilation (`KernelsAVX512`)
/// when the CPU has AVX-512 F/BW/DQ/VL, the OS saves its registers and
/// `VIDATTN_MAX_ISA` allows it; otherwise the library's baseline compilation (AVX2 + FMA
/// in the portable build). Chosen once per process.
public enum FP32Kernels {
    /// Whether this CPU and OS can run the AVX-512 compilation.
    public static var avx512Usable: Bool {
        let i = CPU.info
        return i.avx512f != 0 && i.avx512bw != 0 && i.avx512dq != 0 && i.avx512vl != 0
    }

    /// The selected table. The AVX-512 module is not touched (not even its globals'
    /// initialisers) unless the CPU can run it.
    public static let selected: KernelTable = {
        if avx512Usable && ISALevel.cap >= .avx512 { return KernelsAVX512.compiledKernels }
        return Kernels.compiledKernels
    }()

    /// "avx2" or "avx512": the instruction set of the selected loops.
    public static var isa: String { selected.isa }

    /// The instruction set the library's baseline (non-dispatched) code was compiled for.
    public static var baselineISA: String { Kernels.compiledKernels.isa }
}

extension FP32Kernels {
    /// Every compilation this CPU can run, baseline first (for parity tests of each path).
    public static var runnable: [KernelTable] {
        avx512Usable ? [Kernels.compiledKernels, KernelsAVX512.compiledKernels] : [Kernels.compiledKernels]
    }
}
