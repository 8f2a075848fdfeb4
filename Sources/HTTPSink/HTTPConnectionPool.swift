import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// Kept-alive HTTP/1.1 connections to one receiver, at most `maximum` at once: a request
/// takes an idle connection, else opens one while under the limit, else waits its turn
/// (first come, first served). A connection goes back to the idle list after an answer
/// that keeps it alive.
final class HTTPConnectionPool: Sendable {
    struct Endpoint: Sendable {
        var host: String
        var port: Int
        /// Set for `https`.
        var tls: NIOSSLContext?
    }

    private struct State {
        var idle: [any Channel] = []
        /// Connections open or being opened.
        var open = 0
        var waiters = CircularBuffer<EventLoopPromise<any Channel>>()
        var closed = false
    }

    private enum Acquired {
        case reuse(any Channel)
        case connect
        case wait(EventLoopPromise<any Channel>)
        case closed
    }

    let endpoint: Endpoint
    let maximum: Int
    private let connectTimeout: TimeAmount
    private let group: any EventLoopGroup
    private let state = Mutex(State())

    init(endpoint: Endpoint, maximum: Int, connectTimeout: TimeAmount, group: any EventLoopGroup) {
        self.endpoint = endpoint
        self.maximum = maximum
        self.connectTimeout = connectTimeout
        self.group = group
    }

    /// Sends `head` and `body` and completes with the answer, or fails with an
    /// ``ExchangeFailure`` (or the connection's error). A request sent on a reused connection
    /// that turns out closed before any answer arrived is sent once more on a new one.
    func execute(_ head: HTTPRequestHead, body: ByteBuffer, timeout: TimeAmount, on eventLoop: any EventLoop)
        -> EventLoopFuture<HTTPAnswer>
    {
        execute(head, body: body, timeout: timeout, on: eventLoop, retryOnStale: true)
    }

    private func execute(
        _ head: HTTPRequestHead, body: ByteBuffer, timeout: TimeAmount, on eventLoop: any EventLoop, retryOnStale: Bool
    ) -> EventLoopFuture<HTTPAnswer> {
        acquire(on: eventLoop).flatMap { (channel, reused) in
            let promise = channel.eventLoop.makePromise(of: HTTPAnswer.self)
            channel.writeAndFlush(HTTPExchange(head: head, body: body, timeout: timeout, promise: promise), promise: nil)
            return promise.futureResult.flatMapError { error in
                self.release(channel, reusable: false)
                if retryOnStale, reused, case ExchangeFailure.connectionLost(_, answered: false) = error {
                    return self.execute(head, body: body, timeout: timeout, on: eventLoop, retryOnStale: false)
                }
                return eventLoop.makeFailedFuture(error)
            }.map { answer in
                self.release(channel, reusable: answer.keepAlive)
                return answer
            }.hop(to: eventLoop)
        }
    }

    /// A connection for one exchange, and whether it was used before.
    private func acquire(on eventLoop: any EventLoop) -> EventLoopFuture<(any Channel, Bool)> {
        let acquired = state.withLock { state -> Acquired in
            if state.closed { return .closed }
            // A connection on the caller's event loop first (an idle one, else a new one while
            // under the limit): the exchange and its answer then stay on one thread, with no
            // wakeup of another. Only at the limit does a request take another loop's.
            while let index = state.idle.lastIndex(where: { $0.eventLoop === eventLoop }) {
                let channel = state.idle.remove(at: index)
                if channel.isActive { return .reuse(channel) }
                state.open -= 1  // closed by the receiver while idle
            }
            if state.open < maximum {
                state.open += 1
                return .connect
            }
            while let channel = state.idle.popLast() {
                if channel.isActive { return .reuse(channel) }
                state.open -= 1
            }
            // Queued under the same lock that saw no room, so no release can slip between.
            let promise = eventLoop.makePromise(of: (any Channel).self)
            state.waiters.append(promise)
            return .wait(promise)
        }
        switch acquired {
        case .reuse(let channel):
            return eventLoop.makeSucceededFuture((channel, true))
        case .connect:
            return connect(on: eventLoop).map { ($0, false) }
        case .closed:
            return eventLoop.makeFailedFuture(ExchangeFailure.connectionLost("the sink is shutting down", answered: false))
        case .wait(let promise):
            // Handed a connection used before, or one opened for it: either is safe to send
            // on (a stale one is retried once).
            return promise.futureResult.map { ($0, true) }
        }
    }

    /// Gives a connection back after an exchange: to the next waiter, else to the idle list;
    /// or closes it, and opens a new one for the next waiter.
    private func release(_ channel: any Channel, reusable: Bool) {
        enum Next {
            case handTo(EventLoopPromise<any Channel>)
            case connectFor(EventLoopPromise<any Channel>)
            case idle
            case close
        }
        let next = state.withLock { state -> Next in
            if reusable, channel.isActive, !state.closed {
                if let waiter = state.waiters.popFirst() { return .handTo(waiter) }
                state.idle.append(channel)
                return .idle
            }
            // The connection is done; its slot goes to the next waiter, if any.
            if let waiter = state.waiters.popFirst() { return .connectFor(waiter) }
            state.open -= 1
            return .close
        }
        switch next {
        case .handTo(let waiter):
            waiter.succeed(channel)
        case .connectFor(let waiter):
            channel.close(promise: nil)
            connect(on: waiter.futureResult.eventLoop).cascade(to: waiter)
        case .idle:
            break
        case .close:
            channel.close(promise: nil)
        }
    }

    /// Opens a connection for a slot already counted in `open`; a failure frees the slot
    /// (and opens one for the next waiter, which then fails or succeeds on its own).
    private func connect(on eventLoop: any EventLoop) -> EventLoopFuture<any Channel> {
        let endpoint = self.endpoint
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls = endpoint.tls {
                        let isAddress = endpoint.host.contains(":") || endpoint.host.allSatisfy { $0.isNumber || $0 == "." }
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: tls, serverHostname: isAddress ? nil : endpoint.host))
                    }
                    // The headers are checked once, when the config is read (names are tokens, values have
                    // no line breaks) or made safe per event (percent-encoded attributes): no
                    // validation pass over every header of every request.
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(enableOutboundHeaderValidation: false)
                    try channel.pipeline.syncOperations.addHandler(HTTPExchangeHandler())
                }
            }
        return bootstrap.connect(host: endpoint.host, port: endpoint.port).flatMapError { error in
            let waiter = self.state.withLock { state -> EventLoopPromise<any Channel>? in
                if let waiter = state.waiters.popFirst() { return waiter }
                state.open -= 1
                return nil
            }
            if let waiter { self.connect(on: waiter.futureResult.eventLoop).cascade(to: waiter) }
            return eventLoop.makeFailedFuture(ExchangeFailure.connectionLost("cannot connect: \(error)", answered: false))
        }
    }

    /// Closes the idle connections and fails the waiters; connections in use close when
    /// their exchange ends.
    func shutdown() {
        let (idle, waiters) = state.withLock { state in
            state.closed = true
            defer {
                state.open -= state.idle.count
                state.idle = []
                state.waiters.removeAll()
            }
            return (state.idle, state.waiters)
        }
        for channel in idle { channel.close(promise: nil) }
        for waiter in waiters { waiter.fail(ExchangeFailure.connectionLost("the sink is shutting down", answered: false)) }
    }
}
