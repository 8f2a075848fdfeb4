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
        #expect(HIREDIS_MAJOR >= 0)
        let reader = redisReaderCreate()
        #expect(reader != nil)
        redisReaderFree(reader)
    }
}
