import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import WebhookCore

/// One request as the inspector shows it (SPEC section 11): what came in, what became of it,
/// and where it went. The body is cut at the inspector's `maxBodyBytes` and the headers at
/// ``InspectorLog/headerBytes`` when the record is made, so nothing held is larger than its
/// bound; header values that carry a secret are masked whenever a record is shown
/// (``InspectorLog/shownHeaders(_:)``).
struct InspectedRequest: Sendable {
    /// A sink's part in the request: where the event landed, or why it did not.
    struct SinkResult: Sendable, Equatable {
        var sink: String
        var required: Bool
        /// The sink's receipt (formatted only when shown); nil when it failed or has not
        /// answered yet.
        var receipt: DeliveryReceipt?
        /// `topic/partition@offset`, `stream/entry-id`, `path:offset`, `host/path status`.
        var position: String? { receipt?.position }
        var failure: String?
        /// Failed, and the event went to the spool (`queued`) or the dead letters
        /// (`dead-lettered`) for this sink.
        var fate: String?
    }

    /// Increasing from 1 for the process; the API's ids.
    var sequence: UInt64 = 0
    var time: Timestamp
    var source: String
    var method: String
    /// The request's path and query, as it came.
    var uri: String
    var client: String?
    var status = 0
    /// `accepted`, `queued`, `duplicate`, `filtered`, `handshake`, `rejected` or `dead-lettered`.
    var outcome = ""
    /// Why it was rejected, as the log says it (`signature_invalid`, `rate_limited`, …),
    /// and the log's detail.
    var cause: String?
    var detail: String?
    var eventID: String?
    var type: String?
    /// The events a split batch held (nil: not a batch).
    var batchSize: Int?
    var keyIndex: Int?
    var sinks: [SinkResult] = []
    var latencyMicroseconds = 0
    /// As received; cut to ``InspectorLog/headerBytes`` in all.
    var headers = HeaderBlock.empty
    /// The body's first `maxBodyBytes`.
    var body = ByteBuffer()
    /// The whole body's size: more than `body.readableBytes` when it was cut.
    var bodyBytes = 0

    init(time: Timestamp, source: String, method: String, uri: String, client: String? = nil) {
        self.time = time
        self.source = source
        self.method = method
        self.uri = uri
        self.client = client
    }

    var isTruncated: Bool { bodyBytes > body.readableBytes }
}

/// An accepted event as the event stream sends it (`GET /api/events`): the event, with its
/// data when it fits the inspector's `maxBodyBytes`, and the headers its request came with.
struct StreamedEvent: Sendable {
    var event: WebhookEvent
    var headers: HeaderBlock
    /// The data's size when it was larger than `maxBodyBytes` and not kept.
    var omittedBytes: Int?
    /// The data and headers are slices of its request record's storage (counted there).
    var sharesRecord = false
}

/// The inspector's memory: the last `recent` requests and the last `recent` accepted events,
/// each in a ring, so what it holds is bounded by `recent` × (`maxBodyBytes` +
/// ``headerBytes``) for each whatever the load: a record's body and headers are cut to those
/// sizes when it is made, and the oldest record makes room for the newest.
final class InspectorLog: Sendable {
    /// The bytes of header names and values one record keeps at most.
    static let headerBytes = 8192

    let capacity: Int
    let maxBodyBytes: Int

    private let requests: Mutex<SequenceRing<InspectedRequest>>
    private let events: Mutex<SequenceRing<StreamedEvent>>
    /// Event streams to wake when an event is kept, by subscription number.
    private let subscribers = Mutex<(next: Int, wakes: [Int: @Sendable () -> Void])>((0, [:]))
    private let subscriberCount = Atomic<Int>(0)

    init(recent: Int, maxBodyBytes: Int) {
        capacity = max(1, recent)
        self.maxBodyBytes = max(0, maxBodyBytes)
        requests = Mutex(SequenceRing(capacity: recent))
        events = Mutex(SequenceRing(capacity: recent, base: Self.eventBase()))
    }

    /// Where the event stream's numbers start: the wall clock's milliseconds times 65,536, so
    /// a restarted bridge numbers its events above any number a client had from the one
    /// before (unless that one took more than 65,536 events a millisecond), and resuming with
    /// an old `Last-Event-ID` sends everything the new one holds.
    static func eventBase(now: Timestamp = .now()) -> UInt64 {
        UInt64(max(0, now.millisecondsSince1970)) << 16
    }

