import BridgeTestSupport
import Foundation
import Synchronization
import Testing
import WebhookCore

/// One client posting a body over its own blocking socket: the head and half the body, then
/// a wait at `barrier` until every client got that far (so all bodies are in flight at once),
/// then the rest. Returns the status it was answered (0 when the connection ended without one).
private func post(port: Int, head: String, bodyBytes: Int, barrier: Barrier) -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else {
        barrier.arrive()
        return 0
    }
    defer { close(fd) }
    var timeout = timeval(tv_sec: 30, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else {
        barrier.arrive()
        return 0
    }
    let headBytes = Array(head.utf8)
    _ = send(fd, headBytes, headBytes.count, Int32(MSG_NOSIGNAL))
    let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: 65536)
    var sent = 0
    func sendBody(upTo limit: Int) {
        while sent < limit {
            // A refused request is answered (and its connection closed) before its body ends.
            var probe: UInt8 = 0
            if recv(fd, &probe, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) > 0 { return }
            let count = send(fd, chunk, min(chunk.count, limit - sent), Int32(MSG_NOSIGNAL))
            if count <= 0 { return }
            sent += count
        }
    }
    sendBody(upTo: bodyBytes / 2)
    barrier.arrive()
    barrier.wait()
    sendBody(upTo: bodyBytes)
    var received: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while !received.contains(0x0A) {
        let count = recv(fd, &buffer, buffer.count, 0)
        if count <= 0 { break }
        received.append(contentsOf: buffer[0..<count])
    }
    let statusLine = String(decoding: received.prefix { $0 != 0x0D }, as: UTF8.self)
    return statusLine.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
}

/// Holds every client until the test releases them (or 30 s passed).
private final class Barrier: Sendable {
    private let state = Mutex((arrived: 0, released: false))
    func arrive() { state.withLock { $0.arrived += 1 } }
    var arrived: Int { state.withLock { $0.arrived } }
    func release() { state.withLock { $0.released = true } }
    func wait() {
        let deadline = Date().addingTimeInterval(30)
        while !state.withLock({ $0.released }), Date() < deadline { usleep(2000) }
    }
}

private final class Tally: Sendable {
    let statuses = Mutex<[Int: Int]>([:])
}

@Suite("Memory stays bounded under unauthenticated load", .serialized)
struct MemoryBoundTests {
    /// With the default budget (128 MiB) and with half of it, which shows the bound well below
    /// the 300 MB line: without a budget, the bodies in flight alone took about 200 MB (measured).
    @Test(
        "400 concurrent unsigned or wrongly signed 1 MB bodies: peak RSS under 300 MB and within the budget, /healthz keeps answering",
        arguments: [134_217_728, 64 << 20])
    func unsignedFlood(budget: Int) async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let port = try RedisServer.freePort()
        let config = directory.file("config.json")
        try Data(
            """
            {"listen": {"host": "127.0.0.1", "port": \(port)}, "limits": {"maxBufferedBytes": \(budget)},
             "sinks": {"archive": {"type": "file", "path": "\(directory.file("events.jsonl"))"}},
             "sources": {"gh": {"path": "/gh", "verify": {"scheme": "github", "secrets": ["gh-secret"]}, "sinks": ["archive"]}}}
            """.utf8
        ).write(to: URL(fileURLWithPath: config))
        let server = try BridgeProcess(config: config)
        let before = server.peakResidentBytes ?? 0
        let size = 1_000_000
        let unsigned = "POST /gh HTTP/1.1\r\nHost: x\r\nContent-Length: \(size)\r\n\r\n"
        let wronglySigned =
            "POST /gh HTTP/1.1\r\nHost: x\r\nX-Hub-Signature-256: sha256=\(String(repeating: "0", count: 64))\r\n"
            + "Content-Length: \(size)\r\n\r\n"
        let tally = Tally()
        let barrier = Barrier()
        let flood = Task.detached {
            await withTaskGroup(of: Void.self) { group in
                for index in 0..<400 {
                    group.addTask {
                        let status = try? await offThePool {
                            post(port: port, head: index % 4 == 0 ? unsigned : wronglySigned, bodyBytes: size, barrier: barrier)
                        }
                        tally.statuses.withLock { $0[status ?? 0, default: 0] += 1 }
                    }
                }
            }
        }
        // Every client has sent its head and half its body: all 400 bodies are in flight.
        while barrier.arrived < 400 { try await Task.sleep(for: .milliseconds(10)) }
        // /healthz while they are.
        var health: [Int] = []
        for _ in 0..<10 {
            health.append(try await offThePool { try KeepAliveConnection(port: port).get("/healthz").status })
        }
        let atBarrier = server.peakResidentBytes ?? 0
        barrier.release()
        await flood.value
        let peak = server.peakResidentBytes ?? Int.max
        let counted = tally.statuses.withLock { $0 }
        #expect(health == Array(repeating: 200, count: 10))
        // Every client got an answer: 401 (unsigned from the head, wrong signature after the
        // body), or 503 busy when the bodies in flight filled maxBufferedBytes.
        #expect(Set(counted.keys).isSubset(of: [401, 503]), "\(counted)")
        #expect(counted[401, default: 0] >= 100, "\(counted)")
        #expect(peak < 300_000_000, "peak RSS \(peak / 1_000_000) MB (at start \(before / 1_000_000) MB); answers \(counted)")
        // Growth beyond the bodies the budget lets in: buffers, connections, the heap's slack.
        #expect(peak - before < budget + 48_000_000, "grew by \((peak - before) / 1_000_000) MB over a \(budget >> 20) MiB budget")
        print(
            "memory bound: peak RSS \(peak / 1_000_000) MB (at start \(before / 1_000_000) MB, "
                + "with every body half sent \(atBarrier / 1_000_000) MB); answers \(counted)")
        #expect(try KeepAliveConnection(port: port).get("/healthz").status == 200)
        #expect(server.terminate() == 0)
    }
}
