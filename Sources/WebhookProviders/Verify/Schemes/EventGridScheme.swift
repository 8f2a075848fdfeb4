import WebhookEncoding
import NIOHTTP1
import WebhookCore

/// Azure Event Grid (Event Grid schema): the query parameter `verify.queryParameter`
/// (default `code`) of the subscription's endpoint URL equals one of the secrets. Id: body
/// `[0].id`; type: body `[0].eventType` (a batch is one event).
///
/// Handshakes (Event Grid docs, "Endpoint validation"): a POST with
/// `aeg-event-type: SubscriptionValidation` (query parameter checked) is answered 200
/// `{"validationResponse": body[0].data.validationCode}`; CloudEvents abuse protection, an
/// `OPTIONS` with `WebHook-Request-Origin: O`, is answered 200 with `WebHook-Allowed-Origin: O`
/// and `Allow: POST`.
public struct EventGridScheme: WebhookScheme {
    public let name = "event-grid"
    let parameter: String
    let tokens: SecretTokens

    public init(secrets: [String], queryParameter: String) {
        self.parameter = queryParameter
        self.tokens = SecretTokens(secrets)
    }

    public var handshakeMethods: [HTTPMethod] { [.OPTIONS] }

    public func answerHandshake(_ request: HandshakeRequest) -> HandshakeAnswer {
        guard let origin = request.headers.first(name: "WebHook-Request-Origin") else {
            return .invalid("WebHook-Request-Origin")
        }
        return HandshakeAnswer(body: [], contentType: nil, headers: [("WebHook-Allowed-Origin", origin), ("Allow", "POST")])
    }

    /// The code is in the URL: a missing or wrong one is refused before the body is read.
    public func refusalFromHead(uri: String, headers: HTTPHeaders) -> VerificationFailure? {
        do {
            _ = try authorize(uri: uri)
            return nil
        } catch {
            return error
        }
    }

    private func authorize(uri: String) throws(VerificationFailure) -> Int {
        guard let presented = QueryString.value(parameter, in: uri) else {
            throw .missing("the query parameter \(parameter) is missing")
        }
        guard let index = tokens.index(of: presented) else {
            throw .invalid("the query parameter \(parameter) matches none of \(tokens.tokens.count) secrets")
        }
        return index
    }

    public func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        let index = try authorize(uri: request.uri)
        let json = request.bodyJSON
        if request.headers.first(name: "aeg-event-type") == "SubscriptionValidation" {
            guard let code = json?.value(atPointer: "/0/data/validationCode")?.scalarText else {
                return VerifiedWebhook(
                    id: nil, type: "SubscriptionValidation", keyIndex: index, handshake: .invalid("[0].data.validationCode"))
            }
            return VerifiedWebhook(
                id: nil, type: "SubscriptionValidation", keyIndex: index,
                handshake: HandshakeAnswer(body: JSONWriter.object(["validationResponse": code])))
        }
        return VerifiedWebhook(
            id: json?.value(atPointer: "/0/id")?.scalarText, type: json?.value(atPointer: "/0/eventType")?.scalarText,
            keyIndex: index)
    }
}

extension Provider {
    static let eventGrid = Provider(
        name: "event-grid", signature: "the query parameter verify.queryParameter (default code) equals a secret",
        handshake:
            "POST with aeg-event-type: SubscriptionValidation: 200 {\"validationResponse\": …}; OPTIONS with WebHook-Request-Origin: 200 WebHook-Allowed-Origin",
        id: "body [0].id", type: "body [0].eventType", keys: ["queryParameter"],
        make: { config in
            let parameter = config.reader.string("queryParameter") ?? "code"
            return config.secrets.map { EventGridScheme(secrets: $0, queryParameter: parameter) }
        },
        sign: { request throws(WebhookSigner.Failure) in
            // The secret travels in the endpoint URL's query, as Event Grid calls it.
            guard let url = request.input.url else {
                throw WebhookSigner.Failure("--url: event-grid puts the secret in the URL's code parameter; give the URL")
            }
            let separator = url.contains("?") ? "&" : "?"
            return WebhookSigner.Output(
                headers: [("aeg-event-type", "Notification")],
                url: url + separator + "code=" + FormParameters.encode(request.secret))
        }
    )
    .rehearsing(EventGridScheme.rehearsal)
}

extension EventGridScheme {
    /// Event Grid's SubscriptionValidation POST, with `--secret` as the code parameter.
    static func rehearsal(url: String, secret: String) -> HandshakeRehearsal {
        let code = HandshakeRehearsal.challenge()
        var body: [UInt8] = []
        JSONWriter.append(
            .array([
                .object([
                    ("id", .string(WebhookSigner.randomID())), ("topic", .string("/rehearsal")), ("subject", .string("")),
                    ("data", .object([("validationCode", .string(code))])),
                    ("eventType", .string("Microsoft.EventGrid.SubscriptionValidationEvent")),
                    ("eventTime", .string(Timestamp.now().rfc3339)), ("metadataVersion", .string("1")),
                    ("dataVersion", .string("1")),
                ])
            ]), to: &body)
        return HandshakeRehearsal(
            method: .POST, url: HandshakeRehearsal.adding([("code", secret)], to: url),
            headers: [("aeg-event-type", "SubscriptionValidation"), ("Content-Type", "application/json")], body: body,
            check: HandshakeRehearsal.expecting(JSONWriter.object(["validationResponse": code])))
    }
}
