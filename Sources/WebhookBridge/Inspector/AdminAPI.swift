import Foundation
import Logging
import Metrics
import NIOCore
import NIOHTTP1
import WebhookCore
import WebhookCrypto
import WebhookEncoding

/// What the admin listener answers a request with (SPEC section 11): the inspector page (to
/// anyone: it holds no data), and with `Authorization: Bearer TOKEN` the JSON API under
/// `/api/` and the event stream. It knows nothing of sockets (``AdminServer`` does).
struct AdminAPI: Sendable {
    /// An answer, or the start of an event stream.
    enum Reply: Sendable {
        case answer(BridgeAnswer)
        case stream(EventStreamRequest)
    }

    /// `GET /api/events`: accepted events after `after`, of `sources` (empty: all).
    struct EventStreamRequest: Sendable {
        var sources: Set<String>
        var after: UInt64
        /// Said first, as a comment, when the stream does not start where the client asked.
        var note: String? = nil
    }

    let inspector: InspectorLog
    let deadLetters: DeadLetterShelf?
    /// The running sinks, by name: where a dead letter is replayed.
    let sinks: [String: any EventSink]
    let config: BridgeConfig
    /// The sources' names as the last reload left them (the page's filter).
    let sourceNames: @Sendable () -> [String]
    let logger: Logger
    /// SHA-256 of the token: compared with the presented one's in constant time, lengths
    /// included.
    private let tokenDigest: [UInt8]
    private let refusals = LogThrottle()

    init(
        config: BridgeConfig, admin: BridgeConfig.Admin, inspector: InspectorLog, deadLetters: DeadLetterShelf?,
        sinks: [String: any EventSink], sourceNames: (@Sendable () -> [String])? = nil, logger: Logger
    ) {
        self.sourceNames = sourceNames ?? { config.sortedSources.map(\.name) }
        self.inspector = inspector
        self.deadLetters = deadLetters
        self.sinks = sinks
        self.config = config
        self.logger = logger
        tokenDigest = HashAlgorithm.sha256.hash(admin.token)
    }

    /// The answer to one request, and the route it took (for metrics and logs).
    func reply(method: HTTPMethod, uri: String, headers: HTTPHeaders, body: [UInt8]) async -> (Reply, route: String) {
        let components = URLComponents(string: uri)
        let path = components?.percentEncodedPath ?? uri
        let query = Query(components?.queryItems ?? [])
        if Self.isPage(path) {
            guard method == .GET || method == .HEAD else { return (.answer(Self.methodNotAllowed("GET")), "page") }
            return (.answer(InspectorPage.answer), "page")
        }
        guard authorized(headers) else {
            if let suppressed = refusals.admit("admin unauthorized") {
                var metadata: Logger.Metadata = ["admin.path": "\(LoggedValue.bounded(path, bytes: 128))"]
                if suppressed > 0 { metadata["log.suppressed"] = "\(suppressed)" }
                logger.info("admin request refused: no valid bearer token", metadata: metadata)
            }
            return (.answer(Self.unauthorized), "unauthorized")
        }
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        switch (method, parts.count > 1 && parts[0] == "api" ? parts[1...].map(String.init) : []) {
        case (.GET, ["info"]):
            return (.answer(info()), "info")
        case (.GET, ["requests"]):
            return (.answer(requests(query)), "requests")
        case (.GET, let route) where route.count == 2 && route[0] == "requests":
            guard let sequence = UInt64(route[1]), let request = inspector.request(sequence) else {
                return (.answer(.notFound), "request")
            }
            return (.answer(Self.json(Self.detail(request))), "request")
        case (.GET, ["dead-letters"]):
            return (.answer(listDeadLetters(query)), "dead-letters")
        case (.POST, ["dead-letters", "replay"]):
            return (.answer(await replay(body)), "replay")
        case (.GET, ["events"]):
            let lastID = headers.first(name: "Last-Event-ID") ?? query.first("lastEventId")
            let start = inspector.resumePoint(after: lastID.flatMap { UInt64($0.trimmingCharacters(in: .whitespaces)) })
            return (
                .stream(EventStreamRequest(sources: Set(query.all("source")), after: start.after, note: start.note)),
                "events"
            )
        case (_, ["info"]), (_, ["requests"]), (_, ["dead-letters"]), (_, ["events"]):
            return (.answer(Self.methodNotAllowed("GET")), "method")
        case (_, ["dead-letters", "replay"]):
            return (.answer(Self.methodNotAllowed("POST")), "method")
        default:
            return (.answer(.notFound), "not-found")
        }
    }

