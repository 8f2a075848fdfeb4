import Foundation
import Logging
import Metrics
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization
import WebhookCore

/// Writes events to Kafka in the CloudEvents Kafka binding's binary mode (SPEC section 7):
/// the value is the raw body, each attribute a `ce_<name>` header, `content-type` the
/// datacontenttype, the key the rendered `key` template, the topic the `topic` template.
///
/// `deliver` returns once the brokers acknowledged the message: the bridge's defaults are
/// `acks=all` and `enable.idempotence=true`, and `message.timeout.ms` follows
/// `limits.ackTimeoutMs` so librdkafka gives up when the provider's answer does, instead of
/// delivering minutes later a message the provider was told failed.
///
/// A producer that can never produce again does not end the sink: librdkafka's fatal error,
/// or a delivery report saying the broker fenced the producer or lost its idempotence state
/// (``KafkaProducer/Failure/endsProducer(_:)``; a broker frozen for seconds under load leaves
/// the idempotent producer fenced). The watch replaces the producer with a new one, once per
/// producer (``replaceFailedProducer(_:)``), the sends waiting on the old one fail as
/// transient (spooled, or 503), and the sink becomes ready again.
public final class KafkaSink: CallbackDeliveringSink {
    public let name: String
    private let topic: Template
    private let key: Template
    private let configuration: [String: String]
    /// The producer in use; replaced when it can't produce again.
    private let current: Mutex<KafkaProducer>
    private var producer: KafkaProducer { current.withLock { $0 } }
    private let restarts: Counter
    private let logger: Logger
    private let stopping = Atomic<Bool>(false)
    /// The event loop that drains librdkafka's events while the sink runs.
    private let reportLoop = Mutex<(any EventLoop)?>(nil)
    /// How long a graceful stop waits for messages still in flight.
    private let flushTimeoutMilliseconds: Int32 = 10_000

    /// The configuration handed to librdkafka: the bridge's defaults, then `properties`
    /// (which may override them, under any of librdkafka's names for a property), then
    /// `bootstrap.servers` from `brokers`.
    public static func configuration(brokers: String, properties: [String: String], ackTimeoutMs: Int) -> [String: String] {
        // librdkafka gives up a little before the bridge's deadline, so its failure report,
        // not the deadline, decides the answer, and no message lands after a 503.
        let messageTimeout = max(100, ackTimeoutMs - max(100, ackTimeoutMs / 10))
        var configuration = [
            "acks": "all",
            "enable.idempotence": "true",
            "message.timeout.ms": String(messageTimeout),
            "linger.ms": "1",
            // One produce request in flight per broker: a broker serves a connection's
            // requests one at a time anyway, and what arrives meanwhile goes out together in
            // the next request. Fewer, larger requests: less CPU per event and a shorter tail
            // than librdkafka's 5 (see docs/performance.md).
            "max.in.flight": "1",
        ]
        for (name, aliases) in Self.aliases where aliases.contains(where: { properties[$0] != nil }) {
            configuration[name] = nil
        }
        configuration.merge(properties) { $1 }
        // `brokers` is the one list of brokers (librdkafka's other name for it would be
        // applied after it and win).
        configuration["metadata.broker.list"] = nil
        configuration["bootstrap.servers"] = brokers
        return configuration
    }

    /// librdkafka's other names for the properties the bridge sets: a property given under
    /// one of them replaces the bridge's default instead of competing with it.
    static let aliases: [String: [String]] = [
        "acks": ["request.required.acks"],
        "message.timeout.ms": ["delivery.timeout.ms"],
        "linger.ms": ["queue.buffering.max.ms"],
        "max.in.flight": ["max.in.flight.requests.per.connection"],
    ]

    /// Checks the configuration with librdkafka, offline; the problem's path is relative to
    /// the sink (`properties.NAME`).
    public static func validate(brokers: String, properties: [String: String], ackTimeoutMs: Int) -> ConfigProblem? {
        do {
            try KafkaProducer.validate(configuration(brokers: brokers, properties: properties, ackTimeoutMs: ackTimeoutMs))
            return nil
        } catch {
            return ConfigProblem(path: error.property.map { "properties.\($0)" } ?? "properties", message: error.reason)
        }
    }

