/// Status codes shared with the C API (`vidattn_status` in include/vidattn.h).
/// Negative: error; 0: success; positive: stopped on request.
public enum Status: Int32, Sendable {
    case ok = 0
    case invalidArgument = -1
    case nullPointer = -2
    case outOfMemory = -3
    case shapeMismatch = -4
    case io = -5
    case badFormat = -6
    case unsupported = -7
    case `internal` = -8
    case aborted = 1

    /// The status's short English name (the header's vidattn_status_string).
    public var description: String {
        switch self {
        case .ok: return "success"
        case .invalidArgument: return "invalid argument"
        case .nullPointer: return "null pointer"
        case .outOfMemory: return "out of memory"
        case .shapeMismatch: return "shape mismatch"
        case .io: return "I/O error"
        case .badFormat: return "malformed file"
        case .unsupported: return "unsupported"
        case .internal: return "internal error"
        case .aborted: return "aborted by callback"
        }
    }
}

/// The error every throwing VidAttn API raises: a status plus a message that
/// names the offending argument or file.
public struct VidAttnError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure (mapped one to one onto the C status codes).
    public let status: Status
    /// What went wrong, for a person.
    public let message: String
    /// An error of kind `status` saying `message`.
    public init(_ status: Status, _ message: String) { self.status = status; self.message = message }
    /// "name: message".
    public var description: String { "\(status.description): \(message)" }
}

/// Throws `status` with `msg` unless `cond` holds.
@inline(__always)
public func require(_ cond: Bool, _ msg: @autoclosure () -> String, status: Status = .invalidArgument) throws {
    if !cond { throw VidAttnError(status, msg()) }
}

/// `p` unwrapped, or a null-pointer error naming `name`.
@inline(__always)
public func nonNull<T>(_ p: T?, _ name: String) throws -> T {
    guard let p else { throw VidAttnError(.nullPointer, "\(name) is NULL") }
    return p
}

/// a·b·…, or nil on overflow or a negative factor.
public func checkedProduct(_ xs: Int...) -> Int? { checkedProduct(xs) }

/// The product of xs, or nil on overflow or a negative factor.
public func checkedProduct(_ xs: [Int]) -> Int? {
    var r = 1
    for x in xs {
        if x < 0 { return nil }
        let (p, o) = r.multipliedReportingOverflow(by: x)
        if o { return nil }
        r = p
    }
    return r
}
