import DurableFile
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

/// The local durable queue (SPEC sections 6 and 8): events a required sink could not take are
/// fsynced here before the provider is answered 202, and forwarded later in order by that
/// sink's ``SpoolForwarder``.
///
/// Layout under `spool.directory`: one folder per sink holding append-only segment files
/// (`0000000000000001.jsonl`, …, CloudEvents lines with `data_base64`, so bodies come back
/// byte for byte, and the request headers the sink's templates read), a `cursor` file (the
/// segment and offset forwarded up to, replaced atomically), and `dead-letter.jsonl` for
/// events a sink refused for good.
///
/// Room: `maxBytes` bounds the bytes not yet forwarded plus the dead letters, never bytes
/// already forwarded. A segment is deleted as soon as the saved cursor has passed it, and
/// ``reclaim(_:)`` closes and deletes the segment being written once everything in it was
/// forwarded, so forwarded data leaves the disk (the forwarder calls it when caught up).
///
/// Forwarding is at least once: a crash between a delivery and the next saved cursor
/// re-delivers the events since that cursor (at most one forwarder batch), under the same
/// CloudEvents ids.
public final class Spool: Sendable {
    /// Why an event could not be spooled.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public let description: String
        public let isFull: Bool
    }

    /// A place in a sink's queue: a segment and a byte offset in it.
    public struct Position: Sendable, Equatable, Comparable, CustomStringConvertible {
        var segment: Int
        var offset: Int64
        public static func < (a: Position, b: Position) -> Bool { (a.segment, a.offset) < (b.segment, b.offset) }
        public var description: String { "\(segment) \(offset)" }
    }

    /// One sink's queue.
    ///
    /// Invariants (under the lock): `saved <= cursor <= end`; bytes in `[cursor, end)` are
    /// `pending`; every segment below `end.segment` has its final size in `sealedEnds`, and a
    /// reader leaves a segment only at that size (before it, an append may still be in flight).
    /// Segment files below `saved.segment` are gone or being deleted.
    struct Queue: Sendable {
        let name: String
        let directory: String
        let headers: [String]
        /// Forwarded up to here (in memory).
        var cursor: Position
        /// The cursor in the `cursor` file.
        var saved: Position
        /// Reserved up to here by appends.
        var end: Position
        var sealedEnds: [Int: Int64] = [:]
        /// Bytes in `[cursor, end)`: spooled, not yet forwarded.
        var pending: Int64 = 0

        /// Bytes from `cursor` up to `position`, crossing sealed segments.
        func bytes(to position: Position) -> Int64 {
            var total: Int64 = 0
            var at = cursor
            while at.segment < position.segment {
                total += (sealedEnds[at.segment] ?? at.offset) - at.offset
                at = Position(segment: at.segment + 1, offset: 0)
            }
            return total + position.offset - at.offset
        }
    }

    private struct State {
        var queues: [String: Queue]
        /// The dead-letter file's bytes, counting appends in flight.
        var deadLetterBytes: Int64
        /// Dead-letter appends reserved and not yet finished (see ``reclaim(_:)``).
        var deadLetterInFlight: Int64 = 0
        var pendingBytes: Int64 { queues.values.reduce(0) { $0 + $1.pending } }
    }

    private let directory: String
    private let maxBytes: Int64
    let segmentBytes: Int64
    private let appender: DurableAppender
    private let state: Mutex<State>
    private let signals: [String: SpoolSignal]
    private let logger: Logger
    private let bytesGauge = Gauge(label: "webhook.spool.bytes")
    private let deadLetterCounters: [String: Counter]
    private let backlogGauges: [String: Gauge]

    public var deadLetterPath: String { directory + "/dead-letter.jsonl" }

    /// The segment size for a spool of `maxBytes`: a sixteenth of it, between 64 KiB and
    /// 64 MiB, so a small spool still forwards and deletes in steps well below its size.
    public static func segmentBytes(forMaxBytes maxBytes: Int) -> Int64 {
        min(64 << 20, max(64 << 10, Int64(maxBytes) / 16))
    }

    /// Opens (creating) the spool for `sinks` (name → request headers its templates read),
    /// finding each sink's backlog from its segments and cursor, and deleting segments the
    /// cursor has passed.
    public init(directory: String, maxBytes: Int, sinks: [String: [String]], segmentBytes: Int64? = nil, logger: Logger)
        throws
    {
        self.directory = directory
        self.maxBytes = Int64(maxBytes)
        self.segmentBytes = segmentBytes ?? Self.segmentBytes(forMaxBytes: maxBytes)
        self.logger = logger
        self.appender = DurableAppender(name: "spool", logger: logger)
        var queues: [String: Queue] = [:]
        var signals: [String: SpoolSignal] = [:]
        for (sink, headers) in sinks {
            let folder = directory + "/" + TemplateSanitizer.pathComponent.clean(sink)
            try appender.prepare(folder + "/.keep")
            queues[sink] = Self.openQueue(sink, folder: folder, headers: headers, logger: logger)
            signals[sink] = SpoolSignal()
        }
        try appender.prepare(directory + "/dead-letter.jsonl")
        self.state = Mutex(State(queues: queues, deadLetterBytes: Self.size(of: directory + "/dead-letter.jsonl")))
        self.signals = signals
        self.deadLetterCounters = Dictionary(
            uniqueKeysWithValues: sinks.keys.map { ($0, Counter(label: "webhook.dead_letters.total", dimensions: [("sink.name", $0)])) }
        )
        self.backlogGauges = Dictionary(
            uniqueKeysWithValues: sinks.keys.map {
                ($0, Gauge(label: "webhook.spool.backlog_bytes", dimensions: [("sink.name", $0)]))
            })
        for queue in queues.values { backlogGauges[queue.name]?.record(queue.pending) }
        recordBytes()
    }

    /// A queue as found on disk: the cursor (or the first segment), segments before it deleted.
    private static func openQueue(_ sink: String, folder: String, headers: [String], logger: Logger) -> Queue {
        let segments = Self.segments(in: folder)
        var cursor = Self.readCursor(folder) ?? Position(segment: segments.first ?? 1, offset: 0)
        // A segment is deleted only once the cursor has passed it; a cursor left in a deleted
        // segment (a crash between the deletion and the next cursor save) goes on at the next.
        if !segments.contains(cursor.segment), let next = segments.first(where: { $0 > cursor.segment }) {
            cursor = Position(segment: next, offset: 0)
        }
        for segment in segments where segment < cursor.segment { unlink(segmentPath(folder, segment)) }
        let kept = segments.filter { $0 >= cursor.segment }
        // A line cut short by a crash was never fsynced, so never answered: cut it off, or the
        // reader would wait at it for good (an older segment is never appended to again).
        for segment in kept { cutTornTail(segmentPath(folder, segment), logger: logger) }
        let last = kept.last ?? cursor.segment
        var queue = Queue(
            name: sink, directory: folder, headers: headers, cursor: cursor, saved: cursor,
            end: Position(segment: last, offset: size(of: segmentPath(folder, last))))
        for segment in kept where segment < last { queue.sealedEnds[segment] = size(of: segmentPath(folder, segment)) }
        if queue.cursor > queue.end { queue.cursor = queue.end }
        if let sealed = queue.sealedEnds[queue.cursor.segment], queue.cursor.offset > sealed {
            queue.cursor.offset = sealed
        }
        queue.saved = queue.cursor
        queue.pending = queue.bytes(to: queue.end)
        if queue.pending > 0 {
            logger.info("spool backlog found", metadata: ["sink.name": "\(sink)", "spool.backlog_bytes": "\(queue.pending)"])
        }
        return queue
    }

    /// True while `sink` has spooled events not yet forwarded: new events for it then go to
    /// the spool too, so they reach the sink in order.
    public func hasBacklog(for sink: String) -> Bool {
        state.withLock {
            guard let queue = $0.queues[sink] else { return false }
            return queue.cursor < queue.end
        }
    }

    /// Bytes counted against `spool.maxBytes`: not yet forwarded, plus the dead letters.
    public var bytes: Int { state.withLock { Int($0.pendingBytes + $0.deadLetterBytes) } }

    /// `sink`'s bytes not yet forwarded.
    public func backlogBytes(for sink: String) -> Int { state.withLock { Int($0.queues[sink]?.pending ?? 0) } }

    /// The size on disk of `sink`'s segment files (forwarded or not), for tests and checks.
    public func segmentFileBytes(for sink: String) -> Int {
        guard let folder = state.withLock({ $0.queues[sink]?.directory }) else { return 0 }
        return Self.segments(in: folder).reduce(0) { $0 + Int(Self.size(of: Self.segmentPath(folder, $1))) }
    }

    /// Spools `event` for `sink`; returns once it is fsynced. Throws when the spool is full
    /// (`spool.maxBytes`) or the disk refuses the write.
    public func append(_ event: WebhookEvent, for sink: String) async throws(Failure) {
        guard let headers = state.withLock({ $0.queues[sink]?.headers }) else {
            throw Failure(description: "no spool for sink \(sink)", isFull: false)
        }
        var line = ByteBufferAllocator().buffer(capacity: event.data.readableBytes * 4 / 3 + 512)
        CloudEventJSON.appendLine(event, to: &line, dataAsBase64: true, headers: headers)
        let size = Int64(line.readableBytes)
        // Reserve the room and pick the segment under the lock; rotate when it is big enough.
        let reserved: (path: String, segment: Int)? = state.withLock { state in
            guard state.pendingBytes + state.deadLetterBytes + size <= maxBytes, var queue = state.queues[sink] else {
                return nil
            }
            if queue.end.offset >= segmentBytes {
                queue.sealedEnds[queue.end.segment] = queue.end.offset
                queue.end = Position(segment: queue.end.segment + 1, offset: 0)
            }
            queue.end.offset += size
            queue.pending += size
            state.queues[sink] = queue
            return (Self.segmentPath(queue.directory, queue.end.segment), queue.end.segment)
        }
        guard let reserved else {
            throw Failure(description: "the spool is full (spool.maxBytes = \(maxBytes))", isFull: true)
        }
        do {
            _ = try await appender.append(line, to: reserved.path)
        } catch {
            // The appender cut the line back off; give the room back. The end stays ahead by
            // `size` only if later lines landed meanwhile, which the reader tolerates (it reads
            // lines, not offsets).
            state.withLock { state in
                guard var queue = state.queues[sink] else { return }
                queue.pending -= size
                if queue.end.segment == reserved.segment {
                    queue.end.offset -= size
                } else if queue.sealedEnds[reserved.segment] != nil {
                    queue.sealedEnds[reserved.segment]! -= size
                }
                state.queues[sink] = queue
            }
            throw Failure(description: "\(error)", isFull: false)
        }
        recordBytes()
        backlogGauges[sink]?.record(backlogBytes(for: sink))
        signals[sink]?.signal()
    }

    /// Writes `event` to the dead-letter file with the sink and the reason. At request time
    /// the dead letter needs room like any spooled event (`moving` false); an event the
    /// forwarder moves from a sink's queue to the dead letters already had its room.
    public func deadLetter(_ event: WebhookEvent, sink: String, reason: String, moving: Bool = false) async throws(Failure) {
        var line = ByteBufferAllocator().buffer(capacity: event.data.readableBytes * 4 / 3 + 512)
        CloudEventJSON.appendLine(
            event, to: &line, dataAsBase64: true, extensions: [("deadlettersink", sink), ("deadletterreason", reason)])
        let size = Int64(line.readableBytes)
        let room = state.withLock { state -> Bool in
            guard moving || state.pendingBytes + state.deadLetterBytes + size <= maxBytes else { return false }
            state.deadLetterBytes += size
            state.deadLetterInFlight += size
            return true
        }
        guard room else { throw Failure(description: "the spool is full (spool.maxBytes = \(maxBytes))", isFull: true) }
        do {
            _ = try await appender.append(line, to: deadLetterPath)
            state.withLock { $0.deadLetterInFlight -= size }
        } catch {
            state.withLock { state in
                state.deadLetterBytes -= size
                state.deadLetterInFlight -= size
            }
            throw Failure(description: "\(error)", isFull: false)
        }
        (deadLetterCounters[sink] ?? Counter(label: "webhook.dead_letters.total", dimensions: [("sink.name", sink)])).increment()
        recordBytes()
        logger.warning(
            "dead-lettered", metadata: ["sink.name": "\(sink)", "webhook.id": "\(event.id)", "sink.error": "\(reason)"])
    }

    // MARK: - Reading (the forwarder)

    /// Wakes `sink`'s forwarder when something is spooled for it.
    func signal(for sink: String) -> SpoolSignal? { signals[sink] }

    /// The next spooled event for `sink` and the position after it, or nil when caught up
    /// with what is durable.
    public func next(for sink: String) throws -> (WebhookEvent, Position)? {
        guard var queue = state.withLock({ $0.queues[sink] }) else { return nil }
        while queue.cursor < queue.end {
            let path = Self.segmentPath(queue.directory, queue.cursor.segment)
            let read = try Self.readLine(path, at: queue.cursor.offset)
            // Only fsynced lines: a line still being written could be cut off again if its
            // fsync fails, and a cursor moved past it would then skip the next event. Asked
            // after the read: a file the appender opens meanwhile then reports its size at
            // opening (nil means it was not open, so what was read predates any append).
            let durable = appender.durableSize(of: path) ?? Int64.max
            if let (line, nextOffset) = read, nextOffset <= durable {
                let after = Position(segment: queue.cursor.segment, offset: nextOffset)
                do {
                    var event = try CloudEventJSON.decode(line)
                    // `{json:/pointer}` templates read the body as JSON, as they did at request time.
                    if event.bodyJSON == nil { event.bodyJSON = try? JSONParser.parse(event.data.readableBytesView) }
                    return (event, after)
                } catch {
                    // Only a line damaged on disk gets here; keep it out of the way, loudly.
                    logger.error(
                        "skipped an unreadable spool line",
                        metadata: [
                            "sink.name": "\(sink)", "spool.position": "\(queue.cursor)", "spool.error": "\(error)",
                        ])
                    advance(sink, to: after)
                    queue.cursor = after
                    continue
                }
            }
            // The end of what is written: move on only from a sealed segment read to its end.
            guard let sealed = queue.sealedEnds[queue.cursor.segment], queue.cursor.offset >= sealed else { return nil }
            let next = Position(segment: queue.cursor.segment + 1, offset: 0)
            advance(sink, to: next)
            queue.cursor = next
        }
        return nil
    }

    /// Records (in memory) that everything before `position` was forwarded; ``saveCursor(_:)``
    /// makes it durable.
    public func advance(_ sink: String, to position: Position) {
        let pending = state.withLock { state -> Int64 in
            guard var queue = state.queues[sink], queue.cursor < position else { return -1 }
            queue.pending -= queue.bytes(to: position)
            queue.cursor = position
            state.queues[sink] = queue
            return queue.pending
        }
        guard pending >= 0 else { return }
        backlogGauges[sink]?.record(pending)
        recordBytes()
    }

    /// Saves `sink`'s cursor (atomically: a crash or a full disk leaves the old or the new one)
    /// and deletes the segments it has passed. Throws when the cursor can't be written; the
    /// old one stays, and segments are kept until a save succeeds.
    public func saveCursor(_ sink: String) async throws(AtomicFile.Failure) {
        guard let queue = state.withLock({ $0.queues[sink] }), queue.cursor != queue.saved else { return }
        try AtomicFile.replace(queue.directory + "/cursor", with: Array("\(queue.cursor)\n".utf8))
        state.withLock { state in
            guard var current = state.queues[sink], queue.cursor > current.saved else { return }
            current.saved = queue.cursor
            for segment in current.sealedEnds.keys where segment < queue.cursor.segment { current.sealedEnds[segment] = nil }
            state.queues[sink] = current
        }
        for segment in Self.segments(in: queue.directory) where segment < queue.cursor.segment {
            let path = Self.segmentPath(queue.directory, segment)
            unlink(path)
            await appender.forget(path)
        }
    }

    /// Gives forwarded bytes back to the disk when `sink` is caught up: the segment being
    /// written is sealed and, once the cursor is saved past it, deleted; the next append starts
    /// a new one. Also re-reads the dead-letter file's size, so truncating it (after a replay)
    /// gives its room back. Does nothing while events are still to be forwarded.
    public func reclaim(_ sink: String) async throws(AtomicFile.Failure) {
        state.withLock { state in
            guard var queue = state.queues[sink], queue.cursor == queue.end, queue.end.offset > 0 else { return }
            queue.sealedEnds[queue.end.segment] = queue.end.offset
            queue.end = Position(segment: queue.end.segment + 1, offset: 0)
            queue.cursor = queue.end
            state.queues[sink] = queue
        }
        // Appends in flight are counted on top of the file (one that already landed is then
        // counted twice until the next reclaim: too much, never too little).
        let deadLetters = Self.size(of: deadLetterPath)
        state.withLock { $0.deadLetterBytes = deadLetters + $0.deadLetterInFlight }
        try await saveCursor(sink)
        recordBytes()
    }

    /// Stops the forwarders' waits and closes the files.
    public func shutdown() async {
        for signal in signals.values { signal.finish() }
        await appender.shutdown()
    }

    private func recordBytes() { bytesGauge.record(bytes) }

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

    /// Cuts `path` back to just after its last newline when it ends inside a line.
    static func cutTornTail(_ path: String, logger: Logger) {
        let fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let size = Int64(lseek(fd, 0, SEEK_END))
        var end = size
        var chunk = [UInt8](repeating: 0, count: 65536)
        while end > 0 {
            let start = max(0, end - Int64(chunk.count))
            let count = pread(fd, &chunk, Int(end - start), off_t(start))
            guard count == Int(end - start) else { return }
            if let newline = chunk[0..<count].lastIndex(of: 0x0A) {
                end = start + Int64(newline) + 1
                break
            }
            end = start
        }
        guard end < size else { return }
        guard ftruncate(fd, off_t(end)) == 0, fsync(fd) == 0 else { return }
        logger.warning(
            "cut a spool line a crash left unfinished",
            metadata: ["spool.path": "\(path)", "spool.bytes": "\(size - end)"])
    }

    static func size(of path: String) -> Int64 {
        var info = stat()
        return stat(path, &info) == 0 ? Int64(info.st_size) : 0
    }

    /// The saved cursor, or nil when there is none (or it can't be read: forwarding then
    /// starts at the first segment, which re-sends but loses nothing).
    static func readCursor(_ folder: String) -> Position? {
        guard let bytes = AtomicFile.contents(of: folder + "/cursor") else { return nil }
        let parts = String(decoding: bytes, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard parts.count == 2, let segment = Int(parts[0]), let offset = Int64(parts[1]), segment >= 0, offset >= 0 else {
            return nil
        }
        return Position(segment: segment, offset: offset)
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
