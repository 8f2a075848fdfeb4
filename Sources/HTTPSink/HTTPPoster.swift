import NIOCore
import NIOSSL

/// POSTs to one receiver over the sink's kept-alive HTTP/1.1 connections (one at a time)
/// and its own answer parser, for the bridge's other senders: the span exporter sends every
/// batch on the same connection (and, to an `https` collector, the same TLS session) instead
/// of a new one per batch.
public final class HTTPPoster: Sendable {
    /// What the receiver answered.
    public struct Answer: Sendable {
        public let status: Int
        /// `Retry-After`, as sent.
        public let retryAfter: String?
    }

    private let pool: HTTPConnectionPool
    private let group: any EventLoopGroup
    /// `Host`, `User-Agent` and the caller's fixed headers, encoded once.
    private let fixedHeaders: [UInt8]

    /// `tls` for `https`; `headers` are sent with every post.
    public init(
        host: String, port: Int, tls: NIOSSLContext?, headers: [(String, String)], userAgent: String,
        connectTimeout: TimeAmount, group: any EventLoopGroup
    ) {
        pool = HTTPConnectionPool(
            endpoint: .init(host: host, port: port, tls: tls), maximum: 1, connectTimeout: connectTimeout, group: group)
        self.group = group
        var fixed = [("Host", Self.hostHeader(host: host, port: port, secure: tls != nil)), ("User-Agent", userAgent)]
        fixed += headers
        fixedHeaders = Array(fixed.map { "\($0.0): \($0.1)\r\n" }.joined().utf8)
    }

    /// Sends `body` to `path`; throws when no answer came within `timeout` (or the
    /// connection failed). A request on a kept connection the receiver had closed is sent
    /// once more on a new one.
    public func post(path: String, contentType: String, body: ByteBuffer, timeout: TimeAmount) async throws -> Answer {
        var head = ByteBufferAllocator().buffer(capacity: 128 + path.utf8.count + fixedHeaders.count)
        head.writeStaticString("POST ")
        head.writeString(path)
        head.writeStaticString(" HTTP/1.1\r\n")
        head.writeBytes(fixedHeaders)
        head.writeString("Content-Type: \(contentType)\r\nContent-Length: \(body.readableBytes)\r\n\r\n")
        let request = HTTPConnectionPool.Request(head: head, body: body, timeout: timeout)
        let loop = group.next()
        return try await withCheckedThrowingContinuation { continuation in
            pool.execute(request, on: loop) { result in
                switch result {
                case .success(let answer):
                    continuation.resume(returning: Answer(status: answer.status, retryAfter: answer.retryAfter))
                case .failure(let failure): continuation.resume(throwing: failure)
                }
            }
        }
    }

    /// `Host`'s value: an IPv6 address in brackets, the port unless it is the scheme's.
    static func hostHeader(host: String, port: Int, secure: Bool) -> String {
        let name = host.contains(":") ? "[\(host)]" : host
        return port == (secure ? 443 : 80) ? name : "\(name):\(port)"
    }

    /// Closes the idle connection; a post after this fails.
    public func shutdown() { pool.shutdown() }
}
