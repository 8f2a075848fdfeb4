import Spool
import WebhookCore
import WebhookProviders

/// A validated config file (SPEC section 3). Built only by ``ConfigLoader``, so every value
/// here has been checked: templates parse, sink names resolve, secrets decode.
public struct BridgeConfig: Sendable {
    public var listen: Listen
    public var limits: Limits
    public var idempotency: Idempotency
    public var spool: Spool?
    /// Request spans exported over OTLP; nil: no spans (an incoming `traceparent` is still
    /// passed on to the events).
    public var tracing: Tracing?
    /// The inspector's listener; nil: no inspector.
    public var admin: Admin?
    /// Networks whose `X-Forwarded-For` is believed.
    public var trustedProxies: [CIDR]
    /// Sinks by name.
    public var sinks: [String: SinkConfig]
    /// Sources by name.
    public var sources: [String: SourceConfig]
    /// Valid but probably not meant (a route no event can reach): `check-config` prints them
    /// and `serve` logs them; neither refuses the config.
    public var warnings: [ConfigProblem] = []

    /// `listen`.
    public struct Listen: Sendable {
        public var host = "0.0.0.0"
        public var port = 8080
        public var tls: TLS?
    }

    /// `listen.tls`: PEM files.
    public struct TLS: Sendable {
        public var certificate: String
        public var privateKey: String
    }

    /// `limits`.
    public typealias Limits = BridgeLimits

    /// `admin`: the inspector's own listener, its bearer token, and what it keeps.
    public struct Admin: Sendable {
        public var host = "127.0.0.1"
        public var port = 9090
        public var token: String
        /// Requests (and accepted events) kept.
        public var recent = 1000
        /// Of each body, the bytes kept.
        public var maxBodyBytes = 65536
    }

    /// `idempotency`.
    public struct Idempotency: Sendable {
        /// `store` and the settings its library read.
        public struct Store: Sendable {
            public var type: String
            public var settings: any StoreSettings

            public init(type: String, settings: any StoreSettings) {
                self.type = type
                self.settings = settings
            }
        }
        public var store = Store(type: "memory", settings: MemoryStoreFactory.Settings())
        public var ttlSeconds = 86_400
        /// Bound on the memory store (an extension of SPEC's keys).
        public var maxKeys = 1_000_000
    }

    /// `spool`.
    public struct Spool: Sendable {
        public var directory: String
        public var maxBytes = 1_073_741_824
        /// `retry`: when spooled events are tried again, and for how long.
        public var retry = RetryPolicy()
    }

    /// `tracing`.
    public struct Tracing: Sendable, Equatable {
        public enum Transport: String, Sendable, CaseIterable {
            case httpProtobuf = "http/protobuf"
            case httpJSON = "http/json"
            case grpc
        }

        /// The collector, as configured.
        public var otlpEndpoint: String
        public var serviceName = "webhook-bridge"
        /// The share of new traces recorded; a request that carries a `traceparent` follows
        /// its sampled flag instead.
        public var sampleRatio = 1.0
        /// `protocol`: by default gRPC when the endpoint's port is 4317 (the OTLP/gRPC port),
        /// else HTTP with protobuf bodies.
        public var transport: Transport
        /// The OTLP exporters a build has: OTLP/HTTP always (the bridge's own exporter),
        /// OTLP/gRPC with the package trait `OTLPGRPC` (swift-otel's) as well.
        public struct Exporters: Sendable {
            public var grpc: Bool

            public init(grpc: Bool) {
                self.grpc = grpc
            }

            /// This build's.
            public static let built: Exporters = {
                #if OTLPGRPC
                    return Exporters(grpc: true)
                #else
                    return Exporters(grpc: false)
                #endif
            }()
        }
        /// Sent with every export (a vendor's API key).
        public var headers: [String: String] = [:]

        /// Where spans are sent: the endpoint itself for gRPC and for an HTTP endpoint that
        /// names `/v1/traces`, else the endpoint with `/v1/traces` appended (OTLP's base URL
        /// convention).
        public var tracesURL: String { transport == .grpc ? otlpEndpoint : Self.httpTracesURL(otlpEndpoint) }

