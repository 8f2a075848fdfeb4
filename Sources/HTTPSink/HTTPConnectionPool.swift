import NIOCore
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

    /// A request as the pool sends it: the encoded head and the body.
    struct Request: Sendable {
        var head: ByteBuffer
        var body: ByteBuffer
        var timeout: TimeAmount
    }

    /// Sends `request` and calls `completion` on `eventLoop` with the answer or the
    /// ``ExchangeFailure``. A request sent on a reused connection that turns out closed
    /// before any answer arrived is sent once more on a new one.
    func execute(
        _ request: Request, on eventLoop: any EventLoop,
        completion: @escaping @Sendable (Result<HTTPAnswer, ExchangeFailure>) -> Void
    ) {
        execute(request, on: eventLoop, retryOnStale: true, completion: completion)
    }

    private func execute(
        _ request: Request, on eventLoop: any EventLoop, retryOnStale: Bool,
        completion: @escaping @Sendable (Result<HTTPAnswer, ExchangeFailure>) -> Void
    ) {
        switch acquire(on: eventLoop) {
        case .reuse(let channel):
            send(request, on: channel, reused: true, from: eventLoop, retryOnStale: retryOnStale, completion: completion)
        case .connect:
            connect(on: eventLoop).whenComplete { result in
                switch result {
                case .success(let channel):
                    self.send(
                        request, on: channel, reused: false, from: eventLoop, retryOnStale: retryOnStale, completion: completion)
                case .failure(let error):
                    completion(.failure(error as? ExchangeFailure ?? .connectionLost("\(error)", answered: false)))
                }
            }
        case .wait(let promise):
            promise.futureResult.whenComplete { result in
                switch result {
                case .success(let channel):
                    // Used before, or opened for this waiter: either is safe (a stale one is retried once).
                    self.send(
                        request, on: channel, reused: true, from: eventLoop, retryOnStale: retryOnStale, completion: completion)
                case .failure(let error):
                    completion(.failure(error as? ExchangeFailure ?? .connectionLost("\(error)", answered: false)))
                }
            }
        case .closed:
            let failure = ExchangeFailure.connectionLost("the sink is shutting down", answered: false)
            if eventLoop.inEventLoop {
                completion(.failure(failure))
            } else {
                eventLoop.execute { completion(.failure(failure)) }
            }
        }
    }

    /// Writes the exchange on `channel`; its answer (on the channel's loop) releases the
    /// connection and reaches `completion` on `eventLoop`.
    private func send(
        _ request: Request, on channel: any Channel, reused: Bool, from eventLoop: any EventLoop, retryOnStale: Bool,
        completion: @escaping @Sendable (Result<HTTPAnswer, ExchangeFailure>) -> Void
    ) {
        @Sendable func write() {
            let exchange = HTTPExchange(head: request.head, body: request.body, timeout: request.timeout) { result in
                switch result {
                case .success(let answer):
                    self.release(channel, reusable: answer.keepAlive)
                case .failure(let failure):
                    self.release(channel, reusable: false)
                    if retryOnStale, reused, case .connectionLost(_, answered: false) = failure {
                        self.execute(request, on: eventLoop, retryOnStale: false, completion: completion)
                        return
                    }
                }
                if eventLoop.inEventLoop { completion(result) } else { eventLoop.execute { completion(result) } }
            }
            // A write that never reaches the handler (the connection was torn down meanwhile)
            // still ends the exchange.
            let written = channel.eventLoop.makePromise(of: Void.self)
            written.futureResult.whenFailure { _ in
                exchange.complete(.failure(.connectionLost("closed before the request was sent", answered: false)))
            }
            channel.pipeline.syncOperations.writeAndFlush(NIOAny(exchange), promise: written)
        }
        // The exchange is made and written on the connection's loop, where its handler runs.
        if channel.eventLoop.inEventLoop { write() } else { channel.eventLoop.execute(write) }
    }

    /// What a request gets now: an idle connection, a slot to open one in, or a place in
    /// the queue.
    private func acquire(on eventLoop: any EventLoop) -> Acquired {
        state.withLock { state -> Acquired in
            if state.closed { return .closed }
            // Connections the receiver closed while they were idle give their slots back first,
            // so the limit below counts only live ones.
            let before = state.idle.count
            state.idle.removeAll { !$0.isActive }
            state.open -= before - state.idle.count
            // A connection on the caller's event loop first (an idle one, else a new one while
            // under the limit): the exchange and its answer then stay on one thread, with no
            // wakeup of another. Only at the limit does a request take another loop's.
            if let index = state.idle.lastIndex(where: { $0.eventLoop === eventLoop }) {
                return .reuse(state.idle.remove(at: index))
            }
            if state.open < maximum {
                state.open += 1
                return .connect
            }
            if let channel = state.idle.popLast() { return .reuse(channel) }
            // Queued under the same lock that saw no room, so no release can slip between.
            let promise = eventLoop.makePromise(of: (any Channel).self)
            state.waiters.append(promise)
            return .wait(promise)
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
