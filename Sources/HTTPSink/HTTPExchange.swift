import NIOCore
import NIOHTTP1

/// One request on one kept-alive connection, and its answer.
struct HTTPExchange {
    var head: HTTPRequestHead
    var body: ByteBuffer
    /// How long the answer may take, from the request's first byte to the answer's last.
    var timeout: TimeAmount
    /// Completed on the connection's event loop, exactly once.
    var promise: EventLoopPromise<HTTPAnswer>
}

/// What a receiver answered: the status, what the sink reads of the headers, and the start
/// of the body (for a dead letter).
struct HTTPAnswer: Sendable {
    /// How much of an answer's body is kept.
    static let keptBodyBytes = 512

    var status: Int
    var retryAfter: String?
    /// The first ``keptBodyBytes`` of the body.
    var bodyPrefix: [UInt8]
    /// False when the receiver closes the connection after this answer.
    var keepAlive: Bool
}

/// Why an exchange got no answer.
enum ExchangeFailure: Error, CustomStringConvertible {
    /// No answer within the timeout; the connection was closed.
    case timedOut(TimeAmount)
    /// The connection closed or failed before the answer was complete. `answered` tells
    /// whether any of the answer had arrived (a request on a reused connection that the
    /// receiver had already closed is safe to send again on a new one only when not).
    case connectionLost(String, answered: Bool)

    var description: String {
        switch self {
        case .timedOut(let timeout): return "no answer within \(timeout.nanoseconds / 1_000_000) ms"
        case .connectionLost(let reason, _): return "connection lost: \(reason)"
        }
    }
}

/// Writes one ``HTTPExchange`` at a time and completes its promise with the answer; the
/// connection pool never writes a second before the first is answered (no pipelining).
final class HTTPExchangeHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPExchange
    typealias OutboundOut = HTTPClientRequestPart

    private var promise: EventLoopPromise<HTTPAnswer>?
    private var answer: HTTPAnswer?
    private var timer: Scheduled<Void>?

    func write(context: ChannelHandlerContext, data: NIOAny, promise writePromise: EventLoopPromise<Void>?) {
        let exchange = unwrapOutboundIn(data)
        precondition(promise == nil, "an exchange is already in flight on this connection")
        promise = exchange.promise
        answer = nil
        let timeout = exchange.timeout
        timer = context.eventLoop.scheduleTask(in: timeout) { [weak self] in
            self?.fail(.timedOut(timeout))
            context.close(promise: nil)
        }
        context.write(wrapOutboundOut(.head(exchange.head)), promise: nil)
        if exchange.body.readableBytes > 0 {
            context.write(wrapOutboundOut(.body(.byteBuffer(exchange.body))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: writePromise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            answer = HTTPAnswer(
                status: Int(head.status.code), retryAfter: head.headers.first(name: "Retry-After"), bodyPrefix: [],
                keepAlive: head.isKeepAlive)
        case .body(var buffer):
            guard var partial = answer else { return }
            let room = HTTPAnswer.keptBodyBytes - partial.bodyPrefix.count
            if room > 0, let bytes = buffer.readBytes(length: min(room, buffer.readableBytes)) {
                answer = nil  // appended in place, not copied
                partial.bodyPrefix += bytes
                answer = partial
            }
        case .end:
            guard let complete = answer, let promise else { return }
            timer?.cancel()
            self.promise = nil
            answer = nil
            if !complete.keepAlive { context.close(promise: nil) }
            promise.succeed(complete)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(.connectionLost("closed by the receiver", answered: answer != nil))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(.connectionLost("\(error)", answered: answer != nil))
        context.close(promise: nil)
    }

    private func fail(_ failure: ExchangeFailure) {
        timer?.cancel()
        guard let promise else { return }
        self.promise = nil
        answer = nil
        promise.fail(failure)
    }
}
