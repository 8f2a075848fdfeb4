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
    /// The store, keeping keys `ttlSeconds` (`idempotency.ttlSeconds`) and at most `maxKeys`
    /// where it bounds them. A problem that shows only now is thrown with its path relative
    /// to `idempotency`.
    func make(_ settings: Settings, bounds: IdempotencyBounds, context: SinkContext) throws(ConfigProblem)
        -> any IdempotencyStore
}

/// What every store keeps to: `idempotency.ttlSeconds` and `idempotency.maxKeys`, and the
/// sinks' acknowledgement timeout (a reservation outlives a delivery).
public struct IdempotencyBounds: Sendable {
    public var ttlSeconds: Int
    public var maxKeys: Int
    public var ackTimeoutMs: Int

    public init(ttlSeconds: Int, maxKeys: Int, ackTimeoutMs: Int) {
        self.ttlSeconds = ttlSeconds
        self.maxKeys = maxKeys
        self.ackTimeoutMs = ackTimeoutMs
    }
}

extension IdempotencyStoreFactory {
    public func readSettings(_ reader: ConfigReader) -> (any StoreSettings)? { read(reader) }

    /// ``make(_:bounds:context:)`` for settings this factory read.
    public func make(settings: any StoreSettings, bounds: IdempotencyBounds, context: SinkContext) throws(ConfigProblem)
        -> any IdempotencyStore
    {
        guard let settings = settings as? Settings else {
            throw ConfigProblem(path: "store", message: "was not read by the \(type) store library")
        }
        return try make(settings, bounds: bounds, context: context)
    }
}

/// A store's own settings.
public protocol StoreSettings: Sendable {
    /// What a reload does not apply, in one line; secrets as ``SettingFingerprint/of(_:)``.
    var restartDescription: String { get }
}

/// The in-process store: no settings of its own beyond `ttlSeconds` and `maxKeys`.
public struct MemoryStoreFactory: IdempotencyStoreFactory {
    public struct Settings: StoreSettings {
        public init() {}
        public var restartDescription: String { "" }
    }

    public init() {}

    public var type: String { "memory" }
    public var keys: [String] { [] }
    public func read(_ reader: ConfigReader) -> Settings? { Settings() }

    public func make(_ settings: Settings, bounds: IdempotencyBounds, context: SinkContext) throws(ConfigProblem)
        -> any IdempotencyStore
    {
        MemoryIdempotencyStore(ttlSeconds: bounds.ttlSeconds, maximumKeys: bounds.maxKeys)
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
