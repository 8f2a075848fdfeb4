import BridgeTestSupport
import Foundation
import Testing
import WebhookBridge
import WebhookCore

@Suite("Redis through the bridge", .serialized)
struct RedisBridgeTests {
    static func config(redis: String, sharedStore: Bool = true, sinks: String, sourceSinks: String) -> String {
        let store = sharedStore ? #""store": "redis", "url": "\#(redis)""# : #""store": "memory""#
        return """
            {"listen": {"host": "127.0.0.1", "port": 0},
             "limits": {"ackTimeoutMs": 1000},
             "idempotency": {\(store), "ttlSeconds": 600},
             "sinks": {\(sinks)},
             "sources": {"github": {"path": "/gh", "verify": {"scheme": "github", "secrets": ["gh-secret"]}, "sinks": [\(sourceSinks)]}}}
            """
    }

    @Test("two bridges sharing one Redis store, given the same events in parallel, deliver each exactly once")
    func twoReplicas() async throws {
        let server = try RedisServer()
        defer { server.stop() }
        let config = Self.config(
            redis: server.url, sinks: #""archive": {"type": "file", "path": "{dir}/events.jsonl"}"#, sourceSinks: #""archive""#)
        let ids = (0..<40).map { "r-\($0)" }
        try await RunningBridge.with(config: config) { first in
            try await RunningBridge.with(config: config) { second in
                let statuses = try await withThrowingTaskGroup(of: String.self) { group in
                    for id in ids {
                        for bridge in [first, second] {
                            group.addTask {
                                let body = #"{"id": "\#(id)"}"#
                                let answer = try await bridge.post("/gh", headers: githubHeaders(body, delivery: id), body: body)
                                return answer.json?["status"]?.scalarText ?? answer.json?["error"]?.scalarText ?? "?"
                            }
                        }
                    }
                    return try await group.reduce(into: [String]()) { $0.append($1) }
                }
                #expect(statuses.filter { $0 == "accepted" }.count == ids.count)
                #expect(statuses.allSatisfy { ["accepted", "duplicate", "in_progress"].contains($0) })
                let written = try first.lines("events.jsonl") + second.lines("events.jsonl")
                #expect(written.count == ids.count)
                #expect(Set(written.compactMap { $0["id"]?.scalarText }) == Set(ids))
            }
        }
    }

    @Test("Redis stopped mid-load: no 2xx for an event not in the stream; Redis back: the sink recovers without a restart")
    func outage() async throws {
        let server = try RedisServer()
        defer { server.stop() }
        // The store is in memory here, so what fails during the outage is the sink itself.
        let config = Self.config(
            redis: server.url, sharedStore: false,
            sinks: #""jobs": {"type": "redis", "url": "\#(server.url)", "stream": "webhooks:{source}"}"#,
            sourceSinks: #""jobs""#)
        try await RunningBridge.with(config: config) { bridge in
            func send(_ id: String) async throws -> Int {
                let body = #"{"id": "\#(id)"}"#
                return Int(try await bridge.post("/gh", headers: githubHeaders(body, delivery: id), body: body).status.code)
            }
            var accepted: Set<String> = []
            for index in 0..<20 where try await send("a-\(index)") == 200 { accepted.insert("a-\(index)") }
            #expect(accepted.count == 20)
            #expect(try await bridge.get("/readyz").status == .ok)

            server.stop()
            for index in 0..<10 {
                let status = try await send("b-\(index)")
                #expect(status == 503, "b-\(index) answered \(status) while Redis was down")
            }
            #expect(try await bridge.get("/readyz").status == .serviceUnavailable)

            try server.start()
            // The provider's retries: the client reconnects after its backoff; each must get in.
            var pending = (0..<10).map { "b-\($0)" }
            for _ in 0..<60 where !pending.isEmpty {
                var still: [String] = []
                for id in pending where try await send(id) != 200 { still.append(id) }
                pending = still
                if !pending.isEmpty { try await Task.sleep(for: .milliseconds(100)) }  // the provider's retry interval
            }
            #expect(pending.isEmpty, "never accepted after Redis came back: \(pending)")
            #expect(try await bridge.get("/readyz").status == .ok)

            // A fresh server after the outage holds exactly what was accepted since.
            let client = RedisClientForTest(url: server.url)
            let ids = try await client.streamIDs("webhooks:github")
            #expect(Set(ids) == Set((0..<10).map { "b-\($0)" }))
        }
    }
}
