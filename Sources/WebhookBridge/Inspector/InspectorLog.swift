import Synchronization
import WebhookCore

/// One request as the inspector shows it (SPEC section 11): what came in, what became of it,
/// and where it went. Header values that carry a secret are masked when the record is made,
/// and the body is cut at the inspector's `maxBodyBytes`, so nothing held here is a secret
/// and nothing is larger than its bound.
struct InspectedRequest: Sendable {
    /// A sink's part in the request: where the event landed, or why it did not.
    struct SinkResult: Sendable, Equatable {
        var sink: String
        /// `topic/partition@offset`, `stream/entry-id`, `path:offset`, `host/path status`.
        var position: String?
        var failure: String?
    }

    /// Increasing from 1 for the process; the API's and the event stream's ids.
    var sequence: UInt64 = 0
    var time: Timestamp
    var source: String
    var method: String
    var path: String
    var client: String?
    var status = 0
    /// `accepted`, `queued`, `duplicate`, `filtered`, `handshake`, `rejected` or `dead-lettered`.
    var outcome = ""
    /// Why it was rejected, as the log says it.
    var cause: String?
    var eventID: String?
    var type: String?
    var keyIndex: Int?
    var sinks: [SinkResult] = []
    var latencyMicroseconds = 0
    /// Names as received; values masked where they carry a secret, and cut to
    /// ``InspectorLog/headerBytes`` in all.
    var headers: [(name: String, value: String)] = []
    /// The body's first `maxBodyBytes`.
    var body: [UInt8] = []
    /// The whole body's size: more than `body.count` when it was cut.
    var bodyBytes = 0

    var isTruncated: Bool { bodyBytes > body.count }
}

/// The last `recent` requests, in a ring: the inspector's memory is bounded by `recent` ×
/// (`maxBodyBytes` + ``headerBytes``) whatever the load, because a record's body and headers
/// are cut to those sizes when it is made and the oldest record makes room for the newest.
final class InspectorLog: Sendable {
    /// The bytes of header names and values one record keeps at most.
    static let headerBytes = 8192

    let capacity: Int
    let maxBodyBytes: Int

    private struct Ring {
        var slots: [InspectedRequest?]
        /// Where the next record goes.
        var next = 0
        var lastSequence: UInt64 = 0
    }

    private let ring: Mutex<Ring>

    init(recent: Int, maxBodyBytes: Int) {
        capacity = max(1, recent)
        self.maxBodyBytes = max(0, maxBodyBytes)
        ring = Mutex(Ring(slots: Array(repeating: nil, count: max(1, recent))))
    }

    /// Keeps `request` (its body and headers cut and masked here) in place of the oldest one
    /// when full; returns its sequence number.
    @discardableResult
    func record(_ request: InspectedRequest, body: some Collection<UInt8>, headers: [(String, String)]) -> UInt64 {
        var kept = request
        kept.bodyBytes = body.count
        kept.body = Array(body.prefix(maxBodyBytes))
        kept.headers = Self.kept(headers)
        return ring.withLock { ring in
            ring.lastSequence += 1
            kept.sequence = ring.lastSequence
            ring.slots[ring.next] = kept
            ring.next = (ring.next + 1) % ring.slots.count
            return kept.sequence
        }
    }

    /// The records held, newest first, those `include` accepts, at most `limit`.
    func recent(limit: Int = .max, where include: (InspectedRequest) -> Bool = { _ in true }) -> [InspectedRequest] {
        ring.withLock { ring in
            var found: [InspectedRequest] = []
            var index = ring.next
            for _ in 0..<ring.slots.count {
                index = (index - 1 + ring.slots.count) % ring.slots.count
                guard let request = ring.slots[index] else { break }
                if include(request) {
                    found.append(request)
                    if found.count >= limit { break }
                }
            }
            return found
        }
    }

    /// The records after `sequence` that are still held, oldest first: what an event stream
    /// resumed with `Last-Event-ID: sequence` sends (records older than the ring are gone;
    /// `missed` says how many of those after `sequence` were).
    func since(_ sequence: UInt64) -> (requests: [InspectedRequest], missed: UInt64) {
        ring.withLock { ring in
            guard sequence < ring.lastSequence else { return ([], 0) }
            let held = min(UInt64(ring.slots.count), ring.lastSequence)
            let oldestHeld = ring.lastSequence - held + 1
            let first = max(sequence + 1, oldestHeld)
            var found: [InspectedRequest] = []
            found.reserveCapacity(Int(ring.lastSequence - first + 1))
            for wanted in first...ring.lastSequence {
                let back = Int(ring.lastSequence - wanted)
                let index = (ring.next - 1 - back + 2 * ring.slots.count) % ring.slots.count
                if let request = ring.slots[index], request.sequence == wanted { found.append(request) }
            }
            return (found, first - (sequence + 1))
        }
    }

    /// The record with `sequence`, while it is still held.
    func request(_ sequence: UInt64) -> InspectedRequest? {
        ring.withLock { ring in
            guard sequence > 0, sequence <= ring.lastSequence, ring.lastSequence - sequence < UInt64(ring.slots.count) else {
                return nil
            }
            let back = Int(ring.lastSequence - sequence)
            let index = (ring.next - 1 - back + 2 * ring.slots.count) % ring.slots.count
            return ring.slots[index].flatMap { $0.sequence == sequence ? $0 : nil }
        }
    }

    /// The bytes of bodies and header text held now (what the memory bound counts).
    var heldBytes: Int {
        ring.withLock { ring in
            ring.slots.reduce(0) { total, slot in
                total + (slot.map { $0.body.count + $0.headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count } } ?? 0)
            }
        }
    }

    // MARK: - Masking

    /// Parts of header names whose values carry a secret: a signature (`hmac` for Shopify's
    /// and others' names without the word), a credential, a session.
    static let secretNameParts = [
        "signature", "hmac", "authorization", "cookie", "token", "secret", "password", "api-key", "apikey",
    ]

    /// Whether a header's value is masked.
    static func isSecret(_ name: String) -> Bool {
        let lower = name.lowercased()
        return secretNameParts.contains { lower.contains($0) }
    }

    /// A masked value: its length only.
    static func masked(_ value: String) -> String { "(masked, \(value.utf8.count) bytes)" }

    /// The headers as kept: secrets masked, the whole cut to ``headerBytes`` (a value cut
    /// short ends in `…`; headers past the bound are left out, and a last one says how many).
    static func kept(_ headers: [(String, String)]) -> [(name: String, value: String)] {
        var kept: [(name: String, value: String)] = []
        // Room for the line that says how many were left out.
        let limit = headerBytes - 64
        var used = 0
        for (index, (name, value)) in headers.enumerated() {
            let shown = isSecret(name) ? masked(value) : value
            let room = limit - used - name.utf8.count
            if room <= 0 {
                kept.append(("…", "\(headers.count - index) more headers not kept"))
                break
            }
            if shown.utf8.count <= room {
                kept.append((name, shown))
                used += name.utf8.count + shown.utf8.count
            } else {
                var cut = Array(shown.utf8.prefix(max(0, room - 3)))
                while let last = cut.last, last & 0xC0 == 0x80 { cut.removeLast() }  // not inside a character
                if let last = cut.last, last >= 0xC0 { cut.removeLast() }
                kept.append((name, String(decoding: cut, as: UTF8.self) + "…"))
                used = limit
            }
        }
        return kept
    }
}
