import Kernels

/// An owned, 64-byte aligned fp32 tensor (row-major).
public final class Tensor: @unchecked Sendable {
    public let shape: [Int]
    public let count: Int
    public let data: UnsafeMutablePointer<Float>

    public init(shape: [Int]) throws {
        guard let n = checkedProduct(shape) else { throw VidAttnError(.invalidArgument, "tensor shape \(shape) overflows") }
        guard let p = allocFloats(max(n, 1)) else {
            throw VidAttnError(.outOfMemory, "cannot allocate a \(shape) tensor (\(n * 4) bytes)")
        }
        self.shape = shape; count = n; data = p
    }

    public convenience init(zeros shape: [Int]) throws {
        try self.init(shape: shape)
        data.update(repeating: 0, count: count)
    }

    deinit { freeFloats(data) }

    public var pointer: UnsafePointer<Float> { UnsafePointer(data) }
    public subscript(i: Int) -> Float { data[i] }
}
