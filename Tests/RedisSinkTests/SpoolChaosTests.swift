import BridgeTestSupport
import Foundation
import Testing
import WebhookBridge
import WebhookCore
import WebhookEncoding

/// The durability promise at its edges (SPEC section 8): a small spool, a sink that keeps
/// going away, poison events the sink refuses for good, and a `kill -9` in the middle.
@Suite("Chaos: outages, poison events and a small spool", .serialized)
struct SpoolChaosTests {
    @Test(
        "every 2xx ends up in Redis or the dead letters, re-sent at most one batch after a kill -9; a 1 MiB spool never fills"
    )
    func roundsOfOutages() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        // Redis keeps what it acknowledged (and the poison key) across its own kill.
        try FileManager.default.createDirectory(atPath: directory.file("redis"), withIntermediateDirectories: true)
        let redis = try RedisServer(persistentIn: directory.file("redis"))
        defer { redis.stop() }
        let client = RedisClientForTest(url: redis.url)
        // Events of type "poison" go to a key that is not a stream: WRONGTYPE, for good.
        try await client.run(["SET", "webhooks:poison", "not a stream"])

        let port = try RedisServer.freePort()
        let spool = directory.file("spool")
        // Spooled events retried within a second: the default backoff grows to 5 minutes,
        // longer than an outage in this test lasts.
        let config = directory.file("config.json")
        try Data(
            """
            {"listen": {"host": "127.0.0.1", "port": \(port)},
             "limits": {"ackTimeoutMs": 500},
             "spool": {"directory": "\(spool)", "maxBytes": 1048576, "retry": {"initialMs": 100, "maxMs": 1000}},
             "sinks": {"jobs": {"type": "redis", "url": "\(redis.url)", "stream": "webhooks:{type}"}},
             "sources": {"gh": {"path": "/gh", "verify": {"scheme": "github", "secrets": ["gh-secret"]}, "sinks": ["jobs"]}}}
            """.utf8
        ).write(to: URL(fileURLWithPath: config))

        var answers: [String: Int] = [:]
        var poisonIDs: Set<String> = []
        var sent = 0
        // ~2 KB bodies: over all rounds several MiB go through a 1 MiB spool.
        let padding = String(repeating: "p", count: 2000)
        func send(_ count: Int) async throws {
            for _ in 0..<count {
                let id = "k-\(sent)"
                let poison = sent % 25 == 7
                sent += 1
                if poison { poisonIDs.insert(id) }
                let body = #"{"id": "\#(id)", "padding": "\#(padding)"}"#
                let status = try? await WebhookClient.send(
                    host: "127.0.0.1", port: port, path: "/gh",
                    headers: githubHeaders(body, delivery: id, event: poison ? "poison" : "push"), body: Array(body.utf8),
                    timeout: .seconds(5)
                ).status.code
                answers[id] = Int(status ?? 0)
            }
        }

        var inRedis: [String] = []
        var deadLettered: [String] = []
        /// Waits (bounded) until everything acknowledged is in Redis or in the dead letters.
        func waitUntilDrained() async throws -> Bool {
            let acknowledged = Set(answers.filter { (200...202).contains($0.value) }.keys)
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline {
                inRedis = try await client.streamIDs("webhooks:push")
                deadLettered = deadLetterIDs(spool + "/dead-letter.jsonl")
                if acknowledged.isSubset(of: Set(inRedis).union(deadLettered)) { return true }
                try await Task.sleep(for: .milliseconds(100))
            }
            return false
        }

        var bridge = try BridgeProcess(config: config)
        let rounds = 14
        for round in 0..<rounds {
            redis.stop()
            try await send(50)  // spooled: 202
            if round == rounds / 2 {
                // The bridge dies with a backlog; a new one takes over the spool.
                bridge.kill9()
                bridge = try BridgeProcess(config: config)
            }
            try redis.start()
            try await send(25)  // behind the backlog, or direct once it drained
            #expect(try await waitUntilDrained(), "round \(round) did not drain")
        }

        let acknowledged = Set(answers.filter { (200...202).contains($0.value) }.keys)
        #expect(acknowledged.count == sent, "not all answered 2xx: \(answers.filter { $0.value >= 300 }.sorted { $0.key < $1.key }.prefix(10))")
        #expect(!answers.values.contains(503), "the spool reported full")

        _ = try await waitUntilDrained()
        let missing = acknowledged.subtracting(Set(inRedis).union(deadLettered))
        #expect(missing.isEmpty, "\(missing.count) acknowledged events are nowhere: \(missing.sorted().prefix(10))")
        // Poison events are dead-lettered, never in a stream; good ones never dead-lettered.
        #expect(Set(deadLettered) == poisonIDs.intersection(acknowledged), "dead letters: \(Set(deadLettered).symmetricDifference(poisonIDs))")
        #expect(Set(inRedis).isDisjoint(with: poisonIDs))
        // At least once: only the kill -9 may re-send, and at most one forwarder batch (64).
        let copies = inRedis.count + deadLettered.count - Set(inRedis).union(deadLettered).count
        #expect(copies <= 64, "\(copies) events delivered twice")
        // Forwarded data leaves the disk: the forwarder, caught up, deletes the segment it
        // was reading within its 10 s reclaim interval.
        let drainedAt = Date()
        let emptied = await eventually(30) { segmentBytes(spool + "/jobs") == 0 }
        #expect(emptied, "forwarded segments still hold \(segmentBytes(spool + "/jobs")) bytes")
        print("chaos: \(sent) events, \(copies) sent twice, segments empty \(Int(Date().timeIntervalSince(drainedAt))) s after draining")
        #expect(bridge.terminate() == 0)
    }

    private func segmentBytes(_ folder: String) -> Int {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return names.filter { $0.hasSuffix(".jsonl") }.reduce(0) { total, name in
            total + ((try? FileManager.default.attributesOfItem(atPath: folder + "/" + name)[.size] as? Int) ?? 0)
        }
    }

    private func deadLetterIDs(_ path: String) -> [String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            guard let event = try? JSONParser.parse(Array(line.utf8)) else { return nil }
            guard (event["deadletterreason"]?.scalarText ?? "").contains("WRONGTYPE") else { return "unexpected reason" }
            return event["id"]?.scalarText
        }
    }
}

extension RedisClientForTest {
    /// Runs one command (setup for a test).
    func run(_ arguments: [String]) async throws {
        try await withClient(url) { client in _ = try await client.execute(arguments.map { Array($0.utf8) }) }
    }
}
