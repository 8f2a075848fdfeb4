import NIOHTTP1
import WebhookEncoding
import WebhookCrypto
import WebhookCore

/// The verifier of a ``Recipe``: every provider that signs in headers (GitHub, Stripe,
/// Shopify, Paddle, GitLab, the generic `hmac` and `token`, …) is this with its recipe.
public struct RecipeScheme: WebhookScheme {
    /// The scheme the events carry (`webhookscheme`).
    public let name: String
    let recipe: Recipe
    let keyring: HMACKeyring
    let tokens: SecretTokens
    let tolerance: Int
    /// The top-level body members the id and type read, scanned for at once.
    private let topLevelKeys: [String]

    public init(name: String, recipe: Recipe, secrets: [String], toleranceSeconds: Int) {
        self.name = name
        self.recipe = recipe
        switch recipe.proof {
        case .hmac:
            self.keyring = HMACKeyring(secrets: secrets)
            self.tokens = SecretTokens([])
        case .token:
            self.keyring = HMACKeyring(secrets: [])
            self.tokens = SecretTokens(secrets)
        }
        self.tolerance = toleranceSeconds
        self.topLevelKeys = recipe.id.topLevelKeys + recipe.type.topLevelKeys
    }

    /// `provider`'s recipe with `secrets` (a provider that is a recipe: the tests).
    init(_ provider: Provider, secrets: [String], toleranceSeconds: Int? = nil) {
        self.init(
            name: provider.name, recipe: provider.recipe!, secrets: secrets,
            toleranceSeconds: toleranceSeconds ?? provider.defaultTolerance)
    }

    public var signatureHeaders: [String] { recipe.signatureHeaders }