    /// Creates the producer; throws the problem with the property librdkafka refused
    /// (`properties.linger.ms`), relative to the sink's settings.
    public init(
        name: String, brokers: String, topic: Template, key: Template, properties: [String: String], ackTimeoutMs: Int,
        logger: Logger
    ) throws(ConfigProblem) {
        self.name = name
        self.topic = topic
        self.key = key
        var logger = logger
        logger[metadataKey: "sink.name"] = "\(name)"
        self.logger = logger
        let acks = properties["acks"] ?? properties["request.required.acks"] ?? "all"
        if !["all", "-1"].contains(acks) {
            logger.warning(
                "acks is not all: a 2xx will not mean every in-sync replica has the event", metadata: ["kafka.acks": "\(acks)"])
        }
        self.configuration = Self.configuration(brokers: brokers, properties: properties, ackTimeoutMs: ackTimeoutMs)
        self.restarts = Counter(label: "webhook.kafka.producer_restarts.total", dimensions: [("sink.name", name)])
        do {
            self.current = Mutex(try Self.makeProducer(configuration, logger: logger, counted: liveProducers))
        } catch {
            throw ConfigProblem(path: error.property.map { "properties.\($0)" } ?? "properties", message: error.reason)
        }
    }

    private static func makeProducer(_ configuration: [String: String], logger: Logger, counted live: LiveProducers)
        throws(KafkaConfigurationError) -> KafkaProducer
    {
        let producer = try KafkaProducer(configuration: configuration, logger: logger, onDestroy: live.destroyed)
        live.made()
        return producer
    }

    /// A topic without placeholders is known now: ask for its metadata at start.
    private func warmUpConstantTopic() {
        guard !topic.description.contains("{") else { return }
        producer.warmUp(topic: topic.description)
    }

    public var isReady: Bool { !stopping.load(ordering: .relaxed) && producer.isReachable }

    public func deliver(_ event: WebhookEvent) async throws -> DeliveryReceipt {
        try await withCheckedThrowingContinuation { continuation in
            deliver(event, on: nil) { continuation.resume(with: $0) }
        }
    }

    public func deliver(
        _ event: WebhookEvent, on eventLoop: any EventLoop,
        completion: @escaping @Sendable (Result<DeliveryReceipt, SinkError>) -> Void
    ) {
        deliver(event, on: Optional(eventLoop), completion: completion)
    }

    /// Hands the message to librdkafka; `completion` runs with the brokers' acknowledgement
    /// on `eventLoop` (when nil, on whichever thread drains the reports).
    private func deliver(
        _ event: WebhookEvent, on eventLoop: (any EventLoop)?,
        completion: @escaping @Sendable (Result<DeliveryReceipt, SinkError>) -> Void
    ) {
        let name = self.name
        guard !stopping.load(ordering: .relaxed) else {
            onLoop(eventLoop) { completion(.failure(SinkError.unavailable(sink: name, reason: "the sink is shut down"))) }
            return
        }
        let topicName = topic.render(event, sanitizer: .kafkaTopic)
        // Names and values are copied by librdkafka straight from the strings' bytes, as the
        // attributes are visited (no list of them is made).
        producer.send(
            topic: topicName, key: key.render(event, sanitizer: .verbatim), value: event.data,
            headerCount: event.attributeCountBound,
            headers: { add in
                event.forEachAttribute { name, value in
                    if name != "datacontenttype" { add(Self.headerName(name), value) }
                }
                if let contentType = event.dataContentType { add("content-type", contentType) }
            },
            on: eventLoop
        ) { result in
            switch result {
            case .success(let delivery):
                completion(
                    .success(
                        DeliveryReceipt(
                            sink: name, place: topicName, offset: .partition(delivery.partition, offset: delivery.offset))))
            case .failure(let failure):
                let reason = "\(topicName): \(failure.description)"
                completion(
                    .failure(
                        failure.isPermanent
                            ? SinkError.rejected(sink: name, reason: reason) : SinkError.unavailable(sink: name, reason: reason)))
            }
        }
    }

    /// `ce_NAME`, made once for the attributes every event has and the trace context.
    private static func headerName(_ attribute: String) -> String {
        switch attribute {
        case "specversion": return "ce_specversion"
        case "id": return "ce_id"
        case "source": return "ce_source"
        case "type": return "ce_type"
        case "time": return "ce_time"
        case "webhookscheme": return "ce_webhookscheme"
        case "webhookkey": return "ce_webhookkey"
        case "traceparent": return "ce_traceparent"
        case "tracestate": return "ce_tracestate"
        default: return "ce_" + attribute
        }
    }

