import Logging
import Metrics
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization
import WebhookCore
import WebhookEncoding

/// The admin listener (config `admin`) as a `Service`: its own port, NIO's HTTP/1.1 server
/// pipeline, answers from ``AdminAPI`` and event streams. Its requests are counted in
/// `webhook_admin_requests_total` by route and status, never in the webhook metrics, and
/// make no webhook spans.
public final class AdminServer: Service {
    private let channel: any Channel
    private let streams: EventStreams
    private let logger: Logger
    /// What it shows.
    let inspector: InspectorLog

    /// The address actually bound (port 0 picks a free port).
    public var localAddress: SocketAddress? { channel.localAddress }

    private init(channel: any Channel, streams: EventStreams, inspector: InspectorLog, logger: Logger) {
        self.channel = channel
        self.inspector = inspector
        self.streams = streams
        self.logger = logger
    }

    /// The largest request body the admin listener reads (a replay's JSON).
    static let maxBodyBytes = 1 << 20

    static func bind(
        _ admin: BridgeConfig.Admin, api: AdminAPI, logger: Logger,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> AdminServer {
        let streams = EventStreams()
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(
                        AdminConnectionHandler(api: api, streams: streams, logger: logger))
                }
            }
        do {
            let channel = try await bootstrap.bind(host: admin.host, port: admin.port).get()
            return AdminServer(channel: channel, streams: streams, inspector: api.inspector, logger: logger)
        } catch {
            throw BridgeSetupError("admin: cannot listen on \(admin.host):\(admin.port): \(error)")
        }
    }

    /// Stops listening, without having run (the bridge could not start).
    func close() async { try? await channel.close() }

    public func run() async throws {
        logger.info("inspector listening", metadata: ["http.address": "\(channel.localAddress.map { "\($0)" } ?? "?")"])
        try? await gracefulShutdown()
        try? await channel.close()
        // Event streams never end by themselves: they are closed with the listener.
        streams.closeAll()
    }
}

/// The open event streams' channels, closed when the admin listener stops.
final class EventStreams: Sendable {
    private let channels = Mutex<[ObjectIdentifier: any Channel]>([:])

    func add(_ channel: any Channel) { channels.withLock { $0[ObjectIdentifier(channel)] = channel } }
    func remove(_ channel: any Channel) { _ = channels.withLock { $0.removeValue(forKey: ObjectIdentifier(channel)) } }
    func closeAll() { for channel in channels.withLock({ Array($0.values) }) { channel.close(promise: nil) } }
}

