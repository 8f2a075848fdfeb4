import DurableFile
import Logging
import Metrics
import NIOCore
import Synchronization
import WebhookCore
import WebhookEncoding

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
/// byte for byte, and the request headers the sink's templates read), a `position` file (the
/// segment and offset forwarded up to, a ``SlotFile`` saved in place so a full disk can't stop
/// it; earlier versions kept a `cursor` text file, which is read once and replaced), and
/// `dead-letter.jsonl` for events a sink refused for good and for spool lines damaged on disk.
///
/// Room: `maxBytes` bounds the bytes not yet forwarded plus the dead letters, never bytes
/// already forwarded. A segment is deleted as soon as the saved cursor has passed it, and
/// ``reclaim(_:)`` closes and deletes the segment being written once everything in it was
/// forwarded, so forwarded data leaves the disk (the forwarder calls it when caught up).
///
/// Forwarding is at least once: a crash between a delivery and the next saved cursor
/// re-delivers the events since that cursor (at most one forwarder batch), under the same
/// CloudEvents ids. A saved cursor that points past the data is not believed: forwarding
/// starts again at the first segment (more duplicates, nothing lost).
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

        /// Parses `description` (a newline after it allowed): the position file's record and
        /// the cursor file of earlier versions.
        init?(_ bytes: [UInt8]) {
            let parts = String(decoding: bytes, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" })
            guard parts.count == 2, let segment = Int(parts[0]), let offset = Int64(parts[1]), segment >= 0, offset >= 0
            else { return nil }
            self.init(segment: segment, offset: offset)
        }

        init(segment: Int, offset: Int64) {
            self.segment = segment
            self.offset = offset
        }
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
        /// The cursor in the `position` file.
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
    private let damagedLineCounters: [String: Counter]
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
            uniqueKeysWithValues: sinks.keys.map {
                ($0, Counter(label: "webhook.dead_letters.total", dimensions: [("sink.name", $0)]))
            }
        )
        self.damagedLineCounters = Dictionary(
            uniqueKeysWithValues: sinks.keys.map {
                ($0, Counter(label: "webhook.spool.damaged_lines.total", dimensions: [("sink.name", $0)]))
            })
        self.backlogGauges = Dictionary(
            uniqueKeysWithValues: sinks.keys.map {
                ($0, Gauge(label: "webhook.spool.backlog_bytes", dimensions: [("sink.name", $0)]))
            })
        for queue in queues.values { backlogGauges[queue.name]?.record(queue.pending) }
        recordBytes()
    }

    /// A queue as found on disk: resuming at the saved position when it points into the data,
    /// segments before it deleted.
    private static func openQueue(_ sink: String, folder: String, headers: [String], logger: Logger) -> Queue {
        let segments = Self.segments(in: folder)
        let cursor = resumePosition(readPosition(folder), segments: segments, folder: folder, sink: sink, logger: logger)
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
        queue.pending = queue.bytes(to: queue.end)
        if queue.pending > 0 {
            logger.info("spool backlog found", metadata: ["sink.name": "\(sink)", "spool.backlog_bytes": "\(queue.pending)"])
        }
        // The position file is created now, while there is room, so later saves need none.
        do {
            try savePosition(cursor, folder: folder)
        } catch {
            logger.warning(
                "cannot create the spool position file; saves retry it",
                metadata: ["sink.name": "\(sink)", "spool.error": "\(error)"])
        }
        return queue
    }

    /// Where forwarding resumes: `saved` when it points into the segments, else the first
    /// segment, so a bad position costs duplicates, never events.
    ///
    /// Believed: a position in an existing segment at the start of a line; one in a segment
    /// that is gone while later ones exist, which goes on at the next one (nothing between
    /// them is left to send); and one just after the last segment at offset 0 (everything
    /// forwarded: ``reclaim(_:)`` sealed the last segment, and a stop came before its
    /// deletion). Anything else (a hand edit, a bug) would skip or delete the backlog.
    static func resumePosition(_ saved: Position?, segments: [Int], folder: String, sink: String, logger: Logger)
        -> Position
    {
        guard let first = segments.first, let last = segments.last else {
            return Position(segment: saved?.segment ?? 1, offset: 0)
        }
        guard let saved else { return Position(segment: first, offset: 0) }
        if segments.contains(saved.segment) {
            if isLineStart(saved.offset, in: segmentPath(folder, saved.segment)) { return saved }
        } else if let next = segments.first(where: { $0 > saved.segment }) {
            return Position(segment: next, offset: 0)
        } else if saved == Position(segment: last + 1, offset: 0) {
            return saved
        }
        logger.error(
            "the saved spool position is past the spooled data; forwarding again from the first segment",
            metadata: [
                "sink.name": "\(sink)", "spool.position": "\(saved)", "spool.segments": "\(first)-\(last)",
            ])
        return Position(segment: first, offset: 0)
    }

    /// True when `offset` is where a line of the file at `path` starts (0, or just after a newline).
    static func isLineStart(_ offset: Int64, in path: String) -> Bool {
        guard offset > 0 else { return offset == 0 }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var byte: UInt8 = 0
        return pread(fd, &byte, 1, off_t(offset - 1)) == 1 && byte == 0x0A
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
    /// `details` are more extension attributes (an HTTP sink's answer).
    public func deadLetter(
        _ event: WebhookEvent, sink: String, reason: String, details: [(name: String, value: String)] = [],
        moving: Bool = false
    ) async throws(Failure) {
        var line = ByteBufferAllocator().buffer(capacity: event.data.readableBytes * 4 / 3 + 512)
        CloudEventJSON.appendLine(
            event, to: &line, dataAsBase64: true,
            extensions: [("deadlettersink", sink), ("deadletterreason", reason)] + details.map { ($0.name, $0.value) })
        try await appendDeadLetter(line, moving: moving)
        (deadLetterCounters[sink] ?? Counter(label: "webhook.dead_letters.total", dimensions: [("sink.name", sink)])).increment()
        logger.warning(
            "dead-lettered", metadata: ["sink.name": "\(sink)", "webhook.id": "\(event.id)", "sink.error": "\(reason)"])
    }

    /// Moves a line of `sink`'s queue that can't be read (damaged on disk) to the dead-letter
    /// file as it was, with the reason: `raw` holds the line as text, or `raw_base64` when it
    /// is not UTF-8. It is counted in `webhook.spool.damaged_lines.total` so an alert can fire.
    private func setAside(_ raw: [UInt8], sink: String, at position: Position, reason: String) async throws(Failure) {
        let reason = "unreadable spool line at \(position): \(reason)"
        let record =
            if let text = String(validating: raw, as: UTF8.self) {
                JSONWriter.object(["deadlettersink": sink, "deadletterreason": reason, "raw": text])
            } else {
                JSONWriter.object(["deadlettersink": sink, "deadletterreason": reason, "raw_base64": Base64.encode(raw)])
            }
        var line = ByteBufferAllocator().buffer(capacity: record.count + 1)
        line.writeBytes(record)
        line.writeInteger(UInt8(0x0A))
        try await appendDeadLetter(line, moving: true)
        damagedLineCounters[sink]?.increment()
        logger.error(
            "set aside a damaged spool line in the dead letters",
            metadata: ["sink.name": "\(sink)", "spool.position": "\(position)", "spool.error": "\(reason)"])
    }

    /// Appends `line` to the dead-letter file, counting its room (see ``deadLetter(_:sink:reason:moving:)``).
    private func appendDeadLetter(_ line: ByteBuffer, moving: Bool) async throws(Failure) {
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
        recordBytes()
    }

    // MARK: - Reading (the forwarder)

    /// Wakes `sink`'s forwarder when something is spooled for it.
    func signal(for sink: String) -> SpoolSignal? { signals[sink] }

    /// The next spooled event for `sink` and the position after it, or nil when caught up
    /// with what is durable. A line on the way that can't be read (damaged on disk) is moved to
    /// the dead letters; throws when that fails (the line is read again on the next call).
    public func next(for sink: String) async throws -> (WebhookEvent, Position)? {
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
                    // Only a line damaged on disk gets here: set it aside, where an operator can
                    // look at it, before moving past it.
                    try await setAside(line, sink: sink, at: queue.cursor, reason: "\(error)")
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

    /// Saves `sink`'s cursor (in place, see ``savePosition(_:folder:)``: a crash leaves the old
    /// or the new one, and a full disk does not stop it) and deletes the segments it has
    /// passed. Throws when the cursor can't be written; the old one stays, and segments are
    /// kept until a save succeeds. One save per sink at a time: its forwarder's.
    public func saveCursor(_ sink: String) async throws(AtomicFile.Failure) {
        guard let queue = state.withLock({ $0.queues[sink] }), queue.cursor != queue.saved else { return }
        try Self.savePosition(queue.cursor, folder: queue.directory)
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

    /// The saved cursor: the position file's newest record, else (a spool of an earlier
    /// version) the `cursor` file; nil when there is neither or it can't be read (forwarding
    /// then starts at the first segment, which re-sends but loses nothing).
    static func readPosition(_ folder: String) -> Position? {
        if let record = SlotFile.read(folder + "/position") { return Position(record) }
        return AtomicFile.contents(of: folder + "/cursor").flatMap(Position.init)
    }

    /// Saves `position` into the position file.
    ///
    /// In place rather than by an atomic rename (``SlotFile``): the rename's new file needs a
    /// free block, and when the disk is full of forwarded segments a cursor that can't be saved
    /// keeps them there (they are deleted only once a cursor past them is saved) and makes the
    /// next start re-send the whole spool. Deleting them before the save instead would let a
    /// crash in between leave the old cursor pointing at deleted data, re-sending far more
    /// than a batch. A crash during the in-place write still leaves the old or the new cursor.
    /// The `cursor` file of an earlier version is removed once this one holds the position.
    static func savePosition(_ position: Position, folder: String) throws(AtomicFile.Failure) {
        try SlotFile.write(folder + "/position", Array("\(position)\n".utf8))
        unlink(folder + "/cursor")
    }

    /// The line starting at `offset` (without its newline) and the offset after it; nil at the
    /// end of the file or when the last line is incomplete.
    public static func readLine(_ path: String, at offset: Int64) throws -> ([UInt8], Int64)? {
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
