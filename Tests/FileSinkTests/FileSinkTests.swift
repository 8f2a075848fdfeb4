import FileSink
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import Testing
import WebhookCore
import WebhookEncoding

@Suite("File sink")
struct FileSinkTests {
    let directory: String = {
        let path = NSTemporaryDirectory() + "/file-sink-test-\(UInt64.random(in: 0...UInt64.max))"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()

    func event(_ id: String, source: String = "github", body: String = #"{"ok": true}"#) -> WebhookEvent {
        WebhookEvent(
            id: id, source: source, type: "push", time: .now(), dataContentType: "application/json",
            scheme: "github", keyIndex: 0, data: ByteBuffer(string: body))
    }

    func readLines(_ path: String) -> [JSONValue] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        return data.split(separator: 0x0A).compactMap { try? JSONParser.parse(Array($0)) }
    }

    @Test("deliver returns once the line is in the file, with its offset as the receipt")
    func durableOnReturn() async throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/out/events.jsonl"
        let sink = try FileSink(name: "archive", path: Template(parsing: path), logger: Logger(label: "test"))
        #expect(FileManager.default.fileExists(atPath: path), "a path without placeholders is created at startup")
        let first = try await sink.deliver(event("a"))
        #expect(first == DeliveryReceipt(sink: "archive", place: path, offset: .byte(0)))
        #expect(readLines(path).map { $0["id"] } == [.string("a")])
        let second = try await sink.deliver(event("b"))
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int
        #expect(second.position != first.position)
        #expect(readLines(path).map { $0["id"] } == [.string("a"), .string("b")])
        #expect(size ?? 0 > 0)
    }

    @Test("concurrent deliveries are each written once, whole, across templated files")
    func concurrent() async throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let sink = try FileSink(
            name: "archive", path: Template(parsing: "\(directory)/{source}/events.jsonl"), logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<300 {
                group.addTask { _ = try await sink.deliver(self.event("e\(index)", source: index % 2 == 0 ? "even" : "odd")) }
            }
            try await group.waitForAll()
        }
        let even = readLines("\(directory)/even/events.jsonl").compactMap { $0["id"]?.scalarText }
        let odd = readLines("\(directory)/odd/events.jsonl").compactMap { $0["id"]?.scalarText }
        #expect(even.count == 150 && odd.count == 150)
        #expect(Set(even + odd).count == 300)
    }

    @Test("a last line cut short by a crash is ended before the next event is appended")
    func repairsPartialLine() async throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/events.jsonl"
        #expect(FileManager.default.createFile(atPath: path, contents: Data("{\"id\":\"whole\"}\n{\"id\":\"cut".utf8)))
        let sink = try FileSink(name: "archive", path: Template(parsing: path), logger: Logger(label: "test"))
        _ = try await sink.deliver(event("next"))
        let raw = String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
        #expect(raw.split(separator: "\n").count == 3)
        #expect(readLines(path).compactMap { $0["id"]?.scalarText } == ["whole", "next"])
    }

    @Test("an unwritable path fails at startup with the path in the reason")
    func unwritable() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(FileManager.default.createFile(atPath: "\(directory)/file", contents: Data()))
        #expect(throws: SinkError.self) {
            _ = try FileSink(
                name: "archive", path: Template(parsing: "\(directory)/file/events.jsonl"), logger: Logger(label: "test"))
        }
    }

    @Test("after a graceful stop, deliveries are refused rather than lost")
    func afterShutdown() async throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let sink = try FileSink(
            name: "archive", path: Template(parsing: "\(directory)/events.jsonl"), logger: Logger(label: "test"))
        let group = ServiceGroup(services: [sink], logger: Logger(label: "test"))
        async let running: Void = group.run()
        _ = try await sink.deliver(event("before"))
        await group.triggerGracefulShutdown()
        try await running
        await #expect(throws: SinkError.self) { _ = try await sink.deliver(self.event("after")) }
        #expect(!sink.isReady)
        #expect(readLines("\(directory)/events.jsonl").map { $0["id"] } == [.string("before")])
    }
}
