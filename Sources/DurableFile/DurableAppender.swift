import Dispatch
import Logging
import NIOCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Appends lines to files and returns only once they are fsynced: the durable write under the
/// file sink, the spool and the dead-letter file.
///
/// Failures are classified from their errno (``FileFailure``): a path that can never be
/// written (name too long, a directory in the way) fails only the lines for that path, as
/// rejected for good, and leaves the appender healthy; a full disk or an I/O error fails the
/// batch as transient and makes the appender unhealthy (`/readyz`) until a write succeeds.
///
/// Group commit: lines that arrive while a flush is running are written and synced together
/// by the next one, so N concurrent appends cost about two fsyncs, not N. All file I/O runs
/// on the appender's own serial queue, never on Swift's cooperative pool. A failed write is
/// cut back off the file, and a file whose last line was cut short (a crash mid-write) gets
/// that line ended before anything is appended.
public final class DurableAppender: Sendable {
    /// Who owns the files, for log lines.
    public let name: String
    private let logger: Logger
    private let queue: DispatchQueue
    private let state = Mutex(State())
    private let files = Mutex(OpenFiles())
    /// Per path, the size up to which the file is fsynced by this appender (see
    /// ``durableSize(of:)``).
    private let durableSizes = Mutex<[String: Int64]>([:])

    private struct Pending {
        let path: String
        let line: ByteBuffer
        let continuation: CheckedContinuation<Int64, any Error>
    }

    private struct State {
        var pending: [Pending] = []
        var flushing = false
        var closed = false
        var failing = false
    }

    public init(name: String, logger: Logger) {
        self.name = name
        self.logger = logger
        self.queue = DispatchQueue(label: "webhook-bridge.append.\(name)")
    }

    /// Opens (creating it and its directories) `path` now, so an unwritable path fails at
    /// startup rather than on the first event.
    public func prepare(_ path: String) throws {
        _ = try openFile(path)
    }

    /// How much of `path` is durable: what was there when this appender opened it, plus every
    /// batch fsynced since. Bytes beyond it are being written (and may still be cut off if
    /// the fsync fails), so a reader must not act on them. nil for a file not opened here.
    public func durableSize(of path: String) -> Int64? { durableSizes.withLock { $0[path] } }

    /// False after a failed write until a write succeeds again, and after `close`.
    public var isHealthy: Bool { state.withLock { !$0.closed && !$0.failing } }

    /// Appends `line` (newline included) to `path`; returns its offset once it is fsynced.
    public func append(_ line: ByteBuffer, to path: String) async throws -> Int64 {
        try await withCheckedThrowingContinuation { continuation in
            let outcome: Result<Bool, FileError> = state.withLock { state in
                if state.closed { return .failure(FileError(reason: "shut down", isPermanent: false)) }
                state.pending.append(Pending(path: path, line: line, continuation: continuation))
                if state.flushing { return .success(false) }
                state.flushing = true
                return .success(true)
            }
            switch outcome {
            case .failure(let error): continuation.resume(throwing: error)
            case .success(true): queue.async { self.flushPending() }
            case .success(false): break
            }
        }
    }

