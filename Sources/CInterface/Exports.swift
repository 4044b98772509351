// The C ABI of libvidattn.so (include/vidattn.h). Only argument conversion and
// error reporting live here; the work is done by VidAttn.
#if canImport(Glibc)
import Glibc
#endif
import VidAttn

// MARK: - Memory

/// C `vidattn_release_cached_memory` (include/vidattn.h): Returns the scratch buffers the library keeps between calls (at most 6 buffers, 512 MiB) to the system.
@_cdecl("vidattn_release_cached_memory")
public func vidattn_release_cached_memory() { ScratchPool.shared.trim() }

/// C `vidattn_debug_fail_allocation` (include/vidattn.h): testing aid, makes the n-th counted allocation from now fail (0 turns it off).
@_cdecl("vidattn_debug_fail_allocation")
public func vidattn_debug_fail_allocation(_ n: Int64) { AllocationFaults.failAfter(Int(n)) }

/// C `vidattn_debug_allocation_count` (include/vidattn.h): counted allocations so far (testing aid for the allocation-failure sweeps).
@_cdecl("vidattn_debug_allocation_count")
public func vidattn_debug_allocation_count() -> Int64 { Int64(AllocationFaults.count) }

/// C `vidattn_debug_live_allocations` (include/vidattn.h): buffers allocated and not yet freed (testing aid for leak checks).
@_cdecl("vidattn_debug_live_allocations")
public func vidattn_debug_live_allocations() -> Int64 { Int64(AllocationFaults.live) }

// MARK: - Errors

private let errorKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key) { free($0) }
    return key
}()

private func setLastError(_ message: String) {
    let old = pthread_getspecific(errorKey)
    pthread_setspecific(errorKey, strdup(message))
    free(old)
}

/// Runs `body`, turning a thrown error into its status and thread-local message.
@inline(__always)
func guarded(_ body: () throws -> Void) -> Int32 {
    do {
        // Library work runs with FTZ/DAZ; the caller's MXCSR is restored on return.
        try FloatMode.withFlushToZero(body)
        return Status.ok.rawValue
    } catch let e as VidAttnError {
        setLastError(e.message)
        return e.status.rawValue
    } catch {
        setLastError("\(error)")
        return Status.internal.rawValue
    }
}

private let statusStrings: [Int32: UnsafeMutablePointer<CChar>] = {
    var d: [Int32: UnsafeMutablePointer<CChar>] = [:]
    for s in [
        Status.ok, .invalidArgument, .nullPointer, .outOfMemory, .shapeMismatch, .io, .badFormat,
        .unsupported, .internal, .aborted
    ] { d[s.rawValue] = strdup(s.description) }
    return d
}()
private let unknownStatus: UnsafeMutablePointer<CChar> = strdup("unknown status")
private let versionString: UnsafeMutablePointer<CChar> = strdup(Version.string)
private let emptyString: UnsafeMutablePointer<CChar> = strdup("")

/// C `vidattn_version` (include/vidattn.h): Library version, "MAJOR.MINOR.PATCH".
@_cdecl("vidattn_version")
public func vidattn_version() -> UnsafePointer<CChar> { UnsafePointer(versionString) }

/// C `vidattn_status_string` (include/vidattn.h): Short English name of a status.
@_cdecl("vidattn_status_string")
public func vidattn_status_string(_ s: Int32) -> UnsafePointer<CChar> {
    UnsafePointer(statusStrings[s] ?? unknownStatus)
}

/// C `vidattn_last_error` (include/vidattn.h): Message describing the last error on the calling thread ("" if none).
@_cdecl("vidattn_last_error")
public func vidattn_last_error() -> UnsafePointer<CChar> {
    if let p = pthread_getspecific(errorKey) { return UnsafePointer(p.assumingMemoryBound(to: CChar.self)) }
    return UnsafePointer(emptyString)
}

// MARK: - Threads