/// One admin connection: each request collected whole and answered by ``AdminAPI``, in order
/// (NIO's pipelining assistance holds the next until the answer is written), or turned into
/// an event stream that lasts as long as the connection.
final class AdminConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        case receiving(HTTPRequestHead, ByteBuffer)
        /// The body is over ``AdminServer/maxBodyBytes``: answered 413 at its end.
        case tooLarge(HTTPRequestHead)
        /// Without the token: the body is not read, the answer is the API's 401.
        case refused(HTTPRequestHead)
        case answering
        case streaming
    }

    private let api: AdminAPI
    private let streams: EventStreams
    private let logger: Logger
    private var state = State.idle
    private var stream: EventStreamWriter?

    init(api: AdminAPI, streams: EventStreams, logger: Logger) {
        self.api = api
        self.streams = streams
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            // A request without the token is answered (401) without reading its body: no one
            // without it makes the listener hold a megabyte.
            state =
                api.needsToken(head.uri) && !api.authorized(head.headers)
                ? .refused(head) : .receiving(head, context.channel.allocator.buffer(capacity: 0))
        case .body(var chunk):
            guard case .receiving(let head, var body) = state else { return }
            if body.readableBytes + chunk.readableBytes > AdminServer.maxBodyBytes {
                state = .tooLarge(head)
                return
            }
            state = .answering
            body.writeBuffer(&chunk)
            state = .receiving(head, body)
        case .end:
            switch state {
            case .receiving(let head, let body):
                state = .answering
                answer(head, body: Array(body.readableBytesView), context: context)
            case .tooLarge(let head):
                state = .answering
                write(.error(.payloadTooLarge, "too_large"), route: "too-large", for: head, context: context)
            case .refused(let head):
                state = .answering
                answer(head, body: [], context: context)
            default:
                break
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        stream?.stop()
        stream = nil
        streams.remove(context.channel)
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { stream?.pump(context: context) }
        context.fireChannelWritabilityChanged()
    }

    private func answer(_ head: HTTPRequestHead, body: [UInt8], context: ChannelHandlerContext) {
        let api = self.api
        let connection = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        Task {
            let (reply, route) = await api.reply(method: head.method, uri: head.uri, headers: head.headers, body: body)
            connection.eventLoop.execute {
                let (handler, context) = connection.value
                switch reply {
                case .answer(let answer): handler.write(answer, route: route, for: head, context: context)
                case .stream(let request): handler.startStream(request, for: head, context: context)
                }
            }
        }
    }

    private func write(_ answer: BridgeAnswer, route: String, for head: HTTPRequestHead, context: ChannelHandlerContext) {
        Self.count(route: route, status: answer.status)
        if route != "page" {
            logger.debug(
                "admin request",
                metadata: [
                    "admin.route": "\(route)", "http.method": "\(head.method.rawValue)",
                    "http.status": "\(answer.status.code)",
                ])
        }
        var headers = HTTPHeaders(answer.headers)
        if !headers.contains(name: "Content-Type") {
            headers.add(name: "Content-Type", value: "application/json")
        }
        headers.add(name: "Content-Length", value: String(answer.body.count))
        headers.add(name: "X-Content-Type-Options", value: "nosniff")
        let keepAlive = head.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: answer.status, headers: headers))), promise: nil
        )
        if head.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: answer.body)))), promise: nil)
        }
        let done = context.eventLoop.makePromise(of: Void.self)
        // Idle before the end is written: writing it lets NIO's pipelining hand over the next
        // request's head (held until now) at once, inside this call.
        state = .idle
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
        if !keepAlive { done.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) } }
    }

    /// `GET /api/events`: a `text/event-stream` answer that goes on while the connection
    /// lasts.
    private func startStream(_ request: AdminAPI.EventStreamRequest, for head: HTTPRequestHead, context: ChannelHandlerContext) {
        Self.count(route: "events", status: .ok)
        // The client may have gone while the request was answered: its `channelInactive` has
        // passed, and nothing would end a subscription made now.
        guard context.channel.isActive else { return }
        logger.info(
            "inspector event stream opened",
            metadata: [
                "admin.after": "\(request.after)", "admin.sources": "\(request.sources.sorted().joined(separator: ","))",
            ])
        state = .streaming
        let headers = HTTPHeaders([
            ("Content-Type", "text/event-stream; charset=utf-8"), ("Cache-Control", "no-store"),
            ("X-Accel-Buffering", "no"), ("X-Content-Type-Options", "nosniff"),
        ])
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers))), promise: nil)
        // Reconnecting clients wait 2 s (the default is 3). The id is where the stream starts:
        // a client that came without one resumes from here, not from whenever it reconnects.
        context.writeAndFlush(
            wrapOutboundOut(
                .body(.byteBuffer(context.channel.allocator.buffer(string: "retry: 2000\nid: \(request.after)\n\n")))),
            promise: nil)
        if let note = request.note {
            context.writeAndFlush(
                wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: ": \(note)\n\n")))), promise: nil)
        }
        streams.add(context.channel)
        let writer = EventStreamWriter(
            log: api.inspector, sources: request.sources, after: request.after, handler: self, context: context)
        stream = writer
        writer.pump(context: context)
    }

    fileprivate func writeStream(_ bytes: ByteBuffer, context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(bytes))), promise: nil)
    }

    private static let counters = Mutex<[String: Counter]>([:])

    static func count(route: String, status: HTTPResponseStatus) {
        let key = "\(route) \(status.code)"
        let counter = counters.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = Counter(
                label: "webhook.admin.requests.total", dimensions: [("route", route), ("http.status", String(status.code))])
            counters[key] = counter
            return counter
        }
        counter.increment()
    }
}

/// Writes the inspector's accepted events to one event stream: from its `Last-Event-ID`
/// on, each as `id: SEQUENCE` and `data: CLOUDEVENT JSON`, woken when events are kept, and
/// only while the client reads (a stream that falls more than `recent` events behind is
/// told how many it missed). A comment every 15 s keeps proxies from closing it.
final class EventStreamWriter {
    private let log: InspectorLog
    private let sources: Set<String>
    private var last: UInt64
    private let handler: AdminConnectionHandler
    private var subscription: Int?
    private var heartbeat: RepeatedTask?
    private let woken = WakeFlag()
    private let eventLoop: any EventLoop

    /// Events written at most per turn of the event loop.
    static let batch = 64

