import Kernels

/// An owned, 64-byte aligned fp32 tensor (row-major).
public final class Tensor: @unchecked Sendable {
    /// Dimensions, outermost first.
    public let shape: [Int]
    /// Number of elements (product of the shape).
    public let count: Int
    /// Contiguous row-major float32 storage, owned by the tensor.
    public let data: UnsafeMutablePointer<Float>

    /// An uninitialised tensor; throws invalidArgument on overflow, outOfMemory when allocation fails.
    public init(shape: [Int]) throws {
        guard let n = checkedProduct(shape) else {
            throw VidAttnError(.invalidArgument, "tensor shape \(shape) overflows")
        }
        guard let p = allocFloats(max(n, 1)) else {
            throw VidAttnError(.outOfMemory, "cannot allocate a \(shape) tensor (\(n * 4) bytes)")
        }
        self.shape = shape; count = n; data = p
    }

    /// A tensor filled with zeros.
    public convenience init(zeros shape: [Int]) throws {
        try self.init(shape: shape)
        data.update(repeating: 0, count: count)
    }

    deinit { freeFloats(data) }

    /// The storage, read-only.
    public var pointer: UnsafePointer<Float> { UnsafePointer(data) }
    /// Element i of the flat storage.
    public subscript(i: Int) -> Float { data[i] }
}
