import BridgeTestSupport
import Foundation
import Synchronization
import Testing
import WebhookBridge
import WebhookCore
import WebhookCrypto
import WebhookEncoding
import WebhookProviders

/// Several replicas behind one load balancer (SPEC section 9): the Redis idempotency store
/// makes an event delivered to two of them at once accepted by exactly one; each replica's
/// spool is its own, and a replica that restarts forwards its own backlog.
@Suite("Replicas sharing a Redis idempotency store", .serialized)
struct ReplicaTests {
    /// Spooled events are retried within a second (the default backoff grows to 5 minutes).
    static func config(port: Int, redis: String, spool: String, output: String) -> String {
        """
        {"listen": {"host": "127.0.0.1", "port": \(port)},
         "limits": {"ackTimeoutMs": 1000},
         "idempotency": {"store": "redis", "url": "\(redis)"},
         "spool": {"directory": "\(spool)", "maxBytes": 10485760, "retry": {"initialMs": 100, "maxMs": 1000}},
         "sinks": {"archive": {"type": "file", "path": "\(output)/events.jsonl"}},
         "sources": {"gh": {"path": "/gh", "verify": {"scheme": "github", "secrets": ["gh-secret"]}, "sinks": ["archive"]}}}
        """
    }

    static func ids(in path: String) -> [String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { try? JSONParser.parse(Array($0.utf8))["id"]?.scalarText }
    }

    static func send(port: Int, id: String) async -> (Int, String?) {
        let body = #"{"delivery": "\#(id)"}"#
        guard
            let answer = try? await WebhookClient.send(
                host: "127.0.0.1", port: port, path: "/gh", headers: githubHeaders(body, delivery: id), body: Array(body.utf8),
                timeout: .seconds(10))
        else { return (0, nil) }
        return (Int(answer.status.code), answer.json?["status"]?.scalarText)
    }

    @Test("a Mailgun signature's token accepted by one replica is refused by the other, with another event under it")
    func mailgunTokenAcrossReplicas() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let redis = try RedisServer()
        defer { redis.stop() }
        let ports = (try RedisServer.freePort(), try RedisServer.freePort())
        var replicas: [BridgeProcess] = []
        for (name, port) in [("a", ports.0), ("b", ports.1)] {
            let config = directory.file("\(name).json")
            try Data(
                """
                {"listen": {"host": "127.0.0.1", "port": \(port)},
                 "idempotency": {"store": "redis", "url": "\(redis.url)"},
                 "sinks": {"archive": {"type": "file", "path": "\(directory.file("\(name).jsonl"))"}},
                 "sources": {"mg": {"path": "/mg", "verify": {"scheme": "mailgun", "secrets": ["key-signing"]}, "sinks": ["archive"]}}}
                """.utf8
            ).write(to: URL(fileURLWithPath: config))
            replicas.append(try BridgeProcess(config: config))
        }
        defer { for replica in replicas { replica.kill9() } }
        let body = #"{"event-data": {"id": "ev-1", "event": "delivered"}}"#
        let output = try WebhookSigner.sign(
            scheme: "mailgun",
            .init(body: Array(body.utf8), secret: "key-signing", timestamp: Int64(Date().timeIntervalSince1970)))
        let signed = String(decoding: try #require(output.body), as: UTF8.self)
        let json = [("Content-Type", "application/json")]
        #expect(try KeepAliveConnection(port: ports.0).post("/mg", headers: json, body: signed).status == 200)
        let forged = signed.replacingOccurrences(of: "\"ev-1\"", with: "\"ev-forged\"")
        let refused = try KeepAliveConnection(port: ports.1).post("/mg", headers: json, body: forged)
        #expect(refused.status == 401 && refused.body.contains("signature_invalid"), "\(refused)")
    }

    @Test(
        "concurrent identical deliveries spread over two replicas: exactly one accepted per id; a killed replica's backlog is forwarded after its restart",
        .enabled(if: TinyFilesystem.isAvailable, "the backlog is made with a full disk, a tmpfs the test mounts (root)"))
    func twoReplicas() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let redis = try RedisServer()
        defer { redis.stop() }
        let outputA = directory.file("a")
        try FileManager.default.createDirectory(atPath: outputA, withIntermediateDirectories: true)
        let diskB = try TinyFilesystem(bytes: 1 << 20)
        let ports = (try RedisServer.freePort(), try RedisServer.freePort())
        let configA = directory.file("a.json")
        let configB = directory.file("b.json")
        try Data(Self.config(port: ports.0, redis: redis.url, spool: directory.file("spool-a"), output: outputA).utf8)
            .write(to: URL(fileURLWithPath: configA))
        try Data(Self.config(port: ports.1, redis: redis.url, spool: directory.file("spool-b"), output: diskB.path).utf8)
            .write(to: URL(fileURLWithPath: configB))
        let replicaA = try BridgeProcess(config: configA)
        var replicaB = try BridgeProcess(config: configB)

        // 40 events, each delivered six times at once: three times to each replica.
        let ids = (0..<40).map { "r-\($0)" }
        let answers = await withTaskGroup(of: (String, Int, String?).self) { group in
            for id in ids {
                for copy in 0..<6 {
                    group.addTask {
                        let (status, outcome) = await Self.send(port: copy % 2 == 0 ? ports.0 : ports.1, id: id)
                        return (id, status, outcome)
                    }
                }
            }
            return await group.reduce(into: [(String, Int, String?)]()) { $0.append($1) }
        }
        for id in ids {
            let mine = answers.filter { $0.0 == id }
            let accepted = mine.filter { $0.2 == "accepted" || $0.2 == "queued" }
            #expect(accepted.count == 1, "\(id): \(mine.map { "\($0.1) \($0.2 ?? "-")" })")
            // The others: a duplicate, or 409 while the first was being delivered.
            #expect(mine.allSatisfy { $0.2 == "accepted" || $0.2 == "queued" || $0.2 == "duplicate" || $0.1 == 409 })
        }
        let written = Self.ids(in: outputA + "/events.jsonl") + Self.ids(in: diskB.path + "/events.jsonl")
        #expect(written.sorted() == ids.sorted(), "every id once across both replicas' sinks")