/// C `vidattn_get_num_threads` (include/vidattn.h): Worker threads used by each compute call.
@_cdecl("vidattn_get_num_threads")
public func vidattn_get_num_threads() -> Int32 { Int32(Threads.count) }

/// C `vidattn_set_num_threads` (include/vidattn.h): sets the worker threads of each compute call (n >= 1, else VIDATTN_ERR_INVALID_ARGUMENT).
@_cdecl("vidattn_set_num_threads")
public func vidattn_set_num_threads(_ n: Int32) -> Int32 {
    guarded {
        guard n >= 1 else { throw VidAttnError(.invalidArgument, "thread count must be at least 1 (got \(n))") }
        Threads.count = Int(n)
    }
}

/// C `vidattn_set_reference_kernels` (include/vidattn.h): Nonzero forces the scalar reference implementation of every kernel (slow; for parity checks).
@_cdecl("vidattn_set_reference_kernels")
public func vidattn_set_reference_kernels(_ enable: Int32) { KernelMode.useReference = enable != 0 }

// MARK: - CPU

private let cpuFeaturesString: UnsafeMutablePointer<CChar> = {
    let c = CPU.caches
    return strdup(
        "cpu=\(CPU.brand); flags=\(CPU.flags.joined(separator: " ")); l1d=\(c.l1d); l2=\(c.l2); l3=\(c.l3); "
            + "amx_permitted=\(CPU.info.amx_permitted); fp32=\(FP32Kernels.isa); baseline=\(FP32Kernels.baselineISA); "
            + "bf16=\(BF16Unit.detected.rawValue); int8=\(Int8Unit.detected.rawValue); max_isa=\(ISALevel.cap.name)")
}()

/// C `vidattn_cpu_features` (include/vidattn.h): What the library detected on this machine, one line of "key=value" pairs separated by "; ".
@_cdecl("vidattn_cpu_features")
public func vidattn_cpu_features() -> UnsafePointer<CChar> { UnsafePointer(cpuFeaturesString) }

/// C `vidattn_fma_peak_gflops` (include/vidattn.h): Measures this machine's fp32 FMA peak in GFLOP/s on `threads` threads (chains of independent FMAs in registers, AVX-512 where present, else AVX2; best of 5 runs of ~50 ms).
@_cdecl("vidattn_fma_peak_gflops")
public func vidattn_fma_peak_gflops(_ threads: Int32) -> Double { CPU.measureFMAPeak(threads: max(1, Int(threads))) }

/// C `vidattn_tile_peak_gflops` (include/vidattn.h): Measures the AMX bf16 tile-product throughput in GFLOP/s on `threads` of the library's worker threads at once (the sum over them; best of 3 runs of ~10-30 ms); 0 where bf16 does not run on AMX.
@_cdecl("vidattn_tile_peak_gflops")
public func vidattn_tile_peak_gflops(_ threads: Int32) -> Double {
    CPU.measureTilePeak(threads: max(1, Int(threads))).total
}

// MARK: - Kernels

/// C `vidattn_sgemm` (include/vidattn.h): C = alpha * op(A) * op(B) + beta * C, row-major with leading dimensions (row strides) lda, ldb, ldc.
@_cdecl("vidattn_sgemm")
public func vidattn_sgemm(
    _ transA: Int32, _ transB: Int32, _ m: Int64, _ n: Int64, _ k: Int64,
    _ alpha: Float, _ a: UnsafePointer<Float>?, _ lda: Int64,
    _ b: UnsafePointer<Float>?, _ ldb: Int64,
    _ beta: Float, _ c: UnsafeMutablePointer<Float>?, _ ldc: Int64
) -> Int32 {
    vidattn_sgemm_fused(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, nil, 0, nil, 0)
}