    /// The page's paths: served to anyone (it holds no data).
    static func isPage(_ path: String) -> Bool { path == "/" || path == "/index.html" }

    /// Whether a request for `uri` is answered only with the token.
    func needsToken(_ uri: String) -> Bool {
        !Self.isPage(String(uri.prefix { $0 != "?" && $0 != "#" }))
    }

    func authorized(_ headers: HTTPHeaders) -> Bool {
        guard let value = headers.first(name: "Authorization") else { return false }
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return false }
        let presented = HashAlgorithm.sha256.hash(String(parts[1]).trimmingCharacters(in: .whitespaces))
        return constantTimeEquals(presented, tokenDigest)
    }

    // MARK: - Requests

    /// `GET /api/info`: the sources and sinks, for the page's filters, and the ring's size.
    private func info() -> BridgeAnswer {
        Self.json(
            .object([
                ("sources", .array(sourceNames().map { .string($0) })),
                ("sinks", .array(config.sinks.keys.sorted().map { .string($0) })),
                ("outcomes", .array(Self.outcomes.map { .string($0) })),
                ("recent", .number(String(inspector.capacity))),
                ("maxBodyBytes", .number(String(inspector.maxBodyBytes))),
                ("lastSequence", .number(String(inspector.lastSequence))),
                ("deadLetters", .bool(deadLetters != nil)),
            ]))
    }

    static let outcomes = ["accepted", "queued", "duplicate", "filtered", "handshake", "rejected", "dead-lettered"]

    /// `GET /api/requests?source=&outcome=&type=&q=&limit=&before=&after=`: newest first.
    private func requests(_ query: Query) -> BridgeAnswer {
        let filter = RequestFilter(query)
        let limit = min(max(query.first("limit").flatMap(Int.init) ?? 200, 1), inspector.capacity)
        let before = query.first("before").flatMap(UInt64.init)
        let after = query.first("after").flatMap(UInt64.init) ?? 0
        let found = inspector.recent(limit: limit, before: before, where: filter.matches)
        let shown = found.filter { $0.sequence > after }
        return Self.json(
            .object([
                ("requests", .array(shown.map(Self.summary))),
                ("lastSequence", .number(String(inspector.lastSequence))),
            ]))
    }

    /// What the list shows of a request.
    static func summary(_ request: InspectedRequest) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("seq", .number(String(request.sequence))), ("time", .string(request.time.rfc3339)),
            ("source", .string(request.source)), ("method", .string(request.method)),
            ("path", .string(InspectorLog.shownURI(request.uri))),
            ("client", request.client.map(JSONValue.string) ?? .null), ("status", .number(String(request.status))),
            ("outcome", .string(request.outcome)),
        ]
        if let cause = request.cause { members.append(("cause", .string(cause))) }
        if let detail = request.detail { members.append(("detail", .string(detail))) }
        if let id = request.eventID { members.append(("id", .string(id))) }
        if let type = request.type { members.append(("type", .string(type))) }
        if let size = request.batchSize { members.append(("batch", .number(String(size)))) }
        if let key = request.keyIndex { members.append(("key", .number(String(key)))) }
        members.append(
            (
                "sinks",
                .array(
                    request.sinks.map { sink in
                        var entry: [(String, JSONValue)] = [("sink", .string(sink.sink)), ("required", .bool(sink.required))]
                        if let position = sink.position { entry.append(("position", .string(position))) }
                        if let failure = sink.failure { entry.append(("error", .string(failure))) }
                        if let fate = sink.fate { entry.append(("fate", .string(fate))) }
                        return .object(entry)
                    })
            ))
        members.append(("latencyMs", .number(String(format: "%.3f", Double(request.latencyMicroseconds) / 1000))))
        members.append(("bodyBytes", .number(String(request.bodyBytes))))
        members.append(("truncated", .bool(request.isTruncated)))
        return .object(members)
    }

    /// The detail view: the summary, the headers (secrets masked) and the body kept.
    static func detail(_ request: InspectedRequest) -> JSONValue {
        guard case .object(var members) = summary(request) else { return .null }
        members.append(
            (
                "headers",
                .array(InspectorLog.shownHeaders(request.headers).map { .array([.string($0.name), .string($0.value)]) })
            ))
        var body = Array(request.body.readableBytesView)
        if request.isTruncated { Self.dropPartialCharacter(&body) }
        if let text = String(validating: body, as: UTF8.self) {
            members.append(("body", .string(text)))
        } else {
            members.append(("bodyBase64", .string(Base64.encode(body))))
        }
        return .object(members)
    }

    /// Drops a last UTF-8 sequence cut short (a body kept to `maxBodyBytes` may end inside
    /// a character): the text before it stays text, not base64.
    static func dropPartialCharacter(_ bytes: inout [UInt8]) {
        // The start of the last sequence: at most 3 continuation bytes back.
        var start = bytes.count
        while start > 0, bytes.count - start < 4, bytes[start - 1] & 0xC0 == 0x80 { start -= 1 }
        guard start > 0 else { return }
        let lead = bytes[start - 1]
        // Only a lead byte that starts a sequence; anything else is not UTF-8 anyway.
        guard (0xC2...0xF4).contains(lead) else { return }
        let length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2
        if bytes.count - (start - 1) < length { bytes.removeSubrange((start - 1)...) }
    }

    // MARK: - Dead letters

    /// `GET /api/dead-letters?sink=&source=&type=&q=&limit=`: newest first.
    private func listDeadLetters(_ query: Query) -> BridgeAnswer {
        guard let deadLetters else { return Self.json(.object([("deadLetters", .array([])), ("spool", .bool(false))])) }
        let filter = DeadLetterFilter(query)
        let limit = min(max(query.first("limit").flatMap(Int.init) ?? 500, 1), 10_000)
        let (letters, olderUnread) = deadLetters.list(limit: limit, where: filter.matches)
        return Self.json(
            .object([
                ("deadLetters", .array(letters.map { deadLetterJSON($0, shelf: deadLetters) })),
                ("olderUnread", .bool(olderUnread)), ("spool", .bool(true)),
            ]))
    }

    private func deadLetterJSON(_ letter: DeadLetter, shelf: DeadLetterShelf) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("offset", .number(String(letter.offset))), ("sink", .string(letter.sink)), ("reason", .string(letter.reason)),
        ]
        for (name, value) in [("id", letter.id), ("source", letter.source), ("type", letter.type), ("time", letter.time)] {
            if let value { members.append((name, .string(value))) }
        }
        members.append(("details", .object(letter.details.map { ($0.name, .string($0.value)) })))
        members.append(("raw", .bool(letter.isRaw)))
        if let replay = shelf.replay(of: letter) {
            var entry: [(String, JSONValue)] = [("time", .string(replay.time.rfc3339))]
            entry.append(("result", .string(replay.failure == nil ? "delivered" : "failed")))
            if let failure = replay.failure { entry.append(("error", .string(failure))) }
            members.append(("replayed", .object(entry)))
        }
        return .object(members)
    }

    /// `POST /api/dead-letters/replay` with `{"offsets": [...]}`, or `{"all": true}` and the
    /// list's filters (`sink`, `source`, `type`, `q`): each into the sink it failed in, in the
    /// file's order, through the same delivery as `webhook-bridge replay`.
    private func replay(_ body: [UInt8]) async -> BridgeAnswer {
        guard let deadLetters else { return .error(.notFound, "no_spool") }
        guard let request = try? JSONParser.parse(body), case .object = request else {
            return .error(.badRequest, "invalid_json")
        }
        var letters: [DeadLetter] = []
        if case .array(let offsets)? = request["offsets"] {
            for value in offsets {
                guard let text = value.scalarText, let offset = Int64(text), let letter = deadLetters.letter(at: offset) else {
                    return BridgeAnswer(
                        status: .notFound,
                        body: Self.encode(.object([("error", .string("not_found")), ("offset", value)])), code: "not_found")
                }
                letters.append(letter)
            }
        } else if case .bool(true)? = request["all"] {
            var query: [URLQueryItem] = []
            for name in ["sink", "source", "type", "q"] {
                if let text = request[name]?.scalarText { query.append(URLQueryItem(name: name, value: text)) }
            }
            letters = deadLetters.list(limit: 100_000, where: DeadLetterFilter(Query(query)).matches).letters
        } else {
            return .error(.badRequest, "offsets_or_all_required")
        }
        letters.sort { $0.offset < $1.offset }
        var results: [JSONValue] = []
        var delivered = 0
        // Grouped by sink, each group in the file's order.
        var order: [String] = []
        var groups: [String: [DeadLetter]] = [:]
        for letter in letters {
            if groups[letter.sink] == nil { order.append(letter.sink) }
            groups[letter.sink, default: []].append(letter)
        }
        for sinkName in order {
            let group = groups[sinkName]!
            guard let sink = sinks[sinkName] else {
                for letter in group {
                    let failure = "no sink named \"\(sinkName)\" is running"
                    deadLetters.noteReplay(letter, failure: failure)
                    results.append(Self.replayResult(letter, failure: failure))
                }
                continue
            }
            var lines: [(number: Int, line: [UInt8])] = []
            var failures: [Int: String] = [:]
            for (index, letter) in group.enumerated() {
                if let line = deadLetters.currentLine(of: letter) {
                    lines.append((index, line))
                } else {
                    failures[index] = "the dead-letter file no longer holds this line at offset \(letter.offset)"
                }
            }
            let report = await Replay.deliver(lines, into: sink, config: config)
            for failed in report.failed where failures[failed.line] == nil { failures[failed.line] = failed.reason }
            for (index, letter) in group.enumerated() {
                let failure = failures[index]
                if failure == nil { delivered += 1 }
                deadLetters.noteReplay(letter, failure: failure)
                results.append(Self.replayResult(letter, failure: failure))
            }
        }
        logger.info(
            "dead letters replayed from the inspector",
            metadata: ["replay.delivered": "\(delivered)", "replay.failed": "\(letters.count - delivered)"])
        return Self.json(
            .object([
                ("delivered", .number(String(delivered))), ("failed", .number(String(letters.count - delivered))),
                ("results", .array(results)),
            ]))
    }

    private static func replayResult(_ letter: DeadLetter, failure: String?) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("offset", .number(String(letter.offset))), ("sink", .string(letter.sink)),
            ("result", .string(failure == nil ? "delivered" : "failed")),
        ]
        if let id = letter.id { members.append(("id", .string(id))) }
        if let failure { members.append(("error", .string(failure))) }
        return .object(members)
    }

    // MARK: - Answers

    static let unauthorized = BridgeAnswer.error(
        .unauthorized, "unauthorized", headers: [("WWW-Authenticate", "Bearer realm=\"webhook-bridge inspector\"")])

    static func methodNotAllowed(_ allowed: String) -> BridgeAnswer {
        .error(.methodNotAllowed, "method_not_allowed", headers: [("Allow", allowed)])
    }

    static func encode(_ value: JSONValue) -> [UInt8] {
        var bytes: [UInt8] = []
        JSONWriter.append(value, to: &bytes)
        return bytes
    }

    static func json(_ value: JSONValue) -> BridgeAnswer {
        BridgeAnswer(
            status: .ok, headers: [("Content-Type", "application/json"), ("Cache-Control", "no-store")], body: encode(value))
    }
}

