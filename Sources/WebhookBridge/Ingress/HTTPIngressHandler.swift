import NIOCore
import NIOHTTP1
import Prometheus
import WebhookCore

/// The per-connection HTTP/1.1 handler: routes by path, streams the body into one
/// `ByteBuffer` while enforcing `maxBodyBytes`, and hands complete requests to the
/// ``WebhookProcessor``. Raw NIO rather than a framework router: this is the hot path.
final class HTTPIngressHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        /// Between requests.
        case idle
        /// Reading the body of a POST to a source.
        case receiving(head: HTTPRequestHead, source: WebhookProcessor.Source, body: ByteBuffer)
        /// The answer is known before the body ends (404, 405, health); drop the body.
        case answerAtEnd(head: HTTPRequestHead, BridgeAnswer)
        /// The processor is working on the request.
        case processing
        /// An answer with `Connection: close` was written (SPEC section 8): nothing more is
        /// read from this connection, and it closes once the answer is out.
        case closing
    }

    private let processor: WebhookProcessor
    private let limits: BridgeConfig.Limits
    private var maxBodyBytes: Int { limits.maxBodyBytes }
    private let inFlight: InFlightRequests
    private let budget: BodyBudget
    /// What this connection's current request holds of ``budget``.
    private var reservedBytes = 0
    private let metrics: PrometheusCollectorRegistry?
    private var state = State.idle
    /// When the current phase times out: a complete head while idle, the body while
    /// receiving; nil while the request is processed.
    private var deadline: NIODeadline?
    /// The one pending timer and when it fires. Moving `deadline` later leaves it alone (it
    /// re-arms itself when it fires early), so a keep-alive request does not cancel and
    /// schedule timers: the timer fires about once per timeout, not once per request.
    private var timer: (callback: NIOScheduledCallback, at: NIODeadline)?

    init(
        processor: WebhookProcessor, limits: BridgeConfig.Limits, inFlight: InFlightRequests, budget: BodyBudget,
        metrics: PrometheusCollectorRegistry?
    ) {
        self.processor = processor
        self.metrics = metrics
        self.limits = limits
        self.inFlight = inFlight
        self.budget = budget
    }

    // MARK: - Deadlines (slow and idle clients)

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { armIdleDeadline(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        armIdleDeadline(context: context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline = nil
        timer?.callback.cancel()
        timer = nil
        // A request being processed still holds its body: ``finish(_:for:context:)`` gives its
        // budget back once the sinks have answered, even when the client has gone.
        if case .processing = state { return }
        releaseBody()
    }

    /// A malformed request: 400 with `Connection: close`, and the connection closed once it is
    /// out, rather than left open until the idle timeout. After an answer that already said
    /// `Connection: close`, bytes the client sent behind it are not answered at all (the parser
    /// reports them as an error: data after a close). NIO's pipelining handler holds a parse
    /// error back until the answer owed before it is written, so this runs between requests.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard error is HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        switch state {
        case .closing:
            return
        case .processing:
            // Not expected (see above); the answer in progress must not be interleaved.
            return
        case .idle, .receiving, .answerAtEnd:
            releaseBody()
            var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/")
            head.headers.add(name: "Connection", value: "close")
            write(.error(.badRequest, "bad_request"), for: head, context: context)
        }
    }

    private func releaseBody() {
        budget.release(reservedBytes)
        reservedBytes = 0
    }

    /// A complete head must come within `idleTimeoutMs`; otherwise the connection closes.
    private func armIdleDeadline(context: ChannelHandlerContext) {
        setDeadline(.now() + .milliseconds(Int64(limits.idleTimeoutMs)), context: context)
    }

    /// The body must be complete within `bodyTimeoutMs` of the head; otherwise 408 and close.
    private func armBodyDeadline(context: ChannelHandlerContext) {
        setDeadline(.now() + .milliseconds(Int64(limits.bodyTimeoutMs)), context: context)
    }

    private func setDeadline(_ at: NIODeadline?, context: ChannelHandlerContext) {
        deadline = at
        // No timer for a connection that is gone (an answer finished after the client left).
        guard let at, context.channel.isActive else { return }
        if let timer, timer.at <= at { return }
        timer?.callback.cancel()
        let expiry = DeadlineExpiry(
            handler: NIOLoopBound(self, eventLoop: context.eventLoop),
            context: NIOLoopBound(context, eventLoop: context.eventLoop))
        timer = (try? context.eventLoop.scheduleCallback(at: at, handler: expiry)).map { ($0, at) }
    }

    /// The timer fired: act if the deadline has passed, else wait for the deadline.
    fileprivate func timerFired(context: ChannelHandlerContext) {
        timer = nil
        guard let deadline else { return }
        guard deadline <= .now() else {
            setDeadline(deadline, context: context)
            return
        }
        self.deadline = nil
        switch state {
        case .idle:
            context.close(promise: nil)
        case .receiving(let head, _, _), .answerAtEnd(let head, _):
            releaseBody()
            write(.error(.requestTimeout, "timeout"), for: head, context: context, forceClose: true)
        case .closing, .processing:
            break
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .closing = state { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            receiveHead(head, context: context)
            switch state {
            case .receiving, .answerAtEnd: armBodyDeadline(context: context)
            default: setDeadline(nil, context: context)
            }
            guard head.headers.first(name: "Expect")?.lowercased() == "100-continue", head.version != .http1_0 else { return }
            switch state {
            case .receiving:
                // curl and others wait (a second, in curl's case) for 100 Continue before
                // sending a body over 1 KiB; the limit has been checked, so invite it now.
                context.writeAndFlush(
                    wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
            case .answerAtEnd(_, let answer):
                // The answer does not depend on a body the client has not sent yet: give it
                // now and close, rather than invite a body only to discard it.
                write(answer, for: head, context: context, forceClose: true)
            default:
                break
            }
        case .body(var chunk):
            guard case .receiving(let head, let source, var body) = state else { return }
            let needed = body.readableBytes + chunk.readableBytes
            guard needed <= maxBodyBytes else {
                releaseBody()
                reject(context: context, head: head)
                return
            }
            if needed > reservedBytes {
                // A body longer than declared, or chunked: reserve in steps of 64 KiB.
                let more = min(max(needed - reservedBytes, 65536), maxBodyBytes - reservedBytes)
                guard budget.reserve(more) else {
                    releaseBody()
                    write(.busy, for: head, context: context, forceClose: true)
                    return
                }
                reservedBytes += more
            }
            state = .processing  // drop our reference so the append below does not copy
            body.writeBuffer(&chunk)
            state = .receiving(head: head, source: source, body: body)
        case .end:
            setDeadline(nil, context: context)
            switch state {
            case .receiving(let head, let source, let body):
                state = .processing
                process(head: head, source: source, body: body, context: context)
            case .answerAtEnd(let head, let answer):
                state = .idle
                write(answer, for: head, context: context)
            case .closing, .processing, .idle:
                break
            }
        }
    }

    private func receiveHead(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        if head.headers.count > limits.maxHeaderCount {
            write(.error(.requestHeaderFieldsTooLarge, "too_many_headers"), for: head, context: context, forceClose: true)
            return
        }
        if let source = processor.source(atPath: path) {
            guard head.method == .POST else {
                let answer = processor.answerOtherMethod(
                    source, method: head.method, uri: head.uri, peer: context.channel.remoteAddress?.ipAddress,
                    headers: head.headers)
                refuse(answer, head: head, context: context)
                return
            }
            if let refusal = processor.admit(source, peer: context.channel.remoteAddress?.ipAddress, headers: head.headers) {
                refuse(refusal, head: head, context: context)
                return
            }
            if inFlight.count >= limits.maxConcurrentRequests {
                refuse(.unavailable, head: head, context: context)
                return
            }
            let declared = head.headers.first(name: "Content-Length").flatMap(Int.init)
            if let declared, declared > maxBodyBytes {
                reject(context: context, head: head)
                return
            }
            if let refusal = processor.refuseUnsigned(source, uri: head.uri, headers: head.headers) {
                refuse(refusal, head: head, context: context)
                return
            }
            // The declared body is reserved whole (and allocated once: growing a buffer by
            // doubling briefly holds twice the bytes); a chunked one reserves as it arrives.
            let declaredBytes = max(declared ?? 0, 0)
            guard budget.reserve(declaredBytes) else {
                refuse(.busy, head: head, context: context)
                return
            }
            reservedBytes = declaredBytes
            let capacity = declared ?? 4096
            state = .receiving(head: head, source: source, body: context.channel.allocator.buffer(capacity: capacity))
            return
        }
        let answer: BridgeAnswer
        switch (head.method, path) {
        case (.GET, "/healthz"), (.HEAD, "/healthz"):
            answer = BridgeAnswer(status: .ok, body: JSONWriter.object(["status": "ok"]))
        case (.GET, "/readyz"), (.HEAD, "/readyz"):
            answer =
                processor.requiredSinksReady
                ? BridgeAnswer(status: .ok, body: JSONWriter.object(["status": "ready"]))
                : BridgeAnswer(status: .serviceUnavailable, body: JSONWriter.object(["status": "unavailable"]))
        case (.GET, "/metrics") where metrics != nil:
            answer = BridgeAnswer(
                status: .ok, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")],
                body: {
                    var bytes = PrometheusExport.addingHelp(metrics!.emitToBuffer())
                    ProcessMetrics.append(to: &bytes)
                    return bytes
                }())
        default:
            answer = .notFound
        }
        state = .answerAtEnd(head: head, answer)
    }

    /// 413 as soon as the limit is known to be exceeded. The rest of the body is never
    /// buffered: the answer is sent, our side of the connection shut, and whatever the client
    /// still sends is read and dropped until it closes (a full close while it is still sending
    /// would reset the connection and lose the 413), for at most `lingerAfterRejection`.
    private func reject(context: ChannelHandlerContext, head: HTTPRequestHead) {
        write(.tooLarge, for: head, context: context, forceClose: true)
    }

    /// A refusal decided from the head (405, 403, 429, 401 without a signature header, 503).
    /// When a body is on its way it is answered now, before the body is read, and the
    /// connection closed as for 413; a request without a body keeps its connection.
    private func refuse(_ answer: BridgeAnswer, head: HTTPRequestHead, context: ChannelHandlerContext) {
        let declared = head.headers.first(name: "Content-Length").flatMap(Int.init) ?? 0
        if declared > 0 || head.headers.contains(name: "Transfer-Encoding") {
            write(answer, for: head, context: context, forceClose: true)
        } else {
            state = .answerAtEnd(head: head, answer)
        }
    }

    /// How long a rejected client may keep sending before the connection is closed.
    static let lingerAfterRejection = TimeAmount.seconds(2)

    /// Requests of this connection run their tasks on its event loop (see
    /// ``EventLoopTaskExecutor``); made with the first request.
    private var executor: EventLoopTaskExecutor?

    private func process(
        head: HTTPRequestHead, source: WebhookProcessor.Source, body: ByteBuffer, context: ChannelHandlerContext
    ) {
        let processor = self.processor
        inFlight.begin()
        let executor = self.executor ?? EventLoopTaskExecutor(context.eventLoop)
        self.executor = executor
        let connection = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        Task(executorPreference: executor) {
            let answer = await processor.handle(source, uri: head.uri, headers: head.headers, body: body, on: executor)
            // The task prefers the connection's loop, so this is normally already on it.
            let eventLoop = connection.eventLoop
            if eventLoop.inEventLoop {
                connection.value.handler.finish(answer, for: head, context: connection.value.context)
            } else {
                eventLoop.execute { connection.value.handler.finish(answer, for: head, context: connection.value.context) }
            }
        }
    }

    private func finish(_ answer: BridgeAnswer, for head: HTTPRequestHead, context: ChannelHandlerContext) {
        inFlight.end()
        releaseBody()
        state = .idle
        write(answer, for: head, context: context)
    }

    /// Writes `answer`. Keep-alive unless the client or `forceClose` says otherwise; after an
    /// answer with `Connection: close` the connection reads nothing more (state `closing`).
    /// `forceClose` is for answers given while a body may still be arriving: our side is shut
    /// once the answer is out, and the rest is drained (see ``reject(context:head:)``).
    private func write(
        _ answer: BridgeAnswer, for request: HTTPRequestHead, context: ChannelHandlerContext, forceClose: Bool = false
    ) {
        let keepAlive = request.isKeepAlive && !forceClose
        var head = HTTPResponseHead(version: request.version, status: answer.status)
        for (name, value) in answer.headers { head.headers.add(name: name, value: value) }
        if !answer.body.isEmpty, !head.headers.contains(name: "Content-Type") {
            head.headers.add(name: "Content-Type", value: "application/json")
        }
        head.headers.add(name: "Content-Length", value: String(answer.body.count))
        if !keepAlive { head.headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if !answer.body.isEmpty, request.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: answer.body)))), promise: nil)
        }
        if keepAlive {
            armIdleDeadline(context: context)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            return
        }
        state = .closing
        deadline = nil
        let done = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
        if forceClose {
            done.futureResult.assumeIsolated().whenComplete { _ in
                context.close(mode: .output, promise: nil)
                context.eventLoop.assumeIsolated().scheduleTask(in: Self.lingerAfterRejection) {
                    context.close(promise: nil)
                }
            }
        } else {
            done.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }
}

/// Fires a connection's deadline timer on its event loop.
private struct DeadlineExpiry: NIOScheduledCallbackHandler, Sendable {
    let handler: NIOLoopBound<HTTPIngressHandler>
    let context: NIOLoopBound<ChannelHandlerContext>

    func handleScheduledCallback(eventLoop: some EventLoop) { handler.value.timerFired(context: context.value) }
}
