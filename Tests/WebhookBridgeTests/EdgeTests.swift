import BridgeTestSupport
import WebhookCrypto
import Foundation
import Testing
import WebhookBridge
import WebhookCore
import WebhookEncoding
import WebhookProviders

/// Hostile and broken input over a real socket (SPEC section 8).
@Suite("Hostile input: ids, names, unsigned bodies, connections, handshakes")
struct EdgeTests {
    static let config = """
        {"listen": {"host": "127.0.0.1", "port": 0},
         "sinks": {"archive": {"type": "file", "path": "{dir}/events.jsonl"},
                   "byType": {"type": "file", "path": "{dir}/by-type/{type}.jsonl"}},
         "sources": {"gh": {"path": "/gh", "verify": {"scheme": "github", "secrets": ["gh-secret"]}, "sinks": ["archive"]},
                     "typed": {"path": "/typed", "verify": {"scheme": "github", "secrets": ["gh-secret"]}, "sinks": ["byType"]},
                     "slack": {"path": "/slack", "verify": {"scheme": "slack", "secrets": ["sl"]}, "sinks": ["archive"]},
                     "zoom": {"path": "/zoom", "verify": {"scheme": "zoom", "secrets": ["zm"]}, "sinks": ["archive"]},
                     "stripe": {"path": "/stripe", "verify": {"scheme": "stripe", "secrets": ["whsec_s"]}, "sinks": ["archive"]}}}
        """

    static func sha256ID(_ body: String) -> String { "sha256:" + Hex.encode(HashAlgorithm.sha256.hash(Array(body.utf8))) }

