import BridgeTestSupport
import Foundation
import Synchronization
import Testing
import WebhookBridge
import WebhookCore
import WebhookEncoding

/// `scripts/webhook-receiver.py` as a child process: a real HTTP/1.1 receiver that checks
/// every delivery with the official Standard Webhooks library (`standardwebhooks` from PyPI)
/// and answers what it is told to.
final class WebhookReceiver: @unchecked Sendable {
    static var isInstalled: Bool {
        guard FileManager.default.isExecutableFile(atPath: OTLPReceiver.python) else { return false }
        let check = Process()
        check.executableURL = URL(fileURLWithPath: OTLPReceiver.python)
        check.arguments = ["-c", "import standardwebhooks"]
        check.standardError = FileHandle.nullDevice
        guard (try? check.run()) != nil else { return false }
        check.waitUntilExit()
        return check.terminationStatus == 0
    }

    /// One request the receiver got.
    struct Delivery: Sendable {
        let json: JSONValue
        var path: String { json["path"]?.scalarText ?? "" }
        var verified: Bool { json["verified"] == .bool(true) }
        var error: String? { json["error"]?.scalarText }
        var answered: Int? { json["answered"]?.scalarText.flatMap { Int($0) } }
        var time: Double { Double(json["time"]?.scalarText ?? "") ?? 0 }
        var body: String { json["body"]?.scalarText ?? "" }
        var clientPort: Int { Int(json["client_port"]?.scalarText ?? "") ?? 0 }
        func header(_ name: String) -> String? { json["headers"]?[name]?.scalarText }
        var id: String { header("webhook-id") ?? "" }
    }

    private final class Output: Sendable {
        let lines = Mutex<[String]>([])
        let arrived = DispatchSemaphore(value: 0)
    }
    private let process = Process()
    private let input = Pipe()
    private let output = Output()
    let port: Int

