import BridgeTestSupport
import Foundation
import Logging
import NIOCore
import Spool
import Testing
import WebhookBridge
import WebhookCore
import WebhookEncoding

@Suite("A damaged spool line")
struct SpoolDamageTests {
    @Test(
        "a damaged spool line is set aside raw in dead-letter.jsonl with its reason and counted; the events around it are forwarded"
    )
    func damagedLineSetAside() async throws {
        let metrics = SharedTestMetrics.instance
        let spoolDirectory = TemporaryDirectory()
        defer { spoolDirectory.cleanup() }
        var quiet = Logger(label: "test")
        quiet.logLevel = .critical
        // An earlier run spooled three events for sink "mended"; the disk then damaged the
        // middle one (same length, so the lines after it stay where they were).
        let spool = try Spool(directory: spoolDirectory.path, maxBytes: 1 << 20, sinks: ["mended": []], logger: quiet)
        for index in 0..<3 {
            let event = WebhookEvent(
                id: "m-\(index)", source: "s", type: "t", time: .now(), dataContentType: "application/json",
                scheme: "none", keyIndex: 0, data: ByteBuffer(string: #"{"n": \#(index)}"#))
            try await spool.append(event, for: "mended")
        }
        await spool.shutdown()
        let segment = spoolDirectory.path + "/mended/0000000000000001.jsonl"
        var lines = try Data(contentsOf: URL(fileURLWithPath: segment)).split(separator: 0x0A, omittingEmptySubsequences: false)
            .map(Array.init)
        #expect(lines.count == 4)
        lines[1].replaceSubrange(0..<9, with: Array("\u{0}garbled!".utf8))
        try Data(lines.joined(separator: [0x0A])).write(to: URL(fileURLWithPath: segment))
        let damaged = String(decoding: lines[1], as: UTF8.self)

        let config = """
            {"listen": {"host": "127.0.0.1", "port": 0},
             "spool": {"directory": "\(spoolDirectory.path)"},
             "sinks": {"mended": {"type": "file", "path": "{dir}/events.jsonl"}},
             "sources": {"s": {"path": "/s", "verify": {"scheme": "none"}, "sinks": ["mended"]}}}
            """
        try await RunningBridge.with(config: config) { bridge in
            let forwarded = await eventually { ((try? bridge.lines("events.jsonl")) ?? []).count == 2 }
            #expect(forwarded)
            let ids = try bridge.lines("events.jsonl").map { $0["id"]?.scalarText }
            #expect(ids == ["m-0", "m-2"])
        }
        let deadLetters = try String(contentsOfFile: spoolDirectory.path + "/dead-letter.jsonl", encoding: .utf8)
            .split(separator: "\n").map { try JSONParser.parse(Array($0.utf8)) }
        #expect(deadLetters.count == 1)
        #expect(deadLetters.first?["deadlettersink"]?.scalarText == "mended")
        #expect(deadLetters.first?["deadletterreason"]?.scalarText?.contains("unreadable spool line") == true)
        #expect(deadLetters.first?["raw"]?.scalarText == damaged)
        let counter = try metrics.expectCounter("webhook.spool.damaged_lines.total", [("sink.name", "mended")])
        #expect(counter.totalValue == 1)
    }
}