    @Test(
        "an empty, blank or overlong delivery id is replaced by the body hash; two such events never collide",
        arguments: ["", "   ", String(repeating: "i", count: 257)])
    func unusableIDs(id: String) async throws {
        try await RunningBridge.with(config: Self.config) { bridge in
            for n in 1...2 {
                let body = #"{"n": \#(n)}"#
                let answer = try await bridge.post("/gh", headers: githubHeaders(body, delivery: id), body: body)
                #expect(answer.status == .ok)
                #expect(answer.json?["status"] == .string("accepted"), "event \(n) with id \(id.debugDescription)")
                #expect(answer.json?["id"] == .string(Self.sha256ID(body)))
            }
            #expect(
                try bridge.lines("events.jsonl").map { $0["id"]?.scalarText } == [1, 2].map { Self.sha256ID(#"{"n": \#($0)}"#) })
        }
    }

    @Test(
        "an empty, blank or control-character id in a signed body is replaced by the body hash",
        arguments: ["", " \t ", "evt\u{1}1", "evt\n2026-12-01 critical forged"])
    func unusableBodyIDs(id: String) async throws {
        try await RunningBridge.with(config: Self.config) { bridge in
            for n in 1...2 {
                var idJSON: [UInt8] = []
                JSONWriter.append(.string(id), to: &idJSON)
                let body = #"{"id": \#(String(decoding: idJSON, as: UTF8.self)), "type": "charge.succeeded", "n": \#(n)}"#
                let signed = try WebhookSigner.sign(
                    scheme: "stripe",
                    .init(body: Array(body.utf8), secret: "whsec_s", timestamp: Int64(Date().timeIntervalSince1970)))
                let answer = try await bridge.post("/stripe", headers: signed.headers, body: body)
                #expect(answer.json?["status"] == .string("accepted"), "event \(n) with id \(id.debugDescription)")
                #expect(answer.json?["id"] == .string(Self.sha256ID(body)))
            }
        }
    }

    @Test(
        "delivery ids that are not UTF-8 are replaced by the body hash: two that differ only in an invalid byte are two events, both stored"
    )
    func idsThatAreNotUTF8() async throws {
        try await RunningBridge.with(config: Self.config) { bridge in
            let connection = try KeepAliveConnection(port: bridge.port)
            for (n, byte) in [UInt8(0xFF), 0xFE].enumerated() {
                let body = #"{"n": \#(n)}"#
                let headers = githubHeaders(body, delivery: "unused").filter { $0.0 != "X-GitHub-Delivery" }
                let lines = headers.map { Array("\($0.0): \($0.1)".utf8) } + [Array("X-GitHub-Delivery: delivery-".utf8) + [byte]]
                let answer = try await offThePool { try connection.post("/gh", rawHeaders: lines, body: body) }
                #expect(answer.status == 200)
                #expect(answer.body.contains("\"accepted\""), "\(answer.body)")
                #expect(answer.body.contains(Self.sha256ID(body)), "\(answer.body)")
            }
            #expect(
                try bridge.lines("events.jsonl").map { $0["id"]?.scalarText } == [0, 1].map { Self.sha256ID(#"{"n": \#($0)}"#) })
        }
    }

    @Test("an id of exactly 256 bytes is used as given")
    func longestID() async throws {
        try await RunningBridge.with(config: Self.config) { bridge in
            let id = String(repeating: "a", count: 256)
            let body = #"{"n": 1}"#
            let answer = try await bridge.post("/gh", headers: githubHeaders(body, delivery: id), body: body)
            #expect(answer.json?["id"] == .string(id))
        }
    }

    @Test(
        "a 300-byte event type in a file name is cut with a hash, the name keeps the template's .jsonl: the event lands and the sink stays ready"
    )
    func longTypeInFileName() async throws {
        try await RunningBridge.with(config: Self.config) { bridge in
            let types = [String(repeating: "t", count: 300), String(repeating: "t", count: 299) + "u"]
            for (n, type) in types.enumerated() {
                let body = #"{"n": \#(n)}"#
                let answer = try await bridge.post(
                    "/typed", headers: githubHeaders(body, delivery: "long-\(n)", event: type), body: body)
                #expect(answer.status == .ok, "\(answer.status) \(String(decoding: answer.body, as: UTF8.self))")
            }
            let files = try FileManager.default.contentsOfDirectory(atPath: bridge.directory.file("by-type")).sorted()
            #expect(files.count == 2, "two long types that share their start must stay apart: \(files)")
            #expect(files.allSatisfy { $0.utf8.count <= 255 })
            // The template's literal suffix stays: a consumer globbing *.jsonl finds them.
            #expect(files.allSatisfy { $0.hasSuffix(".jsonl") && $0.hasPrefix("ttt") }, "\(files)")
            #expect(try await bridge.get("/readyz").status == .ok)
        }
    }

    @Test("an event a sink can never write is dead-lettered at once: the sink stays ready and the next event is not held back")
    func poisonAtRequestTime() async throws {
        let spool = TemporaryDirectory()
        defer { spool.cleanup() }
        let config = Self.config.replacingOccurrences(
            of: #""listen": {"host": "127.0.0.1", "port": 0},"#,
            with: #""listen": {"host": "127.0.0.1", "port": 0}, "spool": {"directory": "\#(spool.path)"},"#)
        try await RunningBridge.with(config: config) { bridge in
            // A directory where the poison events' file would be: EISDIR, for good.
            try FileManager.default.createDirectory(
                atPath: bridge.directory.file("by-type/poison.jsonl"), withIntermediateDirectories: true)
            let poison = #"{"n": "poison"}"#
            let refused = try await bridge.post(
                "/typed", headers: githubHeaders(poison, delivery: "p-1", event: "poison"), body: poison)
            #expect(refused.status == .accepted, "durable in the dead letters")
            #expect(refused.json?["status"] == .string("queued"))
            let good = #"{"n": "good"}"#
            let accepted = try await bridge.post(
                "/typed", headers: githubHeaders(good, delivery: "g-1", event: "good"), body: good)
            #expect(accepted.status == .ok, "held back behind the poison event")
            #expect(try await bridge.get("/readyz").status == .ok)
            let deadLetters = try String(contentsOfFile: spool.file("dead-letter.jsonl"), encoding: .utf8).split(separator: "\n")
            #expect(deadLetters.count == 1)
            #expect(deadLetters.first?.contains(#""id":"p-1""#) ?? false, "\(deadLetters)")
        }
    }

    @Test("a POST without the scheme's signature header is answered 401 from its head, before its body is sent")
    func unsignedAnsweredFromHead() async throws {
        try await RunningBridge.with(config: Self.config) { bridge in
            let connection = try KeepAliveConnection(port: bridge.port)
            // Announce a 1 MB body and send none of it: the answer must come anyway.
            try connection.sendRaw("POST /gh HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
            let answer = try await offThePool { try connection.readAnswer() }
            #expect(answer.status == 401)
            #expect(answer.body == #"{"error":"signature_missing"}"#)
            #expect(try bridge.lines("events.jsonl").isEmpty)
        }
    }

    @Test("woocommerce and event-grid: an unsigned body too long for the ping, or a wrong code, is refused from the head")
    func providerHeadRefusals() async throws {
        let config = """
            {"listen": {"host": "127.0.0.1", "port": 0},
             "sinks": {"archive": {"type": "file", "path": "{dir}/events.jsonl"}},
             "sources": {"woo": {"path": "/woo", "verify": {"scheme": "woocommerce", "secrets": ["w"]}, "sinks": ["archive"]},
                         "grid": {"path": "/grid", "verify": {"scheme": "event-grid", "secrets": ["c"]}, "sinks": ["archive"]}}}
            """
        try await RunningBridge.with(config: config) { bridge in
            for head in [
                "POST /woo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n",
                "POST /grid?code=wrong HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n",
            ] {
                let connection = try KeepAliveConnection(port: bridge.port)
                try connection.sendRaw(head)
                let answer = try await offThePool { try connection.readAnswer() }
                #expect(answer.status == 401, "\(head): \(answer)")
            }
        }
    }

    @Test("bodies being received are bounded by maxBufferedBytes: past it, 503 busy with Retry-After: 1, before the body")
    func bufferedBytesBounded() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let port = try RedisServer.freePort()
        let config = Self.config.replacingOccurrences(
            of: #""listen": {"host": "127.0.0.1", "port": 0},"#,
            with:
                #""listen": {"host": "127.0.0.1", "port": \#(port)}, "limits": {"maxBodyBytes": 600000, "maxBufferedBytes": 1000000},"#
        ).replacingOccurrences(of: "{dir}", with: directory.path)
        // The real binary, for its /metrics (the bytes held: webhook_buffered_body_bytes).
        let server = try BridgeProcess(config: try writeConfig(config, in: directory))
        defer { _ = server.terminate() }
        let head = "POST /gh HTTP/1.1\r\nHost: x\r\nX-Hub-Signature-256: sha256=00\r\nContent-Length: 500000\r\n"
        // Two bodies of 500 kB are being received, from two clients: all but their last byte.
        let first = try KeepAliveConnection(port: port, from: "127.0.0.2")
        try first.sendRaw(head + "\r\n" + String(repeating: "x", count: 499_999))
        let second = try KeepAliveConnection(port: port, from: "127.0.0.3")
        try second.sendRaw(head + "\r\n" + String(repeating: "x", count: 499_999))
        var held = 0.0
        for _ in 0..<1500 where held != 1_000_000 {
            let metrics = try KeepAliveConnection(port: port).get("/metrics").body
            held =
                metrics.split(separator: "\n").first { $0.hasPrefix("webhook_buffered_body_bytes ") }
                .flatMap { Double($0.split(separator: " ")[1]) } ?? 0
            if held != 1_000_000 { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(held == 1_000_000)
        // A third, from a third client, would pass 1,000,000 bytes: refused from its head.
        let third = try KeepAliveConnection(port: port, from: "127.0.0.4")
        try third.sendRaw(head + "\r\n")
        let busy = try await offThePool { try third.readAnswer() }
        #expect(busy.status == 503)
        #expect(busy.body == #"{"error":"busy"}"#)
        #expect(busy.head.contains("Retry-After: 1"))
        // Once the first body is complete (and refused: its signature is wrong), room comes back.
        try first.sendRaw("x")
        let firstAnswer = try await offThePool { try first.readAnswer() }
        #expect(firstAnswer.status == 401)
        let again = try KeepAliveConnection(port: port, from: "127.0.0.4")
        try again.sendRaw(head + "\r\n" + String(repeating: "y", count: 500_000))
        let againAnswer = try await offThePool { try again.readAnswer() }
        #expect(againAnswer.status == 401, "room was not given back: \(againAnswer)")
    }

    @Test("a malformed request gets 400 and the connection is closed at once, not at the idle timeout")
    func malformedClosed() async throws {
        try await RunningBridge.with(config: Self.config) { bridge in
            let connection = try KeepAliveConnection(port: bridge.port)
            try connection.sendRaw("POST /gh HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n")
            let started = Date()
            let result = try await offThePool { connection.readUntilClosed() }
            #expect(result.text.hasPrefix("HTTP/1.1 400"), "\(result.text)")
            #expect(result.closedByServer)
            // Well under the 30 s idle timeout (a loaded full-suite run once took 5.6 s).
            #expect(Date().timeIntervalSince(started) < 15, "closed only by the idle timeout")
        }
    }

    @Test("after an answer with Connection: close, bytes already sent behind it are not parsed or answered")
    func nothingAfterClose() async throws {
        try await RunningBridge.with(config: Self.config) { bridge in
            let connection = try KeepAliveConnection(port: bridge.port)
            let body = #"{"n": 1}"#
            try connection.sendRaw(
                "POST /gh HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Hub-Signature-256: sha256=00\r\n"
                    + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
                    + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            let result = try await offThePool { connection.readUntilClosed() }
            #expect(result.closedByServer)
            #expect(result.text.components(separatedBy: "HTTP/1.1 ").count - 1 == 1, "\(result.text.debugDescription)")
            #expect(result.text.hasPrefix("HTTP/1.1 401"))
        }
    }

    /// Slack's and Zoom's `v0` signature headers for `body`.
    func v0Headers(_ body: String, secret: String, signature: String, timestamp timestampHeader: String) -> [(String, String)] {
        let timestamp = String(Int(Date().timeIntervalSince1970))
        let mac = HashAlgorithm.sha256.authenticationCode(
            for: Array("v0:\(timestamp):\(body)".utf8), using: (Array(secret.utf8)))
        return [(signature, "v0=" + Hex.encode(mac)), (timestampHeader, timestamp), ("Content-Type", "application/json")]
    }

    func slackHeaders(_ body: String) -> [(String, String)] {
        v0Headers(body, secret: "sl", signature: "X-Slack-Signature", timestamp: "X-Slack-Request-Timestamp")
    }

    func zoomHeaders(_ body: String) -> [(String, String)] {
        v0Headers(body, secret: "zm", signature: "x-zm-signature", timestamp: "x-zm-request-timestamp")
    }

    @Test("a signed Slack url_verification or Zoom url_validation without its challenge is answered 400, not forwarded")
    func handshakeWithoutChallenge() async throws {
        try await RunningBridge.with(config: Self.config) { bridge in
            let slack = #"{"type": "url_verification", "token": "t"}"#
            let slackAnswer = try await bridge.post("/slack", headers: slackHeaders(slack), body: slack)
            #expect(slackAnswer.status == .badRequest)
            #expect(slackAnswer.json?["error"] == .string("invalid_handshake"))
            let zoom = #"{"event": "endpoint.url_validation", "payload": {}}"#
            let zoomAnswer = try await bridge.post("/zoom", headers: zoomHeaders(zoom), body: zoom)
            #expect(zoomAnswer.status == .badRequest)
            // With the challenge, still answered (and still not forwarded).
            let complete = #"{"type": "url_verification", "challenge": "c-1"}"#
            let completeAnswer = try await bridge.post("/slack", headers: slackHeaders(complete), body: complete)
            #expect(completeAnswer.status == .ok)
            #expect(completeAnswer.json == .object([("challenge", .string("c-1"))]))
            #expect(try bridge.lines("events.jsonl").isEmpty)
        }
    }

    @Test("pipelined requests in one write are answered in order, each once, events and built-in endpoints mixed")
    func pipelinedInOrder() async throws {
        try await RunningBridge.with(config: Self.config) { bridge in
            let connection = try KeepAliveConnection(port: bridge.port)
            var requests = ""
            var expected: [(status: Int, id: String?)] = []
            for n in 0..<12 {
                let body = #"{"n": \#(n)}"#
                switch n % 4 {
                case 0, 1:
                    // Signed events: each answered only once the file sink has fsynced it.
                    requests += "POST /gh HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n"
                    for (name, value) in githubHeaders(body, delivery: "p-\(n)") { requests += "\(name): \(value)\r\n" }
                    requests += "\r\n" + body
                    expected.append((200, "p-\(n)"))
                case 2:
                    requests += "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                    expected.append((200, nil))
                default:
                    requests += "POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body
                    expected.append((404, nil))
                }
            }
            try connection.sendRaw(requests)
            for (index, want) in expected.enumerated() {
                let answer = try await offThePool { try connection.readAnswer() }
                #expect(answer.status == want.status, "answer \(index): \(answer)")
                if let id = want.id {
                    #expect(answer.body.contains("\"\(id)\""), "answer \(index) is not for \(id): \(answer.body)")
                }
            }
            // Still open and in step: one more request gets its own answer.
            #expect(try connection.get("/healthz").status == 200)
            #expect(try bridge.lines("events.jsonl").count == 6)
        }
    }

    @Test("a client that half-closes after its requests (a FIN, still reading) gets every answer, then the server closes")
    func halfClosedClient() async throws {
        try await RunningBridge.with(config: Self.config) { bridge in
            for count in [1, 3] {
                let connection = try KeepAliveConnection(port: bridge.port)
                var requests = ""
                for n in 0..<count {
                    let body = #"{"n": "half-\#(count)-\#(n)"}"#
                    requests += "POST /gh HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n"
                    for (name, value) in githubHeaders(body, delivery: "h-\(count)-\(n)") { requests += "\(name): \(value)\r\n" }
                    requests += "\r\n" + body
                }
                try connection.sendRaw(requests)
                connection.shutdownWrite()
                // The server's close ends the read; the read's own 10 s timeout is far inside
                // the 30 s idle timeout a forgotten connection would wait for.
                let rest = try await offThePool { connection.readUntilClosed() }
                #expect(rest.closedByServer, "\(rest.text.debugDescription)")
                let answers = rest.text.components(separatedBy: "HTTP/1.1 200 OK").count - 1
                #expect(answers == count, "\(rest.text.debugDescription)")
                for n in 0..<count { #expect(rest.text.contains("\"h-\(count)-\(n)\""), "\(rest.text.debugDescription)") }
            }
            #expect(try bridge.lines("events.jsonl").count == 4)
        }
    }

    @Test("a malformed request pipelined behind an event waits its turn: the event's 200, then 400 and the close")
    func malformedBehindEvent() async throws {
        try await RunningBridge.with(config: Self.config) { bridge in
            let connection = try KeepAliveConnection(port: bridge.port)
            let body = #"{"n": "before-garbage"}"#
            var request = "POST /gh HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n"
            for (name, value) in githubHeaders(body, delivery: "g-1") { request += "\(name): \(value)\r\n" }
            try connection.sendRaw(request + "\r\n" + body + "GET /healthz HTTP/1.1\r\nContent-Length: nope\r\n\r\n")
            let first = try await offThePool { try connection.readAnswer() }
            #expect(first.status == 200, "\(first)")
            #expect(first.body.contains("g-1"))
            let rest = try await offThePool { connection.readUntilClosed() }
            #expect(rest.text.hasPrefix("HTTP/1.1 400"), "\(rest.text.debugDescription)")
            #expect(rest.closedByServer)
        }
    }

    @Test("a reload between a request's head and its body does not change the source it is checked against")
    func reloadMidRequest() async throws {
        try await RunningBridge.with(config: Self.config) { bridge in
            let body = #"{"n": "mid-reload"}"#
            let connection = try KeepAliveConnection(port: bridge.port)
            var head = "POST /gh HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\nExpect: 100-continue\r\n"
            for (name, value) in githubHeaders(body, delivery: "r-1") { head += "\(name): \(value)\r\n" }
            try connection.sendRaw(head + "\r\n")
            // 100 Continue: the head has been routed and admitted. Now a reload drops /gh.
            #expect(try await offThePool { try connection.readAnswer() }.status == 100)
            let reloaded = Self.config.replacingOccurrences(
                of: #""gh": {"path": "/gh", "verify": {"scheme": "github", "secrets": ["gh-secret"]}, "sinks": ["archive"]},"#,
                with: "")
            #expect(reloaded != Self.config)
            try bridge.bridge.processor.reload(
                Bridge.loadConfig(
                    Array(reloaded.replacingOccurrences(of: "{dir}", with: bridge.directory.path).utf8), environment: [:]))
            try connection.sendRaw(body)
            let answer = try await offThePool { try connection.readAnswer() }
            #expect(answer.status == 200, "\(answer)")
            #expect(try bridge.lines("events.jsonl").count == 1)
            // A new request to /gh finds no source.
            #expect(try await bridge.post("/gh", headers: githubHeaders(body, delivery: "r-2"), body: body).status == .notFound)
        }
    }

    @Test("the file sink embeds a body the scheme's scan found to be JSON, and base64s one it found not to be")
    func scannedBodiesInTheFileSink() async throws {
        let bodies = [
            #"{"id": "evt_json", "type": "charge.succeeded", "data": {"n": [1, 2]}}"#,
            "id=evt_form&type=charge.succeeded",
            #"{"id": "evt_dup", "id": "evt_dup2", "type": "charge.succeeded"}"#,
        ]
        try await RunningBridge.with(config: Self.config) { bridge in
            for body in bodies {
                let signed = try WebhookSigner.sign(
                    scheme: "stripe",
                    .init(body: Array(body.utf8), secret: "whsec_s", timestamp: Int64(Date().timeIntervalSince1970)))
                let answer = try await bridge.post("/stripe", headers: signed.headers, body: body)
                #expect(answer.status == .ok)
            }
            let lines = try bridge.lines("events.jsonl")
            try #require(lines.count == 3)
            #expect(lines[0]["id"] == .string("evt_json"))
            #expect(lines[0]["data"] == (try JSONParser.parse(Array(bodies[0].utf8))))
            for (line, body) in zip(lines[1...], bodies[1...]) {
                #expect(line["data"] == nil)
                #expect(line["data_base64"]?.scalarText.flatMap { Base64.decode($0) } == Array(body.utf8))
            }
        }
    }
}
