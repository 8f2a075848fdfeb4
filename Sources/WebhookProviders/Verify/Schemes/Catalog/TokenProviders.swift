import WebhookEncoding
import NIOHTTP1
import WebhookCore

/// HTTP Basic authentication: `Authorization: Basic base64(user:password)` where `user:password`
/// equals one of the secrets. A 401 carries `WWW-Authenticate: Basic realm="webhook-bridge"`.
struct BasicAuthScheme: WebhookScheme {
    var name = "basic"
    let tokens: SecretTokens
    let id: FieldSource
    let type: FieldSource

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
        return VerifiedWebhook(
            id: id.value(in: request, keys: [], texts: []), type: type.value(in: request, keys: [], texts: []) ?? "webhook",
            keyIndex: index)
    }
}

extension Provider {
    /// The generic shared-token scheme: the header `verify.header` (default `Authorization`),
    /// after `verify.prefix`, equals a secret.
    static let token = Provider(
        name: "token", signature: "the header verify.header (default Authorization), after verify.prefix, equals a secret",
        id: "idHeader / idPointer, else hash", type: "typeHeader / typePointer, else webhook",
        keys: ["header", "prefix", "idHeader", "idPointer", "typeHeader", "typePointer"],
        make: { config in
            var recipe = Recipe(config.reader.string("header") ?? "Authorization", .token)
            recipe.prefix = config.reader.string("prefix", nonEmpty: false) ?? ""
            let places = FieldSource.readPlaces(config.reader, id: .none, type: .none)
            guard let places, let secrets = config.secrets else { return nil }
            (recipe.id, recipe.type) = places
            return RecipeScheme(name: "token", recipe: recipe, secrets: secrets, toleranceSeconds: config.tolerance)
        },
        signHeaders: { request in [("Authorization", request.secret)] })

    /// GitLab: `X-Gitlab-Token` equals one of the secrets. Id: `Idempotency-Key` (kept across
    /// GitLab's retries), else `X-Gitlab-Event-UUID`; type: `X-Gitlab-Event`.
    static let gitlab = recipe(
        "gitlab",
        Recipe(
            "X-Gitlab-Token", .token, id: FieldSource([.header("Idempotency-Key"), .header("X-Gitlab-Event-UUID")]),
            type: .header("X-Gitlab-Event")))

    /// Telegram Bot API: `X-Telegram-Bot-Api-Secret-Token` equals the `secret_token` given to
    /// setWebhook. Id: body `update_id`; type: the update's other field (`message`,
    /// `callback_query`, …).
    static let telegram = recipe(
        "telegram",
        Recipe(
            "X-Telegram-Bot-Api-Secret-Token", .token, id: .pointer("/update_id"),
            type: FieldSource([
                .computed("the update's field other than update_id (message, callback_query, …)") { request in
                    guard case .object(let members)? = request.bodyJSON else { return nil }
                    return members.first { $0.0 != "update_id" }?.0
                }
            ])))

    /// HTTP Basic authentication; each secret is `user:password`.
    static let basic = basicPreset("basic")

    /// A provider that authenticates with HTTP Basic credentials (Azure DevOps, Chargebee,
    /// Postmark, Pipedrive): `basic` with the provider's id and type.
    static func basicPreset(_ name: String, id: FieldSource = .none, type: FieldSource = .none) -> Provider {
        Provider(
            name: name,
            signature: "Authorization: Basic credentials whose user:password equals a secret (401 with WWW-Authenticate: Basic)",
            id: id.places.isEmpty ? "idHeader / idPointer, else hash" : id.summary,
            type: type.places.isEmpty ? "typeHeader / typePointer, else webhook" : type.summary,
            keys: ["idHeader", "idPointer", "typeHeader", "typePointer"],
            make: { config in
                guard let places = FieldSource.readPlaces(config.reader, id: id, type: type), let secrets = config.secrets
                else { return nil }
                return BasicAuthScheme(name: name, tokens: SecretTokens(secrets), id: places.id, type: places.type)
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
}
