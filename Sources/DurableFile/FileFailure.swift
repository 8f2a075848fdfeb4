#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Classifies a failed file operation from its errno (SPEC section 8).
///
/// Permanent: the path itself can never be written, whatever happens to the disk: a name
/// too long (`ENAMETOOLONG`), invalid (`EINVAL`), a directory where a file should be
/// (`EISDIR`), a file where a directory should be (`ENOTDIR`), a symlink loop (`ELOOP`). The
/// event goes to the dead letters at once, and a retry would only hold up the events behind it.
///
/// Transient: everything else, above all a full disk (`ENOSPC`, `EDQUOT`), I/O errors
/// (`EIO`), too many open files, and permissions or a read-only mount that an operator can
/// fix: those are retried from the spool.
public enum FileFailure {
    /// Errnos that no retry can fix.
    public static func isPermanent(_ code: Int32) -> Bool {
        switch code {
        case ENAMETOOLONG, EINVAL, EISDIR, ENOTDIR, ELOOP: return true
        default: return false
        }
    }

    /// The error for `operation` on `path` having failed with `code`.
    public static func error(_ operation: String, _ path: String, code: Int32) -> FileError {
        FileError(reason: "\(operation) \(path): \(String(cString: strerror(code)))", isPermanent: isPermanent(code))
    }
}

/// A failed file operation: what was done to which path and why, and whether any retry can
/// fix it (see ``FileFailure``). The file sink and the spool turn it into their own errors;
/// this target knows nothing of sinks.
public struct FileError: Error, Sendable, CustomStringConvertible {
    public let reason: String
    public let isPermanent: Bool

    public init(reason: String, isPermanent: Bool) {
        self.reason = reason
        self.isPermanent = isPermanent
    }

    public var description: String { reason }
}
