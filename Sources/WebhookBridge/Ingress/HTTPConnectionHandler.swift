import NIOCore
import NIOHTTP1
import WebhookCore

/// One HTTP/1.1 connection, after NIO's request decoder (llhttp): its requests in order,
/// its deadlines, and its answers, each written as one buffer. What a request is answered
/// with is decided elsewhere: ``BuiltInEndpoints`` for the bridge's own paths,
/// ``HeadAdmission`` for every head, the ``WebhookProcessor`` for a complete request.
///
/// Pipelining is handled here: parts of the next request that arrive while one is being
/// processed wait in ``queued`` (with the socket's reads held back) and are taken once the
/// answer is written, so answers go out in the order the requests came.
///
/// Answers wait for the client to read them: while the channel is not writable (more than
/// NIO's high water mark, 64 KiB, of answers queued), parts wait in ``queued`` and no more
/// is read from the socket, so a client that pipelines requests and never reads its answers
/// costs at most one read's worth of requests and one answer over the mark, not memory
/// without end (4 such clients of `GET /metrics` once took 720 MB in 40 s). A connection
/// answers at most ``answersPerTurn`` pipelined requests at a time, then takes the rest in a
/// task of the event loop, after the I/O its other connections have ready: one read can
/// hold thousands of requests.
final class HTTPConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        /// Between requests.
        case idle
        /// Reading the body of a POST to a source. The source is the one its head was routed
        /// to: a reload before the body ends does not change it.
        case receiving(head: HTTPRequestHead, source: ConfiguredSource, body: ByteBuffer)
        /// The answer is known before the body ends (404, 405, health): drop the body.
        case answerAtEnd(head: HTTPRequestHead, BridgeAnswer)
        /// The processor is working on the request.
        case processing
        /// An answer with `Connection: close` was written (SPEC section 8): nothing more is
        /// read from this connection, and it closes once the answer is out.
        case closing
    }

    /// What arrived behind a request still being processed.
    private enum Queued {
        case part(HTTPServerRequestPart)
        case parseError
    }

    private let admission: HeadAdmission
    private let processor: WebhookProcessor
    /// The tasks of this connection's event loop that process its requests.
    private let workers: RequestWorkers
    private let endpoints: BuiltInEndpoints
    private var limits: BridgeConfig.Limits { admission.limits }
    private var state = State.idle
    private var queued = CircularBuffer<Queued>(initialCapacity: 4)
    /// A `read` held back while parts wait in ``queued``.
    private var readHeld = false
    /// Answers written since the event loop last let other connections go first.
    private var answersThisTurn = 0
    /// ``queued`` is taken again on the event loop's next turn.
    private var resumeScheduled = false
    static let answersPerTurn = 16
    /// The client half-closed: it sends nothing more (see ``userInboundEventTriggered``).
    private var inputClosed = false
    /// Our side was shut after an answer that refused a body still arriving.
    private var outputClosed = false
    /// A graceful stop asked this connection to close after its current answer.
    private var quiescing = false
    private var deadline = ConnectionDeadline()
    /// What this connection's current request holds of the body budget, and for whom.
    private var reservedBytes = 0
    private var reservedFor: String?
    /// The current request's declared `Content-Length` (nil: chunked).
    private var declaredLength: Int?
    /// The client's address as text, made with the connection's first request (the outer
    /// optional: not made yet).
    private var peer: String??

    /// The buffer of the last answer, kept for the next one: once NIO has written it, its
    /// storage is ours alone again and is reused (otherwise `clear` allocates anew).
    private var answerBuffer: ByteBuffer?
    /// Larger answers (`/metrics`) are not kept between requests.
    static let keptAnswerCapacity = 1024

    /// How long a rejected client may keep sending before the connection is closed.
    static let lingerAfterRejection = TimeAmount.seconds(2)

    init(admission: HeadAdmission, processor: WebhookProcessor, workers: RequestWorkers, endpoints: BuiltInEndpoints) {
        self.admission = admission
        self.processor = processor
        self.workers = workers
        self.endpoints = endpoints
    }

    // MARK: - The connection

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { armIdleDeadline(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        armIdleDeadline(context: context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline.cancel()
        queued.removeAll()
        // A request being processed still holds its body: ``finish(_:for:context:)`` gives its
        // budget back once the sinks have answered, even when the client has gone.
        if case .processing = state { return }
        releaseBody()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .closing = state { return }
        let part = unwrapInboundIn(data)
        if isBusy || (isBetweenRequests && !mayAnswerNow(context: context)) {
            queued.append(.part(part))
            return
        }
        handle(part, context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if !resumeScheduled { answersThisTurn = 0 }
        context.fireChannelReadComplete()
    }

    /// Between requests: true when the next one may be answered now; false when answers are
    /// not being read, or this turn's share is spent (then the rest waits for the next turn).
    private func mayAnswerNow(context: ChannelHandlerContext) -> Bool {
        guard context.channel.isWritable else { return false }
        guard answersThisTurn >= Self.answersPerTurn else { return true }
        scheduleResume(context: context)
        return false
    }

    private func scheduleResume(context: ChannelHandlerContext) {
        guard !resumeScheduled else { return }
        resumeScheduled = true
        let connection = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        context.eventLoop.execute {
            let (handler, context) = connection.value
            handler.resumeScheduled = false
            handler.answersThisTurn = 0
            handler.takeQueued(context: context)
        }
    }

    /// Reads wait while parts of a later request are queued or answers are not being read
    /// (the channel is not writable): a pipelining client can't make the bridge buffer more
    /// than the reads of one read event (`maxMessagesPerRead`), as with NIO's own
    /// pipelining handler.
    func read(context: ChannelHandlerContext) {
        guard queued.isEmpty, context.channel.isWritable else {
            readHeld = true
            return
        }
        context.read()
    }

    /// The client read its answers: what waited goes on.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { takeQueued(context: context) }
        context.fireChannelWritabilityChanged()
    }

    /// A malformed request: 400 with `Connection: close`, and the connection closed once it is
    /// out, rather than left open until the idle timeout. Behind a request still being
    /// processed it waits its turn. After an answer that said `Connection: close`, bytes the
    /// client sent behind it are not answered at all (the parser reports them as an error).
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard error is HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        if isBusy {
            queued.append(.parseError)
            return
        }
        answerParseError(context: context)
    }

    /// A graceful stop: an idle connection closes now; a busy one says `Connection: close`
    /// in its current answer. The client's half-close (it sends no more but still reads):
    /// what it sent before is answered, then the connection closes.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            inputClosed = true
            switch state {
            case .closing:
                // An answer with `Connection: close` is out or going: once lingering for the
                // rest of a refused body, there is nothing more to wait for.
                if outputClosed { context.close(promise: nil) }
            case .idle, .processing, .receiving, .answerAtEnd:
                // A request cut short by the FIN was already answered 400 by the parser's
                // error; whole ones are answered in turn (``closeIfDone(context:)``).
                closeIfDone(context: context)
            }
            return
        }
        guard event is ChannelShouldQuiesceEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        quiescing = true
        if case .idle = state, queued.isEmpty {
            state = .closing
            context.close(promise: nil)
        }
    }

    private var isBusy: Bool {
        if case .processing = state { return true }
        return !queued.isEmpty
    }

    /// No request is being received or processed: the next part starts a new request.
    private var isBetweenRequests: Bool {
        if case .idle = state { return true }
        return false
    }

    private func answerParseError(context: ChannelHandlerContext) {
        switch state {
        case .closing, .processing:
            return
        case .idle, .receiving, .answerAtEnd:
            releaseBody()
            write(.error(.badRequest, "bad_request"), version: .http1_1, keepAlive: false, context: context)
        }
    }

    /// Takes what waited behind the answer just written, until a request is processed again
    /// or, between requests, answers wait for the client to read them.
    private func takeQueued(context: ChannelHandlerContext) {
        while let next = queued.first {
            switch state {
            case .processing: return
            case .closing:
                queued.removeAll()
            case .idle where !mayAnswerNow(context: context):
                return
            default:
                queued.removeFirst()
                switch next {
                case .part(let part): handle(part, context: context)
                case .parseError: answerParseError(context: context)
                }
            }
        }
        if readHeld, context.channel.isWritable {
            readHeld = false
            context.read()
        }
        closeIfDone(context: context)
    }

    /// After the client's half-close, once every request it sent is answered: closes the
    /// connection when those answers are written (an empty write completes after them).
    private func closeIfDone(context: ChannelHandlerContext) {
        guard inputClosed, case .idle = state, queued.isEmpty else { return }
        state = .closing
        deadline.cancel()
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)), promise: written)
        written.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    // MARK: - Deadlines (slow and idle clients)

    /// A complete head must come within `idleTimeoutMs`; otherwise the connection closes.
    private func armIdleDeadline(context: ChannelHandlerContext) {
        setDeadline(context.eventLoop.now + .milliseconds(Int64(limits.idleTimeoutMs)), context: context)
    }

    /// The body must be complete within `bodyTimeoutMs` of the head; otherwise 408 and close.
    private func armBodyDeadline(context: ChannelHandlerContext) {
        setDeadline(context.eventLoop.now + .milliseconds(Int64(limits.bodyTimeoutMs)), context: context)
    }

    private func setDeadline(_ at: NIODeadline?, context: ChannelHandlerContext) {
        deadline.set(at, on: context.channel, expiry: self.expiry(context: context))
    }

    private func expiry(context: ChannelHandlerContext) -> DeadlineExpiry {
        DeadlineExpiry(
            handler: NIOLoopBound(self, eventLoop: context.eventLoop),
            context: NIOLoopBound(context, eventLoop: context.eventLoop))
    }

    /// The timer fired: act if the deadline has passed.
    fileprivate func timerFired(context: ChannelHandlerContext) {
        guard deadline.fired(on: context.channel, expiry: self.expiry(context: context)) else { return }
        switch state {
        case .idle:
            state = .closing
            context.close(promise: nil)
        case .receiving(let head, _, _), .answerAtEnd(let head, _):
            releaseBody()
            write(.error(.requestTimeout, "timeout"), for: head, context: context, forceClose: true)
        case .closing, .processing:
            break
        }
    }

    // MARK: - Requests

    private func handle(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            receiveHead(head, context: context)
            switch state {
            case .receiving, .answerAtEnd: armBodyDeadline(context: context)
            case .idle, .processing: setDeadline(nil, context: context)
            case .closing: break
            }
            guard head.version != .http1_0, let expect = head.headers.first(name: "Expect"),
                expect.lowercased() == "100-continue"
            else { return }
            switch state {
            case .receiving:
                // curl and others wait (a second, in curl's case) for 100 Continue before
                // sending a body over 1 KiB; the limit has been checked, so invite it now.
                context.writeAndFlush(
                    wrapOutboundOut(HTTPAnswerWriter.continueAnswer(allocator: context.channel.allocator)), promise: nil)
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
            guard needed <= limits.maxBodyBytes else {
                releaseBody()
                write(.tooLarge, for: head, context: context, forceClose: true)
                return
            }
            if needed > reservedBytes {
                guard
                    let more = admission.reserve(
                        needed: needed, reserved: reservedBytes, declared: declaredLength, client: reservedFor)
                else {
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

    /// Decides a head (``HeadAdmission``): a source's request to receive or refuse, or the
    /// built-in endpoints' answer.
    private func receiveHead(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        if head.headers.count > limits.maxHeaderCount {
            write(.error(.requestHeaderFieldsTooLarge, "too_many_headers"), for: head, context: context, forceClose: true)
            return
        }
        // A byte search: `firstIndex(of: Character)` walks grapheme clusters, and cost a third
        // of a microsecond per request.
        let uri = head.uri
        let path = uri.utf8.firstIndex(of: UInt8(ascii: "?")).map { uri[..<$0] } ?? uri[...]
        if peer == nil { peer = .some(context.channel.remoteAddress?.ipAddress) }
        switch admission.decide(head, path: path, peer: peer ?? nil) {
        case .endpoint:
            state = .answerAtEnd(head: head, endpoints.answer(method: head.method, path: path))
        case .receive(let source, let capacity, let declared, let client):
            reservedFor = client
            declaredLength = declared
            state = .receiving(head: head, source: source, body: context.channel.allocator.buffer(capacity: capacity))
        case .tooLarge:
            write(.tooLarge, for: head, context: context, forceClose: true)
        case .refuse(let answer):
            // When a body is on its way it is answered now, before the body is read, and the
            // connection closed as for 413; a request without a body keeps its connection.
            let declared = head.headers.first(name: "Content-Length").flatMap(Int.init) ?? 0
            if declared > 0 || head.headers.contains(name: "Transfer-Encoding") {
                write(answer, for: head, context: context, forceClose: true)
            } else {
                state = .answerAtEnd(head: head, answer)
            }
        }
    }

    private func process(
        head: HTTPRequestHead, source: ConfiguredSource, body: ByteBuffer, context: ChannelHandlerContext
    ) {
        admission.inFlight.begin()
        workers.submit(
            ConnectionRequest(
                processor: processor,
                connection: NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop), head: head,
                source: source, body: body, client: reservedFor))
    }

    /// The request's answer, from the worker that processed it.
    func finish(_ answer: BridgeAnswer, for head: HTTPRequestHead, context: ChannelHandlerContext) {
        admission.inFlight.end()
        releaseBody()
        state = .idle
        write(answer, for: head, context: context)
        takeQueued(context: context)
    }

    private func releaseBody() {
        admission.budget.release(reservedBytes, client: reservedFor)
        reservedBytes = 0
    }

    // MARK: - Answers

    /// Writes `answer` to `request`: keep-alive unless the client, a graceful stop or
    /// `forceClose` says otherwise. `forceClose` is for answers given while a body may still
    /// be arriving: our side is shut once the answer is out, and whatever the client still
    /// sends is read and dropped until it closes (a full close while it is still sending
    /// would reset the connection and lose the answer), for at most ``lingerAfterRejection``.
    private func write(
        _ answer: BridgeAnswer, for request: HTTPRequestHead, context: ChannelHandlerContext, forceClose: Bool = false
    ) {
        write(
            answer, version: request.version, keepAlive: request.isKeepAlive && !forceClose,
            withBody: request.method != .HEAD, lingering: forceClose, context: context)
    }

    /// After an answer with `Connection: close` the connection reads nothing more (state
    /// `closing`) and closes once the answer is out.
    private func write(
        _ answer: BridgeAnswer, version: HTTPVersion, keepAlive: Bool, withBody: Bool = true, lingering: Bool = false,
        context: ChannelHandlerContext
    ) {
        let keepAlive = keepAlive && !quiescing
        var bytes = answerBuffer ?? context.channel.allocator.buffer(capacity: 256)
        answerBuffer = nil
        HTTPAnswerWriter.encode(answer, version: version, keepAlive: keepAlive, withBody: withBody, into: &bytes)
        if keepAlive {
            if bytes.capacity <= Self.keptAnswerCapacity { answerBuffer = bytes }
            answersThisTurn += 1
            armIdleDeadline(context: context)
            context.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
            return
        }
        state = .closing
        deadline.cancel()
        queued.removeAll()
        let done = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(bytes), promise: done)
        if lingering {
            done.futureResult.assumeIsolated().whenComplete { _ in
                self.outputClosed = true
                // The client already sent all it will (half-closed): nothing to drain.
                if self.inputClosed {
                    context.close(promise: nil)
                    return
                }
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
    let handler: NIOLoopBound<HTTPConnectionHandler>
    let context: NIOLoopBound<ChannelHandlerContext>

    func handleScheduledCallback(eventLoop: some EventLoop) { handler.value.timerFired(context: context.value) }
}
