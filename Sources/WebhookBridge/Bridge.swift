import FileSink
import HTTPSink
import KafkaSink
import RedisSink
import Spool
import Logging
import NIOCore
import Prometheus
import ServiceLifecycle
import WebhookCore
import WebhookProviders

/// The wiring: builds the sinks, the idempotency store, the pipeline and the HTTP ingress
/// from a validated config, and runs them as one service group. Start order: Redis
/// clients, sinks, ingress; a graceful stop runs it backwards, so every in-flight request
/// can still be delivered.
public struct Bridge: Sendable {
    public let ingress: HTTPIngress
    public let processor: WebhookProcessor
    /// The inspector's listener (config `admin`).
    public let admin: AdminServer?
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
        let context = SinkContext(ackTimeoutMs: config.limits.ackTimeoutMs, logger: logger, shared: SharedClients())
        var sinks: [String: any EventSink] = [:]
        for sink in config.sinks.values.sorted(by: { $0.name < $1.name }) {
            sinks[sink.name] = try makeSink(sink, context: context)
        }
        let store: any IdempotencyStore
        guard let storeLibrary = libraries.stores.first(where: { $0.type == config.idempotency.store.type }) else {
            throw BridgeSetupError("idempotency.store: no \(config.idempotency.store.type) store in this build")
        }
        do {
            let bounds = IdempotencyBounds(
                ttlSeconds: config.idempotency.ttlSeconds, maxKeys: config.idempotency.maxKeys,
                ackTimeoutMs: config.limits.ackTimeoutMs)
            store = try storeLibrary.make(settings: config.idempotency.store.settings, bounds: bounds, context: context)
        } catch {
            throw BridgeSetupError("idempotency.\(error)")
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
                // No provider waits on a spooled delivery: a sink with a longer timeout of its
                // own (an HTTP sink's timeoutMs) gets it.
                let deadlineMs = max(config.limits.ackTimeoutMs, target.ownTimeoutMs ?? 0)
                forwarders.append(
                    SpoolForwarder(spool: spool!, sink: sink.name, retry: settings.retry, logger: logger) { event in
                        await deliverWithDeadline(event, to: target, milliseconds: deadlineMs, metrics: metrics).map { _ in }
                    })
            }
        }
        let inspector = config.admin.map { InspectorLog(recent: $0.recent, maxBodyBytes: $0.maxBodyBytes) }
        let tracing: RequestTracing
        do {
            tracing = try RequestTracing.make(config.tracing, inspector: inspector, logger: logger)
        } catch {
            throw BridgeSetupError("tracing: \(error)")
        }
        // Secrets learned in handshakes (asana): beside the idempotency keys when the store
        // can keep them (redis, shared by replicas), else beside the spool.
        let learnedSecrets =
            store.learnedSecrets ?? config.spool.map { FileLearnedSecretStore(path: $0.directory + "/learned-secrets.json") }
        let processor = WebhookProcessor(
            config: config, sinks: sinks, store: store, spool: spool,
            services: VerificationServices(certificates: HTTPSCertificateFetcher(), learnedSecrets: learnedSecrets),
            tracing: tracing, logger: logger)
        let tls = try config.listen.tls.map { try TLSSettings($0) }
        // Bound first: a busy admin port must not leave the main listener bound.
        var admin: AdminServer?
        if let settings = config.admin, let inspector {
            let api = AdminAPI(
                config: config, admin: settings, inspector: inspector,
                deadLetters: spool.map { DeadLetterShelf(path: $0.deadLetterPath) }, sinks: sinks,
                sourceNames: { [sources = processor.sources] in sources.names }, logger: logger)
            admin = try await AdminServer.bind(settings, api: api, logger: logger)
        }
        let ingress: HTTPIngress
        do {
            ingress = try await HTTPIngress.bind(
                host: config.listen.host, port: config.listen.port, processor: processor,
                limits: config.limits, logger: logger, metrics: metrics, tls: tls)
        } catch {
            // Nothing runs: the admin port is given back too.
            await admin?.close()
            throw error
        }
        return Bridge(
            ingress: ingress, processor: processor, admin: admin, tls: tls, clients: context.shared.services,
            sinks: Array(sinks.values), spool: spool,
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
        // Stopped after the ingress: the inspector shows the last requests too.
        if let admin { services.append(.init(service: admin)) }
        services.append(.init(service: ingress))
        var configuration = ServiceGroupConfiguration(services: services, logger: logger)
        if handleSignals { configuration.gracefulShutdownSignals = [.sigterm, .sigint] }
        try await ServiceGroup(configuration: configuration).run()
    }

    /// The sink and idempotency store libraries of this build, one line each: a sink's `type`
    /// (or `idempotency.store`) picks one, which reads, checks and makes it
    /// (``ConfigLoader/load(_:environment:libraries:exporters:)``).
    public static let libraries = BridgeLibraries(
        sinks: [FileSinkFactory(), KafkaSinkFactory(), RedisStreamSinkFactory(), HTTPSinkFactory()],
        stores: [MemoryStoreFactory(), RedisIdempotencyStoreFactory()])

    /// The sink `config` describes, by the library that read it.
    static func makeSink(_ config: SinkConfig, context: SinkContext) throws(BridgeSetupError) -> any EventSink {
        guard let library = libraries.sinks.first(where: { $0.type == config.type }) else {
            throw BridgeSetupError("sinks.\(config.name).type: no \(config.type) sinks in this build")
        }
        do {
            return try library.make(config, context: context)
        } catch {
            throw BridgeSetupError("sinks.\(config.name).\(error)")
        }
    }

    /// Reads and validates a config with this build's sink libraries.
    public static func loadConfig(_ bytes: [UInt8], environment: [String: String]) throws(ConfigError) -> BridgeConfig {
        try ConfigLoader.load(bytes, environment: environment, libraries: libraries)
    }

}
