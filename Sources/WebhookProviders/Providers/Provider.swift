import WebhookCrypto
import WebhookCore

/// Everything about one webhook provider, in one place (its scheme's file): its name and
/// aliases, what it checks, its handshake, where its id and type come from, its `verify`
/// config keys and how they are read, and how it signs (for `sign` and `send`).
///
/// ``ProviderRegistry`` lists them; the config loader, the signer, `check-config` and the
/// `providers` command all read the registry, so a provider is added in one file plus one
/// line there.
public struct Provider: Sendable {
    /// `verify.scheme`.
    public let name: String
    /// Other names `verify.scheme` accepts for it (its scheme is told which one was written).
    public let aliases: [String]
    /// What a request must carry, in one line (for `providers` and docs/providers.md).
    public let signature: String
    /// Its setup handshake, when it has one.
    public let handshake: String?
    /// Where the event id comes from.
    public let id: String
    /// Where the event type comes from.
    public let type: String
    /// `verify` keys besides `scheme`, `secrets` and `toleranceSeconds`.
    public let keys: [String]
    /// False for a scheme that takes no `secrets` (and no tolerance): `none`.
    public let usesSecrets: Bool
    /// `verify.toleranceSeconds` when not given.
    public let defaultTolerance: Int
    let make: @Sendable (VerifyConfig) -> (any WebhookScheme)?
    /// The provider's setup request for `send --handshake`: given the target URL and
    /// `--secret` (what the handshake presents: Meta's verify token, Okta's header value,
    /// Event Grid's code).
    public var rehearsal: (@Sendable (_ url: String, _ secret: String) -> HandshakeRehearsal)?
    let signer: (@Sendable (SigningRequest) throws(WebhookSigner.Failure) -> WebhookSigner.Output)?
    /// What is wrong with a secret that is not blank but still holds no key (a bare prefix,
    /// Basic credentials with an empty part); nil when it is usable. Blank secrets are
    /// refused for every provider by the config loader.
    var secretProblem: (@Sendable (String) -> String?)?
    /// A `verify` key that, when set, makes `secrets` optional (`jwt`'s `jwksUrl`).
    var secretsOptionalWith: String?
    /// True when `secrets` may be left out (`asana` learns its secrets).
    var secretsOptional = false
    /// How it signs, for a provider that is a ``Recipe`` (its verifier, signer and
    /// description all come from it).
    public internal(set) var recipe: Recipe?

    init(
        name: String, aliases: [String] = [], signature: String, handshake: String? = nil, id: String, type: String,
        keys: [String] = [], usesSecrets: Bool = true, defaultTolerance: Int = 300,
        make: @escaping @Sendable (VerifyConfig) -> (any WebhookScheme)?,
        sign: (@Sendable (SigningRequest) throws(WebhookSigner.Failure) -> WebhookSigner.Output)?
    ) {
        self.name = name
        self.aliases = aliases
        self.signature = signature
        self.handshake = handshake
        self.id = id
        self.type = type
        self.keys = keys
        self.usesSecrets = usesSecrets
        self.defaultTolerance = defaultTolerance
        self.make = make
        self.signer = sign
    }

    /// A provider whose signing is only headers.
    init(
        name: String, aliases: [String] = [], signature: String, handshake: String? = nil, id: String, type: String,
        keys: [String] = [], usesSecrets: Bool = true, defaultTolerance: Int = 300,
        make: @escaping @Sendable (VerifyConfig) -> (any WebhookScheme)?,
        signHeaders: @escaping @Sendable (SigningRequest) throws(WebhookSigner.Failure) -> [(String, String)]
    ) {
        self.init(
            name: name, aliases: aliases, signature: signature, handshake: handshake, id: id, type: type, keys: keys,
            usesSecrets: usesSecrets, defaultTolerance: defaultTolerance, make: make,
            sign: { request throws(WebhookSigner.Failure) in WebhookSigner.Output(headers: try signHeaders(request)) })
    }

