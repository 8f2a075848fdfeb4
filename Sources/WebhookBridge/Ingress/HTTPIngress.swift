import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Prometheus
import ServiceLifecycle
import WebhookCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The listening HTTP server as a `Service`: bound before the service group starts (so a busy
/// port is a startup error, not a log line), closed first on shutdown, after which in-flight
/// requests are answered before the sinks stop.
public final class HTTPIngress: Service {
    private let channel: any Channel
    private let inFlight: InFlightRequests
    /// The tasks that process requests, a pool per event loop (tests read their counts).
    let workers: RequestWorkerSets
    private let logger: Logger
    /// How long a graceful stop waits for in-flight requests.
    private let drainTimeout: Duration

    /// `SO_SNDBUF` of each connection.
    static let sendBufferBytes: SocketOptionValue = 65536

    /// The address actually bound (port 0 in the config picks a free port).
    public var localAddress: SocketAddress? { channel.localAddress }

    private init(
        channel: any Channel, inFlight: InFlightRequests, workers: RequestWorkerSets, logger: Logger, drainTimeout: Duration
    ) {
        self.channel = channel
        self.inFlight = inFlight
        self.workers = workers
        self.logger = logger
        self.drainTimeout = drainTimeout
    }

    /// Binds `host:port`; throws ``BridgeSetupError`` when the address can't be taken.
    public static func bind(
        host: String, port: Int, processor: WebhookProcessor, limits: BridgeConfig.Limits, logger: Logger,
        metrics: PrometheusCollectorRegistry? = nil, tls: TLSSettings? = nil,
        drainTimeout: Duration = .seconds(10),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> HTTPIngress {
        let inFlight = InFlightRequests()
        let workers = RequestWorkerSets()
        let budget = BodyBudget(limit: limits.maxBufferedBytes, perClient: limits.bufferedBytesPerClient)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            // NIO's default. A read event takes at most 4 reads (256 KiB): a client that
            // pipelines requests without reading its answers gets that much decoded and
            // queued before its reads stop. With 16, 8 such clients added 20 MB and held
            // /healthz for 0.5 s (debug build); with 4, 4 MB and 0.35 s.
            .childChannelOption(.maxMessagesPerRead, value: 4)
            // A client may half-close after its requests (a FIN while it still reads): the
            // connection handler answers them, then closes (``ChannelEvent/inputClosed``).
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            // A fixed send buffer (the kernel doubles it: 128 KiB) instead of the kernel's
            // autotuned one (up to 4 MiB): the bridge's answers are small, and a client that
            // pipelines requests and never reads could otherwise have megabytes of answers
            // made for it before the connection stops being writable (see
            // HTTPConnectionHandler's backpressure).
            .childChannelOption(.socketOption(.so_sndbuf), value: Self.sendBufferBytes)
            .childChannelInitializer { channel in
                inFlight.track(channel)
                return channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.context))
                    }
                    // NIO's decoder (llhttp); pipelining, deadlines and the answers (one
                    // buffer each) are the connection handler's. No NIO error handler: parse
                    // errors are answered in turn, and not at all after `Connection: close`.
                    try channel.pipeline.syncOperations.addHandlers([
                        ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)),
                        HTTPConnectionHandler(
                            admission: HeadAdmission(processor: processor, limits: limits, inFlight: inFlight, budget: budget),
                            processor: processor, workers: workers.workers(for: channel.eventLoop),
                            endpoints: BuiltInEndpoints(processor: processor, metrics: metrics, budget: budget)),
                    ])
                }
            }
        do {
            let channel = try await bootstrap.bind(host: host, port: port).get()
            return HTTPIngress(
                channel: channel, inFlight: inFlight, workers: workers, logger: logger, drainTimeout: drainTimeout)
        } catch {
            throw BridgeSetupError("cannot listen on \(host):\(port): \(Self.reason(error))")
        }
    }

    public func run() async throws {
        logger.info("listening", metadata: ["http.address": "\(channel.localAddress.map { "\($0)" } ?? "?")"])
        try? await gracefulShutdown()
        logger.info("stopping: no new connections; answering in-flight requests")
        try? await channel.close()
        inFlight.quiesceConnections()
        if await !inFlight.waitUntilIdle(timeout: drainTimeout) {
            logger.warning("stopped with requests still in flight", metadata: ["http.drain_timeout": "\(drainTimeout)"])
        }
        inFlight.closeConnections()
        workers.close()
    }

    private static func reason(_ error: any Error) -> String {
        if let io = error as? IOError { return String(cString: strerror(io.errnoCode)) }
        return "\(error)"
    }
}

/// A startup problem, told to the user in one line (then `serve` exits 1).
public struct BridgeSetupError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
