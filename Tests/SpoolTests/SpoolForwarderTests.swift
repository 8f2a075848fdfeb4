import BridgeTestSupport
import FileSink
import Foundation
import Logging
import NIOCore
import Testing
import WebhookCore
import WebhookEncoding

@testable import Spool

@Suite("The forwarder: one poison event never holds back the others")
struct SpoolForwarderTests {
    func event(_ id: String, type: String) -> WebhookEvent {
        WebhookEvent(
            id: id, source: "s", type: type, time: .now(), dataContentType: "application/json", scheme: "none",
            keyIndex: 0, data: ByteBuffer(string: #"{"id": "\#(id)"}"#))
    }

    @Test("an event the file sink can never write (a directory in its place) is dead-lettered at once; the rest arrive in order")
    func poisonDeadLettered() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let sink = try FileSink(name: "archive", path: Template(parsing: directory.path + "/out/{type}.jsonl"), logger: quietLogger)
        // EISDIR for every event of type "poison": no retry can fix it.
        try FileManager.default.createDirectory(atPath: directory.file("out/poison.jsonl"), withIntermediateDirectories: true)
        let spool = try Spool(directory: directory.file("spool"), maxBytes: 1 << 20, sinks: ["archive": []], logger: quietLogger)
        var expected: [String] = []
        for index in 0..<30 {
            let poison = index % 7 == 3
            try await spool.append(event("f-\(index)", type: poison ? "poison" : "good"), for: "archive")
            if !poison { expected.append("f-\(index)") }
        }
        let delivered = try await forward(fileForwarder(spool, into: sink)) {
            readIDs(directory.file("out/good.jsonl")) == expected
        }
        #expect(delivered, "delivered: \(readIDs(directory.file("out/good.jsonl")))")
        let deadLetters = readLines(spool.deadLetterPath)
        #expect(deadLetters.map { $0["id"]?.scalarText } == ["f-3", "f-10", "f-17", "f-24"])
        #expect(deadLetters.allSatisfy { $0["deadlettersink"]?.scalarText == "archive" })
        #expect(deadLetters.allSatisfy { ($0["deadletterreason"]?.scalarText ?? "").contains("Is a directory") })
        #expect(!spool.hasBacklog(for: "archive"))
        #expect(sink.isReady, "a path that can never be written is not a sink outage")
        await spool.shutdown()
    }
}

func readLines(_ path: String) -> [JSONValue] {
    guard let data = FileManager.default.contents(atPath: path) else { return [] }
    return data.split(separator: 0x0A).compactMap { try? JSONParser.parse(Array($0)) }
}

func readIDs(_ path: String) -> [String] { readLines(path).compactMap { $0["id"]?.scalarText } }
