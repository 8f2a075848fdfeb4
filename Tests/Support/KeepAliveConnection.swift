import Foundation

/// One HTTP/1.1 connection kept open across requests, over a plain blocking socket: for
/// tests that must show a connection survives something (a config reload).
public final class KeepAliveConnection: @unchecked Sendable {
    private let fd: Int32
    /// Bytes read past the last answer (the start of the next one, when answers to
    /// pipelined requests arrive together).
    private var unread: [UInt8] = []

    /// Connects to `127.0.0.1:port`, from `sourceAddress` when given (another loopback
    /// address such as `127.0.0.2`: a second client, as the bridge sees it).
    public init(port: Int, from sourceAddress: String? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if let sourceAddress {
            var local = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            local.sin_addr.s_addr = inet_addr(sourceAddress)
            let bound = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0 else { throw ServerError("cannot bind to \(sourceAddress)") }
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw ServerError("cannot connect to port \(port)") }
    }

    /// Closed with a reset, not a FIN: the client's port does not linger in TIME_WAIT for a
    /// minute. Tests open thousands of connections, and a port in TIME_WAIT is one that
    /// librdkafka's mock broker, brought down and up again by the Kafka tests, can't re-bind
    /// (it aborts the test process).
    deinit {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close(fd)
    }

    /// Sends raw bytes (a partial request, for slow-client tests).
    public func sendRaw(_ text: String) throws { try sendRaw(Array(text.utf8)) }

    /// Sends bytes as they are (header values that are not UTF-8, for instance).
    public func sendRaw(_ bytes: [UInt8]) throws {
        guard send(fd, bytes, bytes.count, 0) == bytes.count else { throw ServerError("send failed") }
    }

    /// Half-closes the connection: the client sends nothing more (a FIN) but still reads.
    public func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }

    /// POSTs `body` with header lines given as bytes, and returns the answer's status and body.
    public func post(_ path: String, rawHeaders: [[UInt8]], body: String) throws -> (status: Int, body: String) {
        var request = Array("POST \(path) HTTP/1.1\r\nHost: localhost\r\nContent-Length: \(body.utf8.count)\r\n".utf8)
        for line in rawHeaders { request += line + Array("\r\n".utf8) }
        request += Array("\r\n".utf8) + Array(body.utf8)
        try sendRaw(request)
        let answer = try readAnswer()
        return (answer.status, answer.body)
    }

    /// Reads until the server closes the connection (or 10 s pass); returns what it sent
    /// and whether the server closed it (false: the read timed out with it still open).
    @discardableResult
    public func readUntilClosed() -> (text: String, closedByServer: Bool) {
        var received = unread
        unread = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(fd, &chunk, chunk.count, 0)
            if count == 0 { return (String(decoding: received, as: UTF8.self), true) }
            if count < 0 { return (String(decoding: received, as: UTF8.self), errno == ECONNRESET) }
            received.append(contentsOf: chunk[0..<count])
        }
    }

    /// Reads until what arrived (since the last answer read) holds `needle` and, after it, a
    /// blank line (the end of an event-stream event), the server closes, or the read times
    /// out (10 s); returns all of it.
    public func readUntil(_ needle: String) -> String {
        var received = unread
        unread = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        func done(_ text: String) -> Bool {
            guard let found = text.range(of: needle) else { return false }
            return text[found.upperBound...].contains("\n\n")
        }
        while !done(String(decoding: received, as: UTF8.self)) {
            let count = recv(fd, &chunk, chunk.count, 0)
            if count <= 0 { break }
            received.append(contentsOf: chunk[0..<count])
        }
        return String(decoding: received, as: UTF8.self)
    }

    /// GETs `path` and returns the status code and body of the answer.
    public func get(_ path: String) throws -> (status: Int, body: String) {
        try exchange("GET \(path) HTTP/1.1\r\nHost: localhost\r\n\r\n")
    }

    /// POSTs `body` with `headers` and returns the status code and body of the answer.
    public func post(_ path: String, headers: [(String, String)], body: String) throws -> (status: Int, body: String) {
        var request = "POST \(path) HTTP/1.1\r\nHost: localhost\r\nContent-Length: \(body.utf8.count)\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        request += "\r\n" + body
        return try exchange(request)
    }

    private func exchange(_ request: String) throws -> (status: Int, body: String) {
        let bytes = Array(request.utf8)
        guard send(fd, bytes, bytes.count, 0) == bytes.count else { throw ServerError("send failed") }
        let answer = try readAnswer()
        return (answer.status, answer.body)
    }

    /// Reads one answer (status line, headers, a `Content-Length` body) without sending anything.
    public func readAnswer() throws -> (status: Int, head: String, body: String) {
        var received = unread
        unread = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            if let headerEnd = received.firstRange(of: Array("\r\n\r\n".utf8)) {
                let head = String(decoding: received[..<headerEnd.lowerBound], as: UTF8.self)
                let length =
                    head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                    .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
                if received.count - headerEnd.upperBound >= length {
                    let status = Int(head.split(separator: " ")[1]) ?? 0
                    let bodyBytes = received[headerEnd.upperBound..<(headerEnd.upperBound + length)]
                    unread = Array(received[(headerEnd.upperBound + length)...])
                    return (status, head, String(decoding: bodyBytes, as: UTF8.self))
                }
            }
            let count = recv(fd, &chunk, chunk.count, 0)
            guard count > 0 else { throw ServerError("the connection closed") }
            received.append(contentsOf: chunk[0..<count])
        }
    }
}

/// Runs blocking socket calls off Swift's cooperative pool, which an in-process server
/// under test needs to answer them.
public func offThePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    // A thread of its own: blocking Dispatch's global threads would starve the pool too.
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}