/// C `vidattn_sgemm_fused` (include/vidattn.h): As vidattn_sgemm, with a fused epilogue.
@_cdecl("vidattn_sgemm_fused")
public func vidattn_sgemm_fused(
    _ transA: Int32, _ transB: Int32, _ m: Int64, _ n: Int64, _ k: Int64,
    _ alpha: Float, _ a: UnsafePointer<Float>?, _ lda: Int64,
    _ b: UnsafePointer<Float>?, _ ldb: Int64,
    _ beta: Float, _ c: UnsafeMutablePointer<Float>?, _ ldc: Int64,
    _ bias: UnsafePointer<Float>?, _ act: Int32,
    _ residual: UnsafePointer<Float>?, _ ldr: Int64
) -> Int32 {
    guarded {
        guard let activation = Activation(rawValue: act) else {
            throw VidAttnError(.invalidArgument, "unknown activation \(act)")
        }
        try Ops.sgemm(
            transA: transA != 0, transB: transB != 0, m: Int(m), n: Int(n), k: Int(k), alpha: alpha,
            a: a, lda: Int(lda), b: b, ldb: Int(ldb), beta: beta, c: c, ldc: Int(ldc),
            bias: bias, activation: activation, residual: residual, ldResidual: Int(ldr))
    }
}

/// C `vidattn_attention` (include/vidattn.h): Fused exact attention, out = softmax(scale * q k^T + bias) v, computed flash-style (online softmax over key blocks; no nq x nk buffer).
@_cdecl("vidattn_attention")
public func vidattn_attention(
    _ batch: Int64, _ heads: Int64, _ nq: Int64, _ nk: Int64, _ d: Int64,
    _ q: UnsafePointer<Float>?, _ k: UnsafePointer<Float>?, _ v: UnsafePointer<Float>?,
    _ out: UnsafeMutablePointer<Float>?, _ scale: Float,
    _ bias: UnsafePointer<Float>?, _ biasStrides: UnsafePointer<Int64>?,
    _ keyMask: UnsafePointer<UInt8>?, _ probs: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        let strides = biasStrides.map { (Int($0[0]), Int($0[1]), Int($0[2])) }
        try Ops.attention(
            batch: Int(batch), heads: Int(heads), nq: Int(nq), nk: Int(nk), d: Int(d),
            q: q, k: k, v: v, out: out, scale: scale, bias: bias, biasStrides: strides,
            keyMask: keyMask, probs: probs)
    }
}

/// C `vidattn_softmax` (include/vidattn.h): Row softmax of a rows x cols matrix (row stride ld), in place.
@_cdecl("vidattn_softmax")
public func vidattn_softmax(
    _ rows: Int64, _ cols: Int64, _ x: UnsafeMutablePointer<Float>?, _ ld: Int64,
    _ scale: Float, _ bias: UnsafePointer<Float>?, _ ldBias: Int64
) -> Int32 {
    guarded {
        try Ops.softmax(
            rows: Int(rows), cols: Int(cols), x: x, ld: Int(ld), scale: scale, bias: bias, ldBias: Int(ldBias))
    }
}

/// C `vidattn_layer_norm` (include/vidattn.h): LayerNorm over rows of cols floats.
@_cdecl("vidattn_layer_norm")
public func vidattn_layer_norm(
    _ rows: Int64, _ cols: Int64, _ x: UnsafePointer<Float>?,
    _ y: UnsafeMutablePointer<Float>?, _ gamma: UnsafePointer<Float>?,
    _ beta: UnsafePointer<Float>?, _ eps: Float
) -> Int32 {
    guarded { try Ops.layerNorm(rows: Int(rows), cols: Int(cols), x: x, y: y, gamma: gamma, beta: beta, eps: eps) }
}

/// C `vidattn_activation_apply` (include/vidattn.h): y[i] = act(x[i]) for n floats; x and y may be the same.
@_cdecl("vidattn_activation_apply")
public func vidattn_activation_apply(
    _ act: Int32, _ x: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>?,
    _ n: Int64
) -> Int32 {
    guarded { try Ops.activation(act, x: x, y: y, n: Int(n)) }
}