/// A request's query items, by name.
struct Query {
    let items: [URLQueryItem]
    init(_ items: [URLQueryItem]) { self.items = items }
    func first(_ name: String) -> String? { items.first { $0.name == name }?.value.flatMap { $0.isEmpty ? nil : $0 } }
    func all(_ name: String) -> [String] { items.filter { $0.name == name }.compactMap(\.value).filter { !$0.isEmpty } }
}

/// The list's filters: `source`, `outcome`, `type` (a glob, as routes take) and `q` (text
/// in the id, type, cause, client, path or body, regardless of case).
struct RequestFilter {
    let source: String?
    let outcome: String?
    let type: TypeGlob?
    let text: String?

    init(_ query: Query) {
        source = query.first("source")
        outcome = query.first("outcome")
        type = query.first("type").map(TypeGlob.init)
        text = query.first("q")?.lowercased()
    }

    func matches(_ request: InspectedRequest) -> Bool {
        if let source, request.source != source { return false }
        if let outcome, request.outcome != outcome { return false }
        if let type, !(request.type.map(type.matches) ?? false) { return false }
        if let text {
            // The path as shown: a secret in its query is not found by guessing it.
            let fields = [
                request.eventID, request.type, request.cause, request.detail, request.client,
                InspectorLog.shownURI(request.uri),
            ]
            if fields.contains(where: { $0?.lowercased().contains(text) == true }) { return true }
            return String(decoding: request.body.readableBytesView, as: UTF8.self).lowercased().contains(text)
        }
        return true
    }
}

/// The dead letters' filters: `sink`, `source`, `type` (a glob) and `q` (text in the id,
/// type, reason or details).
struct DeadLetterFilter {
    let sink: String?
    let source: String?
    let type: TypeGlob?
    let text: String?

    init(_ query: Query) {
        sink = query.first("sink")
        source = query.first("source")
        type = query.first("type").map(TypeGlob.init)
        text = query.first("q")?.lowercased()
    }

    func matches(_ letter: DeadLetter) -> Bool {
        if let sink, letter.sink != sink { return false }
        if let source, letter.source != source { return false }
        if let type, !(letter.type.map(type.matches) ?? false) { return false }
        if let text {
            let fields = [letter.id, letter.type, letter.reason, letter.source] + letter.details.map(\.value)
            return fields.contains { $0?.lowercased().contains(text) == true }
        }
        return true
    }
}