    public func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        let keyIndex: Int
        switch recipe.proof {
        case .token: keyIndex = try matchToken(request)
        case .hmac(let algorithm, let encoding): keyIndex = try matchMAC(request, algorithm, encoding)
        }
        let texts = topLevelKeys.isEmpty ? [] : request.topLevelTexts(topLevelKeys)
        return VerifiedWebhook(
            id: recipe.id.value(in: request, keys: topLevelKeys, texts: texts),
            type: recipe.type.value(in: request, keys: topLevelKeys, texts: texts), keyIndex: keyIndex)
    }

    /// The id and type ``verify(_:)`` would give, read without checking the signature.
    public func unverifiedIdentity(_ request: WebhookRequest) -> (id: String?, type: String?)? {
        let texts = topLevelKeys.isEmpty ? [] : request.topLevelTexts(topLevelKeys)
        return (
            recipe.id.value(in: request, keys: topLevelKeys, texts: texts),
            recipe.type.value(in: request, keys: topLevelKeys, texts: texts)
        )
    }

    private func matchToken(_ request: WebhookRequest) throws(VerificationFailure) -> Int {
        guard let value = request.headers.first(name: recipe.header) else { throw .missing("\(recipe.header) is missing") }
        guard value.hasPrefix(recipe.prefix), let index = tokens.index(of: String(value.dropFirst(recipe.prefix.count))) else {
            throw .invalid("\(recipe.header) matches none of \(tokens.tokens.count) secrets")
        }
        return index
    }

    private func matchMAC(
        _ request: WebhookRequest, _ algorithm: HMACAlgorithm, _ encoding: Recipe.SignatureEncoding
    ) throws(VerificationFailure) -> Int {
        var candidates: [[UInt8]] = []
        var timestamp: String?
        var timestampField = recipe.timestampHeader ?? ""
        if let items = recipe.items {
            guard let header = request.headers.first(name: recipe.header) else { throw .missing("\(recipe.header) is missing") }
            // Also split at spaces: WorkOS writes `t=T, v1=S`, Persona puts one `t=…,v1=…` set
            // per secret being rotated, separated by a space.
            for item in header.split(whereSeparator: { $0 == items.separator || $0 == " " }) {
                let pair = item.split(separator: "=", maxSplits: 1)
                guard pair.count == 2 else { continue }
                let key = pair[0].trimmingSpaces
                if key.elementsEqual(items.timestampKey) {
                    timestamp = timestamp ?? String(pair[1])
                } else if key.elementsEqual(items.signatureKey), candidates.count < maximumSignatureCandidates,
                    let mac = Self.decode(pair[1], encoding)
                {
                    candidates.append(mac)
                }
            }
            guard let timestamp, Int64(timestamp) != nil, !candidates.isEmpty else {
                throw .invalid("\(recipe.header) has no \(items.timestampKey)= timestamp or no \(items.signatureKey)= signature")
            }
            timestampField = "\(recipe.header) \(items.timestampKey)"
        } else {
            // One header (most providers): no list of names made per request.
            let values =
                recipe.extraHeaders.isEmpty
                ? request.headers.first(name: recipe.header).map { [$0] } ?? []
                : recipe.signatureHeaders.compactMap { request.headers.first(name: $0) }
            guard !values.isEmpty else {
                if let missing = missingSignature(in: request.headers) { throw missing }
                throw .missing("\(recipe.header) is missing")
            }
            // Every header the recipe needs is there before any is judged: missing, then invalid.
            if let timestampHeader = recipe.timestampHeader {
                timestamp = request.headers.first(name: timestampHeader)
                guard timestamp != nil else { throw .missing("\(timestampHeader) is missing") }
            }
            try checkConstantHeaders(request.headers)
            for value in values {
                let items =
                    recipe.listSeparator.map { value.split(separator: $0).map { String($0).trimmingSpaces } } ?? [value[...]]
                for item in items.prefix(maximumSignatureCandidates) where item.hasPrefix(recipe.prefix) {
                    if let decoded = Self.decode(item.dropFirst(recipe.prefix.count), encoding) { candidates.append(decoded) }
                }
            }
            guard !candidates.isEmpty else { throw .invalid("\(recipe.header) is not \(recipe.prefix)<\(encoding.rawValue)>") }
        }

        let id: String?
        if recipe.signedContent.usesID {
            id = recipe.id.value(in: request, keys: [], texts: [])
            guard id != nil else { throw .missing("the event id the signature covers is missing") }
        } else {
            id = nil
        }
        let parts = recipe.signedContent.signed(timestamp: timestamp, body: .bytes(request.body), id: id)
        guard let matched = keyring.firstMatch(algorithm, parts, candidates: candidates) else {
            let named = recipe.extraHeaders.count == 1 ? recipe.signatureHeaders.joined(separator: " / ") : recipe.header
            throw .invalid("\(named) does not match \(keyring.tried)")
        }
        if recipe.isTimestamped {
            switch recipe.timestampFormat {
            case .unixSeconds:
                try checkTimestamp(timestamp, header: timestampField, tolerance: tolerance, now: request.receivedAt)
            case .unixMilliseconds:
                guard let text = timestamp, !text.isEmpty else { throw .missing("\(timestampField) is missing") }
                guard let milliseconds = Int64(text.trimmingSpaces) else {
                    throw .invalid("\(timestampField) is not a UNIX time in milliseconds")
                }
                try checkAge(of: milliseconds / 1000, field: timestampField, tolerance: tolerance, now: request.receivedAt)
            case .rfc3339:
                guard let sent = timestamp.flatMap(Timestamp.init(rfc3339:)) else {
                    throw .invalid("\(timestampField) is not an RFC 3339 time")
                }
                try checkAge(of: sent.secondsSince1970, field: timestampField, tolerance: tolerance, now: request.receivedAt)
            }
        }
        return matched
    }

    /// The headers the provider always sends with one value: when a request carries one, it
    /// must have that value (the provider's SDK refuses another); one left out is not
    /// required, as the provider's documented signature does not cover it.
    private func checkConstantHeaders(_ headers: HTTPHeaders) throws(VerificationFailure) {
        guard !recipe.constantHeaders.isEmpty else { return }
        for constant in recipe.constantHeaders {
            if let sent = headers.first(name: constant.name), sent != constant.value {
                throw .invalid("\(constant.name) is not \(constant.value)")
            }
        }
    }

    private static func decode(_ text: Substring, _ encoding: Recipe.SignatureEncoding) -> [UInt8]? {
        encoding == .hex ? Hex.decode(text) : Base64.decode(text)
    }
}

