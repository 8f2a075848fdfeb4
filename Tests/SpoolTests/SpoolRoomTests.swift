import BridgeTestSupport
import DurableFile
import Foundation
import Logging
import NIOCore
import Testing
import WebhookCore

@testable import Spool

func spoolEvent(_ id: String, padding: Int = 200) -> WebhookEvent {
    WebhookEvent(
        id: id, source: "s", type: "t", time: .now(), dataContentType: "application/json", scheme: "none", keyIndex: 0,
        data: ByteBuffer(string: #"{"id": "\#(id)", "pad": "\#(String(repeating: "x", count: padding))"}"#))
}

var quietLogger: Logger {
    var logger = Logger(label: "test")
    logger.logLevel = .critical
    return logger
}

/// Forwards everything `spool` holds for `sink` (as the forwarder does, without a sink) and
/// returns the ids in order; the cursor is saved unless `save` is false.
@discardableResult
func drain(_ spool: Spool, _ sink: String = "sink", save: Bool = true) async throws -> [String] {
    var ids: [String] = []
    while let (event, position) = try await spool.next(for: sink) {
        ids.append(event.id)
        spool.advance(sink, to: position)
    }
    if save { try await spool.saveCursor(sink) }
    return ids
}

@Suite("Spool room: maxBytes counts what is not forwarded yet")
struct SpoolRoomTests {
    @Test("a drained spool has its room back, in memory and after a restart, and its forwarded segments leave the disk")
    func roomComesBack() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        // Room for about 60 of these ~400-byte lines; 200 go through in four rounds.
        let maxBytes = 24 * 1024
        var sent = 0
        for round in 0..<4 {
            let spool = try Spool(directory: directory.path, maxBytes: maxBytes, sinks: ["sink": []], logger: quietLogger)
            #expect(spool.bytes == 0, "round \(round): a restart counts forwarded bytes as used")
            for _ in 0..<50 {
                try await spool.append(spoolEvent("e-\(sent)"), for: "sink")
                sent += 1
            }
            #expect(spool.bytes > 0)
            let forwarded = try await drain(spool)
            #expect(forwarded == ((sent - 50)..<sent).map { "e-\($0)" })
            #expect(spool.bytes == 0)
            #expect(!spool.hasBacklog(for: "sink"))
            try await spool.reclaim("sink")
            #expect(spool.segmentFileBytes(for: "sink") == 0, "forwarded data is still on disk")
            await spool.shutdown()
        }
    }

    @Test("the segments a saved cursor has passed are deleted; the one being read stays")
    func passedSegmentsDeleted() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let spool = try Spool(
            directory: directory.path, maxBytes: 1 << 20, sinks: ["sink": []], segmentBytes: 2048, logger: quietLogger)
        for index in 0..<40 { try await spool.append(spoolEvent("d-\(index)"), for: "sink") }
        let before = spool.segmentFileBytes(for: "sink")
        for _ in 0..<30 {
            let (_, position) = try #require(try await spool.next(for: "sink"))
            spool.advance("sink", to: position)
        }
        try await spool.saveCursor("sink")
        let after = spool.segmentFileBytes(for: "sink")
        #expect(after < before / 2)
        #expect(spool.backlogBytes(for: "sink") > 0)
        // The rest is still there, in order, and after a restart too.
        await spool.shutdown()
        let reopened = try Spool(
            directory: directory.path, maxBytes: 1 << 20, sinks: ["sink": []], segmentBytes: 2048, logger: quietLogger)
        #expect(try await drain(reopened) == (30..<40).map { "d-\($0)" })
        await reopened.shutdown()
    }

    @Test("a line a crash left unfinished at the end of an older segment does not stop the forwarder after a restart")
    func tornLineInOlderSegment() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let spool = try Spool(
            directory: directory.path, maxBytes: 1 << 20, sinks: ["sink": []], segmentBytes: 2048, logger: quietLogger)
        for index in 0..<20 { try await spool.append(spoolEvent("t-\(index)"), for: "sink") }
        await spool.shutdown()
        // A write to the first segment was cut short by a crash (it was never fsynced, so
        // never answered), while later segments hold events that were.
        let first = Spool.segmentPath(directory.path + "/sink", Spool.segments(in: directory.path + "/sink")[0])
        let handle = try #require(FileHandle(forWritingAtPath: first))
        handle.seekToEndOfFile()
        handle.write(Data(#"{"specversion": "1.0", "id": "torn"#.utf8))
        try handle.close()

        let reopened = try Spool(
            directory: directory.path, maxBytes: 1 << 20, sinks: ["sink": []], segmentBytes: 2048, logger: quietLogger)
        #expect(try await drain(reopened) == (0..<20).map { "t-\($0)" })
        #expect(!reopened.hasBacklog(for: "sink"))
        #expect(reopened.bytes == 0)
        await reopened.shutdown()
    }

    @Test("dead letters count against maxBytes, and truncating the dead-letter file gives the room back")
    func deadLettersCount() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let spool = try Spool(directory: directory.path, maxBytes: 4096, sinks: ["sink": []], logger: quietLogger)
        var refused = false
        for index in 0..<20 {
            do {
                try await spool.deadLetter(spoolEvent("p-\(index)"), sink: "sink", reason: "test")
            } catch {
                #expect(error.isFull)
                refused = true
                break
            }
        }
        #expect(refused)
        await #expect(throws: Spool.Failure.self) { try await spool.append(spoolEvent("next"), for: "sink") }
        #expect(truncate(spool.deadLetterPath, 0) == 0)
        try await spool.reclaim("sink")
        try await spool.append(spoolEvent("next"), for: "sink")
        await spool.shutdown()
    }
}

