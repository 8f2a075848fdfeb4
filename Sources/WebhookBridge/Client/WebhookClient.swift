import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A minimal HTTP/1.1 client: one request per connection, the whole answer collected. It is
/// what `webhook-bridge send` posts with and what the tests talk to the server through.
public enum WebhookClient {
    /// An answer.
    public struct Response: Sendable {
        public var status: HTTPResponseStatus
        public var headers: HTTPHeaders
        public var body: [UInt8]

        public var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// Why a request got no answer.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public let description: String
        /// False when no connection was made, so the request was never sent: trying again
        /// can't deliver it twice.
        public var connected = true
    }

    /// Sends one request to `host:port` and returns the answer. `chunked` sends the body with
    /// chunked transfer encoding instead of Content-Length; past `timeout` the connection is
    /// closed and the call throws.
    public static func send(
        host: String, port: Int, method: HTTPMethod = .POST, path: String, headers: [(String, String)] = [],
        body: [UInt8] = [], chunked: Bool = false, timeout: TimeAmount = .seconds(30), tls: TLSConfiguration? = nil,
        maximumBodyBytes: Int = .max, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> Response {
        let channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
        do {
            channel = try await connect(host: host, port: port, tls: tls, timeout: timeout, group: group)
        } catch {
            throw Failure(description: "\(error)", connected: false)
        }
        let deadline = channel.channel.eventLoop.scheduleTask(in: timeout) { [channel = channel.channel] in
            channel.close(promise: nil)
        }
        defer { deadline.cancel() }
        return try await channel.executeThenClose { inbound, outbound in
            var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
            head.headers.add(name: "Host", value: "\(host):\(port)")
            head.headers.add(name: "Connection", value: "close")
            for (name, value) in headers { head.headers.add(name: name, value: value) }
            if chunked {
                head.headers.add(name: "Transfer-Encoding", value: "chunked")
            } else if method == .POST || method == .PUT || !body.isEmpty {
                head.headers.add(name: "Content-Length", value: String(body.count))
            }
            do {
                try await outbound.write(.head(head))
                var offset = 0
                while offset < body.count {
                    let end = chunked ? min(body.count, offset + 16384) : body.count
                    try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body[offset..<end]))))
                    offset = end
                }
                try await outbound.write(.end(nil))
            } catch {
                // The server may answer (413) and close before the body is sent; read its answer.
            }
            var response: Response?
            var collected = ByteBuffer()
            for try await part in inbound {
                switch part {
                case .head(let head):
                    response = Response(status: head.status, headers: head.headers, body: [])
                case .body(var chunk):
                    guard collected.readableBytes + chunk.readableBytes <= maximumBodyBytes else {
                        throw Failure(description: "the answer is over \(maximumBodyBytes) bytes")
                    }
                    collected.writeBuffer(&chunk)
                case .end:
                    guard var response else { throw Failure(description: "answer without a head") }
                    response.body = Array(collected.readableBytesView)
                    return response
                }
            }
            throw Failure(description: "the connection closed before a complete answer (timeout \(timeout))")
        }
    }

    /// An HTTP/1.1 client connection to `host:port` (TLS with `tls`, the host's name sent
    /// for SNI unless it is an address), its parts as an async channel.
    static func connect(
        host: String, port: Int, tls: TLSConfiguration?, timeout: TimeAmount, keepAlive: Bool = false,
        group: any EventLoopGroup
    ) async throws -> NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart> {
        let sslContext = try tls.map { try NIOSSLContext(configuration: $0) }
        return try await ClientBootstrap(group: group)
            .connectTimeout(timeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.socketOption(.so_keepalive), value: keepAlive ? 1 : 0)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        let isAddress = host.contains(":") || host.allSatisfy { $0.isNumber || $0 == "." }
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: sslContext, serverHostname: isAddress ? nil : host))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
                        wrappingChannelSynchronously: channel)
                }
            }
    }
}
