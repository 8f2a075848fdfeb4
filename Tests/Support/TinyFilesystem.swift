import Foundation

/// A small tmpfs mounted at a fresh directory, for tests of a full disk: real `ENOSPC` from
/// the kernel, not a simulated error. Mounting needs root; ``isAvailable`` says whether this
/// process may (tests use it as their `.enabled(if:)` condition, so they are reported as
/// skipped with that reason elsewhere).
public final class TinyFilesystem: @unchecked Sendable {
    public let path: String
    private var filler: String { path + "/.filler" }

    /// True when running as root, so `mount -t tmpfs` can work.
    public static var isAvailable: Bool { getuid() == 0 }

    /// Mounts a tmpfs of `bytes` (rounded up to pages by the kernel).
    public init(bytes: Int) throws {
        let directory = TemporaryDirectory()
        path = directory.path
        let mount = Process()
        mount.executableURL = URL(fileURLWithPath: "/bin/mount")
        mount.arguments = ["-t", "tmpfs", "-o", "size=\(bytes)", "tmpfs", path]
        try mount.run()
        mount.waitUntilExit()
        guard mount.terminationStatus == 0 else { throw ServerError("mount -t tmpfs failed at \(path)") }
    }

    /// Fills what is left of the file system with one file, so the next write fails with ENOSPC.
    public func fill() {
        let fd = open(filler, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let chunk = [UInt8](repeating: 0, count: 4096)
        while write(fd, chunk, chunk.count) > 0 {}
        var byte: UInt8 = 0
        while write(fd, &byte, 1) > 0 {}
    }

    /// Removes the filler: the space is there again.
    public func free() { unlink(filler) }

    /// Bytes still free.
    public var available: Int {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return 0 }
        return Int(info.f_bavail) * Int(info.f_frsize)
    }

    /// Unmounts (lazily, so open descriptors don't keep it) and removes the directory.
    public func unmount() {
        let umount = Process()
        umount.executableURL = URL(fileURLWithPath: "/bin/umount")
        umount.arguments = ["-l", path]
        try? umount.run()
        umount.waitUntilExit()
        rmdir(path)
    }

    deinit { unmount() }
}