extension Provider {
    /// The generic `hmac` scheme, for providers not built in: its recipe is its `verify`.
    static let hmac = Provider(
        name: "hmac",
        signature:
            "configured: header, algorithm (sha1/sha256/sha512), encoding (hex/base64), prefix, timestampHeader with signedContent ({timestamp}, {body}, {id})",
        id: "idHeader / idPointer, else hash", type: "typeHeader / typePointer, else webhook",
        keys: [
            "header", "algorithm", "encoding", "prefix", "timestampHeader", "signedContent", "idHeader", "idPointer",
            "typeHeader", "typePointer",
        ],
        make: { config in
            guard let recipe = Recipe.read(config.reader), let secrets = config.secrets else { return nil }
            return RecipeScheme(name: "hmac", recipe: recipe, secrets: secrets, toleranceSeconds: config.tolerance)
        },
        sign: { request throws(WebhookSigner.Failure) in
            guard let recipe = request.input.hmac else {
                throw WebhookSigner.Failure("hmac needs --signature-header (and the source's other hmac settings)")
            }
            return WebhookSigner.Output(headers: recipe.sign(request))
        })
}

extension Recipe {
    /// The generic `hmac` scheme's `verify`: every part of the recipe as configured; nil, with
    /// the problems recorded at their paths, when something is wrong.
    static func read(_ reader: ConfigReader) -> Recipe? {
        let header = reader.string("header", required: true)
        var recipe = Recipe(header: header ?? "")
        var ok = header != nil
        var algorithm = HMACAlgorithm.sha256
        var encoding = SignatureEncoding.hex
        if let text = reader.string("algorithm") {
            if let named = HMACAlgorithm(rawValue: text) {
                algorithm = named
            } else {
                reader.problem(at: "algorithm", "must be sha1, sha256 or sha512")
                ok = false
            }
        }
        if let text = reader.string("encoding") {
            if let named = SignatureEncoding(rawValue: text) {
                encoding = named
            } else {
                reader.problem(at: "encoding", "must be hex or base64")
                ok = false
            }
        }
        recipe.proof = .hmac(algorithm, encoding)
        recipe.prefix = reader.string("prefix", nonEmpty: false) ?? ""
        recipe.timestampHeader = reader.string("timestampHeader")
        if let text = reader.string("signedContent") {
            do throws(TemplateError) {
                recipe.signedContent = try SignedContent(parsing: text)
            } catch {
                reader.problem(at: "signedContent", error.message)
                ok = false
            }
        }
        switch (recipe.signedContent.usesTimestamp, recipe.timestampHeader != nil) {
        case (false, true):
            // Valid (SPEC section 4 lists the two as independent options): the header's
            // timestamp is still checked against the tolerance.
            reader.log.warn(
                reader.childPath("signedContent"),
                "has no {timestamp} while timestampHeader is set: the timestamp is checked but not signed, so a replay can carry a fresh one"
            )
        case (true, false):
            reader.problem(at: "signedContent", "uses {timestamp} but timestampHeader is not set")
            ok = false
        default:
            break
        }
        guard let places = FieldSource.readPlaces(reader, id: .none, type: .none) else { return nil }
        (recipe.id, recipe.type) = places
        if recipe.signedContent.usesID, recipe.id.places.isEmpty {
            reader.problem(at: "signedContent", "uses {id} but neither idHeader nor idPointer is set")
            ok = false
        }
        return ok ? recipe : nil
    }
}
