import BridgeTestSupport
import DurableFile
import FileSink
import Foundation
import Logging
import ServiceLifecycle
import Testing
import WebhookCore

@testable import Spool

/// A forwarder draining `spool`'s queue for `fileSink` into it, as the bridge wires one.
func fileForwarder(_ spool: Spool, into fileSink: FileSink) -> SpoolForwarder {
    SpoolForwarder(spool: spool, sink: fileSink.name, logger: quietLogger) { event in
        do {
            _ = try await fileSink.deliver(event)
            return .success(())
        } catch let error as SinkError {
            return .failure(error)
        } catch {
            return .failure(.unavailable(sink: fileSink.name, reason: "\(error)"))
        }
    }
}

/// Runs `forwarder` as a service until `done` holds (60 s at most), then stops it gracefully;
/// returns whether `done` held. The bound is only where the test gives up: each forwarded
/// event is an fsync, and with the other suites fsyncing on the same disk 26 events once took
/// longer than 15 s (all delivered, in order, just late).
func forward(_ forwarder: SpoolForwarder, until done: () -> Bool) async throws -> Bool {
    let group = ServiceGroup(services: [forwarder], logger: quietLogger)
    let task = Task { try await group.run() }
    let held = await eventually(60) { done() }
    await group.triggerGracefulShutdown()
    try await task.value
    return held
}

@Suite("Spool position: where forwarding resumes after a restart")
struct SpoolPositionTests {
    /// Replaces the saved position of the queue in `folder` with `text`, as a hand edit or a
    /// bug would: in the position file, or in the cursor file of earlier versions.
    func overwritePosition(_ folder: String, _ text: String) throws {
        if FileManager.default.fileExists(atPath: folder + "/position") {
            try SlotFile.write(folder + "/position", Array(text.utf8))
        } else {
            try Data(text.utf8).write(to: URL(fileURLWithPath: folder + "/cursor"))
        }
    }

    @Test(
        "a saved position past the data is refused with an error logged, and the backlog is forwarded from the first segment",
        arguments: ["a segment after the last", "an offset past the end of its segment"])
    func positionPastTheData(_ kind: String) async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let spool = try Spool(
            directory: directory.path, maxBytes: 1 << 20, sinks: ["sink": []], segmentBytes: 2048, logger: quietLogger)
        for index in 0..<20 { try await spool.append(spoolEvent("p-\(index)"), for: "sink") }
        await spool.shutdown()
        let folder = directory.path + "/sink"
        let segments = Spool.segments(in: folder)
        #expect(segments.count >= 3)
        try overwritePosition(folder, kind.hasPrefix("a segment") ? "\(segments.last! + 3) 0\n" : "\(segments[0]) 999999\n")

        let log = LogRecorder()
        let reopened = try Spool(
            directory: directory.path, maxBytes: 1 << 20, sinks: ["sink": []], segmentBytes: 2048, logger: log.logger)
        #expect(try await drain(reopened) == (0..<20).map { "p-\($0)" })
        #expect(
            log.messages(atLeast: .error).contains { $0.contains("past the spooled data") }, "\(log.messages(atLeast: .info))")
        await reopened.shutdown()
    }
}

@Suite(
    "Spool position on a full disk", .serialized,
    .enabled(if: TinyFilesystem.isAvailable, "a full disk is a tmpfs the test mounts, which needs root"))
struct SpoolFullDiskDrainTests {
    @Test("a spool that filled its disk and then drained re-sends at most one batch after a restart")
    func drainedFullDiskRestart() async throws {
        let disk = try TinyFilesystem(bytes: 2 << 20)
        let output = try TinyFilesystem(bytes: 16 << 20)
        // spool.maxBytes above the disk's size: the disk fills first, as in the report.
        let spool = try Spool(directory: disk.path + "/spool", maxBytes: 64 << 20, sinks: ["archive": []], logger: quietLogger)
        var spooled = 0
        while true {
            do {
                try await spool.append(spoolEvent("f-\(spooled)", padding: 800), for: "archive")
                spooled += 1
            } catch {
                #expect(!error.isFull, "the disk, not spool.maxBytes, stops the appends: \(error)")
                break
            }
        }
        #expect(spooled > 4 * SpoolForwarder.batch)
        #expect(disk.available < 4096, "the disk is not full: \(disk.available) bytes free")

        // The sink is back: everything is delivered, and the forwarder stops.
        let sink = try FileSink(name: "archive", path: Template(parsing: output.path + "/first.jsonl"), logger: quietLogger)
        let delivered = try await forward(fileForwarder(spool, into: sink)) {
            readIDs(output.path + "/first.jsonl").count == spooled
        }
        #expect(delivered)
        #expect(readIDs(output.path + "/first.jsonl") == (0..<spooled).map { "f-\($0)" })
        await spool.shutdown()

        // The next start re-sends at most the last batch.
        let restarted = try Spool(
            directory: disk.path + "/spool", maxBytes: 64 << 20, sinks: ["archive": []], logger: quietLogger)
        let again = try FileSink(name: "archive", path: Template(parsing: output.path + "/again.jsonl"), logger: quietLogger)
        let drained = try await forward(fileForwarder(restarted, into: again)) { !restarted.hasBacklog(for: "archive") }
        #expect(drained)
        let resent = readIDs(output.path + "/again.jsonl").count
        #expect(resent <= SpoolForwarder.batch, "\(resent) of \(spooled) events were sent again")
        await restarted.shutdown()
    }
}
