@_exported import Kernels

/// Library version (mirrors VIDATTN_VERSION_* in include/vidattn.h).
public enum Version {
    /// Major version.
    public static let major = 0
    /// Minor version.
    public static let minor = 1
    /// Patch version.
    public static let patch = 0
    /// "MAJOR.MINOR.PATCH" (the header's VIDATTN_VERSION_STRING).
    public static var string: String { "\(major).\(minor).\(patch)" }
}