    /// Where an event stream resumed after `id` (its `Last-Event-ID`; nil: from now) starts,
    /// and what to tell the client when that is not after `id`: a number from before this
    /// process's stream (a bridge restarted since the client last read) or past its newest
    /// (another replica's, or a clock set back) gets every event held, never a silent wait
    /// until the numbers catch up.
    func resumePoint(after id: UInt64?) -> (after: UInt64, note: String?) {
        events.withLock { ring in
            guard let id else { return (ring.lastSequence, nil) }
            if id == 0 { return (ring.base, nil) }
            if id < ring.base {
                return (ring.base, "the bridge restarted after event \(id); sending every event it holds")
            }
            if id > ring.lastSequence {
                return (ring.base, "event \(id) was not sent by this bridge process; sending every event it holds")
            }
            return (id, nil)
        }
    }

    // MARK: - Requests

    /// Keeps `request` with `body` and `headers` cut to their bounds, in place of the oldest
    /// one when full; returns its sequence number.
    @discardableResult
    func record(_ request: InspectedRequest, body: ByteBuffer?, headers: HTTPHeaders) -> UInt64 {
        var kept = request
        if let body {
            kept.bodyBytes = body.readableBytes
            kept.body = keptBytes(body)
        }
        kept.headers = Self.kept(headers)
        return Self.append(kept, to: requests)
    }

    /// Keeps a record whose body and headers were cut already (``keptBytes(_:)``,
    /// ``kept(_:)``); returns its sequence number.
    func append(_ request: consuming InspectedRequest) -> UInt64 { Self.append(request, to: requests) }

    /// Appends `element` to `ring` without copying it, and releases the element it replaced
    /// after the lock: the lock is held only for the slot's swap.
    private static func append<Element: Sendable>(
        _ element: consuming Element, to ring: borrowing Mutex<SequenceRing<Element>>
    ) -> UInt64 {
        var pending = Optional(element)
        let (sequence, evicted) = ring.withLock { $0.append(pending.take()!) }
        _ = consume evicted
        return sequence
    }

    /// A body as kept: the buffer itself when its whole storage is within the bound (no
    /// copy), else its first `maxBodyBytes` in a buffer of their own (a slice of a larger
    /// storage would keep all of it alive).
    func keptBytes(_ body: ByteBuffer) -> ByteBuffer {
        if body.storageCapacity <= maxBodyBytes { return body }
        return ByteBuffer(bytes: body.readableBytesView.prefix(maxBodyBytes))
    }

    /// A later result for a request already recorded (a sink that is not waited for).
    func update(_ sequence: UInt64, _ change: @Sendable (inout InspectedRequest) -> Void) {
        requests.withLock { $0.update(sequence, change) }
    }

    /// The records held, newest first, those `include` accepts, at most `limit`, older than
    /// `before` when given.
    func recent(limit: Int = .max, before: UInt64? = nil, where include: (InspectedRequest) -> Bool = { _ in true })
        -> [InspectedRequest]
    {
        // A copy of the ring (its slots are shared, not copied) is searched outside the lock.
        let ring = requests.withLock { $0 }
        return ring.newestFirst(limit: limit, before: before, where: include).map { withSequence($0) }
    }

    /// The records after `sequence` still held, oldest first, and how many the ring lost.
    func since(_ sequence: UInt64) -> (requests: [InspectedRequest], missed: UInt64) {
        let found = requests.withLock { $0.since(sequence) }
        return (found.elements.map { withSequence($0) }, found.missed)
    }

    /// The record with `sequence`, while it is still held.
    func request(_ sequence: UInt64) -> InspectedRequest? {
        requests.withLock { ring in ring.element(sequence).map { withSequence((sequence, $0)) } }
    }

    /// The newest record's sequence number (0: none yet).
    var lastSequence: UInt64 { requests.withLock { $0.lastSequence } }

    private func withSequence(_ pair: (UInt64, InspectedRequest)) -> InspectedRequest {
        var request = pair.1
        request.sequence = pair.0
        return request
    }

    /// The bytes of bodies and header text held now, requests and events (what the memory
    /// bound counts).
    var heldBytes: Int {
        let requestBytes = requests.withLock { ring in
            // The body is a slice of the headers' storage, or a buffer of its own.
            ring.all.reduce(0) { total, request in
                total + request.headers.storageBytes
                    + (request.body.storageCapacity == request.headers.storageBytes ? 0 : request.body.storageCapacity)
            }
        }
        let eventBytes = events.withLock { ring in
            ring.all.reduce(0) { $0 + ($1.sharesRecord ? 0 : $1.event.data.storageCapacity + $1.headers.storageBytes) }
        }
        return requestBytes + eventBytes
    }