    /// Closes `path`'s descriptor (after any flush running now), so a file that was removed
    /// gives its disk space back at once instead of when the descriptor cache evicts it.
    public func forget(_ path: String) async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            queue.async {
                self.files.withLock { $0.close(path) }
                self.durableSizes.withLock { $0[path] = nil }
                done.resume()
            }
        }
    }

    /// Refuses further appends, lets the running flush finish and closes the files.
    public func shutdown() async {
        state.withLock { $0.closed = true }
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            queue.async {
                self.files.withLock { $0.closeAll() }
                done.resume()
            }
        }
    }

    // MARK: - Group commit (on `queue`)

    private func flushPending() {
        while true {
            let batch: [Pending]? = state.withLock { state in
                if state.pending.isEmpty {
                    state.flushing = false
                    return nil
                }
                defer { state.pending.removeAll(keepingCapacity: true) }
                return state.pending
            }
            guard let batch else { return }
            var byPath: [String: [Pending]] = [:]
            var order: [String] = []
            for item in batch {
                if byPath[item.path] == nil { order.append(item.path) }
                byPath[item.path, default: []].append(item)
            }
            for path in order { commit(byPath[path]!, to: path) }
        }
    }

    private func commit(_ items: [Pending], to path: String) {
        do {
            let fd = try openFile(path)
            let start = lseek(fd, 0, SEEK_END)
            guard start >= 0 else { throw FileFailure.error("seek", path, code: errno) }
            var batch = ByteBufferAllocator().buffer(capacity: items.reduce(0) { $0 + $1.line.readableBytes })
            var positions: [Int64] = []
            for item in items {
                positions.append(Int64(start) + Int64(batch.writerIndex))
                var line = item.line
                batch.writeBuffer(&line)
            }
            do {
                try writeAll(fd, batch, path: path)
                guard fdatasync(fd) == 0 else { throw FileError(reason: "fsync \(path): \(errorText())", isPermanent: false) }
            } catch {
                // Cut off whatever part of the batch reached the file, so no half line stays
                // in front of the next one. If even that fails, drop the descriptor: the next
                // open ends the half line before appending.
                if ftruncate(fd, start) != 0 { files.withLock { $0.close(path) } }
                throw error
            }
            let durable = Int64(start) + Int64(batch.readableBytes)
            durableSizes.withLock { $0[path] = durable }
            state.withLock { $0.failing = false }
            for (item, position) in zip(items, positions) {
                item.continuation.resume(returning: position)
            }
        } catch {
            let failure = error as? FileError ?? FileError(reason: "\(error)", isPermanent: false)
            // A path that can never be written says nothing about the disk: only the lines
            // for it fail, and the appender stays healthy.
            if !failure.isPermanent {
                let first = state.withLock { state in
                    defer { state.failing = true }
                    return !state.failing
                }
                if first {
                    logger.error("durable append failed", metadata: ["sink.name": "\(name)", "sink.error": "\(failure.reason)"])
                }
            }
            for item in items { item.continuation.resume(throwing: failure) }
        }
    }

    private func writeAll(_ fd: Int32, _ buffer: ByteBuffer, path: String) throws {
        try buffer.withUnsafeReadableBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw FileFailure.error("write", path, code: errno)
                }
                offset += written
            }
        }
    }

    /// The descriptor for `path`, opened (its directories created and synced) on first use.
    /// A file whose last line was cut short (a crash mid-write) gets its line ended first, so
    /// the next event starts on a line of its own.
    private func openFile(_ path: String) throws -> Int32 {
        if let fd = files.withLock({ $0.descriptor(for: path) }) { return fd }
        try createDirectories(forFile: path)
        let fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileFailure.error("open", path, code: errno) }
        syncDirectory(of: path)
        let size = lseek(fd, 0, SEEK_END)
        var last: UInt8 = 0
        if size > 0, pread(fd, &last, 1, size - 1) == 1, last != 0x0A {
            var newline: UInt8 = 0x0A
            guard write(fd, &newline, 1) == 1, fdatasync(fd) == 0 else {
                close(fd)
                throw FileError(reason: "repair \(path): \(errorText())", isPermanent: false)
            }
            logger.warning("ended a partial last line", metadata: ["sink.name": "\(name)", "sink.path": "\(path)"])
        }
        let durable = Int64(lseek(fd, 0, SEEK_END))
        let evicted = files.withLock { $0.insert(fd, for: path) }
        durableSizes.withLock { sizes in
            sizes[path] = max(sizes[path] ?? 0, durable)
            // A closed file has nothing in flight; forgetting it keeps this map as small as
            // the descriptor cache (a templated path can name many files).
            if let evicted { sizes[evicted] = nil }
        }
        return fd
    }

    /// `mkdir -p` of the file's directory; each new directory's entry is synced into its parent.
    private func createDirectories(forFile path: String) throws {
        var components = path.split(separator: "/", omittingEmptySubsequences: false).dropLast()
        guard !components.isEmpty else { return }
        var current = path.hasPrefix("/") ? "" : "."
        if path.hasPrefix("/") { components = components.dropFirst() }
        for component in components where !component.isEmpty {
            current += "/" + component
            if mkdir(current, 0o755) == 0 {
                syncDirectory(of: current)
            } else if errno != EEXIST {
                throw FileFailure.error("mkdir", current, code: errno)
            }
        }
    }

    private func errorText() -> String { String(cString: strerror(errno)) }
}

/// The sink's open descriptors, least recently used closed first beyond ``limit``: a path
/// template with `{type}` or `{header:…}` can name many files, and descriptors are finite.
struct OpenFiles: ~Copyable {
    static let limit = 64
    private var entries: [String: (fd: Int32, lastUse: UInt64)] = [:]
    private var clock: UInt64 = 0

    mutating func descriptor(for path: String) -> Int32? {
        guard let entry = entries[path] else { return nil }
        clock += 1
        entries[path] = (entry.fd, clock)
        return entry.fd
    }

    /// Adds `fd`; returns the path whose descriptor was closed to make room, if any.
    @discardableResult
    mutating func insert(_ fd: Int32, for path: String) -> String? {
        var evicted: String?
        if entries.count >= Self.limit, let oldest = entries.min(by: { $0.value.lastUse < $1.value.lastUse }) {
            close(oldest.key)
            evicted = oldest.key
        }
        clock += 1
        entries[path] = (fd, clock)
        return evicted
    }

    mutating func close(_ path: String) {
        if let entry = entries.removeValue(forKey: path) { _ = closeDescriptor(entry.fd) }
    }

    mutating func closeAll() {
        for entry in entries.values { _ = closeDescriptor(entry.fd) }
        entries.removeAll()
    }
}

private func closeDescriptor(_ fd: Int32) -> Int32 {
    #if canImport(Glibc)
        Glibc.close(fd)
    #else
        Darwin.close(fd)
    #endif
}
