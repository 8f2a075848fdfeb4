import FileSink
import Logging
import Metrics
import NIOCore
import Synchronization
import WebhookCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The local durable queue (SPEC section 6): events a required sink could not take are
/// fsynced here before the provider is answered 202, and forwarded later in order.
///
/// Layout under `spool.directory`: one folder per sink holding append-only segment files
/// (`0000000000000001.jsonl`, …, CloudEvents lines with `data_base64`, so bodies come back
/// byte for byte, and the request headers the sink's templates read), a `cursor` file (the
/// segment and offset forwarded up to), and `dead-letter.jsonl` for events a sink refused
/// for good. Forwarding is at least once: a crash between a delivery and its cursor write
/// re-delivers that event, under the same CloudEvents id.
public final class Spool: Sendable {
    /// Why an event could not be spooled.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public let description: String
        public let isFull: Bool
    }

    public struct Position: Sendable, Equatable, Comparable {
        var segment: Int
        var offset: Int64
        public static func < (a: Position, b: Position) -> Bool { (a.segment, a.offset) < (b.segment, b.offset) }
    }

    struct Queue: Sendable {
        let name: String
        let directory: String
        let headers: [String]
        var cursor: Position
        var end: Position
        /// The final size of each segment appends have moved on from. A reader may leave a
        /// segment only at its sealed end: before that, an append to it may still be in flight.
        var sealedEnds: [Int: Int64] = [:]
    }

    private let directory: String
    private let maxBytes: Int
    private let segmentBytes: Int64
    private let appender: DurableAppender
    private let state: Mutex<(queues: [String: Queue], bytes: Int)>
    private let logger: Logger
    /// Wakes a sink's forwarder when something was spooled for it.
    private let signals: [String: AsyncStream<Void>.Continuation]
    /// Yields when something was spooled for the sink.
    public let wakeups: [String: AsyncStream<Void>]

    public var deadLetterPath: String { directory + "/dead-letter.jsonl" }

    /// Opens (creating) the spool for `sinks` (name → request headers its templates read),
    /// finding each sink's backlog from its segments and cursor.
    public init(directory: String, maxBytes: Int, sinks: [String: [String]], segmentBytes: Int64 = 64 << 20, logger: Logger)
        throws
    {
        self.directory = directory
        self.maxBytes = maxBytes
        self.segmentBytes = segmentBytes
        self.logger = logger
        self.appender = DurableAppender(name: "spool", logger: logger)
        var queues: [String: Queue] = [:]
        var bytes = 0
        var signals: [String: AsyncStream<Void>.Continuation] = [:]
        var wakeups: [String: AsyncStream<Void>] = [:]
        for (sink, headers) in sinks {
            let folder = directory + "/" + TemplateSanitizer.pathComponent.clean(sink)
            try appender.prepare(folder + "/.keep")
            let segments = Self.segments(in: folder)
            var cursor = Self.readCursor(folder) ?? Position(segment: segments.first ?? 1, offset: 0)
            let last = segments.last ?? cursor.segment
            let end = Position(segment: last, offset: Self.size(of: Self.segmentPath(folder, last)))
            if cursor > end { cursor = end }
            for segment in segments { bytes += Int(Self.size(of: Self.segmentPath(folder, segment))) }
            var queue = Queue(name: sink, directory: folder, headers: headers, cursor: cursor, end: end)
            for segment in segments where segment < last {
                queue.sealedEnds[segment] = Self.size(of: Self.segmentPath(folder, segment))
            }
            queues[sink] = queue
            let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
            signals[sink] = continuation
            wakeups[sink] = stream
        }
        try appender.prepare(directory + "/dead-letter.jsonl")
        self.state = Mutex((queues, bytes))
        self.signals = signals
        self.wakeups = wakeups
    }

    /// True while `sink` has spooled events not yet forwarded: new events for it then go to
    /// the spool too, so they reach the sink in order.
    public func hasBacklog(for sink: String) -> Bool {
        state.withLock {
            guard let queue = $0.queues[sink] else { return false }; return queue.cursor < queue.end
        }
    }

    /// Bytes held in segments (forwarded or not, until their segment is removed).
    public var bytes: Int { state.withLock { $0.bytes } }

    /// Spools `event` for `sink`; returns once it is fsynced. Throws when the spool is full
    /// (`spool.maxBytes`) or the disk refuses the write.
    public func append(_ event: WebhookEvent, for sink: String) async throws(Failure) {
        guard let headers = state.withLock({ $0.queues[sink]?.headers }) else {
            throw Failure(description: "no spool for sink \(sink)", isFull: false)
        }
        var line = ByteBufferAllocator().buffer(capacity: event.data.readableBytes * 4 / 3 + 512)
        CloudEventJSON.appendLine(event, to: &line, dataAsBase64: true, headers: headers)
        let size = line.readableBytes
        // Reserve the room and pick the segment under the lock; rotate when it is big enough.
        let path: String? = state.withLock { state in
            guard state.bytes + size <= maxBytes, var queue = state.queues[sink] else { return nil }
            if queue.end.offset >= segmentBytes {
                queue.sealedEnds[queue.end.segment] = queue.end.offset
                queue.end = Position(segment: queue.end.segment + 1, offset: 0)
            }
            queue.end.offset += Int64(size)
            state.queues[sink] = queue
            state.bytes += size
            return Self.segmentPath(queue.directory, queue.end.segment)
        }
        guard let path else {
            throw Failure(description: "the spool is full (spool.maxBytes = \(maxBytes))", isFull: true)
        }
        do {
            _ = try await appender.append(line, to: path)
        } catch {
            // The appender cut the line back off; give the room back. The end position stays
            // ahead by `size` only if later lines landed meanwhile, which the reader tolerates
            // (it reads lines, not offsets).
            state.withLock { state in
                state.bytes -= size
                guard var queue = state.queues[sink] else { return }
                if Self.segmentPath(queue.directory, queue.end.segment) == path {
                    queue.end.offset -= Int64(size)
                } else if let segment = queue.sealedEnds.keys.first(where: { Self.segmentPath(queue.directory, $0) == path }) {
                    queue.sealedEnds[segment]! -= Int64(size)
                }
                state.queues[sink] = queue
            }
            throw Failure(description: "\(error)", isFull: false)
        }
        Gauge(label: "webhook.spool.bytes").record(bytes)
        signals[sink]?.yield()
    }

    /// Writes `event` to the dead-letter file with the sink and the reason.
    public func deadLetter(_ event: WebhookEvent, sink: String, reason: String) async throws {
        var line = ByteBufferAllocator().buffer(capacity: event.data.readableBytes * 4 / 3 + 512)
        CloudEventJSON.appendLine(
            event, to: &line, dataAsBase64: true, extensions: [("deadlettersink", sink), ("deadletterreason", reason)])
        _ = try await appender.append(line, to: deadLetterPath)
        Counter(label: "webhook.dead_letters", dimensions: [("sink.name", sink)]).increment()
        logger.warning(
            "dead-lettered", metadata: ["sink.name": "\(sink)", "webhook.id": "\(event.id)", "sink.error": "\(reason)"])
    }

    // MARK: - Reading (the forwarder)

    /// The next spooled event for `sink` and the position after it, or nil when caught up.
    public func next(for sink: String) throws -> (WebhookEvent, Position)? {
        guard var queue = state.withLock({ $0.queues[sink] }) else { return nil }
        while queue.cursor < queue.end {
            let path = Self.segmentPath(queue.directory, queue.cursor.segment)
            // Only fsynced lines: a line still being written could be cut off again if its
            // fsync fails, and a cursor moved past it would then skip the next event.
            let durable = appender.durableSize(of: path) ?? Int64.max
            if let (line, nextOffset) = try Self.readLine(path, at: queue.cursor.offset), nextOffset <= durable {
                let after = Position(segment: queue.cursor.segment, offset: nextOffset)
                do {
                    return (try CloudEventJSON.decode(line), after)
                } catch {
                    // Only a line damaged on disk gets here; keep it out of the way, loudly.
                    logger.error(
                        "skipped an unreadable spool line", metadata: ["sink.name": "\(sink)", "spool.error": "\(error)"])
                    queue.cursor = after
                    try advance(sink, to: after)
                    continue
                }
            }
            // The end of what is written: move on only from a sealed segment read to its end.
            guard let sealed = queue.sealedEnds[queue.cursor.segment], queue.cursor.offset >= sealed else { return nil }
            let finished = queue.cursor.segment
            queue.cursor = Position(segment: finished + 1, offset: 0)
            try advance(sink, to: queue.cursor)
        }
        return nil
    }

    /// Records that everything before `position` was forwarded; removes segments left behind.
    public func advance(_ sink: String, to position: Position) throws {
        let (folder, removed): (String, [Int]) = state.withLock { state in
            guard var queue = state.queues[sink] else { return ("", []) }
            let old = queue.cursor.segment
            queue.cursor = position
            for segment in old..<position.segment { queue.sealedEnds[segment] = nil }
            state.queues[sink] = queue
            return (queue.directory, Array(old..<position.segment))
        }
        guard !folder.isEmpty else { return }
        try Self.writeCursor(folder, position)
        for segment in removed {
            let path = Self.segmentPath(folder, segment)
            let size = Self.size(of: path)
            if unlink(path) == 0 { state.withLock { $0.bytes -= Int(size) } }
        }
        Gauge(label: "webhook.spool.bytes").record(bytes)
        let backlog = state.withLock { state -> Int64 in
            guard let queue = state.queues[sink] else { return 0 }
            return queue.cursor < queue.end
                ? Int64(queue.end.segment - queue.cursor.segment) * segmentBytes + queue.end.offset - queue.cursor.offset : 0
        }
        Gauge(label: "webhook.spool.backlog_bytes", dimensions: [("sink.name", sink)]).record(backlog)
    }

    /// Stops accepting and closes the files.
    public func shutdown() async {
        for signal in signals.values { signal.finish() }
        await appender.shutdown()
    }

    // MARK: - Files

    static func segmentPath(_ folder: String, _ segment: Int) -> String {
        let digits = String(segment)
        return folder + "/" + String(repeating: "0", count: max(0, 16 - digits.count)) + digits + ".jsonl"
    }

    static func segments(in folder: String) -> [Int] {
        guard let dir = opendir(folder) else { return [] }
        defer { closedir(dir) }
        var found: [Int] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name.hasSuffix(".jsonl"), let number = Int(name.dropLast(6)) { found.append(number) }
        }
        return found.sorted()
    }

    static func size(of path: String) -> Int64 {
        var info = stat()
        return stat(path, &info) == 0 ? Int64(info.st_size) : 0
    }

    static func readCursor(_ folder: String) -> Position? {
        guard let file = fopen(folder + "/cursor", "r") else { return nil }
        defer { fclose(file) }
        var segment = 0
        var offset: Int64 = 0
        var buffer = [CChar](repeating: 0, count: 64)
        guard fgets(&buffer, 64, file) != nil else { return nil }
        let parts = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            .split(separator: " ")
        guard parts.count == 2, let s = Int(parts[0]), let o = Int64(parts[1].trimmingSpaces) else { return nil }
        segment = s
        offset = o
        return Position(segment: segment, offset: offset)
    }

    /// Writes the cursor atomically (temp file + rename). Not fsynced: losing the newest
    /// cursor only means forwarding a few events again, which the ids make harmless.
    static func writeCursor(_ folder: String, _ position: Position) throws {
        let temporary = folder + "/cursor.tmp"
        guard let file = fopen(temporary, "w") else { throw Failure(description: "cannot write \(temporary)", isFull: false) }
        fputs("\(position.segment) \(position.offset)\n", file)
        fclose(file)
        guard rename(temporary, folder + "/cursor") == 0 else {
            throw Failure(description: "cannot rename \(temporary)", isFull: false)
        }
    }

    /// The line starting at `offset` (without its newline) and the offset after it; nil at the
    /// end of the file or when the last line is incomplete.
    static func readLine(_ path: String, at offset: Int64) throws -> ([UInt8], Int64)? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var line: [UInt8] = []
        var position = offset
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = pread(fd, &chunk, chunk.count, off_t(position))
            guard count > 0 else { return nil }
            if let newline = chunk[0..<count].firstIndex(of: 0x0A) {
                line.append(contentsOf: chunk[0..<newline])
                return (line, position + Int64(newline) + 1)
            }
            line.append(contentsOf: chunk[0..<count])
            position += Int64(count)
        }
    }
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var slice = self
        while slice.last == "\n" || slice.last == " " { slice.removeLast() }
        return slice
    }
}