    // MARK: - Events

    /// Keeps an accepted event for the event stream (its data copied when it fits
    /// `maxBodyBytes`, else left out and its size noted) and wakes the streams.
    func stream(_ event: WebhookEvent, headers: HTTPHeaders) { stream(event, keptHeaders: Self.kept(headers)) }

    /// ``stream(_:headers:)`` with headers cut already.
    func stream(_ event: consuming WebhookEvent, keptHeaders: HeaderBlock, sharesRecord: Bool = false) {
        var kept = consume event
        kept.bodyJSON = nil  // a parsed body would be more to hold than the bound counts
        kept.requestHeaders = [:]
        var omitted: Int?
        if sharesRecord {
            // A slice of its record's storage, which is within the bound.
        } else if kept.data.readableBytes <= maxBodyBytes {
            // Copied only when its storage is larger than the bound (a batch's element is a
            // slice of the whole body).
            if kept.data.storageCapacity > maxBodyBytes { kept.data = ByteBuffer(bytes: kept.data.readableBytesView) }
        } else {
            omitted = kept.data.readableBytes
            kept.data = ByteBuffer()
        }
        let streamed = StreamedEvent(event: kept, headers: keptHeaders, omittedBytes: omitted, sharesRecord: sharesRecord)
        _ = Self.append(streamed, to: events)
        guard subscriberCount.load(ordering: .relaxed) > 0 else { return }
        for wake in subscribers.withLock({ Array($0.wakes.values) }) { wake() }
    }

    /// The events after `sequence` still held, oldest first, at most `limit`, and how many
    /// the ring lost.
    func events(since sequence: UInt64, limit: Int = .max) -> (events: [(UInt64, StreamedEvent)], missed: UInt64) {
        let found = events.withLock { $0.since(sequence, limit: limit) }
        return (found.elements, found.missed)
    }

    /// The newest event's sequence number (0: none yet).
    var lastEventSequence: UInt64 { events.withLock { $0.lastSequence } }

    /// Calls `wake` (from the recording task) whenever an event is kept, until
    /// ``unsubscribe(_:)``.
    func subscribe(_ wake: @escaping @Sendable () -> Void) -> Int {
        let number = subscribers.withLock { state in
            state.next += 1
            state.wakes[state.next] = wake
            return state.next
        }
        subscriberCount.add(1, ordering: .relaxed)
        return number
    }

    /// The event streams subscribed.
    var streamCount: Int { subscriberCount.load(ordering: .relaxed) }

    func unsubscribe(_ number: Int) {
        let removed = subscribers.withLock { $0.wakes.removeValue(forKey: number) != nil }
        if removed { subscriberCount.subtract(1, ordering: .relaxed) }
    }

    // MARK: - Headers: bounded, and masked when shown

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

    /// Query parameter names that carry a secret besides ``isSecret(_:)``'s: Azure's
    /// function key (`code`, as Event Grid's endpoints take it), keys and SAS signatures.
    static let secretQueryNames: Set<String> = ["code", "key", "sig", "auth", "pass", "pwd"]

    /// A request's path and query as a page or the API shows it: the values of parameters
    /// whose names carry a secret (`?code=`, `hub.verify_token`, `api_key`, …) masked.
    static func shownURI(_ uri: String) -> String {
        guard let mark = uri.firstIndex(of: "?") else { return uri }
        let parameters = uri[uri.index(after: mark)...].split(separator: "&", omittingEmptySubsequences: false).map {
            parameter -> String in
            guard let equals = parameter.firstIndex(of: "=") else { return String(parameter) }
            let raw = parameter[..<equals]
            let name = (String(raw).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(raw))
                .lowercased()
            let secret = isSecret(name) || secretQueryNames.contains(name) || name.hasSuffix("key")
            return secret ? "\(raw)=(masked)" : String(parameter)
        }
        return "\(uri[...mark])\(parameters.joined(separator: "&"))"
    }

    /// The headers as a page or the API shows them: secret values masked.
    static func shownHeaders(_ headers: HeaderBlock) -> [(name: String, value: String)] {
        headers.map { ($0.name, isSecret($0.name) ? masked($0.value) : $0.value) }
    }

    /// The headers as kept: at most ``headerBytes`` of text, in one buffer.
    static func kept(_ headers: HTTPHeaders) -> HeaderBlock { HeaderBlock(headers, limit: headerBytes) }
}
