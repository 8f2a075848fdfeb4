import Logging
import ServiceLifecycle

/// A sink library, as the bridge sees it: the `type` it answers to, the reading and checking
/// of its own settings, and the sink itself. The config loader and the bridge hold a list of
/// these (`Bridge.libraries`) and never switch on the types of sinks: a new sink is a target
/// with one of these, plus one line in that list.
public protocol EventSinkFactory: Sendable {
    associatedtype Settings: SinkSettings

    /// The `type` of its sinks in the config (`kafka`).
    var type: String { get }
    /// Its own keys in a sink's object, beside `type` and `required`; any other is refused.
    var keys: [String] { get }
    /// Reads a sink's settings from its object; nil, with every problem recorded at its JSON
    /// path on `reader`, when they are not valid.
    func read(_ reader: ConfigReader) -> Settings?
    /// What only the library can judge (librdkafka's `properties`), found offline (no
    /// connection is made), with paths relative to the sink's object (`properties.linger.ms`).
    func validate(_ settings: Settings, limits: BridgeLimits) -> [ConfigProblem]
    /// The sink. A problem that shows only now (a file that can't be created, a certificate
    /// that can't be read) is thrown with its path relative to the sink's object.
    func make(name: String, settings: Settings, context: SinkContext) throws(ConfigProblem) -> any EventSink
}

extension EventSinkFactory {
    public func validate(_ settings: Settings, limits: BridgeLimits) -> [ConfigProblem] { [] }

    /// ``read(_:)`` for a loader that holds factories of every type.
    public func readSettings(_ reader: ConfigReader) -> (any SinkSettings)? { read(reader) }

    /// ``validate(_:limits:)`` of a sink this factory read.
    public func validate(_ sink: SinkConfig, limits: BridgeLimits) -> [ConfigProblem] {
        guard let settings = sink.settings as? Settings else { return [] }
        return validate(settings, limits: limits)
    }

    /// ``make(name:settings:context:)`` of a sink this factory read.
    public func make(_ sink: SinkConfig, context: SinkContext) throws(ConfigProblem) -> any EventSink {
        guard let settings = sink.settings as? Settings else {
            throw ConfigProblem(path: "type", message: "was not read by the \(type) sink library")
        }
        return try make(name: sink.name, settings: settings, context: context)
    }
}

/// One sink type's own settings, as its library read them.
public protocol SinkSettings: Sendable {
    /// The templates rendered for each event (the spool keeps the request headers they
    /// read; a template on the body's JSON has the body parsed).
    var templates: [Template] { get }
    /// The settings a reload does not apply, in one line that changes when any of them does;
    /// a value that may hold a secret as ``SettingFingerprint/of(_:)``.
    var restartDescription: String { get }
    /// Values no two sinks may share (one file's path), with the key that holds each.
    var exclusiveValues: [ExclusiveValue] { get }
}

extension SinkSettings {
    public var exclusiveValues: [ExclusiveValue] { [] }
}

/// A value only one sink may hold.
public struct ExclusiveValue: Sendable {
    /// The key that holds it (`path`).
    public var key: String
    public var value: String
    /// Why two sinks can't share it, said after "is also the <key> of sink <name>".
    public var reason: String

    public init(key: String, value: String, reason: String) {
        self.key = key
        self.value = value
        self.reason = reason
    }
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
