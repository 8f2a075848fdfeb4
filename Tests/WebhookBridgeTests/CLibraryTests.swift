import BridgeTestSupport
import CHiredis
import CRdKafka
import Testing

@Suite("System C libraries")
struct CLibraryTests {
    @Test("librdkafka (with its mock cluster header) and hiredis link through their systemLibrary targets")
    func linked() {
        let version = String(cString: rd_kafka_version_str())
        #expect(rd_kafka_version() >= 0x0200_0200, "librdkafka \(version) is older than Debian 12's 2.0.2")
        // hiredis parses a real reply through the linked library, not just its header.
        guard let reader = redisReaderCreate() else {
            Issue.record("redisReaderCreate failed")
            return
        }
        defer { redisReaderFree(reader) }
        let wire = Array("$5\r\nhello\r\n".utf8)
        #expect(
            wire.withUnsafeBufferPointer {
                redisReaderFeed(reader, $0.baseAddress.map(UnsafeRawPointer.init)?.assumingMemoryBound(to: CChar.self), $0.count)
            } == REDIS_OK)
        var reply: UnsafeMutableRawPointer?
        #expect(redisReaderGetReply(reader, &reply) == REDIS_OK)
        let parsed = reply?.assumingMemoryBound(to: redisReply.self).pointee
        #expect(parsed.map { Int32($0.type) } == REDIS_REPLY_STRING)
        #expect(parsed.map { String(cString: $0.str) } == "hello")
        freeReplyObject(reply)
    }
}
