#if canImport(Glibc)
import Glibc
#endif

/// A read-only memory-mapped file. The mapping lives as long as the object.
public final class MappedFile: @unchecked Sendable {
    /// The file's path as given.
    public let path: String
    /// Its size in bytes.
    public let size: Int
    /// Its contents (read-only, mapped).
    public let bytes: UnsafeRawBufferPointer
    private let base: UnsafeMutableRawPointer?

    /// Maps the whole file read-only; throws io for a missing or unreadable file.
    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw VidAttnError(.io, "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw VidAttnError(.io, "cannot stat \(path)") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw VidAttnError(.io, "\(path) is not a regular file") }
        size = Int(st.st_size)
        if size == 0 {
            base = nil
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let m = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), m != MAP_FAILED else {
            throw VidAttnError(.io, "cannot map \(path) (\(size) bytes): \(String(cString: strerror(errno)))")
        }
        base = m
        bytes = UnsafeRawBufferPointer(start: m, count: size)
    }

    deinit { if let base { munmap(base, size) } }

    /// The whole file as a String (UTF-8 validated).
    public func text() throws -> String {
        guard let s = String(validating: bytes, as: UTF8.self) else {
            throw VidAttnError(.badFormat, "\(path) is not valid UTF-8")
        }
        return s
    }
}

/// Whether a file exists and is a regular file.
public func fileExists(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
}