    /// Replaces `failed` (which can't produce again) with a new producer; called by the
    /// watch only, one round at a time, so once per failed producer, retried with backoff while creating
    /// one fails. Sends still waiting on the old producer fail as transient, so each is spooled
    /// or answered 503 exactly once; a message the broker did take before the failure may then
    /// be delivered twice, under the same CloudEvents id. The old producer is destroyed off the
    /// event loops once its last reference goes (see `KafkaProducer.deinit`).
    /// Returns false when no new producer could be made (the watch tries again later).
    func replaceFailedProducer(_ failed: KafkaProducer) -> Bool {
        let replacement: KafkaProducer
        do {
            replacement = try Self.makeProducer(configuration, logger: logger, counted: liveProducers)
        } catch {
            logger.error("cannot create a new kafka producer; retrying", metadata: ["kafka.error": "\(error.reason)"])
            return false
        }
        current.withLock { $0 = replacement }
        failed.stopDrainingEvents()
        if let reportLoop = reportLoop.withLock({ $0 }) { replacement.drainEvents(on: reportLoop) }
        failed.retire()
        let reason = failed.endReason ?? "unknown"
        failed.failWaiting("the producer can't produce again (\(reason)); it was replaced")
        restarts.increment()
        logger.notice("kafka producer replaced", metadata: ["kafka.error": "\(reason)"])
        warmUpConstantTopic()
        return true
    }

    /// The producer's fatal error state, for tests: raises a fabricated fatal error in the
    /// current producer (`rd_kafka_test_fatal_error`), as a fenced idempotent producer would.
    @_spi(Testing) public func raiseFatalErrorForTesting() {
        producer.raiseFatalErrorForTesting()
    }

    /// Producers replaced so far.
    @_spi(Testing) public var producerGeneration: Int { producerGenerationCount.load(ordering: .relaxed) }
    private let producerGenerationCount = Atomic<Int>(0)

    /// Producers made and not yet destroyed: back to 1 once a replaced one is gone.
    @_spi(Testing) public var liveProducerCount: Int { liveProducers.count }
    private let liveProducers = LiveProducers()

    /// A producer is replaced no sooner than this after it was made: a broker that fences
    /// every new producer at once gets one a second, not one per watch round (100 ms).
    static let minimumProducerLifetime = Duration.seconds(1)

    /// Until a graceful stop: an event loop drains librdkafka's events and watches the
    /// producer every 100 ms (``watchRound()``). Then flushes what is in flight (bounded) and
    /// fails whatever could not be delivered.
    ///
    /// One concurrency model: NIO's. Delivery reports are drained by an event loop (see
    /// KafkaProducer.drainEvents), the watch is a repeated task on that loop, and every call
    /// into librdkafka that blocks (the flush, broker probes, making a producer, metadata
    /// requests, destroying a replaced producer) runs on a NIO thread pool (``KafkaBlocking``).
    public func run() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        reportLoop.withLock { $0 = loop }
        producer.drainEvents(on: loop)
        let pool = KafkaBlocking.pool
        let watch = loop.scheduleRepeatedAsyncTask(initialDelay: .milliseconds(100), delay: .milliseconds(100)) { _ in
            let round = pool.runIfActive(eventLoop: loop) { self.watchRound() }
            self.watchRoundInProgress.withLock { $0 = round }
            return round
        }
        warmUpConstantTopic()
        try? await gracefulShutdown()
        stopping.store(true, ordering: .relaxed)
        // A future's get() is not cancelled with the task: the flush runs even if the service
        // group is cancelling.
        let flushed =
            (try? await pool.runIfActive(eventLoop: loop) {
                self.producer.flush(timeoutMilliseconds: self.flushTimeoutMilliseconds)
            }.get()) ?? false
        if !flushed { logger.warning("stopped with messages undelivered", metadata: ["kafka.in_flight": "\(producer.inFlight)"]) }
        // No round starts after this; the one in progress, if any, finishes before the last
        // drain (cancelling a repeated task does not wait for it).
        watchEnded.store(true, ordering: .relaxed)
        let watchCancelled = loop.makePromise(of: Void.self)
        watch.cancel(promise: watchCancelled)
        try? await watchCancelled.futureResult.get()
        try? await watchRoundInProgress.withLock({ $0 })?.get()
        let producer = self.producer
        producer.stopDrainingEvents()
        producer.pollEvents(timeoutMilliseconds: 0)
        producer.failWaiting("the sink stopped before the broker acknowledged")
    }

    /// The watch's latest round, awaited when the sink stops.
    private let watchRoundInProgress = Mutex<EventLoopFuture<Void>?>(nil)
    /// Set when the sink stops: a round that starts after it does nothing.
    private let watchEnded = Atomic<Bool>(false)

    /// The watch's round count, and its backoff while a new producer can't be made.
    private struct Watch {
        var round = 0
        var backoff = Duration.seconds(1)
        var pausedUntil: ContinuousClock.Instant?
    }
    private let watch = Mutex(Watch())

    /// One round of the watch (on NIO's thread pool: it may block): probes the brokers while
    /// they are reported down (so readiness comes back without a delivery), and replaces a
    /// producer that can't produce again, backing off (1 s doubling up to 30 s) while a new
    /// one can't be made.
    private func watchRound() {
        guard !watchEnded.load(ordering: .relaxed) else { return }
        let round = watch.withLock { watch -> Int? in
            if let until = watch.pausedUntil, ContinuousClock.now < until { return nil }
            watch.pausedUntil = nil
            watch.round += 1
            return watch.round
        }
        guard let round else { return }
        let producer = self.producer
        var replaced = true
        if producer.endReason != nil {
            guard ContinuousClock.now - producer.created >= Self.minimumProducerLifetime else { return }
            replaced = replaceFailedProducer(producer)
            if replaced { producerGenerationCount.add(1, ordering: .relaxed) }
        } else if !producer.isReachable, round % 10 == 0 {
            _ = producer.probeBrokers(timeoutMilliseconds: 500)
        }
        watch.withLock { watch in
            if replaced {
                watch.backoff = .seconds(1)
            } else {
                watch.pausedUntil = .now + watch.backoff
                watch.backoff = min(watch.backoff * 2, .seconds(30))
            }
        }
    }
}

