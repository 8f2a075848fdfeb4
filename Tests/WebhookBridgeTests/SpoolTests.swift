import BridgeTestSupport
import Foundation
import Testing
import WebhookBridge
import WebhookCore
import WebhookEncoding

@Suite(
    "The spool: nothing answered 2xx is lost", .serialized,
    .enabled(if: TinyFilesystem.isAvailable, "a full disk is a tmpfs the test mounts, which needs root"))
struct SpoolTests {
    /// A file sink writing into `output` (a tiny tmpfs the test fills: a real ENOSPC, the
    /// transient failure a file sink has), with the spool elsewhere.
    static func config(spool: String, output: String, maxBytes: Int = 1_048_576) -> String {
        """
        {"listen": {"host": "127.0.0.1", "port": 0},
         "limits": {"ackTimeoutMs": 1000},
         "spool": {"directory": "\(spool)", "maxBytes": \(maxBytes)},
         "sinks": {"archive": {"type": "file", "path": "\(output)/{source}.jsonl"}},
         "sources": {"github": {"path": "/gh", "verify": {"scheme": "github", "secrets": ["gh-secret"]}, "sinks": ["archive"]}}}
        """
    }

    func send(_ bridge: RunningBridge, _ id: String) async throws -> WebhookClient.Response {
        let body = #"{"n": "\#(id)"}"#
        return try await bridge.post("/gh", headers: githubHeaders(body, delivery: id), body: body)
    }

    func ids(in path: String) -> [String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { try? JSONParser.parse(Array($0.utf8))["id"]?.scalarText }
    }

    @Test("a full disk under the sink spools (202 queued); once there is room the spool drains in order, new events queue behind it")
    func queuedThenForwardedInOrder() async throws {
        let spool = TemporaryDirectory()
        defer { spool.cleanup() }
        let output = try TinyFilesystem(bytes: 1 << 20)
        try await RunningBridge.with(config: Self.config(spool: spool.path, output: output.path)) { bridge in
            output.fill()
            for index in 0..<5 {
                let answer = try await send(bridge, "q-\(index)")
                #expect(answer.status == .accepted)
                #expect(answer.json == .object([("id", .string("q-\(index)")), ("status", .string("queued"))]))
            }
            #expect(try await bridge.get("/readyz").status == .serviceUnavailable)
            // The retry of a queued event is a duplicate, not a second copy.
            #expect(try await send(bridge, "q-0").json?["status"] == .string("duplicate"))

            output.free()
            let after = try await send(bridge, "q-5")  // behind the backlog, or direct once drained
            #expect([200, 202].contains(after.status.code))
            let drained = await eventually { ids(in: output.path + "/github.jsonl").count == 6 }
            #expect(drained)
            #expect(ids(in: output.path + "/github.jsonl") == (0..<6).map { "q-\($0)" })
        }
    }

    @Test("spooled events survive a restart and are forwarded by the next process")
    func survivesRestart() async throws {
        let spool = TemporaryDirectory()
        defer { spool.cleanup() }
        let output = try TinyFilesystem(bytes: 1 << 20)
        let config = Self.config(spool: spool.path, output: output.path)
        output.fill()
        try await RunningBridge.with(config: config) { bridge in
            for index in 0..<3 {
                let answer = try await send(bridge, "r-\(index)")
                #expect(answer.status == .accepted)
            }
        }
        output.free()
        try await RunningBridge.with(config: config) { _ in
            let forwarded = await eventually { ids(in: output.path + "/github.jsonl").count == 3 }
            #expect(forwarded)
        }
        #expect(ids(in: output.path + "/github.jsonl") == ["r-0", "r-1", "r-2"])
    }

    @Test("a full spool answers 503 with Retry-After and frees the id for the retry")
    func full() async throws {
        let spool = TemporaryDirectory()
        defer { spool.cleanup() }
        let output = try TinyFilesystem(bytes: 1 << 20)
        try await RunningBridge.with(config: Self.config(spool: spool.path, output: output.path, maxBytes: 4096)) { bridge in
            output.fill()
            var statuses: [UInt] = []
            for index in 0..<40 { statuses.append(try await send(bridge, "f-\(index)").status.code) }
            #expect(statuses.contains(202))
            #expect(statuses.last == 503)
            let answer = try await send(bridge, "f-39")
            #expect(answer.status == .serviceUnavailable)
            #expect(answer.headers.first(name: "Retry-After") != nil)
            #expect(answer.json == .object([("error", .string("unavailable"))]))
        }
    }
}
