import WebhookCore

/// Microsoft Graph change notifications: every notification in the body's `value` carries a
/// `clientState` that must equal one of the secrets (the `clientState` given when the
/// subscription was created). Id: the body hash (a batch is one event); type: `value[0]`'s
/// `lifecycleEvent`, else its `changeType`.
///
/// Handshake: `POST ?validationToken=T` (unsigned, empty body) is answered 200 `text/plain`
/// with T URL-decoded (Microsoft Graph docs, "Set up notifications for changes in resource
/// data": notification endpoint validation).
public struct MicrosoftGraphScheme: WebhookScheme {
    public let name = "microsoft-graph"
    let tokens: SecretTokens

    public init(secrets: [String]) { self.tokens = SecretTokens(secrets) }

    public func unsignedHandshake(_ request: WebhookRequest) -> HandshakeAnswer? {
        QueryString.value("validationToken", in: request.uri).map { .text($0) }
    }

    public func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        guard case .array(let notifications)? = request.bodyJSON?["value"], !notifications.isEmpty else {
            throw .missing("the body has no value[] notifications")
        }
        var matched: Int?
        for (position, notification) in notifications.enumerated() {
            guard let state = notification["clientState"]?.scalarText else {
                throw .missing("value[\(position)].clientState is missing")
            }
            guard let index = tokens.index(of: state) else {
                throw .invalid("value[\(position)].clientState matches none of \(tokens.tokens.count) secrets")
            }
            matched = matched ?? index
        }
        let first = notifications[0]
        return VerifiedWebhook(
            id: nil, type: first["lifecycleEvent"]?.scalarText ?? first["changeType"]?.scalarText, keyIndex: matched ?? 0)
    }
}

extension Provider {
    static let microsoftGraph = Provider(
        name: "microsoft-graph", signature: "every value[i].clientState equals a secret",
        handshake: "POST ?validationToken=T (unsigned): 200 text/plain T, URL-decoded", id: "hash",
        type: "body value[0].lifecycleEvent, else value[0].changeType",
        make: { config in config.secrets.map { MicrosoftGraphScheme(secrets: $0) } },
        sign: nil
    )
    .rehearsing(MicrosoftGraphScheme.rehearsal)
}

extension MicrosoftGraphScheme {
    /// Graph's endpoint validation POST (`--secret` is not used).
    static func rehearsal(url: String, secret: String) -> HandshakeRehearsal {
        let token =
            "Validation: Testing client application reachability for subscription Request-Id: "
            + HandshakeRehearsal.challenge()
        return HandshakeRehearsal(
            method: .POST, url: HandshakeRehearsal.adding([("validationToken", token)], to: url),
            headers: [("Content-Type", "text/plain; charset=utf-8")],
            check: HandshakeRehearsal.expecting(Array(token.utf8), contentType: "text/plain"))
    }
}
