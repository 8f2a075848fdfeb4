import BridgeTestSupport
import Foundation
import NIOCore
import NIOHTTP1
import Testing
import WebhookBridge
import WebhookCore
import WebhookEncoding

@Suite("HTTP ingress over a real socket")
struct HTTPRoundTripTests {
    static let config = """
        {
          "listen": {"host": "127.0.0.1", "port": 0},
          "limits": {"maxBodyBytes": 4096},
          "sinks": {"archive": {"type": "file", "path": "{dir}/events.jsonl"}},
          "sources": {"github": {"path": "/webhooks/github",
                                 "verify": {"scheme": "github", "secrets": ["${SECRET}"]},
                                 "sinks": ["archive"]}}
        }
        """
    static let environment = ["SECRET": "gh-secret"]

    @Test("a signed POST lands as a CloudEvent whose data is the body; the repeat is a duplicate")
    func acceptedThenDuplicate() async throws {
        try await RunningBridge.with(config: Self.config, environment: Self.environment) { bridge in
            let body = #"{"zen": "Keep it logically awesome.", "hook_id": 42}"#
            let first = try await bridge.post("/webhooks/github", headers: githubHeaders(body, delivery: "d-1"), body: body)
            #expect(first.status == .ok)
            #expect(first.json == .object([("id", .string("d-1")), ("status", .string("accepted"))]))
            #expect(first.headers.first(name: "Content-Type") == "application/json")

            // The line is on disk by the time the 200 arrives.
            let lines = try bridge.lines("events.jsonl")
            #expect(lines.count == 1)
            #expect(lines.first?["id"] == .string("d-1"))
            #expect(lines.first?["source"] == .string("github"))
            #expect(lines.first?["type"] == .string("push"))
            #expect(lines.first?["webhookscheme"] == .string("github"))
            #expect(lines.first?["webhookkey"] == .number("0"))
            #expect(lines.first?["datacontenttype"] == .string("application/json"))
            #expect(lines.first?["data"] == (try JSONParser.parse(Array(body.utf8))))

            let second = try await bridge.post("/webhooks/github", headers: githubHeaders(body, delivery: "d-1"), body: body)
            #expect(second.status == .ok)
            #expect(second.json == .object([("id", .string("d-1")), ("status", .string("duplicate"))]))
            #expect(try bridge.lines("events.jsonl").count == 1)
        }
    }

    @Test("a wrong or missing signature answers 401 and writes nothing")
    func unauthorized() async throws {
        try await RunningBridge.with(config: Self.config, environment: Self.environment) { bridge in
            let body = #"{"a": 1}"#
            let wrong = try await bridge.post(
                "/webhooks/github", headers: githubHeaders(body, delivery: "d-2", secret: "not-it"), body: body)
            #expect(wrong.status == .unauthorized)
            #expect(wrong.json == .object([("error", .string("signature_invalid"))]))
            let missing = try await bridge.post("/webhooks/github", headers: [("X-GitHub-Delivery", "d-2")], body: body)
            #expect(missing.status == .unauthorized)
            #expect(missing.json == .object([("error", .string("signature_missing"))]))
            #expect(try bridge.lines("events.jsonl").isEmpty)
            // The id was never reserved: the correctly signed delivery is accepted.
            let good = try await bridge.post("/webhooks/github", headers: githubHeaders(body, delivery: "d-2"), body: body)
            #expect(good.json?["status"] == .string("accepted"))
        }
    }

    @Test("unknown path 404, wrong method 405 with Allow, health and readiness")
    func statusCodes() async throws {
        try await RunningBridge.with(config: Self.config, environment: Self.environment) { bridge in
            let unknown = try await bridge.post("/webhooks/nope", headers: [], body: "{}")
            #expect(unknown.status == .notFound)
            #expect(unknown.json == .object([("error", .string("not_found"))]))
            let get = try await bridge.get("/webhooks/github")
            #expect(get.status == .methodNotAllowed)
            #expect(get.headers.first(name: "Allow") == "POST")
            #expect(try await bridge.get("/healthz").status == .ok)
            #expect(try await bridge.get("/readyz").status == .ok)
            #expect(try await bridge.get("/webhooks/github?x=1").status == .methodNotAllowed)
        }
    }

