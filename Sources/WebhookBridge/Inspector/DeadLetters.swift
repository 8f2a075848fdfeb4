import Spool
import Synchronization
import WebhookCore
import WebhookEncoding

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One line of the dead-letter file as the inspector lists it.
struct DeadLetter: Sendable {
    /// The line's byte offset in the file: its id for the API and for replay.
    var offset: Int64
    var sink: String
    var reason: String
    var id: String?
    var source: String?
    var type: String?
    var time: String?
    /// The other attributes the sink added (an HTTP receiver's status and answer).
    var details: [(name: String, value: String)]
    /// A damaged spool line set aside as it was (it holds no event to replay).
    var isRaw: Bool
    /// The line's hash: the same offset holds another line once the file was truncated or
    /// replaced, and a replay's mark or a replay itself must not take one for the other.
    var fingerprint: Int
}

/// The spool's dead-letter file, read for the inspector: the newest lines, and a line by its
/// offset for replay. The file is append-only: replaying a dead letter does not remove it;
/// which were replayed, and with what result, is remembered by the process.
final class DeadLetterShelf: Sendable {
    let path: String
    /// Of the file's end, the bytes a listing reads at most.
    static let listedBytes: Int64 = 32 << 20

    struct Replayed: Sendable {
        var time: Timestamp
        /// nil: delivered.
        var failure: String?
        /// The replayed line's (``DeadLetter/fingerprint``).
        var fingerprint: Int
    }

    private let replayed = Mutex<[Int64: Replayed]>([:])

    init(path: String) { self.path = path }

    /// The dead letters in the file's last ``listedBytes``, newest first, those `include`
    /// accepts, at most `limit`; and whether older ones were left unread.
    func list(limit: Int, where include: (DeadLetter) -> Bool) -> (letters: [DeadLetter], olderUnread: Bool) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return ([], false) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return ([], false) }
        let size = Int64(info.st_size)
        let start = max(0, size - Self.listedBytes)
        var bytes = [UInt8](repeating: 0, count: Int(size - start))
        var read = 0
        while read < bytes.count {
            let count = bytes.withUnsafeMutableBytes {
                pread(fd, $0.baseAddress! + read, $0.count - read, off_t(start) + off_t(read))
            }
            guard count > 0 else { break }
            read += count
        }
        bytes.removeLast(bytes.count - read)
        var letters: [DeadLetter] = []
        var end = bytes.count
        // Lines end in a newline; a last line without one is still being written.
        if let last = bytes.lastIndex(of: 0x0A) { end = last } else { return ([], start > 0) }
        while end > 0 && letters.count < limit {
            let lineStart = bytes[..<end].lastIndex(of: 0x0A).map { $0 + 1 } ?? 0
            // The first line read may have begun before `start`.
            if lineStart == 0 && start > 0 { break }
            if let letter = Self.letter(bytes[lineStart..<end], offset: start + Int64(lineStart)), include(letter) {
                letters.append(letter)
            }
            end = lineStart - 1
        }
        return (letters, start > 0)
    }

    /// The dead letter that starts at `offset`, read whole.
    func line(at offset: Int64) -> [UInt8]? {
        guard offset >= 0 else { return nil }
        if offset > 0 {
            // Only a line's start is an id: the byte before it ends the previous line.
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { return nil }
            defer { close(fd) }
            var byte: UInt8 = 0
            guard pread(fd, &byte, 1, off_t(offset - 1)) == 1, byte == 0x0A else { return nil }
        }
        return (try? Spool.readLine(path, at: offset))?.0
    }

    func letter(at offset: Int64) -> DeadLetter? { line(at: offset).flatMap { Self.letter($0, offset: offset) } }

    /// `letter`'s line as the file holds it now; nil when it no longer does (the file was
    /// truncated or replaced since the letter was read).
    func currentLine(of letter: DeadLetter) -> [UInt8]? {
        guard let line = line(at: letter.offset), Self.fingerprint(line) == letter.fingerprint else { return nil }
        return line
    }

    /// Remembers a replay's result.
    func noteReplay(_ letter: DeadLetter, failure: String?) {
        replayed.withLock {
            $0[letter.offset] = Replayed(time: .now(), failure: failure, fingerprint: letter.fingerprint)
        }
    }

    /// The last replay of `letter` (of this very line, not another at its offset).
    func replay(of letter: DeadLetter) -> Replayed? {
        replayed.withLock { $0[letter.offset] }.flatMap { $0.fingerprint == letter.fingerprint ? $0 : nil }
    }

    static func fingerprint(_ line: some Collection<UInt8>) -> Int {
        var hasher = Hasher()
        if line.withContiguousStorageIfAvailable({ hasher.combine(bytes: UnsafeRawBufferPointer($0)) }) == nil {
            for byte in line { hasher.combine(byte) }
        }
        return hasher.finalize()
    }

    /// The attributes CloudEvents itself defines, and the event's data: not details.
    private static let known: Set<String> = [
        "specversion", "id", "source", "type", "time", "datacontenttype", "data", "data_base64", "deadlettersink",
        "deadletterreason", "raw", "raw_base64", "webhookheaders", "webhookscheme", "webhookkey", "traceparent",
        "tracestate",
    ]

    static func letter(_ line: some Collection<UInt8>, offset: Int64) -> DeadLetter? {
        guard case .object(let members)? = try? JSONParser.parse(line) else { return nil }
        func text(_ name: String) -> String? {
            guard let value = members.first(where: { $0.0 == name })?.1, case .string(let text) = value else { return nil }
            return text
        }
        guard let sink = text("deadlettersink") else { return nil }
        let details = members.compactMap { name, value -> (name: String, value: String)? in
            guard !known.contains(name), let text = value.scalarText else { return nil }
            return (name, text)
        }
        return DeadLetter(
            offset: offset, sink: sink, reason: text("deadletterreason") ?? "", id: text("id"), source: text("source"),
            type: text("type"), time: text("time"), details: details,
            isRaw: members.contains { $0.0 == "raw" || $0.0 == "raw_base64" }, fingerprint: fingerprint(line))
    }
}
