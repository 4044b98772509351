import KernelTypes

// Activation functions on vectors and scalars, used by the GEMM epilogue, the
// standalone activation kernel and the scalar references.

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

/// y = act(x) over n floats.
func activationRow(_ act: Activation, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    var i = 0
    while i + 16 <= n { vstore(activate(vload(x + i), act), y + i); i += 16 }
    if i < n {
        let v = activate(vloadPartial(x + i, n - i), act)
        vstorePartial(v, y + i, n - i)
    }
}