        // Replica B's disk fills: once the slack of the file's last page is used up, its
        // events are spooled (202); it is killed with that backlog.
        diskB.fill()
        var backlog: [String] = []
        for index in 0..<40 {
            let id = "b-\(index)"
            let (status, outcome) = await Self.send(port: ports.1, id: id)
            #expect(status == 200 || (status == 202 && outcome == "queued"), "\(id): \(status)")
            if status == 202 { backlog.append(id) }
        }
        #expect(backlog.count >= 20, "the full disk spooled only \(backlog.count) events")
        replicaB.kill9()
        diskB.free()
        replicaB = try BridgeProcess(config: configB)  // the same spool directory
        let forwarded = await eventually(30) { Set(Self.ids(in: diskB.path + "/events.jsonl")).isSuperset(of: backlog) }
        #expect(forwarded, "the restarted replica did not forward its backlog")
        // The other replica knows them as taken (the store is shared): a retry there is a duplicate.
        #expect(await Self.send(port: ports.0, id: backlog.last ?? "none").1 == "duplicate")
        #expect(replicaB.terminate() == 0)
        #expect(replicaA.terminate() == 0)
    }

    @Test(
        "asana on the redis store: a secret learned by one replica verifies on the other (which had read the store before), and a second handshake there is refused"
    )
    func asanaSecretAcrossReplicas() async throws {
        let redis = try RedisServer()
        defer { redis.stop() }
        let config = """
            {"listen": {"host": "127.0.0.1", "port": 0},
             "idempotency": {"store": "redis", "url": "\(redis.url)"},
             "sinks": {"archive": {"type": "file", "path": "{dir}/events.jsonl"}},
             "sources": {"asana": {"path": "/asana", "verify": {"scheme": "asana"}, "sinks": ["archive"]}}}
            """
        let secret = "6c1a9f0e3d0b4f7e9a2b8c5d4e3f2a1b"
        func signed(_ body: String, _ key: String) -> [(String, String)] {
            [
                (
                    "X-Hook-Signature",
                    Hex.encode(HashAlgorithm.sha256.authenticationCode(for: Array(body.utf8), using: Array(key.utf8)))
                )
            ]
        }
        let body = #"{"events":[{"action":"added","resource":{"gid":"42","resource_type":"story"}}]}"#
        try await RunningBridge.with(config: config) { a in
            try await RunningBridge.with(config: config) { b in
                // b reads the store now, while it holds nothing.
                let early = try await b.post("/asana", headers: signed(body, secret), body: body)
                #expect(early.status == .unauthorized)
                let handshake = try await a.post("/asana", headers: [("X-Hook-Secret", secret)], body: "")
                #expect(handshake.status == .ok)
                #expect(handshake.headers.first(name: "X-Hook-Secret") == secret)
                let event = try await b.post("/asana", headers: signed(body, secret), body: body)
                #expect(event.status == .ok, "\(event.text)")
                #expect(try b.lines("events.jsonl").first?["type"] == .string("story.added"))
                let second = try await b.post("/asana", headers: [("X-Hook-Secret", "other-secret-0123456789")], body: "")
                #expect(second.status == .unauthorized)
            }
        }
    }

    @Test(
        "asana on the redis store: after acceptHandshakeUntil, and with acceptHandshakes 0, no secret is taken; a held one is still echoed"
    )
    func asanaWindowOnRedis() async throws {
        let redis = try RedisServer()
        defer { redis.stop() }
        func config(_ verify: String) -> String {
            """
            {"listen": {"host": "127.0.0.1", "port": 0},
             "idempotency": {"store": "redis", "url": "\(redis.url)"},
             "sinks": {"archive": {"type": "file", "path": "{dir}/events.jsonl"}},
             "sources": {"asana": {"path": "/asana", "verify": {"scheme": "asana"\(verify)}, "sinks": ["archive"]}}}
            """
        }
        try await RunningBridge.with(config: config(#", "acceptHandshakeUntil": "2026-01-01T00:00:00Z""#)) { bridge in
            let late = try await bridge.post("/asana", headers: [("X-Hook-Secret", "late-secret-0123456789")], body: "")
            #expect(late.status == .unauthorized)
        }
        try await RunningBridge.with(config: config(#", "acceptHandshakes": 0"#)) { bridge in
            let none = try await bridge.post("/asana", headers: [("X-Hook-Secret", "none-secret-0123456789")], body: "")
            #expect(none.status == .unauthorized)
        }
        try await RunningBridge.with(config: config("")) { bridge in
            let first = try await bridge.post("/asana", headers: [("X-Hook-Secret", "first-secret-0123456789")], body: "")
            #expect(first.status == .ok)
        }
        try await RunningBridge.with(config: config(#", "acceptHandshakes": 0"#)) { bridge in
            let again = try await bridge.post("/asana", headers: [("X-Hook-Secret", "first-secret-0123456789")], body: "")
            #expect(again.status == .ok)
            #expect(again.headers.first(name: "X-Hook-Secret") == "first-secret-0123456789")
        }
    }

}
