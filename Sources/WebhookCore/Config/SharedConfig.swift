/// The configuration every layer shares: the limits, one sink's entry, and how settings that
/// may hold secrets are compared without being shown. The whole configuration (sources,
/// routes, listen, spool) is the bridge's `BridgeConfig`.

/// `limits`: what every part of the bridge bounds itself by (sinks read `ackTimeoutMs`).
public struct BridgeLimits: Sendable {
    public var maxBodyBytes = 1_048_576
    public var ackTimeoutMs = 5000
    /// Extension: a connection must deliver a complete request head within this of opening
    /// or of its previous answer, else it is closed (idle keep-alive and slow heads alike).
    public var idleTimeoutMs = 30_000
    /// Extension: a request's body must arrive within this of its head, else 408 and close.
    public var bodyTimeoutMs = 30_000
    /// Extension: requests being processed at once; beyond it, 503 at once.
    public var maxConcurrentRequests = 4096
    /// Extension: header fields per request; beyond it, 431.
    public var maxHeaderCount = 100
    /// Bytes of request bodies held at once across all connections (SPEC section 8):
    /// a request that would pass it gets 503 `busy` before its body is read.
    public var maxBufferedBytes = 134_217_728
    /// Extension: the share of ``maxBufferedBytes`` one client address may hold; nil
    /// for the default, ``bufferedBytesPerClient``.
    public var maxBufferedBytesPerClient: Int?

    public init() {}

    /// What one client address may hold of the body budget: as configured, else a
    /// quarter of it (at least one body of `maxBodyBytes`), so one client can't take all.
    public var bufferedBytesPerClient: Int {
        maxBufferedBytesPerClient ?? min(maxBufferedBytes, max(maxBodyBytes, maxBufferedBytes / 4))
    }
}

/// One entry of `sinks`: what every sink has (a name, a type, `required`) and the settings
/// its own library read (``EventSinkFactory``).
public struct SinkConfig: Sendable {
    public var name: String
    /// `type`: the name of the sink library that read ``settings`` (`file`, `kafka`, `redis`).
    public var type: String
    /// `required: false` sinks never decide the answer to the provider.
    public var required = true
    public var settings: any SinkSettings

    public init(name: String, type: String, required: Bool = true, settings: any SinkSettings) {
        self.name = name
        self.type = type
        self.required = required
        self.settings = settings
    }

    /// The request headers the sink's templates read: the spool keeps them with the event.
    public var headerNames: [String] { settings.templates.flatMap(\.headerNames) }

    /// True when the sink's templates read the body as JSON.
    public var usesBodyJSON: Bool { settings.templates.contains { $0.usesBodyJSON } }
}

/// A value that may hold a secret (a URL with a password, a SASL property), compared but never
/// shown: its FNV-1a hash, for restart-only settings (what a reload cannot apply).
public enum SettingFingerprint {
    public static func of(_ value: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in value.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return String(hash, radix: 16)
    }
}
