import FileSink
import KafkaSink
import RedisSink
import Spool
import Logging
import NIOCore
import Prometheus
import ServiceLifecycle
import WebhookCore

/// The wiring: builds the sinks, the idempotency store, the pipeline and the HTTP ingress
/// from a validated config, and runs them as one service group. Start order: Redis
/// clients, sinks, ingress; a graceful stop runs it backwards, so every in-flight request
/// can still be delivered.
public struct Bridge: Sendable {
    public let ingress: HTTPIngress
    public let processor: WebhookProcessor
    /// Set when `listen.tls` is: reloaded with the config on SIGHUP.
    public let tls: TLSSettings?
    /// Clients shared by sinks (Redis): started before them, stopped after.
    let clients: [any Service]
    let sinks: [any EventSink]
    let spool: Spool?
    let forwarders: [any Service]
    let tracing: RequestTracing
    let logger: Logger

    /// Sets everything up and binds the listening socket; throws ``BridgeSetupError`` with a
    /// one-line reason when that is not possible.
    public static func start(config: BridgeConfig, logger: Logger, metrics: PrometheusCollectorRegistry? = nil) async throws
        -> Bridge
    {
        if let problem = sinkProblems(config).first { throw BridgeSetupError("\(problem)") }
        let context = SinkContext(ackTimeoutMs: config.limits.ackTimeoutMs, logger: logger, shared: SharedClients())
        var sinks: [String: any EventSink] = [:]
        for sink in config.sinks.values.sorted(by: { $0.name < $1.name }) {
            sinks[sink.name] = try makeSink(sink, context: context)
        }
        let store: any IdempotencyStore
        switch config.idempotency.store {
        case .memory:
            store = MemoryIdempotencyStore(ttlSeconds: config.idempotency.ttlSeconds, maximumKeys: config.idempotency.maxKeys)
        case .redis(let url):
            let client: RedisClient
            do {
                client = try RedisClient.shared(url: url, context: context)
            } catch {
                throw BridgeSetupError("idempotency.\(error)")
            }
            // A reservation outlives any delivery attempt, and expires if this replica dies.
            store = RedisIdempotencyStore(
                client: client, ttlSeconds: config.idempotency.ttlSeconds,
                reservationMilliseconds: max(30_000, config.limits.ackTimeoutMs * 3))
        }
        var spool: Spool?
        var forwarders: [any Service] = []
        if let settings = config.spool {
            let required = config.sinks.values.filter(\.required)
            do {
                spool = try Spool(
                    directory: settings.directory, maxBytes: settings.maxBytes,
                    sinks: Dictionary(uniqueKeysWithValues: required.map { ($0.name, $0.headerNames) }), logger: logger)
            } catch {
                throw BridgeSetupError("spool.directory: \(error)")
            }
            for sink in required.sorted(by: { $0.name < $1.name }) {
                let target = sinks[sink.name]!
                let metrics = SinkMetrics(sink: sink.name)
                let ackTimeoutMs = config.limits.ackTimeoutMs
                forwarders.append(
                    SpoolForwarder(spool: spool!, sink: sink.name, logger: logger) { event in
                        await deliverWithDeadline(event, to: target, milliseconds: ackTimeoutMs, metrics: metrics).map { _ in }
                    })
            }
        }
        let tracing: RequestTracing
        do {
            tracing = try RequestTracing.make(config.tracing, logger: logger)
        } catch {
            throw BridgeSetupError("tracing: \(error)")
        }
        let processor = WebhookProcessor(
            config: config, sinks: sinks, store: store, spool: spool, tracing: tracing, logger: logger)
        let tls = try config.listen.tls.map { try TLSSettings($0) }
        let ingress = try await HTTPIngress.bind(
            host: config.listen.host, port: config.listen.port, processor: processor,
            limits: config.limits, logger: logger, metrics: metrics, tls: tls)
        return Bridge(
            ingress: ingress, processor: processor, tls: tls, clients: context.shared.services, sinks: Array(sinks.values), spool: spool,
            forwarders: forwarders, tracing: tracing, logger: logger)
    }

    /// The running sink called `name`, for tests that inject faults into it.
    @_spi(Testing) public func sink(named name: String) -> (any EventSink)? { sinks.first { $0.name == name } }

    /// The spool's backlog for `sink`, in bytes (nil without a spool).
    @_spi(Testing) public func spoolBacklog(for sink: String) -> Int? { spool?.backlogBytes(for: sink) }

    /// Runs until SIGTERM or SIGINT (or the surrounding task is cancelled), then stops
    /// gracefully: ingress first, sinks last.
    public func run(handleSignals: Bool = true, reloader: ConfigReloader? = nil) async throws {
        // The span exporter stops last, so the spans of the last requests are sent.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = tracing.service.map { [.init(service: $0)] } ?? []
        services += clients.map { .init(service: $0) }
        services += sinks.map { .init(service: $0) }
        if let spool { services.append(.init(service: SpoolService(spool: spool))) }
        services += forwarders.map { .init(service: $0) }
        if let reloader { services.append(.init(service: reloader)) }
        services.append(.init(service: ingress))
        var configuration = ServiceGroupConfiguration(services: services, logger: logger)
        if handleSignals { configuration.gracefulShutdownSignals = [.sigterm, .sigint] }
        try await ServiceGroup(configuration: configuration).run()
    }

    /// The sink kinds this build has: each checks and makes its own.
    static let factories: [any EventSinkFactory] = [FileSinkFactory(), KafkaSinkFactory(), RedisStreamSinkFactory()]

    /// The sink `config` describes, from the first factory that knows its kind.
    static func makeSink(_ config: SinkConfig, context: SinkContext) throws(BridgeSetupError) -> any EventSink {
        do {
            for factory in factories {
                if let sink = try factory.make(config, context: context) { return sink }
            }
        } catch {
            throw BridgeSetupError("sinks.\(config.name).\(error)")
        }
        throw BridgeSetupError("sinks.\(config.name): no sink of this type in this build")
    }

    /// What only the sink libraries can judge (librdkafka's properties), checked offline,
    /// without connecting; ``ConfigLoader`` runs it with every other check.
    public static let sinkChecks: SinkChecks = { sink, limits in
        factories.flatMap { $0.validate(sink, limits: limits) }
    }

    /// ``sinkChecks`` over a config loaded without them, with paths from the document's root.
    static func sinkProblems(_ config: BridgeConfig) -> [ConfigProblem] {
        config.sinks.values.sorted(by: { $0.name < $1.name }).flatMap { sink in
            sinkChecks(sink, config.limits).map { ConfigProblem(path: "sinks.\(sink.name).\($0.path)", message: $0.message) }
        }
    }

}
