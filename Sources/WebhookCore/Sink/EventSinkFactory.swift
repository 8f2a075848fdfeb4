import Logging
import ServiceLifecycle

/// What a sink target offers the bridge: the checks of a sink's settings that only its
/// library can make, and the sink itself. The bridge holds a list of factories and asks each
/// in turn; it never switches on the kinds of sinks.
public protocol EventSinkFactory: Sendable {
    /// Problems with `sink`'s settings, found offline (no connection is made), with paths
    /// relative to the sink's object (`properties.linger.ms`); none for a sink of another kind.
    func validate(_ sink: SinkConfig, limits: BridgeConfig.Limits) -> [ConfigProblem]
    /// The sink for `sink`, or nil when it is of another kind. A problem that shows only now
    /// (a file that can't be created, a certificate that can't be read) is thrown with its
    /// path relative to the sink's object.
    func make(_ sink: SinkConfig, context: SinkContext) throws(ConfigProblem) -> (any EventSink)?
}

/// What sinks are made with.
public struct SinkContext: Sendable {
    /// `limits.ackTimeoutMs`: how long a delivery may take.
    public let ackTimeoutMs: Int
    public let logger: Logger
    /// Clients that several sinks (and the idempotency store) share, such as one Redis
    /// client per URL.
    public let shared: SharedClients

    public init(ackTimeoutMs: Int, logger: Logger, shared: SharedClients) {
        self.ackTimeoutMs = ackTimeoutMs
        self.logger = logger
        self.shared = shared
    }
}

/// Clients made once per key while the bridge starts and shared by whatever names the same
/// key; those that are services run before the sinks and stop after them.
public final class SharedClients: @unchecked Sendable {
    // Used only while the bridge is built, from one task; read-only afterwards.
    private var byKey: [String: any Sendable] = [:]
    public private(set) var services: [any Service] = []

    public init() {}

    /// The client for `key`, made by `make` the first time.
    public func client<Client: Sendable>(_ key: String, make: () throws(ConfigProblem) -> Client) throws(ConfigProblem)
        -> Client
    {
        if let client = byKey[key] as? Client { return client }
        let client = try make()
        byKey[key] = client
        if let service = client as? any Service { services.append(service) }
        return client
    }
}
