import NIOCore

/// A command sent (or about to be) and waiting for its reply.
struct PendingCommand: Sendable {
    let continuation: CheckedContinuation<RedisReply, any Error>
    /// Past this without a reply, the connection is given up (see ``RedisChannelHandler``).
    let deadline: NIODeadline

    func fail(_ description: String) {
        continuation.resume(throwing: RedisClient.Failure(description: description))
    }
}

/// Pipelining on one channel: commands are written as they come and flushed once per turn
/// of the event loop, so the commands of one turn share a write; replies are parsed by
/// hiredis's reader and handed to the commands in the order those were sent, the order in
/// which Redis answers.
///
/// A reply later than its command's deadline means the connection can't be trusted (a
/// stalled server, a half-open socket): as a socket timeout would, it closes the connection
/// and fails every command in flight as retryable. One timer serves all of them: replies
/// come in order, so only the oldest command's deadline matters.
final class RedisChannelHandler: ChannelInboundHandler, NIOScheduledCallbackHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let connection: RedisConnection
    private let settings: RedisConnection.Settings
    private let parser = RedisReplyParser()
    private var pending = CircularBuffer<PendingCommand>(initialCapacity: 64)
    /// Replies to AUTH and SELECT still to come, before the first command's.
    private var setupReplies = 0
    private var context: ChannelHandlerContext?
    private var flushScheduled = false
    private var timer: NIOScheduledCallback?
    /// Set once the connection is ending: why, for the commands it fails.
    private var failure: String?
    /// Whether Redis answered on this connection (a connection that never did failed to
    /// connect, which backs off; one that did was lost, which reconnects at once).
    private var answered = false
    private var closeWhenIdle = false

    init(connection: RedisConnection, settings: RedisConnection.Settings) {
        self.connection = connection
        self.settings = settings
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    /// Sends AUTH and SELECT (when the URL asks for them) ahead of everything else.
    func start() {
        setupReplies = settings.setup.count
        for command in settings.setup { context?.write(wrapOutboundOut(command), promise: nil) }
        scheduleFlush()
    }

    func send(_ command: ByteBuffer, _ waiter: PendingCommand) {
        guard let context, failure == nil else {
            waiter.fail("\(settings.endpoint.display): \(failure ?? "not connected")")
            return
        }
        guard pending.count < settings.maximumInFlight else {
            waiter.fail("too many Redis commands waiting for \(settings.endpoint.display)")
            return
        }
        pending.append(waiter)
        context.write(wrapOutboundOut(command), promise: nil)
        scheduleFlush()
        if timer == nil { armTimer() }
    }

    /// Closes once every command in flight has its reply (or its deadline passed).
    func close() -> EventLoopFuture<Void> {
        guard let context else { return connection.eventLoop.makeSucceededVoidFuture() }
        closeWhenIdle = true
        if pending.isEmpty { context.close(promise: nil) }
        return context.channel.closeFuture
    }

    private func scheduleFlush() {
        guard !flushScheduled, let context else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.flushScheduled = false
            self.context?.flush()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        do {
            try parser.feed(unwrapInboundIn(data))
            while failure == nil, let reply = try parser.next() { receive(reply) }
        } catch {
            fail(error.description)
        }
    }

    private func receive(_ reply: RedisReply) {
        if setupReplies > 0 {
            setupReplies -= 1
            if case .error(let message) = reply { fail(message) }
            return
        }
        if !answered {
            answered = true
            connection.reached()
        }
        guard let waiter = pending.popFirst() else {
            fail("a reply to no command")
            return
        }
        waiter.continuation.resume(returning: reply)
        if closeWhenIdle, pending.isEmpty { context?.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(RedisConnection.describe(error))
    }

    func channelInactive(context: ChannelHandlerContext) {
        let reason = failure ?? "the connection was closed by Redis"
        failure = reason
        timer?.cancel()
        timer = nil
        while let waiter = pending.popFirst() { waiter.fail("\(settings.endpoint.display): \(reason)") }
        connection.closed(self, reason: reason, answered: answered)
        context.fireChannelInactive()
    }

    /// Ends the connection; the commands in flight fail when it is closed.
    private func fail(_ reason: String) {
        guard failure == nil else { return }
        failure = reason
        context?.close(promise: nil)
    }

    private func armTimer() {
        guard let deadline = pending.first?.deadline, let context else { return }
        timer = try? context.eventLoop.assumeIsolated().scheduleCallback(at: deadline, handler: self)
    }

    func handleScheduledCallback(eventLoop: some EventLoop) {
        timer = nil
        guard failure == nil, let oldest = pending.first else { return }
        if oldest.deadline <= .now() {
            fail("no reply within \(settings.timeout.nanoseconds / 1_000_000) ms")
        } else {
            armTimer()
        }
    }
}
