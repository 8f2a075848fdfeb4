import BridgeTestSupport
import Logging
import NIOCore
@testable import Spool
import Testing
import WebhookCore

@Suite("Spool segments")
struct SpoolSegmentTests {
    func event(_ id: String) -> WebhookEvent {
        WebhookEvent(
            id: id, source: "s", type: "t", time: .now(), dataContentType: nil, scheme: "none", keyIndex: 0,
            data: ByteBuffer(string: #"{"id": "\#(id)", "pad": "\#(String(repeating: "x", count: 200))"}"#))
    }

    @Test(
        "with tiny segments, a reader running alongside concurrent appends gets every event exactly once, in append order per writer"
    )
    func rotationUnderConcurrency() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        // ~500-byte lines and 2 KiB segments: a rotation every few appends.
        let spool = try Spool(
            directory: directory.path, maxBytes: 10 << 20, sinks: ["sink": []], segmentBytes: 2048, logger: logger)
        let count = 300
        let reader = Task { () throws -> [String] in
            var seen: [String] = []
            let signal = spool.signal(for: "sink")!
            while seen.count < count {
                if let (event, position) = try await spool.next(for: "sink") {
                    seen.append(event.id)
                    spool.advance("sink", to: position)
                } else if await signal.wait(timeout: .seconds(30)) == .finished {
                    break
                }
            }
            return seen
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<6 {
                group.addTask {
                    for index in 0..<(count / 6) { try await spool.append(event("w\(writer)-\(index)"), for: "sink") }
                }
            }
            try await group.waitForAll()
        }
        // No more appends: the reader drains what is there and stops at the end of the stream.
        await spool.shutdown()
        let seen = try await reader.value
        #expect(seen.count == count)
        #expect(Set(seen).count == count)
        for writer in 0..<6 {
            let mine = seen.filter { $0.hasPrefix("w\(writer)-") }
            #expect(mine == (0..<(count / 6)).map { "w\(writer)-\($0)" })
        }
        #expect(!spool.hasBacklog(for: "sink"))
    }
}
