import NIOCore
import NIOHTTP1

/// Writes each HTTP/1.1 answer as one buffer: status line, headers, body. NIO's
/// `HTTPResponseEncoder` writes the head, the body and the end as three writes (and checks
/// each header for framing); every answer of the bridge is a head, at most one body and an
/// end, with headers it wrote itself and a `Content-Length`, so one buffer does. An
/// informational head (`100 Continue`) has no end: it is written at once.
final class HTTPAnswerEncoder: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = IOData

    /// The answer being assembled, from its head to its end.
    private var pending: ByteBuffer?
    /// Promises of the parts written before the end: completed with the one write.
    private var promises: [EventLoopPromise<Void>] = []

    /// An answer cut off by the connection's end: its parts' promises fail, never leak.
    func handlerRemoved(context: ChannelHandlerContext) {
        pending = nil
        for promise in promises { promise.fail(ChannelError.ioOnClosedChannel) }
        promises.removeAll()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head):
            var buffer = context.channel.allocator.buffer(capacity: 256)
            Self.writeHead(head, to: &buffer)
            if head.status.code < 200 {
                context.write(wrapOutboundOut(.byteBuffer(buffer)), promise: promise)
                return
            }
            pending = buffer
            if let promise { promises.append(promise) }
        case .body(.byteBuffer(var body)):
            guard pending != nil else {
                context.write(wrapOutboundOut(.byteBuffer(body)), promise: promise)
                return
            }
            pending!.writeBuffer(&body)
            if let promise { promises.append(promise) }
        case .body(let other):
            // A file region: never sent by the bridge; written behind what is pending.
            flushPending(context: context)
            context.write(wrapOutboundOut(other), promise: promise)
        case .end:
            guard pending != nil else {
                // An end without a head of ours: nothing to write.
                promise?.succeed()
                return
            }
            if let promise { promises.append(promise) }
            flushPending(context: context)
        }
    }

    private func flushPending(context: ChannelHandlerContext) {
        guard let buffer = pending else { return }
        pending = nil
        switch promises.count {
        case 0:
            context.write(wrapOutboundOut(.byteBuffer(buffer)), promise: nil)
        case 1:
            context.write(wrapOutboundOut(.byteBuffer(buffer)), promise: promises[0])
        default:
            let written = context.eventLoop.makePromise(of: Void.self)
            context.write(wrapOutboundOut(.byteBuffer(buffer)), promise: written)
            for promise in promises { written.futureResult.cascade(to: promise) }
        }
        promises.removeAll(keepingCapacity: true)
    }

    /// `HTTP/1.1 200 OK`, the headers and the blank line.
    static func writeHead(_ head: HTTPResponseHead, to buffer: inout ByteBuffer) {
        buffer.writeStaticString(head.version.minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ")
        buffer.writeString(String(head.status.code))
        buffer.writeStaticString(" ")
        buffer.writeString(head.status.reasonPhrase)
        buffer.writeStaticString("\r\n")
        for (name, value) in head.headers {
            buffer.writeString(name)
            buffer.writeStaticString(": ")
            buffer.writeString(value)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("\r\n")
    }
}
