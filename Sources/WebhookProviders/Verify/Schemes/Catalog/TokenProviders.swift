import WebhookEncoding
import NIOHTTP1
import WebhookCore

/// A shared secret the provider sends back as it is, in a header (after an optional prefix
/// such as `Bearer `), compared in constant time: the generic `token` scheme and Telegram's
/// `X-Telegram-Bot-Api-Secret-Token`. Id and type as configured (`idHeader`/`idPointer`,
/// `typeHeader`/`typePointer`), else the defaults given.
struct TokenScheme: WebhookScheme {
    let name: String
    let header: String
    let prefix: String
    let tokens: SecretTokens
    let id: IDSource
    let type: IDSource
    let refine: (@Sendable (inout VerifiedWebhook, WebhookRequest) -> Void)?

    var signatureHeaders: [String] { [header] }

    func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        guard let value = request.headers.first(name: header) else { throw .missing("\(header) is missing") }
        guard value.hasPrefix(prefix), let index = tokens.index(of: String(value.dropFirst(prefix.count))) else {
            throw .invalid("\(header) matches none of \(tokens.tokens.count) secrets")
        }
        var verified = VerifiedWebhook(id: id.value(in: request), type: type.value(in: request), keyIndex: index)
        refine?(&verified, request)
        return verified
    }
}

/// HTTP Basic authentication: `Authorization: Basic base64(user:password)` where `user:password`
/// equals one of the secrets. A 401 carries `WWW-Authenticate: Basic realm="webhook-bridge"`.
struct BasicAuthScheme: WebhookScheme {
    let name = "basic"
    let tokens: SecretTokens
    let id: IDSource
    let type: IDSource

    var signatureHeaders: [String] { ["Authorization"] }
    var unauthorizedHeaders: [(String, String)] { [("WWW-Authenticate", #"Basic realm="webhook-bridge""#)] }

    func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        guard let value = request.headers.first(name: "Authorization") else { throw .missing("Authorization is missing") }
        guard value.count > 6, value.prefix(6).lowercased() == "basic ", let decoded = Base64.decode(value.dropFirst(6)) else {
            throw .invalid("Authorization is not Basic credentials")
        }
        guard let index = tokens.index(of: String(decoding: decoded, as: UTF8.self)) else {
            throw .invalid("the Basic credentials match none of \(tokens.tokens.count) secrets")
        }
        return VerifiedWebhook(id: id.value(in: request), type: type.value(in: request) ?? "webhook", keyIndex: index)
    }
}

/// Where an id or a type comes from: a header, a body field, or nowhere.
struct IDSource: Sendable {
    var header: String?
    var pointer: String?

    func value(in request: WebhookRequest) -> String? {
        header.flatMap { request.headers.first(name: $0) }
            ?? pointer.flatMap { request.bodyJSON?.value(atPointer: $0)?.scalarText }
    }

    /// Reads `idHeader`/`idPointer` (or `typeHeader`/`typePointer`) of `verify`.
    static func read(_ prefix: String, from config: VerifyConfig, default fallback: IDSource) -> IDSource? {
        let header = config.reader.string(prefix + "Header")
        let pointer = config.reader.string(prefix + "Pointer")
        if let pointer, !pointer.hasPrefix("/") {
            config.log.add(config.reader.childPath(prefix + "Pointer"), "must be a JSON pointer starting with /")
            return nil
        }
        if header == nil, pointer == nil { return fallback }
        return IDSource(header: header, pointer: pointer)
    }
}

extension VerifyConfig {
    /// The id and type sources (`idHeader`/`idPointer`, `typeHeader`/`typePointer` over the
    /// provider's defaults) and the secrets; nil after a problem (already reported).
    func sources(id: IDSource, type: IDSource) -> (id: IDSource, type: IDSource, secrets: [String])? {
        guard let idSource = IDSource.read("id", from: self, default: id),
            let typeSource = IDSource.read("type", from: self, default: type), let secrets
        else { return nil }
        return (idSource, typeSource, secrets)
    }
}

extension Provider {
    /// The generic shared-token scheme.
    static let token = Provider(
        name: "token", signature: "the header verify.header (default Authorization), after verify.prefix, equals a secret",
        id: "idHeader / idPointer, else hash", type: "typeHeader / typePointer, else webhook",
        keys: ["header", "prefix", "idHeader", "idPointer", "typeHeader", "typePointer"],
        make: { config in
            let header = config.reader.string("header") ?? "Authorization"
            let prefix = config.reader.string("prefix", nonEmpty: false) ?? ""
            guard let found = config.sources(id: IDSource(), type: IDSource()) else { return nil }
            let (id, type, secrets) = found
            return TokenScheme(
                name: "token", header: header, prefix: prefix, tokens: SecretTokens(secrets), id: id, type: type,
                refine: { verified, _ in if verified.type == nil { verified.type = "webhook" } })
        },
        signHeaders: { request in [("Authorization", request.secret)] })

    /// Telegram Bot API: `X-Telegram-Bot-Api-Secret-Token` equals the `secret_token` given to
    /// setWebhook. Id: body `update_id`; type: the update's other field (`message`,
    /// `callback_query`, …).
    static let telegram = Provider(
        name: "telegram", signature: "X-Telegram-Bot-Api-Secret-Token equals a secret", id: "body update_id",
        type: "the update's field other than update_id (message, callback_query, …)",
        keys: ["idHeader", "idPointer", "typeHeader", "typePointer"],
        make: { config in
            guard let found = config.sources(id: IDSource(pointer: "/update_id"), type: IDSource()) else { return nil }
            let (id, type, secrets) = found
            let typeConfigured = config.reader.has("typeHeader") || config.reader.has("typePointer")
            let updateKind: @Sendable (inout VerifiedWebhook, WebhookRequest) -> Void = { verified, request in
                if case .object(let members)? = request.bodyJSON {
                    verified.type = members.first { $0.0 != "update_id" }?.0
                }
            }
            return TokenScheme(
                name: "telegram", header: "X-Telegram-Bot-Api-Secret-Token", prefix: "", tokens: SecretTokens(secrets), id: id,
                type: type, refine: typeConfigured ? nil : updateKind)
        },
        signHeaders: { request in [("X-Telegram-Bot-Api-Secret-Token", request.secret)] })

    /// HTTP Basic authentication; each secret is `user:password`.
    static let basic = Provider(
        name: "basic",
        signature: "Authorization: Basic credentials whose user:password equals a secret (401 with WWW-Authenticate: Basic)",
        id: "idHeader / idPointer, else hash", type: "typeHeader / typePointer, else webhook",
        keys: ["idHeader", "idPointer", "typeHeader", "typePointer"],
        make: { config in
            guard let found = config.sources(id: IDSource(), type: IDSource()) else { return nil }
            let (id, type, secrets) = found
            return BasicAuthScheme(tokens: SecretTokens(secrets), id: id, type: type)
        },
        signHeaders: { request in [("Authorization", "Basic " + Base64.encode(Array(request.secret.utf8)))] }
    )
    .checkingSecrets { secret in
        // RFC 7617: the user id ends at the first colon; the password may hold more.
        guard let colon = secret.firstIndex(of: ":") else { return nil }
        let user = secret[..<colon]
        let password = secret[secret.index(after: colon)...]
        guard !user.allSatisfy(\.isWhitespace), !password.allSatisfy(\.isWhitespace) else {
            return "user:password with an empty user or password (are the variables it is made of set?)"
        }
        return nil
    }
}
