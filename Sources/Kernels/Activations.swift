/// y[i] = act(x[i]) for `n` floats; `x` and `y` may be the same buffer.
public func activation(_ act: Activation, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    if KernelMode.useReference { activationReference(act, x, y, n); return }
    FP32Kernels.selected.activation(act, x, y, n)
}

/// y = erf(x) over n floats with the selected kernels' vector erf (the one behind GELU; for
/// the tests).
public func vectorErf(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    FP32Kernels.selected.erf(x, y, n)
}

/// Scalar reference for `activation`.
public func activationReference(
    _ act: Activation, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int
) {
    for i in 0..<n { y[i] = activate(x[i], act) }
}
