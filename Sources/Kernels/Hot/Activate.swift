import KernelTypes

// Activation functions on vectors and scalars, used by the GEMM epilogue, the
// standalone activation kernel and the scalar references.

let sqrtHalf: Float = 0.70710678118654752440
/// The tanh-approximated GELU, 0.5 · x · (1 + tanh(y)) with y = √(2/π) · (x + 0.044715 · x³),
/// is x · σ(2y) = x / (1 + e^(−2y)): one exp and a division instead of SLEEF's tanh (which
/// was 7 % of a bf16 ViViT-B forward on Sapphire Rapids), and no cancellation in 1 + tanh(y)
/// for negative x. 2y = x · (geluTanhA + geluTanhB · x²):
let geluTanhA: Float = 1.59576912160573071176  // 2 · √(2/π)
let geluTanhB: Float = 0.07135481627159258  // 2 · √(2/π) · 0.044715

@inline(__always) func activate(_ x: Vec, _ act: Activation) -> Vec {
    switch act {
    case .none: return x
    case .gelu: return x * Vec(repeating: 0.5) * (Vec(repeating: 1) + verf(x * Vec(repeating: sqrtHalf)))
    case .geluTanh:
        let twoY = x * Vec(repeating: geluTanhA).addingProduct(Vec(repeating: geluTanhB), x * x)
        return x / (Vec(repeating: 1) + vexp(-twoY))
    case .tanh: return vtanh(x)
    case .relu: return x.replacing(with: 0, where: x .< 0)
    }
}

@inline(__always) func activate(_ x: Float, _ act: Activation) -> Float {
    switch act {
    case .none: return x
    case .gelu: return x * 0.5 * (1 + serf(x * sqrtHalf))
    case .geluTanh:
        let twoY = x * (geluTanhA + geluTanhB * x * x)
        return x / (1 + sexp(-twoY))
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
