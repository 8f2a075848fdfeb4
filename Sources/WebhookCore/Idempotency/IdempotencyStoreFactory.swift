/// An idempotency store library, as the bridge sees it: the `idempotency.store` name it
/// answers to, the reading of its own keys in `idempotency`, and the store itself. Like
/// sinks, stores are a list (`Bridge.libraries`), never a switch.
public protocol IdempotencyStoreFactory: Sendable {
    associatedtype Settings: StoreSettings

    /// `idempotency.store` (`memory`, `redis`).
    var type: String { get }
    /// Its own keys in `idempotency`, beside `store`, `ttlSeconds` and `maxKeys`.
    var keys: [String] { get }
    /// Reads its settings; nil, with the problems recorded on `reader`, when they are wrong.
    func read(_ reader: ConfigReader) -> Settings?
    /// The store. A problem that shows only now is thrown with its path relative to
    /// `idempotency`.
    func make(_ settings: Settings, config: BridgeConfig, context: SinkContext) throws(ConfigProblem)
        -> any IdempotencyStore
}

extension IdempotencyStoreFactory {
    func readSettings(_ reader: ConfigReader) -> (any StoreSettings)? { read(reader) }

    /// ``make(_:config:context:)`` for the store this factory read.
    public func make(config: BridgeConfig, context: SinkContext) throws(ConfigProblem) -> any IdempotencyStore {
        guard let settings = config.idempotency.store.settings as? Settings else {
            throw ConfigProblem(path: "store", message: "was not read by the \(type) store library")
        }
        return try make(settings, config: config, context: context)
    }
}

/// A store's own settings.
public protocol StoreSettings: Sendable {
    /// What a reload does not apply, in one line; secrets as ``BridgeConfig/fingerprint(_:)``.
    var restartDescription: String { get }
}

/// The in-process store: no settings of its own beyond `ttlSeconds` and `maxKeys`.
public struct MemoryStoreFactory: IdempotencyStoreFactory {
    public struct Settings: StoreSettings {
        public var restartDescription: String { "" }
    }

    public init() {}

    public var type: String { "memory" }
    public var keys: [String] { [] }
    public func read(_ reader: ConfigReader) -> Settings? { Settings() }

    public func make(_ settings: Settings, config: BridgeConfig, context: SinkContext) throws(ConfigProblem)
        -> any IdempotencyStore
    {
        MemoryIdempotencyStore(ttlSeconds: config.idempotency.ttlSeconds, maximumKeys: config.idempotency.maxKeys)
    }
}

/// The sink and store libraries a config is read with: each `type` in `sinks` and
/// `idempotency.store` names one of them.
public struct BridgeLibraries: Sendable {
    public var sinks: [any EventSinkFactory]
    public var stores: [any IdempotencyStoreFactory]

    public init(sinks: [any EventSinkFactory], stores: [any IdempotencyStoreFactory]) {
        self.sinks = sinks
        self.stores = stores
    }
}
