#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Small files replaced whole and atomically: written to a temporary file beside the target,
/// fsynced, renamed over it, and the directory fsynced. A crash, `kill -9` or a full disk at
/// any instant leaves either the old contents or the new ones, never an empty or torn file
/// (a write that fails leaves the old file untouched). Creates the spool's position files
/// (``SlotFile``).
public enum AtomicFile {
    /// Why a replace failed; the old file is still in place.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// Replaces `path` with `bytes`; a new file gets `mode` (0600 for secrets).
    public static func replace(_ path: String, with bytes: [UInt8], mode: mode_t = 0o644) throws(Failure) {
        let temporary = path + ".tmp"
        // A leftover temporary file (or a link planted there) is never written through: a
        // new file, with `mode` whatever the umask.
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else { throw failure("open", temporary) }
        _ = fchmod(fd, mode)
        var ok = bytes.withUnsafeBytes { buffer -> Bool in
            var offset = 0
            while offset < buffer.count {
                let written = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 && errno == EINTR { continue }
                if written <= 0 { return false }
                offset += written
            }
            return true
        }
        var error = ok ? nil : failure("write", temporary)
        if ok, fsync(fd) != 0 {
            ok = false
            error = failure("fsync", temporary)
        }
        close(fd)
        if ok, rename(temporary, path) != 0 {
            ok = false
            error = failure("rename", temporary)
        }
        guard ok else {
            unlink(temporary)
            throw error!
        }
        syncDirectory(of: path)
    }

    /// The contents of `path`, or nil when it can't be read.
    public static func contents(of path: String, limit: Int = 4096) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: limit)
        let count = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, limit, 0) }
        guard count >= 0 else { return nil }
        return Array(bytes.prefix(count))
    }

    /// The failure of `operation` on `path`, from `errno`.
    static func failure(_ operation: String, _ path: String) -> Failure {
        Failure(description: "\(operation) \(path): \(String(cString: strerror(errno)))")
    }
}

/// Syncs the directory holding `path`, so a new or renamed entry in it survives a crash.
public func syncDirectory(of path: String) {
    let directory = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
    let fd = open(directory.isEmpty ? "/" : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if fd >= 0 {
        _ = fsync(fd)
        close(fd)
    }
}