    /// - Parameter tls: serve HTTPS with these certificates, asking for a client certificate.
    init(secret: String?, tls: TestCertificates? = nil) throws {
        process.executableURL = URL(fileURLWithPath: OTLPReceiver.python)
        process.arguments =
            [DeployTests.root.appendingPathComponent("scripts/webhook-receiver.py").path]
            + (secret.map { ["--secret", $0] } ?? [])
            + (tls.map { ["--certificate", $0.serverCertificate, "--key", $0.serverKey, "--client-ca", $0.caFile] } ?? [])
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardInput = input
        try process.run()
        let handle = pipe.fileHandleForReading
        let output = self.output
        Thread {
            var pending = ""
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                pending += String(decoding: chunk, as: UTF8.self)
                while let newline = pending.firstIndex(of: "\n") {
                    let line = String(pending[..<newline])
                    pending = String(pending[pending.index(after: newline)...])
                    output.lines.withLock { $0.append(line) }
                }
                output.arrived.signal()
            }
            output.arrived.signal()
        }.start()
        guard let first = Self.wait(output, until: { !$0.isEmpty }).first,
            let port = (try? JSONParser.parse(Array(first.utf8)))?["listening"]?.scalarText.flatMap({ Int($0) })
        else { throw ServerError("webhook-receiver.py did not start") }
        self.port = port
    }

    private static func wait(_ output: Output, timeout: TimeInterval = 30, until done: ([String]) -> Bool) -> [String] {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let lines = output.lines.withLock { $0 }
            if done(lines) || Date() >= deadline { return lines }
            _ = output.arrived.wait(timeout: .now() + 1)
        }
    }

    /// Every request so far.
    var deliveries: [Delivery] {
        output.lines.withLock { $0 }.compactMap { line in
            guard let json = try? JSONParser.parse(Array(line.utf8)), json["path"] != nil else { return nil }
            return Delivery(json: json)
        }
    }

    /// Waits (up to `timeout` seconds) until `done` holds for the requests so far; returns them.
    @discardableResult
    func waitFor(timeout: TimeInterval = 30, _ done: ([Delivery]) -> Bool) -> [Delivery] {
        let lines = Self.wait(output, timeout: timeout) { _ in done(deliveries) }
        _ = lines
        return deliveries
    }

    /// How many idle connections it closed (`closeAfter`).
    var closedConnections: Int { output.lines.withLock { $0.filter { $0.hasPrefix(#"{"closed""#) }.count } }

    /// The requests it answered with `status`.
    func answered(_ status: Int) -> [Delivery] { deliveries.filter { $0.answered == status } }

    /// Replaces the scripted answers (JSON objects, see the script) and returns once they
    /// are in force.
    func answer(_ answers: String) throws {
        let acknowledged = output.lines.withLock { $0.filter { $0.contains("\"control\"") }.count }
        // One command a line: line breaks between the answers are only layout.
        let line = #"{"answers": [\#(answers.replacingOccurrences(of: "\n", with: " "))]}"#
        input.fileHandleForWriting.write(Data(line.utf8 + [0x0A]))
        let lines = Self.wait(output) { $0.filter { $0.contains("\"control\"") }.count > acknowledged }
        guard lines.filter({ $0.contains("\"control\"") }).count > acknowledged else {
            throw ServerError("webhook-receiver.py did not take the answers")
        }
    }

    func stop() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    deinit { if process.isRunning { stop() } }
}

/// The `http` sink (SPEC section 12) with the real binary, delivering to a real receiver that
/// verifies every request with the Standard Webhooks library: answers that fail then
/// succeed, Retry-After, a hang past the timeout, a permanent refusal, secret rotation, the
/// circuit breaker, the retry horizon, and a kill -9 in the middle of a backlog.
@Suite(
    "HTTP sink: signed deliveries, retries, the breaker", .serialized,
    .enabled(
        if: WebhookReceiver.isInstalled, "standardwebhooks is not installed (scripts/install-test-tools.sh, run by make test)"))
struct HTTPSinkTests {
    static let secret = "whsec_" + Base64.encode(Array("receiver-key-0123456789abcdef".utf8))
    static let oldSecret = "whsec_" + Base64.encode(Array("the-key-being-retired-0123".utf8))

    struct Setup {
        let receiver: WebhookReceiver
        let directory: TemporaryDirectory
        let port: Int
        let config: String
    }

    /// A bridge config with one GitHub source delivering to an `http` sink on the receiver,
    /// and a spool whose retries are quick.
    func setUp(
        receiverSecret: String? = HTTPSinkTests.secret, sink: String = "", retry: String = #"{"initialMs": 20, "maxMs": 100}"#
    ) throws -> Setup {
        let receiver = try WebhookReceiver(secret: receiverSecret)
        let directory = TemporaryDirectory()
        let port = try RedisServer.freePort()
        let config = try writeConfig(
            """
            {"listen": {"host": "127.0.0.1", "port": \(port)},
             "spool": {"directory": "\(directory.file("spool"))", "retry": \(retry)},
             "sinks": {"orders": {"type": "http", "url": "http://127.0.0.1:\(receiver.port)/hooks/{type}?from={source}",
                                  "sign": {"secrets": ["\(Self.secret)"]}, "headers": {"X-Team": "payments"} \(sink)}},
             "sources": {"gh": {"path": "/gh", "verify": {"scheme": "github", "secrets": ["gh-secret"]}, "sinks": ["orders"]}}}
            """, in: directory)
        return Setup(receiver: receiver, directory: directory, port: port, config: config)
    }

    func post(_ connection: KeepAliveConnection, delivery: String, event: String = "order.created") throws -> (
        status: Int, body: String
    ) {
        let body = #"{"order": "\#(delivery)", "total": 4200}"#
        return try connection.post("/gh", headers: githubHeaders(body, delivery: delivery, event: event), body: body)
    }

    func deadLetters(_ setup: Setup) throws -> [JSONValue] {
        guard let data = FileManager.default.contents(atPath: setup.directory.file("spool/dead-letter.jsonl")) else { return [] }
        return try data.split(separator: 0x0A).map { try JSONParser.parse(Array($0)) }
    }

    @Test("503s then success: each event delivered once, in order, every request verified by the Standard Webhooks library")
    func failuresThenSuccess() throws {
        let setup = try setUp()
        defer { setup.receiver.stop() }
        defer { setup.directory.cleanup() }
        try setup.receiver.answer(#"{"status": 503, "count": 3}"#)
        let server = try BridgeProcess(config: setup.config)
        let connection = try KeepAliveConnection(port: setup.port)
        let ids = (1...5).map { "evt-\($0)" }
        // The first is refused (503) and queued; the others queue behind it while it is
        // retried, or go straight through once the backlog drained: 202 or 200, never 503.
        for id in ids {
            let answer = try post(connection, delivery: id)
            #expect(id == "evt-1" ? answer.status == 202 : [200, 202].contains(answer.status), "\(id): \(answer)")
        }
        let delivered = setup.receiver.waitFor { $0.filter { $0.answered == 204 }.count >= 5 }.filter { $0.answered == 204 }
        #expect(delivered.map(\.id) == ids)
        #expect(setup.receiver.answered(503).map(\.id) == ["evt-1", "evt-1", "evt-1"])
        for delivery in setup.receiver.deliveries {
            #expect(delivery.verified, "\(delivery.id): \(delivery.error ?? "")")
        }
        let first = try #require(delivered.first)
        #expect(first.path == "/hooks/order.created?from=gh")
        #expect(first.body == #"{"order": "evt-1", "total": 4200}"#)
        #expect(
            first.header("ce-id") == "evt-1" && first.header("ce-source") == "gh" && first.header("ce-type") == "order.created")
        #expect(first.header("ce-specversion") == "1.0" && first.header("ce-webhookscheme") == "github")
        #expect(first.header("content-type") == "application/json")
        #expect(first.header("x-team") == "payments")
        #expect(first.header("webhook-signature")?.split(separator: " ").count == 1)
        // Kept alive: the five deliveries after the failures share a connection or two, not one each.
        #expect(Set(delivered.map(\.clientPort)).count < delivered.count)
        _ = server.terminate()
    }

    @Test("429 with Retry-After: 2: the next try comes no sooner than 2 s later")
    func retryAfter() throws {
        let setup = try setUp()
        defer { setup.receiver.stop() }
        defer { setup.directory.cleanup() }
        try setup.receiver.answer(#"{"status": 429, "retryAfter": "2"}"#)
        let server = try BridgeProcess(config: setup.config)
        let connection = try KeepAliveConnection(port: setup.port)
        #expect(try post(connection, delivery: "evt-429").status == 202)
        // Within the 2 s, a new event is not sent either: it waits in the spool behind the first.
        #expect(try post(connection, delivery: "evt-after").status == 202)
        let deliveries = setup.receiver.waitFor { $0.filter { $0.answered == 204 }.count >= 2 }
        #expect(deliveries.map(\.answered) == [429, 204, 204])
        #expect(deliveries.map(\.id) == ["evt-429", "evt-429", "evt-after"])
        if deliveries.count == 3 {
            #expect(deliveries[1].time - deliveries[0].time >= 2.0, "retried after \(deliveries[1].time - deliveries[0].time) s")
        }
        _ = server.terminate()
    }

    @Test("a receiver that hangs past timeoutMs: the request is given up, the event spooled and delivered on the retry")
    func hang() throws {
        let setup = try setUp(sink: #", "timeoutMs": 300"#)
        defer { setup.receiver.stop() }
        defer { setup.directory.cleanup() }
        try setup.receiver.answer(#"{"hang": 5}"#)
        let server = try BridgeProcess(config: setup.config)
        let connection = try KeepAliveConnection(port: setup.port)
        let started = Date()
        #expect(try post(connection, delivery: "evt-hang").status == 202)
        // Answered once the sink's own 300 ms ran out, not after the receiver's 5 s (nor the 5 s ackTimeoutMs).
        #expect(Date().timeIntervalSince(started) < 4)
        let deliveries = setup.receiver.waitFor { $0.contains { $0.answered == 204 } }
        #expect(deliveries.map(\.answered) == [nil, 204])
        #expect(server.logText.contains("no answer within 300 ms"))
        _ = server.terminate()
    }

    @Test(
        "410: a permanent refusal goes to the dead letters with the status and the answer's start; later events still go through")
    func gone() throws {
        let setup = try setUp()
        defer { setup.receiver.stop() }
        defer { setup.directory.cleanup() }
        let long = String(repeating: "x", count: 600)
        try setup.receiver.answer(#"{"status": 410, "body": "gone for good \#(long)"}"#)
        let server = try BridgeProcess(config: setup.config)
        let connection = try KeepAliveConnection(port: setup.port)
        #expect(try post(connection, delivery: "evt-gone").status == 202)
        #expect(try post(connection, delivery: "evt-next").status == 200)
        let letters = try deadLetters(setup)
        #expect(letters.count == 1)
        let letter = try #require(letters.first)
        #expect(letter["id"]?.scalarText == "evt-gone")
        #expect(letter["deadlettersink"]?.scalarText == "orders")
        #expect(letter["deadletterstatus"]?.scalarText == "410")
        let answer = letter["deadletteranswer"]?.scalarText ?? ""
        #expect(answer.hasPrefix("gone for good xxx") && answer.utf8.count == 512)
        #expect(letter["deadletterreason"]?.scalarText?.contains("HTTP 410") == true)
        // The receiver's line about it may still be on its way through the pipe.
        let next = setup.receiver.waitFor { $0.contains { $0.answered == 204 } }
        #expect(next.filter { $0.answered == 204 }.map(\.id) == ["evt-next"])
        _ = server.terminate()
    }

    @Test(
        "answers in every framing: chunked with extensions and trailers, 100 Continue first, HTTP/1.0 until close; a chunked 410 dead-lettered whole; garbage retried"
    )
    func framings() throws {
        let setup = try setUp()
        defer { setup.receiver.stop() }
        defer { setup.directory.cleanup() }
        try setup.receiver.answer(
            #"""
            {"raw": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: y\r\n\r\n", "status": 200},
            {"raw": "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", "status": 204},
            {"raw": "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close", "status": 200, "close": true},
            {"raw": "HTTP/1.1 410 Gone\r\ntransfer-encoding: chunked\r\n\r\n4\r\ngone\r\n5\r\n away\r\n0\r\n\r\n", "status": 410},
            {"raw": "garbage\r\n\r\n", "status": 0, "close": true}
            """#)
        let server = try BridgeProcess(config: setup.config)
        let connection = try KeepAliveConnection(port: setup.port)
        #expect(try post(connection, delivery: "chunked").status == 200)
        #expect(try post(connection, delivery: "continue").status == 200)
        #expect(try post(connection, delivery: "until-close").status == 200)
        #expect(try post(connection, delivery: "gone").status == 202)
        let letter = try #require(try deadLetters(setup).first)
        #expect(letter["deadletterstatus"]?.scalarText == "410" && letter["deadletteranswer"]?.scalarText == "gone away")
        // Not HTTP: a failure worth a retry, which the receiver then answers 204.
        #expect(try post(connection, delivery: "garbage").status == 202)
        let deliveries = setup.receiver.waitFor { $0.filter { $0.id == "garbage" }.count >= 2 }
        #expect(deliveries.map(\.id) == ["chunked", "continue", "until-close", "gone", "garbage", "garbage"])
        #expect(deliveries.last?.answered == 204)
        // More bytes than the answer's length: the answer counts, the connection is not used again.
        try setup.receiver.answer(#"{"raw": "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA", "status": 200}"#)
        // 200, or 202 when the forwarder has not yet moved past "garbage" (the receiver's line
        // comes before its answer reaches the bridge): either way the receiver's answer decides.
        #expect([200, 202].contains(try post(connection, delivery: "extra").status))
        #expect([200, 202].contains(try post(connection, delivery: "after-extra").status))
        let all = setup.receiver.waitFor { $0.contains { $0.id == "after-extra" && $0.answered == 204 } }
        let extra = try #require(all.first { $0.id == "extra" })
        let afterExtra = try #require(all.first { $0.id == "after-extra" })
        #expect(afterExtra.answered == 204 && afterExtra.clientPort != extra.clientPort)
        // The chunked and the 100 Continue answers kept the connection for the next request.
        #expect(deliveries[0].clientPort == deliveries[1].clientPort && deliveries[1].clientPort == deliveries[2].clientPort)
        #expect(deliveries[3].clientPort != deliveries[2].clientPort)
        _ = server.terminate()
    }

    @Test("https with a private CA and a client certificate: delivered and verified; without the CA the receiver is not trusted")
    func mutualTLS() throws {
        let certificates = try TestCertificates()
        defer { certificates.cleanup() }
        let receiver = try WebhookReceiver(secret: Self.secret, tls: certificates)
        defer { receiver.stop() }
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let port = try RedisServer.freePort()
        let config = try writeConfig(
            """
            {"listen": {"host": "127.0.0.1", "port": \(port)},
             "sinks": {"trusted": {"type": "http", "url": "https://localhost:\(receiver.port)/tls", "sign": {"secrets": ["\(Self.secret)"]},
                                   "ca": "\(certificates.caFile)", "certificate": "\(certificates.clientCertificate)",
                                   "privateKey": "\(certificates.clientKey)"},
                       "untrusted": {"type": "http", "url": "https://localhost:\(receiver.port)/tls", "breaker": {"failures": 1000}}},
             "sources": {"gh": {"path": "/gh", "verify": {"scheme": "github", "secrets": ["gh-secret"]}, "sinks": ["trusted"]},
                         "other": {"path": "/other", "verify": {"scheme": "github", "secrets": ["gh-secret"]}, "sinks": ["untrusted"]}}}
            """, in: directory)
        let server = try BridgeProcess(config: config)
        let connection = try KeepAliveConnection(port: port)
        #expect(try post(connection, delivery: "tls-1").status == 200)
        let delivery = try #require(receiver.waitFor { !$0.isEmpty }.first)
        #expect(delivery.id == "tls-1" && delivery.verified)
        #expect(delivery.json["client_cn"]?.scalarText == "webhook-bridge test client")
        // An answer framed by the close, over TLS without close_notify: still an answer.
        try receiver.answer(#"{"raw": "HTTP/1.0 200 OK\r\n\r\nbye", "status": 200, "close": true}"#)
        #expect(try post(connection, delivery: "tls-close").status == 200)
        // The system's trust roots don't know the test CA: no delivery, and no spool here, so 503.
        let body = #"{"order": "tls-2"}"#
        let refused = try connection.post("/other", headers: githubHeaders(body, delivery: "tls-2"), body: body)
        #expect(refused.status == 503)
        #expect(receiver.deliveries.map(\.id) == ["tls-1", "tls-close"])
        _ = server.terminate()
    }

    @Test(
        "one connection allowed, closed by the receiver while idle: the next deliveries, from either event loop, open a new one")
    func staleIdleConnection() throws {
        let setup = try setUp(sink: #", "maxInFlight": 1"#)
        defer { setup.receiver.stop() }
        defer { setup.directory.cleanup() }
        try setup.receiver.answer(#"{"status": 204, "closeAfter": 0.2, "count": -1}"#)
        let server = try BridgeProcess(config: setup.config)
        // Two connections to the bridge, accepted on its two event loops in turn.
        let first = try KeepAliveConnection(port: setup.port)
        let second = try KeepAliveConnection(port: setup.port)
        #expect(try post(first, delivery: "idle-1").status == 200)
        setup.receiver.waitFor { _ in setup.receiver.closedConnections >= 1 }
        #expect(setup.receiver.closedConnections == 1)
        // Whichever loop the idle connection was on, the other one's request must not wait for it.
        #expect(try post(second, delivery: "idle-2").status == 200)
        setup.receiver.waitFor { _ in setup.receiver.closedConnections >= 2 }
        #expect(try post(first, delivery: "idle-3").status == 200)
        let delivered = setup.receiver.waitFor { $0.count >= 3 }
        #expect(delivered.map(\.id) == ["idle-1", "idle-2", "idle-3"])
        _ = server.terminate()
    }

    @Test("rotation: signed with the old and the new secret, the receiver that knows only the new one verifies every delivery")
    func rotation() throws {
        let receiver = try WebhookReceiver(secret: Self.secret)
        defer { receiver.stop() }
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let port = try RedisServer.freePort()
        let config = try writeConfig(
            """
            {"listen": {"host": "127.0.0.1", "port": \(port)},
             "sinks": {"orders": {"type": "http", "url": "http://127.0.0.1:\(receiver.port)/in", "mode": "structured",
                                  "sign": {"secrets": ["\(Self.oldSecret)", "\(Self.secret)"]}}},
             "sources": {"gh": {"path": "/gh", "verify": {"scheme": "github", "secrets": ["gh-secret"]}, "sinks": ["orders"]}}}
            """, in: directory)
        let server = try BridgeProcess(config: config)
        let connection = try KeepAliveConnection(port: port)
        for id in ["rot-1", "rot-2"] { #expect(try post(connection, delivery: id).status == 200) }
        let deliveries = receiver.waitFor { $0.count >= 2 }
        #expect(deliveries.map(\.id) == ["rot-1", "rot-2"])
        for delivery in deliveries {
            #expect(delivery.verified, "\(delivery.error ?? "")")
            #expect(delivery.header("webhook-signature")?.split(separator: " ").count == 2)
            // Structured mode: the CloudEvent JSON, the event's body under data.
            #expect(delivery.header("content-type") == "application/cloudevents+json")
            let event = try JSONParser.parse(Array(delivery.body.utf8))
            #expect(event["id"]?.scalarText == delivery.id && event["data"]?["total"]?.scalarText == "4200")
        }
        _ = server.terminate()
    }

    @Test(
        "the breaker opens after 3 failures in a row (readyz names the sink, the gauge shows it), probes with doubling waits, closes once the receiver recovers"
    )
    func breaker() async throws {
        let setup = try setUp(
            sink: #", "breaker": {"failures": 3, "openMs": 500}"#, retry: #"{"initialMs": 10, "maxMs": 20}"#)
        defer { setup.receiver.stop() }
        defer { setup.directory.cleanup() }
        try setup.receiver.answer(#"{"status": 503, "count": -1}"#)
        let server = try BridgeProcess(config: setup.config)
        let connection = try KeepAliveConnection(port: setup.port)
        #expect(try post(connection, delivery: "brk-1").status == 202)
        // Three failures, then two probes (500 ms, then 1 s after the one before), all refused.
        let refused = setup.receiver.waitFor { $0.count >= 5 }
        #expect(refused.count == 5)
        if refused.count >= 5 {
            #expect(refused[3].time - refused[2].time >= 0.5, "first probe after \(refused[3].time - refused[2].time) s")
            #expect(refused[4].time - refused[3].time >= 1.0, "second probe after \(refused[4].time - refused[3].time) s")
        }
        let open = try connection.get("/readyz")
        #expect(open.status == 503)
        #expect(try JSONParser.parse(Array(open.body.utf8))["sinks"]?["orders"]?.scalarText == "circuit open")
        let metrics = try connection.get("/metrics").body
        #expect(metrics.contains(#"webhook_sink_breaker_open{sink="orders"} 1"#))
        // While open, a new event is spooled at once.
        #expect(try post(connection, delivery: "brk-2").status == 202)
        try setup.receiver.answer("")
        let delivered = setup.receiver.waitFor { $0.filter { $0.answered == 204 }.count >= 2 }.filter { $0.answered == 204 }
        #expect(delivered.map(\.id) == ["brk-1", "brk-2"])
        #expect(try connection.get("/readyz").status == 200)
        #expect(try connection.get("/metrics").body.contains(#"webhook_sink_breaker_open{sink="orders"} 0"#))
        _ = server.terminate()
    }

    @Test("an event still not delivered after maxAgeSeconds goes to the dead letters with the last failure")
    func horizon() throws {
        let setup = try setUp(
            sink: #", "breaker": {"failures": 1000}"#, retry: #"{"initialMs": 20, "maxMs": 50, "maxAgeSeconds": 1}"#)
        defer { setup.receiver.stop() }
        defer { setup.directory.cleanup() }
        try setup.receiver.answer(#"{"status": 503, "count": -1}"#)
        let server = try BridgeProcess(config: setup.config)
        let connection = try KeepAliveConnection(port: setup.port)
        #expect(try post(connection, delivery: "old-1").status == 202)
        #expect(server.waitForLog("dead-lettered", after: 0))
        let letter = try #require(try deadLetters(setup).first)
        #expect(letter["id"]?.scalarText == "old-1")
        let reason = letter["deadletterreason"]?.scalarText ?? ""
        #expect(reason.contains("not delivered within spool.retry.maxAgeSeconds (1)") && reason.contains("HTTP 503"))
        // After the horizon the sink is tried no more for it.
        let tries = setup.receiver.deliveries.count
        #expect(tries >= 2)
        try setup.receiver.answer("")
        // 200, or 202 if the forwarder had logged the dead letter but not yet moved past it.
        #expect([200, 202].contains(try post(connection, delivery: "new-1").status))
        let after = setup.receiver.waitFor { $0.contains { $0.answered == 204 } }
        #expect(after.filter { $0.answered == 204 }.map(\.id) == ["new-1"])
        _ = server.terminate()
    }

    @Test("kill -9 in the middle of a backlog: after a restart every event arrives, at most one batch twice")
    func killMidBacklog() throws {
        // No breaker in the way: the 503 phase must not leave it open for 30 s.
        let setup = try setUp(sink: #", "breaker": {"failures": 100000}"#)
        defer { setup.receiver.stop() }
        defer { setup.directory.cleanup() }
        try setup.receiver.answer(#"{"status": 503, "count": -1}"#)
        let first = try BridgeProcess(config: setup.config)
        let connection = try KeepAliveConnection(port: setup.port)
        let ids = (1...200).map { "bk-\($0)" }
        for id in ids { #expect(try post(connection, delivery: id).status == 202) }
        // Slow enough that the kill lands in the middle.
        try setup.receiver.answer(#"{"status": 204, "delay": 0.01, "count": -1}"#)
        setup.receiver.waitFor { $0.filter { $0.answered == 204 }.count >= 50 }
        first.kill9()
        let beforeRestart = setup.receiver.answered(204).count
        #expect(beforeRestart < ids.count, "the backlog was drained before the kill")
        let second = try BridgeProcess(config: setup.config)
        let delivered = setup.receiver.waitFor(timeout: 60) { Set($0.filter { $0.answered == 204 }.map(\.id)).count >= ids.count }
            .filter { $0.answered == 204 }
        #expect(Set(delivered.map(\.id)) == Set(ids))
        #expect(delivered.count - ids.count <= 64, "\(delivered.count - ids.count) sent twice")
        // Order is kept per sink: each id's first delivery comes in posting order.
        var seen = Set<String>()
        let firsts = delivered.map(\.id).filter { seen.insert($0).inserted }
        #expect(firsts == ids)
        _ = second.terminate()
    }
}

/// check-config on `http` sinks and `spool.retry`, and `webhook-bridge verify`.
@Suite("HTTP sink config and the verify command")
struct HTTPSinkConfigTests {
    func checkConfig(_ sinks: String, spool: String = "") throws -> CLI.Result {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let path = try writeConfig(
            """
            {"listen": {"port": 8080}, \(spool)
             "sinks": \(sinks),
             "sources": {"gh": {"path": "/gh", "verify": {"scheme": "github", "secrets": ["s"]}, "sinks": ["out"]}}}
            """, in: directory)
        return try CLI.run(["check-config", path])
    }

    @Test("every mistake in an http sink or spool.retry is reported at its JSON path")
    func problems() throws {
        let result = try checkConfig(
            #"""
            {"out": {"type": "http", "url": "https://{source}.internal/hooks", "timeoutMs": 0, "mode": "batch",
                     "sign": {"secrets": ["not-a-whsec", "whsec_!!"]}, "headers": {"Content-Type": "text/plain", "Bad Name": "x", "X-Ok": 1},
                     "ca": "/nonexistent/ca.pem", "certificate": "/nonexistent/cert.pem", "breaker": {"failures": 0, "open": 5},
                     "maxInFlight": 0, "retries": 3}}
            """#,
            spool: #""spool": {"directory": "/tmp/x", "retry": {"initialMs": 1000, "maxMs": 10, "jitter": true}},"#)
        #expect(result.status == 1)
        for expected in [
            "sinks.out.url: the host is fixed: templates may fill the path and query only",
            "sinks.out.timeoutMs: must be between 1 and 600000",
            "sinks.out.mode: must be binary or structured, not \"batch\"",
            "sinks.out.sign.secrets[0]: must be whsec_ followed by the base64 of the key",
            "sinks.out.sign.secrets[1]: must be whsec_ followed by the base64 of the key",
            "sinks.out.headers.Content-Type: is set by the sink",
            "sinks.out.headers.Bad Name: is not a valid header name",
            "sinks.out.headers.X-Ok: must be a string, not a number",
            "sinks.out.ca: cannot read /nonexistent/ca.pem",
            "sinks.out.privateKey: is required with certificate",
            "sinks.out.breaker.failures: must be between 1 and 1000000",
            "sinks.out.breaker.open: unknown key; did you mean \"openMs\"?",
            "sinks.out.maxInFlight: must be between 1 and 4096",
            "sinks.out.retries: unknown key",
            "spool.retry.jitter: unknown key",
            "spool.retry.maxMs: maxMs must not be less than initialMs",
        ] {
            #expect(result.stderr.contains(expected), "\(expected)\n\(result.stderr)")
        }
        let plain = try checkConfig(#"{"out": {"type": "http", "url": "http://orders.internal/hooks", "ca": "/etc/hostname"}}"#)
        #expect(plain.stderr.contains("sinks.out.ca: is for an https url; this url is http"), "\(plain.stderr)")
        let scheme = try checkConfig(#"{"out": {"type": "http", "url": "ftp://orders.internal/"}}"#)
        #expect(scheme.stderr.contains("sinks.out.url: must start with http:// or https://"), "\(scheme.stderr)")
    }

    @Test("a valid http sink passes check-config")
    func valid() throws {
        let secret = "whsec_" + Base64.encode(Array("k".utf8))
        let result = try checkConfig(
            """
            {"out": {"type": "http", "url": "https://orders.internal:8443/hooks/{type}?shop={header:X-Shop}", "mode": "structured",
                     "sign": {"secrets": ["\(secret)"]}, "headers": {"X-Team": "payments"}, "timeoutMs": 2000, "maxInFlight": 8,
                     "breaker": {"failures": 5, "openMs": 1000}}}
            """,
            spool:
                #""spool": {"directory": "/tmp/x", "retry": {"initialMs": 100, "maxMs": 60000, "multiplier": 1.5, "maxAgeSeconds": 3600}},"#
        )
        #expect(result.status == 0, "\(result.stderr)")
    }

    @Test(
        "verify: what sign makes verifies (one of several secrets, a captured request line, CRLF); a wrong secret or an old timestamp says why"
    )
    func verifyCommand() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let secret = HTTPSinkTests.secret
        let body = directory.file("body.json")
        try Data(#"{"type": "order.created", "n": 1}"#.utf8).write(to: URL(fileURLWithPath: body))
        let signed = try CLI.run(["sign", "--scheme", "standard-webhooks", "--secret", secret, "--body", body, "--id", "msg_1"])
        #expect(signed.status == 0)
        let headers = directory.file("headers.txt")
        let captured = "POST /hooks HTTP/1.1\r\n" + signed.stdout.replacingOccurrences(of: "\n", with: "\r\n") + "\r\n"
        try Data(captured.utf8).write(to: URL(fileURLWithPath: headers))
        let ok = try CLI.run([
            "verify", "--scheme", "standard-webhooks", "--secret", HTTPSinkTests.oldSecret, "--secret", secret,
            "--headers", headers, "--body", body,
        ])
        #expect(ok.status == 0, "\(ok.stdout)\(ok.stderr)")
        #expect(ok.stdout.contains("verified: scheme standard-webhooks, secret 1 of the ones given matched"))
        #expect(ok.stdout.contains("id: msg_1") && ok.stdout.contains("type: order.created"))
        let wrong = try CLI.run([
            "verify", "--scheme", "standard-webhooks", "--secret", HTTPSinkTests.oldSecret, "--headers", headers, "--body", body,
        ])
        #expect(wrong.status == 1)
        #expect(wrong.stdout.contains("not verified: signature_invalid"), "\(wrong.stdout)")
        // Received long before it was signed: the timestamp is ahead, by a positive number of seconds.
        let early = try CLI.run([
            "verify", "--scheme", "standard-webhooks", "--secret", secret, "--headers", headers, "--body", body,
            "--received-at", "1000",
        ])
        #expect(early.status == 1)
        #expect(early.stdout.contains("not verified: timestamp_expired: webhook-timestamp is "), "\(early.stdout)")
        #expect(early.stdout.contains(" s ahead") && !early.stdout.contains("is -"), "\(early.stdout)")
        // The whole verify object, for a scheme with settings.
        let github = try CLI.run(["sign", "--scheme", "github", "--secret", "gh", "--body", body, "--id", "d-1"])
        try Data(github.stdout.utf8).write(to: URL(fileURLWithPath: headers))
        let object = try CLI.run([
            "verify", "--verify", #"{"scheme": "github", "secrets": ["gh"]}"#, "--headers", headers, "--body", body,
        ])
        #expect(object.status == 0, "\(object.stdout)\(object.stderr)")
        let unknown = try CLI.run(["verify", "--scheme", "gitgub", "--secret", "x", "--headers", headers, "--body", body])
        #expect(unknown.status == 1 && unknown.stdout.contains("did you mean \"github\""))
    }
}
