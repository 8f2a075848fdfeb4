import BridgeTestSupport
import Foundation
import Testing

@testable import DurableFile

@Suite("SlotFile: the spool position's record, saved in place")
struct SlotFileTests {
    @Test("saves alternate slots in place (the file never grows); a torn newest slot leaves the previous record")
    func tornSlot() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let path = directory.file("position")
        #expect(SlotFile.read(path) == nil)
        for index in 1...5 {
            try SlotFile.write(path, Array("1 \(index * 100)\n".utf8))
            #expect(SlotFile.read(path) == Array("1 \(index * 100)\n".utf8))
            #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int == 2 * SlotFile.slotBytes)
        }
        // The fifth record went to slot 0 (1, 3, 5 there; 2, 4 in slot 1). A crash tears it:
        // its last bytes never reached the disk.
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        try handle.seek(toOffset: 20)
        try handle.write(contentsOf: [0, 0, 0])
        try handle.close()
        #expect(SlotFile.read(path) == Array("1 400\n".utf8))
        // The next save goes to the torn slot, and wins.
        try SlotFile.write(path, Array("2 0\n".utf8))
        #expect(SlotFile.read(path) == Array("2 0\n".utf8))
        try SlotFile.write(path, Array("2 50\n".utf8))
        #expect(SlotFile.read(path) == Array("2 50\n".utf8))
    }
}
