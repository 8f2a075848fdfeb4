import BridgeTestSupport
import Foundation
import Testing
import WebhookCore
import WebhookEncoding

@testable import WebhookBridge

/// The inspector's admin listener (SPEC section 11) in process: the bearer token, the
/// request list and detail as the API gives them, and the event stream's resume.
@Suite("Inspector: the admin listener's API and event stream")
struct InspectorTests {
    static let token = "inspector-token-0123456789"

    static func config(recent: Int = 100, extraSource: String = "") -> String {
        """
        {"listen": {"host": "127.0.0.1", "port": 0},
         "admin": {"host": "127.0.0.1", "port": 0, "token": "\(token)", "recent": \(recent), "maxBodyBytes": 1024},
         "sinks": {"archive": {"type": "file", "path": "{dir}/events.jsonl"}},
         "sources": {"gh": {"path": "/gh", "verify": {"scheme": "github", "secrets": ["old-secret", "gh-secret"]}, "sinks": ["archive"]},
                     "other": {"path": "/other", "verify": {"scheme": "github", "secrets": ["gh-secret"]}, "sinks": ["archive"]}}}
        """
    }

    func admin(_ bridge: RunningBridge) -> Int { bridge.bridge.admin!.localAddress!.port! }

    func get(_ bridge: RunningBridge, _ path: String, token: String? = InspectorTests.token) async throws
        -> WebhookClient.Response
    {
        try await WebhookClient.send(
            host: "127.0.0.1", port: admin(bridge), method: .GET, path: path,
            headers: token.map { [("Authorization", "Bearer \($0)")] } ?? [])
    }

    func post(_ bridge: RunningBridge, _ id: String, path: String = "/gh", secret: String = "gh-secret", type: String = "push")
        async throws -> Int
    {
        let body = #"{"delivery": "\#(id)", "note": "needle-\#(id)"}"#
        return Int(
            try await bridge.post(path, headers: githubHeaders(body, delivery: id, event: type, secret: secret), body: body)
                .status.code)
    }

