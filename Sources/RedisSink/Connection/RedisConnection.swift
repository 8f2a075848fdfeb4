import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization
import WebhookCore

/// The connection of one event loop to Redis, opened by the first command and re-opened by
/// the first command after it is lost. Its state is touched on its event loop only (hence
/// `@unchecked Sendable`); ``reachable`` is the one thing read from elsewhere.
///
/// Commands that come while it connects wait for it. A connection that could not be opened
/// is retried after a backoff (100 ms, doubling up to 5 s), during which commands fail at
/// once rather than wait behind a dead server; one that was open and is lost is re-opened by
/// the next command at once (that attempt failing starts the backoff).
final class RedisConnection: @unchecked Sendable {
    /// What every connection of one client shares.
    struct Settings: Sendable {
        let endpoint: RedisEndpoint
        let tls: NIOSSLContext?
        /// For SNI and the certificate's name; nil for an IP address, which is checked
        /// against the certificate's IP addresses instead.
        let serverHostname: String?
        let timeout: TimeAmount
        /// AUTH and SELECT, sent first on every new connection.
        let setup: [ByteBuffer]
        let logger: Logger
        /// Commands waiting per connection at most.
        let maximumInFlight = 10_000
    }

    private enum State {
        case idle
        case connecting
        case open(RedisChannelHandler)
        case closed
    }

    let eventLoop: any EventLoop
    private let settings: Settings
    private var state = State.idle
    /// Commands that came while connecting, in order.
    private var waiting: [(ByteBuffer, PendingCommand)] = []
    private var retryAt: NIODeadline?
    private var backoff = TimeAmount.milliseconds(100)
    private var lastError = "not contacted yet"
    /// Whether the last attempt reached Redis: readiness.
    let reachable = Atomic<Bool>(false)

    init(eventLoop: any EventLoop, settings: Settings) {
        self.eventLoop = eventLoop
        self.settings = settings
    }

    /// Sends `command`, connecting first if needed. On the event loop.
    func send(_ command: ByteBuffer, _ waiter: PendingCommand) {
        switch state {
        case .open(let handler):
            handler.send(command, waiter)
        case .connecting:
            guard waiting.count < settings.maximumInFlight else {
                waiter.fail("too many Redis commands waiting for \(settings.endpoint.display)")
                return
            }
            waiting.append((command, waiter))
        case .idle:
            if let retryAt, NIODeadline.now() < retryAt {
                waiter.fail("Redis at \(settings.endpoint.display) is unreachable: \(lastError)")
                return
            }
            waiting.append((command, waiter))
            connect()
        case .closed:
            waiter.fail("the Redis client is shut down")
        }
    }

    private func connect() {
        state = .connecting
        let settings = self.settings
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(settings.timeout)
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelInitializer { channel in
                do {
                    let pipeline = channel.pipeline.syncOperations
                    if let tls = settings.tls {
                        try pipeline.addHandler(NIOSSLClientHandler(context: tls, serverHostname: settings.serverHostname))
                    }
                    try pipeline.addHandler(RedisChannelHandler(connection: self, settings: settings))
                    return channel.eventLoop.makeSucceededVoidFuture()
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
        let connecting: EventLoopFuture<any Channel>
        switch settings.endpoint.address {
        case .tcp(let host, let port): connecting = bootstrap.connect(host: host, port: port)
        case .unix(let path): connecting = bootstrap.connect(unixDomainSocketPath: path)
        }
        connecting.whenComplete { result in self.connected(result) }
    }

    private func connected(_ result: Result<any Channel, any Error>) {
        eventLoop.preconditionInEventLoop()
        let waiting = self.waiting
        self.waiting = []
        switch (result, state) {
        case (.success(let channel), .connecting):
            guard let handler = try? channel.pipeline.syncOperations.handler(type: RedisChannelHandler.self) else {
                preconditionFailure("the Redis handler is added by the channel initializer")
            }
            state = .open(handler)
            handler.start()
            for (command, waiter) in waiting { handler.send(command, waiter) }
        case (.success(let channel), _):
            channel.close(promise: nil)  // shut down meanwhile
        case (.failure(let error), .connecting):
            state = .idle
            let reason = "connect to \(settings.endpoint.display): \(Self.describe(error))"
            unreachable(reason, backOff: true)
            for (_, waiter) in waiting { waiter.fail(reason) }
        case (.failure, _):
            break
        }
    }

    /// Redis answered on the current connection.
    func reached() {
        retryAt = nil
        backoff = .milliseconds(100)
        reachable.store(true, ordering: .relaxed)
    }

    /// `handler`'s channel is closed (its commands are failed already).
    func closed(_ handler: RedisChannelHandler, reason: String, answered: Bool) {
        guard case .open(let current) = state, current === handler else { return }
        state = .idle
        unreachable(answered ? reason : "connect to \(settings.endpoint.display): \(reason)", backOff: !answered)
    }

    private func unreachable(_ reason: String, backOff: Bool) {
        let wasReachable = reachable.exchange(false, ordering: .relaxed)
        let firstFailure = wasReachable || lastError == "not contacted yet"
        lastError = reason
        if backOff {
            retryAt = .now() + backoff
            backoff = min(backoff * 2, .seconds(5))
        }
        if firstFailure {
            settings.logger.warning(
                "redis unreachable", metadata: ["redis.address": "\(settings.endpoint.display)", "redis.error": "\(reason)"])
        }
    }

    /// Refuses new commands, lets those in flight finish, then closes the connection.
    func close() -> EventLoopFuture<Void> {
        eventLoop.flatSubmit {
            let previous = self.state
            self.state = .closed
            for (_, waiter) in self.waiting { waiter.fail("the Redis client is shut down") }
            self.waiting = []
            guard case .open(let handler) = previous else { return self.eventLoop.makeSucceededVoidFuture() }
            return handler.close()
        }
    }

    /// A connection error in a line: TLS failures say so, and of a failed connect to a name
    /// with several addresses, the first address's error.
    static func describe(_ error: any Error) -> String {
        switch error {
        case is NIOSSLError, is NIOSSLExtraError, is BoringSSLError:
            return "TLS: \(error)"
        case let error as NIOConnectionError:
            guard let first = error.connectionErrors.first else { return "cannot resolve \(error.host)" }
            return "\(first.target): \(describe(first.error))"
        case ChannelError.connectTimeout(let timeout):
            return "no connection within \(timeout.nanoseconds / 1_000_000) ms"
        default:
            return "\(error)"
        }
    }
}
