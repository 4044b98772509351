// The C ABI of libvidattn.so (include/vidattn.h). Only argument conversion and
// error reporting live here; the work is done by VidAttn.
#if canImport(Glibc)
import Glibc
#endif
import VidAttn

// MARK: - Memory

@_cdecl("vidattn_release_cached_memory")
public func vidattn_release_cached_memory() { ScratchPool.shared.trim() }

@_cdecl("vidattn_debug_fail_allocation")
public func vidattn_debug_fail_allocation(_ n: Int64) { AllocationFaults.failAfter(Int(n)) }

@_cdecl("vidattn_debug_allocation_count")
public func vidattn_debug_allocation_count() -> Int64 { Int64(AllocationFaults.count) }

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
    for s in [Status.ok, .invalidArgument, .nullPointer, .outOfMemory, .shapeMismatch, .io, .badFormat,
              .unsupported, .internal, .aborted] { d[s.rawValue] = strdup(s.description) }
    return d
}()
private let unknownStatus: UnsafeMutablePointer<CChar> = strdup("unknown status")
private let versionString: UnsafeMutablePointer<CChar> = strdup(Version.string)
private let emptyString: UnsafeMutablePointer<CChar> = strdup("")

@_cdecl("vidattn_version")
public func vidattn_version() -> UnsafePointer<CChar> { UnsafePointer(versionString) }

@_cdecl("vidattn_status_string")
public func vidattn_status_string(_ s: Int32) -> UnsafePointer<CChar> {
    UnsafePointer(statusStrings[s] ?? unknownStatus)
}

@_cdecl("vidattn_last_error")
public func vidattn_last_error() -> UnsafePointer<CChar> {
    if let p = pthread_getspecific(errorKey) { return UnsafePointer(p.assumingMemoryBound(to: CChar.self)) }
    return UnsafePointer(emptyString)
}

// MARK: - Threads

@_cdecl("vidattn_get_num_threads")
public func vidattn_get_num_threads() -> Int32 { Int32(Threads.count) }

@_cdecl("vidattn_set_num_threads")
public func vidattn_set_num_threads(_ n: Int32) -> Int32 {
    guarded {
        guard n >= 1 else { throw VidAttnError(.invalidArgument, "thread count must be at least 1 (got \(n))") }
        Threads.count = Int(n)
    }
}

@_cdecl("vidattn_set_reference_kernels")
public func vidattn_set_reference_kernels(_ enable: Int32) { KernelMode.useReference = enable != 0 }

// MARK: - CPU

private let cpuFeaturesString: UnsafeMutablePointer<CChar> = {
    let c = CPU.caches
    return strdup("cpu=\(CPU.brand); flags=\(CPU.flags.joined(separator: " ")); l1d=\(c.l1d); l2=\(c.l2); l3=\(c.l3); "
                  + "amx_permitted=\(CPU.info.amx_permitted); fp32=\(FP32Kernels.isa); baseline=\(FP32Kernels.baselineISA); "
                  + "bf16=\(BF16Unit.detected.rawValue); int8=\(Int8Unit.detected.rawValue); max_isa=\(ISALevel.cap.name)")
}()

@_cdecl("vidattn_cpu_features")
public func vidattn_cpu_features() -> UnsafePointer<CChar> { UnsafePointer(cpuFeaturesString) }

@_cdecl("vidattn_fma_peak_gflops")
public func vidattn_fma_peak_gflops(_ threads: Int32) -> Double { CPU.measureFMAPeak(threads: max(1, Int(threads))) }

// MARK: - Kernels

@_cdecl("vidattn_sgemm")
public func vidattn_sgemm(_ transA: Int32, _ transB: Int32, _ m: Int64, _ n: Int64, _ k: Int64,
                          _ alpha: Float, _ a: UnsafePointer<Float>?, _ lda: Int64,
                          _ b: UnsafePointer<Float>?, _ ldb: Int64,
                          _ beta: Float, _ c: UnsafeMutablePointer<Float>?, _ ldc: Int64) -> Int32 {
    vidattn_sgemm_fused(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, nil, 0, nil, 0)
}

@_cdecl("vidattn_sgemm_fused")
public func vidattn_sgemm_fused(_ transA: Int32, _ transB: Int32, _ m: Int64, _ n: Int64, _ k: Int64,
                                _ alpha: Float, _ a: UnsafePointer<Float>?, _ lda: Int64,
                                _ b: UnsafePointer<Float>?, _ ldb: Int64,
                                _ beta: Float, _ c: UnsafeMutablePointer<Float>?, _ ldc: Int64,
                                _ bias: UnsafePointer<Float>?, _ act: Int32,
                                _ residual: UnsafePointer<Float>?, _ ldr: Int64) -> Int32 {
    guarded {
        guard let activation = Activation(rawValue: act) else {
            throw VidAttnError(.invalidArgument, "unknown activation \(act)")
        }
        try Ops.sgemm(transA: transA != 0, transB: transB != 0, m: Int(m), n: Int(n), k: Int(k), alpha: alpha,
                      a: a, lda: Int(lda), b: b, ldb: Int(ldb), beta: beta, c: c, ldc: Int(ldc),
                      bias: bias, activation: activation, residual: residual, ldResidual: Int(ldr))
    }
}

@_cdecl("vidattn_attention")
public func vidattn_attention(_ batch: Int64, _ heads: Int64, _ nq: Int64, _ nk: Int64, _ d: Int64,
                              _ q: UnsafePointer<Float>?, _ k: UnsafePointer<Float>?, _ v: UnsafePointer<Float>?,
                              _ out: UnsafeMutablePointer<Float>?, _ scale: Float,
                              _ bias: UnsafePointer<Float>?, _ biasStrides: UnsafePointer<Int64>?,
                              _ keyMask: UnsafePointer<UInt8>?, _ probs: UnsafeMutablePointer<Float>?) -> Int32 {
    guarded {
        let strides = biasStrides.map { (Int($0[0]), Int($0[1]), Int($0[2])) }
        try Ops.attention(batch: Int(batch), heads: Int(heads), nq: Int(nq), nk: Int(nk), d: Int(d),
                          q: q, k: k, v: v, out: out, scale: scale, bias: bias, biasStrides: strides,
                          keyMask: keyMask, probs: probs)
    }
}

@_cdecl("vidattn_softmax")
public func vidattn_softmax(_ rows: Int64, _ cols: Int64, _ x: UnsafeMutablePointer<Float>?, _ ld: Int64,
                            _ scale: Float, _ bias: UnsafePointer<Float>?, _ ldBias: Int64) -> Int32 {
    guarded {
        try Ops.softmax(rows: Int(rows), cols: Int(cols), x: x, ld: Int(ld), scale: scale, bias: bias, ldBias: Int(ldBias))
    }
}

@_cdecl("vidattn_layer_norm")
public func vidattn_layer_norm(_ rows: Int64, _ cols: Int64, _ x: UnsafePointer<Float>?,
                               _ y: UnsafeMutablePointer<Float>?, _ gamma: UnsafePointer<Float>?,
                               _ beta: UnsafePointer<Float>?, _ eps: Float) -> Int32 {
    guarded { try Ops.layerNorm(rows: Int(rows), cols: Int(cols), x: x, y: y, gamma: gamma, beta: beta, eps: eps) }
}

@_cdecl("vidattn_activation_apply")
public func vidattn_activation_apply(_ act: Int32, _ x: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>?,
                                     _ n: Int64) -> Int32 {
    guarded { try Ops.activation(act, x: x, y: y, n: Int(n)) }
}
