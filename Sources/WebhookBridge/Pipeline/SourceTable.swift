import Metrics
import Synchronization
import WebhookCore
import WebhookProviders

/// A source with what the request path precomputes for it. The ingress resolves it once from
/// a request's head (``SourceTable/source(atPath:)``) and keeps it to the answer, so a reload
/// between the head and the body does not change what the request is checked against.
/// A class: a request's stages and the connection's state pass it along, and a struct of
/// this many references cost a retain and a release of each at every copy (a tenth of the
/// no-route path's CPU, with the connection state's copies).
final class ConfiguredSource: Sendable {
    let config: SourceConfig
    /// Something reads the body's JSON (a sink's or an attribute's `{json:/pointer}`, a
    /// filter on `body`, a transform, a split), so parse it for the event.
    let needsBodyJSON: Bool
    /// The request headers the routed sinks' and the attributes' templates read
    /// (`{header:Name}`): all an event keeps of the request's headers.
    let templateHeaders: [String]
    /// The scopes the routes' filters read.
    let filterScopes: EventFilter.Scopes
    let admission: Admission
    let metrics: SourceMetrics

    var name: String { config.name }
    var scheme: any WebhookScheme { config.scheme }

    init(
        config: SourceConfig, needsBodyJSON: Bool, templateHeaders: [String], filterScopes: EventFilter.Scopes,
        admission: Admission, metrics: SourceMetrics
    ) {
        self.config = config
        self.needsBodyJSON = needsBodyJSON
        self.templateHeaders = templateHeaders
        self.filterScopes = filterScopes
        self.admission = admission
        self.metrics = metrics
    }
}

/// The counters of one source's requests, by the dimension that varies.
struct SourceMetrics: Sendable {
    struct Verification: Hashable, Sendable {
        let result: String
        let keyIndex: Int?
    }

    /// `webhook.requests` by HTTP status.
    let requests: MetricCache<UInt, Counter>
    /// `webhook.verifications` by result and, when it verified, the secret's index.
    let verifications: MetricCache<Verification, Counter>
    /// `webhook.idempotency` by outcome.
    let idempotency: MetricCache<String, Counter>
    /// `webhook_events_filtered_total{source}`: events no route took.
    let filtered: Counter

    init(source: String) {
        requests = MetricCache { status in
            Counter(label: "webhook.requests.total", dimensions: [("webhook.source", source), ("http.status", String(status))])
        }
        verifications = MetricCache { key in
            var dimensions = [("webhook.source", source), ("webhook.result", key.result)]
            if let index = key.keyIndex { dimensions.append(("webhook.key", String(index))) }
            return Counter(label: "webhook.verifications.total", dimensions: dimensions)
        }
        filtered = Counter(label: "webhook.events.filtered.total", dimensions: [("source", source)])
        idempotency = MetricCache { outcome in
            Counter(label: "webhook.idempotency.total", dimensions: [("webhook.source", source), ("webhook.outcome", outcome)])
        }
    }
}

/// The sources by path, swapped whole by a reload (SIGHUP); a request reads it once.
final class SourceTable: Sendable {
    private let byPath: Mutex<[String: ConfiguredSource]>

    init(_ config: BridgeConfig) { byPath = Mutex(Self.sources(of: config)) }

    /// The source serving `path`, as configured now.
    func source(atPath path: String) -> ConfiguredSource? { byPath.withLock { $0[path] } }

    /// The sources' names, sorted: as the last reload left them.
    var names: [String] { byPath.withLock { $0.values.map(\.config.name) }.sorted() }

    /// Takes the sources, secrets and routes of `config`.
    func reload(_ config: BridgeConfig) {
        let sources = Self.sources(of: config)
        byPath.withLock { $0 = sources }
    }

    private static func sources(of config: BridgeConfig) -> [String: ConfiguredSource] {
        var byPath: [String: ConfiguredSource] = [:]
        for source in config.sources.values {
            let routed = source.routes.allSinks.sorted().compactMap { config.sinks[$0] }
            let attributes = ([source.attributes] + source.routes.routes.map(\.attributes)).compactMap { $0 }
            var templateHeaders: [String] = []
            for name in routed.flatMap(\.headerNames) + attributes.flatMap(\.headerNames) where !templateHeaders.contains(name) {
                templateHeaders.append(name)
            }
            let filterScopes = source.routes.filterScopes
            let needsBodyJSON =
                routed.contains(where: \.usesBodyJSON) || attributes.contains(where: \.usesBodyJSON)
                || filterScopes.contains(.body) || source.split != nil || source.transform != nil
                || source.routes.routes.contains { $0.transform != nil }
            byPath[source.path] = ConfiguredSource(
                config: source, needsBodyJSON: needsBodyJSON, templateHeaders: templateHeaders, filterScopes: filterScopes,
                admission: Admission(source: source), metrics: SourceMetrics(source: source.name))
        }
        return byPath
    }
}
