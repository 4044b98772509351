/// Activation applied in GEMM epilogues and as standalone kernels.
public enum Activation: Int32, Sendable {
    case none = 0
    /// Exact GELU, 0.5·x·(1 + erf(x/√2)) (PyTorch `gelu`, `approximate='none'`).
    case gelu = 1
    /// Tanh GELU, 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) (`approximate='tanh'`).
    case geluTanh = 2
    case tanh = 3
    case relu = 4
}

let sqrtHalf: Float = 0.70710678118654752440
let sqrt2OverPi: Float = 0.79788456080286535588

@inline(__always) func activate(_ x: Vec, _ act: Activation) -> Vec {
    switch act {
    case .none: return x
    case .gelu: return x * Vec(repeating: 0.5) * (Vec(repeating: 1) + verf(x * Vec(repeating: sqrtHalf)))
    case .geluTanh:
        let inner = x * Vec(repeating: sqrt2OverPi) * (Vec(repeating: 1) + Vec(repeating: 0.044715) * x * x)
        return x * Vec(repeating: 0.5) * (Vec(repeating: 1) + vtanh(inner))
    case .tanh: return vtanh(x)
    case .relu: return x.replacing(with: 0, where: x .< 0)
    }
}

@inline(__always) func activate(_ x: Float, _ act: Activation) -> Float {
    switch act {
    case .none: return x
    case .gelu: return x * 0.5 * (1 + serf(x * sqrtHalf))
    case .geluTanh:
        let inner = x * sqrt2OverPi * (1 + 0.044715 * x * x)
        return x * 0.5 * (1 + stanh(inner))
    case .tanh: return stanh(x)
    case .relu: return x < 0 ? 0 : x
    }
}

/// y[i] = act(x[i]) for `n` floats; `x` and `y` may be the same buffer.
public func activation(_ act: Activation, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    if KernelMode.useReference { activationReference(act, x, y, n); return }
    var i = 0
    while i + 16 <= n { vstore(activate(vload(x + i), act), y + i); i += 16 }
    if i < n {
        let v = activate(vloadPartial(x + i, n - i), act)
        vstorePartial(v, y + i, n - i)
    }
}

/// Scalar reference for `activation`.
public func activationReference(_ act: Activation, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    for i in 0..<n { y[i] = activate(x[i], act) }
}