    init(log: InspectorLog, sources: Set<String>, after: UInt64, handler: AdminConnectionHandler, context: ChannelHandlerContext)
    {
        self.log = log
        self.sources = sources
        self.last = after
        self.handler = handler
        self.eventLoop = context.eventLoop
        let bound = NIOLoopBound((writer: self, context: context), eventLoop: context.eventLoop)
        subscription = log.subscribe { [woken = self.woken] in
            // One wake-up queued at a time, however many events arrive meanwhile.
            guard !woken.flag.exchange(true, ordering: .acquiringAndReleasing) else { return }
            bound.eventLoop.execute { bound.value.writer.pump(context: bound.value.context) }
        }
        heartbeat = context.eventLoop.scheduleRepeatedTask(initialDelay: .seconds(15), delay: .seconds(15)) { _ in
            let (writer, context) = bound.value
            writer.handler.writeStream(context.channel.allocator.buffer(string: ": keepalive\n\n"), context: context)
        }
    }

    func stop() {
        if let subscription { log.unsubscribe(subscription) }
        subscription = nil
        heartbeat?.cancel()
        heartbeat = nil
    }

    /// Writes what the client has not had, while the channel takes it.
    func pump(context: ChannelHandlerContext) {
        woken.flag.store(false, ordering: .releasing)
        guard subscription != nil, context.channel.isWritable else { return }
        let (events, missed) = log.events(since: last, limit: Self.batch)
        guard !events.isEmpty || missed > 0 else { return }
        var buffer = context.channel.allocator.buffer(capacity: 4096)
        if missed > 0 {
            buffer.writeString(": \(missed) events were no longer held by the inspector (admin.recent) and are skipped\n\n")
        }
        for (sequence, streamed) in events {
            last = sequence
            guard sources.isEmpty || sources.contains(streamed.event.source) else { continue }
            buffer.writeString("id: \(sequence)\ndata: ")
            Self.appendJSON(streamed, to: &buffer)
            buffer.writeString("\n\n")
        }
        // Events skipped by the source filter move `last` on too: an id line names it, so a
        // reconnect does not go through them again.
        if buffer.readableBytes == 0 { buffer.writeString("id: \(last)\n\n") }
        handler.writeStream(buffer, context: context)
        if events.count == Self.batch {
            // More are waiting: after the other connections' turn.
            let bound = NIOLoopBound((writer: self, context: context), eventLoop: context.eventLoop)
            context.eventLoop.execute { bound.value.writer.pump(context: bound.value.context) }
        }
    }

    /// Request headers an event stream never passes on: the connection's own, and
    /// credentials.
    static let unsentHeaders: Set<String> = [
        "host", "content-length", "connection", "keep-alive", "transfer-encoding", "te", "upgrade", "expect",
        "authorization", "proxy-authorization", "cookie",
    ]

    /// The event as one line of CloudEvents JSON: its data as `data` when it is JSON that
    /// reads back to the very bytes received (compact, as JSON is written back), else
    /// `data_base64`, so a client that passes it on sends what the provider signed; the
    /// request's headers in `webhookheaders`; `webhookdataomitted` with the size when the
    /// data was larger than `admin.maxBodyBytes` and not kept.
    static func appendJSON(_ streamed: StreamedEvent, to buffer: inout ByteBuffer) {
        var event = streamed.event
        var names: [String] = []
        var headers = TemplateHeaders()
        for header in streamed.headers where !unsentHeaders.contains(header.name.lowercased()) {
            if !names.contains(where: { $0.lowercased() == header.name.lowercased() }) { names.append(header.name) }
            headers.add(name: header.name, value: header.value)
        }
        event.requestHeaders = headers
        var extensions: [(String, String)] = []
        if let omitted = streamed.omittedBytes { extensions.append(("webhookdataomitted", String(omitted))) }
        let asJSON = readsBackExactly(event.data)
        event.bodyIsJSON = asJSON
        var line = ByteBuffer()
        CloudEventJSON.appendLine(event, to: &line, dataAsBase64: !asJSON, extensions: extensions, headers: names)
        // The line's newline ends an SSE data field; the blank line after it ends the event.
        line.moveWriterIndex(to: line.writerIndex - 1)
        buffer.writeBuffer(&line)
    }

    /// Whether `data` is JSON that the JSON writer writes back byte for byte.
    static func readsBackExactly(_ data: ByteBuffer) -> Bool {
        guard data.readableBytes > 0, let value = try? JSONParser.parse(data.readableBytesView) else { return false }
        var written: [UInt8] = []
        written.reserveCapacity(data.readableBytes)
        JSONWriter.append(value, to: &written)
        return written.elementsEqual(data.readableBytesView)
    }
}

/// Whether a stream's wake-up is queued already.
final class WakeFlag: Sendable {
    let flag = Atomic<Bool>(false)
}