@Suite(
    "Spool cursor of an earlier version on a full disk", .serialized,
    .enabled(if: TinyFilesystem.isAvailable, "a full disk is a tmpfs the test mounts, which needs root"))
struct SpoolFullDiskTests {
    @Test(
        "an earlier version's cursor file is read; while the position file can't be created (a full disk) saves fail and keep it; with room it is replaced"
    )
    func earlierCursorOnFullDisk() async throws {
        let disk = try TinyFilesystem(bytes: 512 * 1024)
        let directory = disk.path + "/spool"
        let spool = try Spool(directory: directory, maxBytes: 1 << 20, sinks: ["sink": []], logger: quietLogger)
        for index in 0..<100 { try await spool.append(spoolEvent("c-\(index)"), for: "sink") }
        await spool.shutdown()
        // What an earlier version leaves: a cursor file (here after the first 40 events), no position file.
        let segment = try Data(contentsOf: URL(fileURLWithPath: Spool.segmentPath(directory + "/sink", 1)))
        let offset = segment.split(separator: 0x0A).prefix(40).reduce(0) { $0 + $1.count + 1 }
        try FileManager.default.removeItem(atPath: directory + "/sink/position")
        try Data("1 \(offset)\n".utf8).write(to: URL(fileURLWithPath: directory + "/sink/cursor"))

        disk.fill()
        let reopened = try Spool(directory: directory, maxBytes: 1 << 20, sinks: ["sink": []], logger: quietLogger)
        #expect(try await drain(reopened, save: false) == (40..<100).map { "c-\($0)" })
        await #expect(throws: AtomicFile.Failure.self) { try await reopened.saveCursor("sink") }
        await reopened.shutdown()
        let again = try Spool(directory: directory, maxBytes: 1 << 20, sinks: ["sink": []], logger: quietLogger)
        #expect(try await drain(again, save: false) == (40..<100).map { "c-\($0)" })

        // Room on the disk again: the save creates the position file, which replaces the cursor
        // file, and a third start has nothing to send.
        disk.free()
        try await again.saveCursor("sink")
        await again.shutdown()
        #expect(!FileManager.default.fileExists(atPath: directory + "/sink/cursor"))
        let third = try Spool(directory: directory, maxBytes: 1 << 20, sinks: ["sink": []], logger: quietLogger)
        #expect(try await third.next(for: "sink")?.0.id == nil)
        #expect(third.bytes == 0)
        await third.shutdown()
    }
}
