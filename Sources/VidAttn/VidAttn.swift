@_exported import Kernels

/// Library version (mirrors VIDATTN_VERSION_* in include/vidattn.h).
public enum Version {
    public static let major = 0
    public static let minor = 1
    public static let patch = 0
    public static var string: String { "\(major).\(minor).\(patch)" }
}