    /// The provider with its setup request for `send --handshake`.
    func rehearsing(_ make: @escaping @Sendable (_ url: String, _ secret: String) -> HandshakeRehearsal) -> Provider {
        var provider = self
        provider.rehearsal = make
        return provider
    }

    /// The provider with a check of each secret beyond blankness (see ``secretProblem``).
    func checkingSecrets(_ problem: @escaping @Sendable (String) -> String?) -> Provider {
        var provider = self
        provider.secretProblem = problem
        return provider
    }

    /// The provider with `secrets` optional when `key` is set.
    func keysFrom(_ key: String) -> Provider {
        var provider = self
        provider.secretsOptionalWith = key
        return provider
    }

    /// The provider with `secrets` optional.
    func withOptionalSecrets() -> Provider {
        var provider = self
        provider.secretsOptional = true
        return provider
    }

    /// True when `sign` and `send` can produce its requests.
    public var canSign: Bool { signer != nil }
}

/// A source's `verify` object, as a provider reads it: the common values already read, and
/// the reader for its own keys (problems go to the config's problem list with their path).
struct VerifyConfig {
    /// `verify.scheme` as written (a name or an alias).
    let scheme: String
    /// `verify.secrets`; nil when missing or invalid (already reported).
    let secrets: [String]?
    /// `verify.toleranceSeconds`, default 300.
    let tolerance: Int
    let reader: ConfigReader
    let log: ProblemLog

    /// A scheme whose secrets are keys to decode: a bad one is reported at its index.
    func withKeys(_ make: ([String]) throws(SecretError) -> any WebhookScheme) -> (any WebhookScheme)? {
        guard let secrets else { return nil }
        do {
            return try make(secrets)
        } catch {
            log.add("\(reader.childPath("secrets"))[\(error.index)]", error.reason)
            return nil
        }
    }

    /// `verify.publicUrl`, checked to be a full http(s) URL; `.failed` after a problem.
    func publicURL() -> PublicURLSetting {
        guard let text = reader.string("publicUrl") else { return .unset }
        guard text.hasPrefix("https://") || text.hasPrefix("http://") else {
            log.add(reader.childPath("publicUrl"), "must be the full URL the provider calls, starting with https://")
            return .failed
        }
        return .set(text)
    }

    enum PublicURLSetting {
        case unset, set(String), failed
    }

    /// A scheme made from `secrets` and `verify.publicUrl` (the URL-signed providers); nil
    /// after a problem (already reported).
    func withPublicURL(_ make: ([String], PublicURL) -> any WebhookScheme) -> (any WebhookScheme)? {
        let url = publicURL()
        guard let secrets else { return nil }
        switch url {
        case .failed: return nil
        case .unset: return make(secrets, PublicURL(nil))
        case .set(let text): return make(secrets, PublicURL(text))
        }
    }
}

/// What `sign` was asked for, with the pieces every provider's signing uses.
struct SigningRequest {
    let input: WebhookSigner.Input
    /// The scheme name as asked for (an alias signs with its own header names).
    let scheme: String

    var body: [UInt8] { input.body }
    var secret: String { input.secret }
    /// The timestamp as decimal text.
    var timestamp: String { String(input.timestamp) }
    /// The event id: the one asked for, else a random one (fixed for this request).
    let id: String

    init(input: WebhookSigner.Input, scheme: String) {
        self.input = input
        self.scheme = scheme
        self.id = input.id ?? WebhookSigner.randomID()
    }

    /// The HMAC of `prefix + body` (key: the secret's UTF-8 bytes unless given).
    func mac(_ algorithm: HMACAlgorithm = .sha256, prefix: String = "", suffix: String = "", key: [UInt8]? = nil) -> [UInt8] {
        var parts: [SignedPart] = []
        if !prefix.isEmpty { parts.append(.text(prefix)) }
        parts.append(.bytes(.init(bytes: body)))
        if !suffix.isEmpty { parts.append(.text(suffix)) }
        return algorithm.mac(key: key ?? Array(secret.utf8), parts: parts)
    }

    /// `[(header, type)]` when a type was asked for.
    func typed(_ header: String) -> [(String, String)] { input.type.map { [(header, $0)] } ?? [] }
}
