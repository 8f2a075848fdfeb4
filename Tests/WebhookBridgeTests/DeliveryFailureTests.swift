import BridgeTestSupport
import Foundation
import Testing
import WebhookBridge
import WebhookCore
import WebhookEncoding

@Suite("A failing sink never turns into a 2xx")
struct DeliveryFailureTests {
    static func config(ackTimeoutMs: Int = 5000, extraSink: String = "") -> String {
        """
        {
          "listen": {"host": "127.0.0.1", "port": 0},
          "limits": {"ackTimeoutMs": \(ackTimeoutMs)},
          "sinks": {"archive": {"type": "file", "path": "{dir}/{source}/events.jsonl"}\(extraSink)},
          "sources": {"github": {"path": "/gh", "verify": {"scheme": "github", "secrets": ["gh-secret"]},
                                 "sinks": ["archive"\(extraSink.isEmpty ? "" : ", \"optional\"")]}}
        }
        """
    }

    @Test(
        "a required sink that can't write (a full disk) answers 503 with Retry-After; the retry is accepted once it can",
        .enabled(if: TinyFilesystem.isAvailable, "a full disk is a tmpfs the test mounts, which needs root"))
    func unavailableThenRecovered() async throws {
        let output = try TinyFilesystem(bytes: 1 << 20)
        let config = Self.config().replacingOccurrences(of: "{dir}/{source}", with: output.path)
        try await RunningBridge.with(config: config) { bridge in
            output.fill()
            let body = #"{"n": 1}"#
            let failed = try await bridge.post("/gh", headers: githubHeaders(body, delivery: "r-1"), body: body)
            #expect(failed.status == .serviceUnavailable)
            #expect(failed.headers.first(name: "Retry-After") != nil)
            #expect(failed.json == .object([("error", .string("unavailable"))]))
            #expect(try await bridge.get("/readyz").status == .serviceUnavailable)

            output.free()
            let retried = try await bridge.post("/gh", headers: githubHeaders(body, delivery: "r-1"), body: body)
            #expect(retried.status == .ok)
            #expect(retried.json?["status"] == .string("accepted"))
            let lines = try String(contentsOfFile: output.path + "/events.jsonl", encoding: .utf8).split(separator: "\n")
            #expect(lines.map { try? JSONParser.parse(Array($0.utf8))["id"] } == [.string("r-1")])
            #expect(try await bridge.get("/readyz").status == .ok)
        }
    }

    @Test("a sink that does not acknowledge within ackTimeoutMs counts as failed")
    func ackTimeout() async throws {
        try await RunningBridge.with(config: Self.config(ackTimeoutMs: 200)) { bridge in
            // A FIFO with no reader: the sink's open() blocks until someone reads.
            try FileManager.default.createDirectory(atPath: bridge.directory.file("github"), withIntermediateDirectories: true)
            let fifo = bridge.directory.file("github/events.jsonl")
            #expect(mkfifo(fifo, 0o644) == 0)
            let body = #"{"n": 2}"#
            let answer = try await bridge.post("/gh", headers: githubHeaders(body, delivery: "t-1"), body: body)
            #expect(answer.status == .serviceUnavailable)
            // The sink is still blocked in open(): only the deadline can have answered. Open the
            // reading end so the sink's queue is released before the bridge stops.
            let reader = open(fifo, O_RDONLY | O_NONBLOCK)
            #expect(reader >= 0)
            close(reader)
        }
    }

    @Test("a sink with required false that fails does not change the answer")
    func optionalSinkFailure() async throws {
        let optional = #", "optional": {"type": "file", "path": "{dir}/blocked/{source}.jsonl", "required": false}"#
        try await RunningBridge.with(config: Self.config(extraSink: optional)) { bridge in
            #expect(FileManager.default.createFile(atPath: bridge.directory.file("blocked"), contents: Data()))
            let body = #"{"n": 3}"#
            let answer = try await bridge.post("/gh", headers: githubHeaders(body, delivery: "o-1"), body: body)
            #expect(answer.status == .ok)
            #expect(try bridge.lines("github/events.jsonl").count == 1)
            #expect(try await bridge.get("/readyz").status == .ok)
        }
    }

    @Test("a blocked sink with required false does not hold the answer")
    func optionalSinkNotAwaited() async throws {
        let optional = #", "optional": {"type": "file", "path": "{dir}/slow/{source}.jsonl", "required": false}"#
        try await RunningBridge.with(config: Self.config(ackTimeoutMs: 600_000, extraSink: optional)) { bridge in
            try FileManager.default.createDirectory(atPath: bridge.directory.file("slow"), withIntermediateDirectories: true)
            let fifo = bridge.directory.file("slow/github.jsonl")
            #expect(mkfifo(fifo, 0o644) == 0)
            let body = #"{"n": 4}"#
            // Waiting for the optional sink would take the whole ack timeout (10 minutes);
            // the client gives up long before that.
            let answer = try await WebhookClient.send(
                host: "127.0.0.1", port: bridge.port, path: "/gh", headers: githubHeaders(body, delivery: "s-1"),
                body: Array(body.utf8), timeout: .seconds(20))
            #expect(answer.status == .ok)
            #expect(try bridge.lines("github/events.jsonl").map { $0["id"] } == [.string("s-1")])
            let reader = open(fifo, O_RDONLY | O_NONBLOCK)
            #expect(reader >= 0)
            close(reader)
        }
    }

    @Test("a busy port is a setup error naming the address")
    func busyPort() async throws {
        try await RunningBridge.with(config: Self.config()) { bridge in
            let text = Self.config().replacingOccurrences(of: "\"port\": 0", with: "\"port\": \(bridge.port)")
                .replacingOccurrences(of: "{dir}", with: bridge.directory.path)
            let config = try Bridge.loadConfig(Array(text.utf8), environment: [:])
            await #expect {
                _ = try await Bridge.start(config: config, logger: .init(label: "test"))
            } throws: { error in
                "\(error)".hasPrefix("cannot listen on 127.0.0.1:\(bridge.port): ") && "\(error)".contains("in use")
            }
        }
    }
}