        /// OTLP/HTTP's traces URL for `base`: `/v1/traces` appended unless it is there.
        static func httpTracesURL(_ base: String) -> String {
            if base.hasSuffix("/v1/traces") { return base }
            var trimmed = Substring(base)
            while trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
            return trimmed + "/v1/traces"
        }
    }

    /// Sources sorted by name, for stable output.
    public var sortedSources: [SourceConfig] { sources.values.sorted { $0.name < $1.name } }
}

/// One entry of `sources`.
public struct SourceConfig: Sendable {
    public var name: String
    public var path: String
    public var scheme: any WebhookScheme
    public var routes: RouteTable
    public var allow: [CIDR]?
    public var rateLimit: RateLimit?
    /// `split`: the batch a body carries (a preset for providers that batch); nil: one event
    /// a request.
    public var split: BatchSplit?
    /// `transform` and `attributes`: applied to every event, before routing.
    public var transform: JSONPatch?
    public var attributes: EventAttributes?
    /// `respond`: answers other than the bridge's JSON for taken events.
    public var respond: CustomAnswers?

    /// `rateLimit`: a token bucket.
    public struct RateLimit: Sendable, Equatable {
        public var perSecond: Double
        public var burst: Int
    }
}

// MARK: - What a reload can't apply

extension BridgeConfig {
    /// The settings a SIGHUP reload does not apply (SPEC section 8: everything but sources,
    /// secrets and routes), each as `json.path: value`, for telling which changed. Secrets
    /// never appear here: Redis URLs are shown without their password.
    public var restartOnlySettings: [String: String] {
        var settings: [String: String] = [
            "listen.host": listen.host, "listen.port": String(listen.port),
            "listen.tls": listen.tls == nil ? "off" : "on",
            "limits.maxBodyBytes": String(limits.maxBodyBytes), "limits.ackTimeoutMs": String(limits.ackTimeoutMs),
            "limits.idleTimeoutMs": String(limits.idleTimeoutMs), "limits.bodyTimeoutMs": String(limits.bodyTimeoutMs),
            "limits.maxConcurrentRequests": String(limits.maxConcurrentRequests),
            "limits.maxHeaderCount": String(limits.maxHeaderCount),
            "limits.maxBufferedBytes": String(limits.maxBufferedBytes),
            "limits.maxBufferedBytesPerClient": String(limits.bufferedBytesPerClient),
            "idempotency.ttlSeconds": String(idempotency.ttlSeconds), "idempotency.maxKeys": String(idempotency.maxKeys),
            "spool": spool.map { "\($0.directory) \($0.maxBytes)" } ?? "off",
            "spool.retry": spool.map {
                "\($0.retry.initial) \($0.retry.maximum) \($0.retry.multiplier) \($0.retry.maxAge)"
            } ?? "off",
            "tracing": tracing.map {
                "\($0.transport.rawValue) \($0.tracesURL) \($0.serviceName) \($0.sampleRatio) "
                    + $0.headers.sorted { $0.key < $1.key }.map { "\($0.key)=\(Self.fingerprint($0.value))" }.joined(
                        separator: ",")
            } ?? "off",
            "admin": admin.map { "\($0.host):\($0.port) \($0.recent) \($0.maxBodyBytes) \(Self.fingerprint($0.token))" } ?? "off",
            "trustedProxies": trustedProxies.map { "\($0)" }.joined(separator: ","),
        ]
        settings["idempotency.store"] = "\(idempotency.store.type) \(idempotency.store.settings.restartDescription)"
        for sink in sinks.values {
            settings["sinks.\(sink.name)"] = "\(sink.type) required=\(sink.required) \(sink.settings.restartDescription)"
        }
        return settings
    }

    /// The restart-only settings whose value differs between `self` and `other` (added and
    /// removed ones included), sorted.
    public func restartOnlyChanges(to other: BridgeConfig) -> [String] {
        let old = restartOnlySettings
        let new = other.restartOnlySettings
        return Set(old.keys).union(new.keys).filter { old[$0] != new[$0] }.sorted()
    }

    /// A value that may hold a secret (a URL with a password, a SASL property), compared but
    /// never shown: its hash (``SettingFingerprint``).
    public static func fingerprint(_ value: String) -> String { SettingFingerprint.of(value) }
}
