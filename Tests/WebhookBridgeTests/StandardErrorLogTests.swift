import Foundation
import Testing
@_spi(Testing) import WebhookBridge

@Suite("The log writer: a stalled reader of standard error stalls no one")
struct StandardErrorLogTests {
    @Test("nobody reading: write returns at once, the overflow is dropped and counted, and the count is written once reading resumes")
    func stalledReader() async throws {
        var descriptors: [Int32] = [0, 0]
        #expect(pipe(&descriptors) == 0)
        let (reading, writing) = (descriptors[0], descriptors[1])
        defer { close(reading) }
        let log = StandardErrorLog(descriptor: writing, limit: 64 * 1024)
        // 2 MB of lines into a 64 KiB pipe nobody reads, plus 64 KiB of room: every call must
        // return (a blocking writer would hang this test), most lines are dropped.
        let line = String(repeating: "x", count: 99) + "\n"
        for index in 0..<20_000 { log.write(String(format: "%05d", index) + line) }
        // Now read: what was kept comes out in order, then the drop count, then new lines.
        let reader = FileHandle(fileDescriptor: reading, closeOnDealloc: false)
        let collected = Task.detached { () -> String in
            var text = ""
            while !text.contains("after\n") {
                let chunk = reader.availableData
                if chunk.isEmpty { break }
                text += String(decoding: chunk, as: UTF8.self)
            }
            return text
        }
        log.write("after\n")
        let text = await collected.value
        log.flush()
        close(writing)
        // Each notice stands where its lines were dropped and counts them exactly.
        var next = 0
        var notices = 0
        for line in text.split(separator: "\n").dropLast() {
            if line.contains("log lines dropped") {
                notices += 1
                next += Int(line.split(separator: " ")[1]) ?? 0
            } else {
                #expect(Int(line.prefix(5)) == next, "\(line.prefix(5)) where \(next) was due")
                next += 1
            }
        }
        #expect(next == 20_000)
        #expect(notices > 0)
        let lines = text.split(separator: "\n")
        #expect(lines.last == "after")
    }
}