    @Test(
        "without the token, or with a wrong one, every API path (and unknown ones) is 401 with nothing else in the answer; the page is served to anyone"
    )
    func token() async throws {
        try await RunningBridge.with(config: Self.config()) { bridge in
            #expect(try await post(bridge, "d-1") == 200)
            let page = try await get(bridge, "/", token: nil)
            #expect(page.status == .ok && page.headers.first(name: "Content-Type")?.hasPrefix("text/html") == true)
            #expect(page.text.contains("webhook-bridge inspector") && !page.text.contains("d-1"))
            let paths = [
                "/api/requests", "/api/requests/1", "/api/dead-letters", "/api/events", "/api/info", "/api/nothing", "/elsewhere",
            ]
            for token in [nil, "wrong", Self.token + "x", String(Self.token.dropLast()), ""] as [String?] {
                for path in paths {
                    let answer = try await get(bridge, path, token: token)
                    #expect(answer.status == .unauthorized, "\(path) with \(token ?? "no token")")
                    #expect(answer.text == #"{"error":"unauthorized"}"#)
                    #expect(answer.headers.first(name: "WWW-Authenticate")?.hasPrefix("Bearer") == true)
                }
            }
            let replay = try await WebhookClient.send(
                host: "127.0.0.1", port: admin(bridge), path: "/api/dead-letters/replay", body: Array(#"{"all": true}"#.utf8))
            #expect(replay.status == .unauthorized)
            // The scheme's word is case-insensitive; the token is not.
            let lower = try await WebhookClient.send(
                host: "127.0.0.1", port: admin(bridge), method: .GET, path: "/api/requests",
                headers: [("Authorization", "bearer \(Self.token)")])
            #expect(lower.status == .ok && lower.text.contains("d-1"))
            #expect(try await get(bridge, "/api/requests", token: Self.token.uppercased()).status == .unauthorized)
        }
    }

    @Test(
        "the list: newest first with outcome, cause, event, secret index, receipts; filters by source, outcome, type and text; the detail masks the signature and keeps the body"
    )
    func requests() async throws {
        try await RunningBridge.with(config: Self.config()) { bridge in
            #expect(try await post(bridge, "d-1", type: "issues") == 200)
            #expect(try await post(bridge, "d-2", secret: "forged") == 401)
            #expect(try await post(bridge, "d-1", type: "issues") == 200)  // a duplicate
            #expect(try await post(bridge, "d-3", path: "/other", secret: "old-secret") == 401)
            #expect(try await post(bridge, "d-4", secret: "old-secret") == 200)
            let list = try await get(bridge, "/api/requests")
            #expect(list.status == .ok && list.headers.first(name: "Content-Type") == "application/json")
            guard case .array(let rows)? = list.json?["requests"] else {
                Issue.record("no list: \(list.text)")
                return
            }
            #expect(rows.compactMap { $0["seq"]?.scalarText } == ["5", "4", "3", "2", "1"])
            #expect(
                rows.compactMap { $0["outcome"]?.scalarText } == ["accepted", "rejected", "duplicate", "rejected", "accepted"])
            #expect(rows[1]["cause"]?.scalarText == "signature_invalid" && rows[1]["status"]?.scalarText == "401")
            #expect(rows[1]["source"]?.scalarText == "other")
            #expect(rows[4]["id"]?.scalarText == "d-1" && rows[4]["type"]?.scalarText == "issues")
            // The secret that matched: the old one (index 0) for d-4, the new one for d-1.
            #expect(rows[0]["key"]?.scalarText == "0" && rows[4]["key"]?.scalarText == "1")
            #expect(rows[4].value(atPointer: "/sinks/0/sink")?.scalarText == "archive")
            #expect(rows[4].value(atPointer: "/sinks/0/position")?.scalarText?.hasSuffix("events.jsonl:0") == true)
            #expect(rows[4]["client"]?.scalarText == "127.0.0.1" && rows[4]["method"]?.scalarText == "POST")

            func seqs(_ query: String) async throws -> [String] {
                guard case .array(let rows)? = try await get(bridge, "/api/requests?" + query).json?["requests"] else {
                    return []
                }
                return rows.compactMap { $0["seq"]?.scalarText }
            }
            #expect(try await seqs("outcome=rejected") == ["4", "2"])
            #expect(try await seqs("source=other") == ["4"])
            #expect(try await seqs("type=iss*") == ["3", "1"])
            #expect(try await seqs("q=NEEDLE-d-4") == ["5"])  // text in the body, any case
            #expect(try await seqs("q=signature_invalid") == ["4", "2"])
            #expect(try await seqs("after=3") == ["5", "4"])
            #expect(try await seqs("before=3&limit=1") == ["2"])

            let detail = try await get(bridge, "/api/requests/1")
            #expect(detail.json?["body"]?.scalarText == #"{"delivery": "d-1", "note": "needle-d-1"}"#)
            guard case .array(let headers)? = detail.json?["headers"] else {
                Issue.record("no headers: \(detail.text)")
                return
            }
            let shown = Dictionary(
                headers.compactMap { pair in
                    pair.value(atPointer: "/0")?.scalarText.map { ($0, pair.value(atPointer: "/1")?.scalarText ?? "") }
                },
                uniquingKeysWith: { first, _ in first })
            #expect(shown["X-Hub-Signature-256"] == "(masked, 71 bytes)")
            #expect(shown["X-GitHub-Delivery"] == "d-1")
            #expect(!detail.text.contains(githubSignature(#"{"delivery": "d-1", "note": "needle-d-1"}"#, secret: "gh-secret")))
            #expect(try await get(bridge, "/api/requests/99").status == .notFound)
        }
    }

    /// The event stream over a raw socket: `GET /api/events`, read until `until` appears.
    func stream(_ bridge: RunningBridge, lastEventID: String?, query: String = "", until: String) async throws
        -> (ids: [UInt64], events: [JSONValue], text: String)
    {
        let port = admin(bridge)
        let text = try await offThePool {
            let connection = try KeepAliveConnection(port: port)
            try connection.sendRaw(
                "GET /api/events\(query) HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer \(Self.token)\r\n"
                    + (lastEventID.map { "Last-Event-ID: \($0)\r\n" } ?? "") + "\r\n")
            return connection.readUntil(until)
        }
        var ids: [UInt64] = []
        var events: [JSONValue] = []
        // The ids of events (an id line followed by data), not those that only say where the
        // stream is.
        var pending: UInt64?
        for line in text.split(separator: "\r\n").flatMap({ $0.split(separator: "\n") }) {
            if line.hasPrefix("id: ") { pending = UInt64(line.dropFirst(4)) }
            if line.hasPrefix("data: "), let event = try? JSONParser.parse(Array(line.dropFirst(6).utf8)) {
                events.append(event)
                if let id = pending { ids.append(id) }
                pending = nil
            }
        }
        return (ids, events, text)
    }

    @Test(
        "the event stream: each accepted event as CloudEvent JSON with a sequence id; resumed with Last-Event-ID after a disconnect, nothing lost or repeated; what the ring lost is said"
    )
    func eventStream() async throws {
        try await RunningBridge.with(config: Self.config(recent: 4)) { bridge in
            for id in ["e-1", "e-2", "e-3"] { #expect(try await post(bridge, id) == 200) }
            #expect(try await post(bridge, "e-x", secret: "forged") == 401)  // not an event
            let first = try await stream(bridge, lastEventID: "0", until: "e-3")
            #expect(first.text.hasPrefix("HTTP/1.1 200 OK") && first.text.contains("text/event-stream"))
            // Sequence numbers: consecutive, from where this process's stream starts.
            guard first.ids.count == 3, let base = first.ids.first.map({ $0 - 1 }) else {
                Issue.record("no events: \(first.text)")
                return
            }
            #expect(first.ids == [base + 1, base + 2, base + 3])
            #expect(first.events.compactMap { $0["id"]?.scalarText } == ["e-1", "e-2", "e-3"])
            #expect(first.events[0]["specversion"]?.scalarText == "1.0" && first.events[0]["source"]?.scalarText == "gh")
            // The body byte for byte (JSON that would not read back to the same bytes travels
            // as data_base64), and the request's headers to pass it on with.
            #expect(first.events[0]["data"] == nil)
            #expect(
                first.events[0]["data_base64"]?.scalarText.flatMap(Base64.decode)
                    == Array(#"{"delivery": "e-1", "note": "needle-e-1"}"#.utf8))
            #expect(first.events[0]["webhookheaders"]?["X-GitHub-Delivery"]?.scalarText == "e-1")
            #expect(first.events[0]["webhookheaders"]?["X-Hub-Signature-256"]?.scalarText?.hasPrefix("sha256=") == true)

            for id in ["e-4", "e-5"] { #expect(try await post(bridge, id) == 200) }
            let resumed = try await stream(bridge, lastEventID: String(base + 3), until: "e-5")
            #expect(resumed.ids == [base + 4, base + 5])
            #expect(resumed.events.compactMap { $0["id"]?.scalarText } == ["e-4", "e-5"])
            // The ring holds 4: a client that had none lost one, and is told so.
            let late = try await stream(bridge, lastEventID: String(base), until: "e-5")
            #expect(late.ids == [base + 2, base + 3, base + 4, base + 5])
            #expect(late.text.contains(": 1 events were no longer held"))
            // A number from before this process (a bridge restarted since): all it holds.
            let restarted = try await stream(bridge, lastEventID: "12", until: "e-5")
            #expect(restarted.ids == [base + 2, base + 3, base + 4, base + 5])
            #expect(restarted.text.contains(": the bridge restarted after event 12"))
            // A number past any this process sent (another replica's, or a clock set back):
            // all it holds, and said, not a silent wait until its numbers catch up.
            let ahead = try await stream(bridge, lastEventID: String(base + 1_000), until: "e-5")
            #expect(ahead.ids == [base + 2, base + 3, base + 4, base + 5])
            #expect(ahead.text.contains(": event \(base + 1_000) was not sent by this bridge process"))
            // A source filter: the other source's events are not sent, but the id moves on.
            #expect(try await post(bridge, "o-1", path: "/other") == 200)
            let filtered = try await stream(bridge, lastEventID: String(base + 4), query: "?source=other", until: "o-1")
            #expect(filtered.events.compactMap { $0["id"]?.scalarText } == ["o-1"])
            // Compact JSON reads back to the same bytes: it travels as `data`.
            let compact = #"{"order":"c-1","total":4200,"lines":[1,2]}"#
            let posted = try await bridge.post("/gh", headers: githubHeaders(compact, delivery: "c-1"), body: compact)
            #expect(posted.status == .ok)
            let exact = try await stream(bridge, lastEventID: String(base + 6), until: "c-1")
            #expect(exact.ids == [base + 7])
            #expect(exact.events.first?["data"] == (try JSONParser.parse(Array(compact.utf8))))
            #expect(exact.events.first?["data_base64"] == nil)
        }
    }

    @Test(
        "a secret in the query (Event Grid's ?code=, Meta's hub.verify_token, an api_key) is masked in the list and the detail, and the text filter does not find it"
    )
    func querySecrets() async throws {
        try await RunningBridge.with(config: Self.config()) { bridge in
            let body = #"{"delivery": "q-1"}"#
            let path = "/gh?code=fn-key-s3cr3t&hub.verify_token=vt-s3cr3t&api_key=ak-s3cr3t&page=2&flag"
            let posted = try await bridge.post(path, headers: githubHeaders(body, delivery: "q-1"), body: body)
            #expect(posted.status == .ok)
            let list = try await get(bridge, "/api/requests")
            #expect(
                list.json?.value(atPointer: "/requests/0/path")?.scalarText
                    == "/gh?code=(masked)&hub.verify_token=(masked)&api_key=(masked)&page=2&flag")
            #expect(!list.text.contains("s3cr3t"))
            #expect(!(try await get(bridge, "/api/requests/1")).text.contains("s3cr3t"))
            #expect(try await get(bridge, "/api/requests?q=fn-key").json?["requests"] == .array([]))
            #expect(try await get(bridge, "/api/requests?q=page=2").json?.value(atPointer: "/requests/0/id")?.scalarText == "q-1")
        }
    }

    @Test(
        "without the token a request's body is not read: a 2 MiB POST is 401, not 413; an event stream whose client left before it started holds no subscription; a request pipelined behind another is answered"
    )
    func connections() async throws {
        try await RunningBridge.with(config: Self.config()) { bridge in
            let port = admin(bridge)
            let large = try await WebhookClient.send(
                host: "127.0.0.1", port: port, path: "/api/dead-letters/replay", body: [UInt8](repeating: 0x20, count: 2 << 20))
            #expect(large.status == .unauthorized)
            let authorized = try await WebhookClient.send(
                host: "127.0.0.1", port: port, path: "/api/dead-letters/replay",
                headers: [("Authorization", "Bearer \(Self.token)")], body: [UInt8](repeating: 0x20, count: 2 << 20))
            #expect(authorized.status == .payloadTooLarge)

            // Clients that ask for the stream and leave at once (request and FIN together):
            // the stream is answered after the connection closed.
            try await offThePool {
                for _ in 0..<20 {
                    let connection = try KeepAliveConnection(port: port)
                    try connection.sendRaw(
                        "GET /api/events HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer \(Self.token)\r\n\r\n")
                    connection.shutdownWrite()
                }
            }
            let inspector = bridge.bridge.admin!.inspector
            // Each of those connections has closed once a stream that is still open answers.
            let open = try await stream(bridge, lastEventID: nil, until: "retry: 2000")
            #expect(open.text.contains("text/event-stream"))
            let deadline = ContinuousClock.now + .seconds(10)
            while inspector.streamCount > 0 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            #expect(inspector.streamCount == 0)

            // Two requests in one write, the second's body sent after the first's answer: the
            // second's head is handed over while the first's end is written.
            let answers = try await offThePool { () -> [Int] in
                let connection = try KeepAliveConnection(port: port)
                let auth = "Authorization: Bearer \(Self.token)\r\n"
                try connection.sendRaw(
                    "GET /api/info HTTP/1.1\r\nHost: localhost\r\n\(auth)\r\n"
                        + "POST /api/dead-letters/replay HTTP/1.1\r\nHost: localhost\r\n\(auth)Content-Length: 12\r\n\r\n")
                let first = try connection.readAnswer()
                try connection.sendRaw(#"{"all":true}"#)  // 12 bytes
                let second = try connection.readAnswer()
                return [first.status, second.status]
            }
            // No spool in this config: the replay is 404 no_spool, but it is answered.
            #expect(answers == [200, 404])
        }
    }

    @Test("a bridge that cannot start (its main port is busy) does not keep the admin port it had bound")
    func adminPortGivenBack() async throws {
        try await RunningBridge.with(config: Self.config()) { bridge in
            let adminPort = try RedisServer.freePort()
            let text = Self.config().replacingOccurrences(of: #""port": 0}"#, with: "\"port\": \(bridge.port)}")
                .replacingOccurrences(
                    of: #""admin": {"host": "127.0.0.1", "port": 0"#,
                    with: #""admin": {"host": "127.0.0.1", "port": \#(adminPort)"#
                )
                .replacingOccurrences(of: "{dir}", with: bridge.directory.path)
            let config = try Bridge.loadConfig(Array(text.utf8), environment: [:])
            #expect(config.admin?.port == adminPort && config.listen.port == bridge.port)
            await #expect(throws: (any Error).self) {
                _ = try await Bridge.start(config: config, logger: .init(label: "test"))
            }
            // Nothing listens on the admin port any more: a connection is refused.
            #expect(throws: (any Error).self) { _ = try KeepAliveConnection(port: adminPort) }
        }
    }

    @Test("/api/info lists the sources a reload left, not those the bridge started with")
    func infoAfterReload() async throws {
        try await RunningBridge.with(config: Self.config()) { bridge in
            #expect(try await get(bridge, "/api/info").json?["sources"] == .array([.string("gh"), .string("other")]))
            let reloaded = Self.config().replacingOccurrences(
                of: #""other": {"path": "/other""#, with: #""third": {"path": "/third""#)
            try bridge.bridge.processor.reload(
                Bridge.loadConfig(
                    Array(reloaded.replacingOccurrences(of: "{dir}", with: bridge.directory.path).utf8), environment: [:]))
            #expect(try await get(bridge, "/api/info").json?["sources"] == .array([.string("gh"), .string("third")]))
        }
    }

    @Test(
        "config: admin needs a token that is not empty, not spaced, not the placeholder, and a port of its own; a short token is a warning"
    )
    func config() throws {
        func problems(_ admin: String) -> [String] {
            let text = """
                {"listen": {"port": 8080}, "admin": \(admin),
                 "sinks": {"a": {"type": "file", "path": "/tmp/x.jsonl"}},
                 "sources": {"s": {"path": "/s", "verify": {"scheme": "none"}, "sinks": ["a"]}}}
                """
            do {
                let config = try Bridge.loadConfig(Array(text.utf8), environment: [:])
                return config.warnings.map { "warning \($0)" }
            } catch {
                return error.problems.map { "\($0)" }
            }
        }
        #expect(problems(#"{"port": 9090}"#).contains { $0.contains("admin.token") && $0.contains("required") })
        #expect(problems(#"{"token": ""}"#).contains { $0.contains("admin.token") && $0.contains("must not be empty") })
        #expect(problems(#"{"token": "0123456789abcdef", "port": 8080}"#).contains { $0.contains("admin.port") })
        #expect(problems(#"{"token": "0123456789abcdef", "tokn": 1}"#).contains { $0.contains("admin.tokn") })
        #expect(problems(#"{"token": "short"}"#).contains { $0.hasPrefix("warning") && $0.contains("admin.token") })
        #expect(problems(#"{"token": "0123456789abcdef"}"#).isEmpty)
        // A token a client's bearer could never match (the spaces around it are not read), and
        // the Kubernetes Secret's placeholder, are errors.
        #expect(problems(#"{"token": "0123456789abcdef "}"#).contains { $0.contains("admin.token") && $0.contains("whitespace") })
        #expect(
            problems(#"{"token": "replace-me-with-a-long-random-token"}"#).contains {
                $0.contains("admin.token") && $0.contains("placeholder")
            })
    }
}