    @Test("a body over maxBodyBytes answers 413, declared or streamed, and nothing is written")
    func tooLarge() async throws {
        try await RunningBridge.with(config: Self.config, environment: Self.environment) { bridge in
            let body = Array(repeating: UInt8(ascii: "a"), count: 4097)
            let declared = try await WebhookClient.send(
                host: "127.0.0.1", port: bridge.port, path: "/webhooks/github", headers: [("X-GitHub-Delivery", "big")],
                body: body)
            #expect(declared.status == .payloadTooLarge)
            #expect(declared.json == .object([("error", .string("too_large"))]))
            // A client still streaming a large body gets the 413 (the bridge shuts its side and
            // drains, as nginx does, so a reset does not swallow the answer).
            let huge = Array(repeating: UInt8(ascii: "b"), count: 2 << 20)
            let streamed = try await WebhookClient.send(
                host: "127.0.0.1", port: bridge.port, path: "/webhooks/github",
                headers: [("X-Hub-Signature-256", "sha256=00")], body: huge, chunked: true)
            #expect(streamed.status == .payloadTooLarge)
            #expect(streamed.json == .object([("error", .string("too_large"))]))
            // Exactly the limit is fine (and then fails verification, as it is unsigned).
            let atLimit = try await WebhookClient.send(
                host: "127.0.0.1", port: bridge.port, path: "/webhooks/github",
                headers: [("X-Hub-Signature-256", "sha256=00")], body: Array(body.dropLast()), chunked: true)
            #expect(atLimit.status == .unauthorized)
            #expect(try bridge.lines("events.jsonl").isEmpty)
        }
    }

    @Test("Expect: 100-continue is honoured for a source and answered at once elsewhere")
    func expectContinue() async throws {
        try await RunningBridge.with(config: Self.config, environment: Self.environment) { bridge in
            let body = #"{"expect": true}"#
            let accepted = try await bridge.post(
                "/webhooks/github", headers: githubHeaders(body, delivery: "x-1") + [("Expect", "100-continue")], body: body)
            #expect(accepted.status == .ok)
            #expect(accepted.json?["status"] == .string("accepted"))
            let unknown = try await bridge.post("/elsewhere", headers: [("Expect", "100-continue")], body: body)
            #expect(unknown.status == .notFound)
        }
    }

    @Test("many concurrent deliveries of one id: exactly one is accepted and written")
    func concurrentSameID() async throws {
        try await RunningBridge.with(config: Self.config, environment: Self.environment) { bridge in
            let body = #"{"same": true}"#
            let statuses = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<40 {
                    group.addTask {
                        let answer = try await bridge.post(
                            "/webhooks/github", headers: githubHeaders(body, delivery: "same"), body: body)
                        switch answer.status {
                        case .ok: return answer.json?["status"]?.scalarText ?? "?"
                        case .conflict:
                            #expect(answer.headers.first(name: "Retry-After") != nil)
                            return answer.json?["error"]?.scalarText ?? "?"
                        default: return "\(answer.status.code)"
                        }
                    }
                }
                return try await group.reduce(into: [String]()) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == "accepted" }.count == 1)
            #expect(statuses.allSatisfy { ["accepted", "duplicate", "in_progress"].contains($0) })
            #expect(try bridge.lines("events.jsonl").count == 1)
        }
    }

    @Test("concurrent distinct events are all written, each once, by group commit")
    func concurrentDistinct() async throws {
        try await RunningBridge.with(config: Self.config, environment: Self.environment) { bridge in
            let count = 100
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<count {
                    group.addTask {
                        let body = #"{"n": \#(index)}"#
                        let answer = try await bridge.post(
                            "/webhooks/github", headers: githubHeaders(body, delivery: "e-\(index)"), body: body)
                        #expect(answer.status == .ok)
                    }
                }
                try await group.waitForAll()
            }
            let ids = try bridge.lines("events.jsonl").compactMap { $0["id"]?.scalarText }
            #expect(ids.count == count)
            #expect(Set(ids) == Set((0..<count).map { "e-\($0)" }))
        }
    }
}
