import Foundation
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
import WebhookCore
import WebhookProviders

@testable import WebhookBridge

/// The connection handler on an `EmbeddedChannel`, as swift-nio tests its own HTTP pipeline:
/// the bytes in, the bytes out, and time moved by the test (`advanceTime`) instead of slept.
/// Only answers that need no sink (the built-in endpoints and refusals from the head), so
/// nothing leaves the test's thread.
@Suite("The connection handler, deterministically: pipelining, close, 100-continue, deadlines, half-close")
struct ConnectionHandlerTests {
    static let quiet = Logger(label: "connection-tests") { _ in SwiftLogNoOpLogHandler() }
    static let config = """
        {"limits": {"idleTimeoutMs": 1000, "bodyTimeoutMs": 500},
         "sinks": {"archive": {"type": "file", "path": "/nonexistent/events.jsonl"}},
         "sources": {"gh": {"path": "/gh", "verify": {"scheme": "github", "secrets": ["gh-secret"]}, "sinks": ["archive"]}}}
        """

    /// A connected channel with the ingress's pipeline: NIO's decoder and the handler.
    func connection() throws -> EmbeddedChannel {
        let config = try Bridge.loadConfig(Array(Self.config.utf8), environment: [:])
        let processor = WebhookProcessor(
            config: config, sinks: [:], store: MemoryIdempotencyStore(ttlSeconds: 60, maximumKeys: 10),
            services: VerificationServices(), logger: Self.quiet)
        let budget = BodyBudget(limit: config.limits.maxBufferedBytes, perClient: config.limits.bufferedBytesPerClient)
        let channel = EmbeddedChannel()
        let handler = HTTPConnectionHandler(
            admission: HeadAdmission(processor: processor, limits: config.limits, inFlight: InFlightRequests(), budget: budget),
            processor: processor, workers: RequestWorkers(eventLoop: channel.embeddedEventLoop),
            endpoints: BuiltInEndpoints(processor: processor, metrics: nil, budget: budget))
        try channel.pipeline.syncOperations.addHandlers([
            ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)), handler,
        ])
        try channel.connect(to: SocketAddress(ipAddress: "192.0.2.7", port: 40000)).wait()
        return channel
    }

    /// Everything written to the client so far, as text.
    func written(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    func send(_ channel: EmbeddedChannel, _ text: String) throws {
        try channel.writeInbound(ByteBuffer(string: text))
    }

    /// The status codes of `text`'s answers, in order (a body is followed by the next answer's
    /// status line directly).
    func statuses(_ text: String) -> [String] {
        text.components(separatedBy: "HTTP/1.1 ").dropFirst().map { String($0.prefix(3)) }
    }

    @Test("pipelined requests in one read are answered in order, on one open connection")
    func pipelining() throws {
        let channel = try connection()
        try send(
            channel,
            "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\nGET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        let text = try written(channel)
        #expect(statuses(text) == ["200", "404", "200"])
        #expect(text.contains(#"{"status":"ok"}"#) && text.contains(#"{"status":"ready"}"#))
        #expect(channel.isActive)
        _ = try? channel.finish()
    }

    @Test("Connection: close is answered with Connection: close, then the connection closes; what follows is not answered")
    func connectionClose() throws {
        let channel = try connection()
        try send(channel, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        channel.embeddedEventLoop.run()
        let text = try written(channel)
        #expect(statuses(text) == ["200"])
        #expect(text.lowercased().contains("connection: close"))
        #expect(!channel.isActive)
    }

    @Test("100-continue: invited once the head is admitted; a head refused is answered at once instead, and closed")
    func expectContinue() throws {
        let admitted = try connection()
        try send(
            admitted,
            "POST /gh HTTP/1.1\r\nHost: x\r\nX-Hub-Signature-256: sha256=00\r\nContent-Length: 2000\r\nExpect: 100-continue\r\n\r\n"
        )
        #expect(try written(admitted) == "HTTP/1.1 100 Continue\r\n\r\n")
        #expect(admitted.isActive)
        _ = try? admitted.finish()

        let refused = try connection()
        try send(refused, "POST /gh HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\nExpect: 100-continue\r\n\r\n")
        refused.embeddedEventLoop.run()
        let text = try written(refused)
        #expect(statuses(text) == ["401"])
        #expect(!text.contains("100 Continue"))
        #expect(text.contains(#"{"error":"signature_missing"}"#))
        refused.embeddedEventLoop.advanceTime(by: HTTPConnectionHandler.lingerAfterRejection)
        #expect(!refused.isActive)
    }

    @Test("idle: a connection without a complete head closes at idleTimeoutMs, and not a moment before")
    func idleDeadline() throws {
        let channel = try connection()
        try send(channel, "GET /healthz HTTP/1.1\r\nHost: x\r\n")  // a head that never ends
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(999))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(!channel.isActive)
        #expect(try written(channel).isEmpty)
    }

    @Test("keep-alive: each answer moves the idle deadline; the one timer re-arms itself instead of closing early")
    func keepAliveDeadline() throws {
        let channel = try connection()
        for _ in 0..<10 {
            channel.embeddedEventLoop.advanceTime(by: .milliseconds(900))
            try send(channel, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(statuses(try written(channel)) == ["200"])
            #expect(channel.isActive)
        }
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(999))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(!channel.isActive)
    }

    @Test("a body that stops arriving: 408 at bodyTimeoutMs, Connection: close")
    func bodyDeadline() throws {
        let channel = try connection()
        try send(channel, "POST /gh HTTP/1.1\r\nHost: x\r\nX-Hub-Signature-256: sha256=00\r\nContent-Length: 10\r\n\r\n{\"a\"")
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(499))
        #expect(try written(channel).isEmpty)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        let text = try written(channel)
        #expect(statuses(text) == ["408"])
        #expect(text.lowercased().contains("connection: close"))
        #expect(text.contains(#"{"error":"timeout"}"#))
    }

    @Test("half-close: requests sent before the client's FIN are answered, then the connection closes")
    func halfClose() throws {
        let channel = try connection()
        try send(channel, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        channel.embeddedEventLoop.run()
        #expect(statuses(try written(channel)) == ["200", "200"])
        #expect(!channel.isActive)
    }

    @Test("a graceful stop closes an idle connection at once")
    func quiesce() throws {
        let channel = try connection()
        try send(channel, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(statuses(try written(channel)) == ["200"])
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        channel.embeddedEventLoop.run()
        #expect(!channel.isActive)
    }
}