/// Counts a sink's producers from creation to destruction (of the C handles), so a test can
/// see that a replaced producer is not kept alive.
private final class LiveProducers: Sendable {
    private let live = Atomic<Int>(0)

    var count: Int { live.load(ordering: .relaxed) }

    func made() { live.add(1, ordering: .relaxed) }

    func destroyed() { live.subtract(1, ordering: .relaxed) }
}

/// A `kafka` sink's settings: `brokers`, the `topic` and `key` templates, and librdkafka
/// `properties`.
public struct KafkaSinkSettings: SinkSettings {
    public var brokers: String
    public var topic: Template
    /// Default `{id}`.
    public var key: Template
    public var properties: [String: String]

    public var templates: [Template] { [topic, key] }
    public var restartDescription: String {
        "brokers=\(brokers) topic=\(topic) key=\(key) properties="
            + properties.sorted { $0.key < $1.key }.map { "\($0.key)=\(SettingFingerprint.of($0.value))" }
            .joined(separator: ",")
    }
}

/// Makes `kafka` sinks; checks `properties` with librdkafka offline.
public struct KafkaSinkFactory: EventSinkFactory {
    public init() {}

    public var type: String { "kafka" }
    public var keys: [String] { ["brokers", "topic", "key", "properties"] }

    public func read(_ reader: ConfigReader) -> KafkaSinkSettings? {
        let brokers = reader.string("brokers", required: true)
        let topic = reader.template("topic", required: true)
        let key = reader.template("key", required: false, default: "{id}")
        var properties: [String: String] = [:]
        if let props = reader.object("properties") {
            // librdkafka takes every property as text.
            for (property, value) in props.members {
                switch value {
                case .string(let text): properties[property] = text
                case .number(let text): properties[property] = text
                case .bool(let flag): properties[property] = flag ? "true" : "false"
                default: props.problem(at: property, "must be a string, number or boolean, not \(value.kindName)")
                }
            }
        }
        guard let brokers, let topic, let key else { return nil }
        return KafkaSinkSettings(brokers: brokers, topic: topic, key: key, properties: properties)
    }

    public func validate(_ settings: KafkaSinkSettings, limits: BridgeLimits) -> [ConfigProblem] {
        KafkaSink.validate(brokers: settings.brokers, properties: settings.properties, ackTimeoutMs: limits.ackTimeoutMs)
            .map { [$0] } ?? []
    }

    public func make(name: String, settings: KafkaSinkSettings, context: SinkContext) throws(ConfigProblem) -> any EventSink {
        try KafkaSink(
            name: name, brokers: settings.brokers, topic: settings.topic, key: settings.key, properties: settings.properties,
            ackTimeoutMs: context.ackTimeoutMs, logger: context.logger)
    }
}
