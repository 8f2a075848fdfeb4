import WebhookEncoding
import NIOHTTP1
import WebhookCore

/// Okta event hooks: the header `verify.header` (default `Authorization`) equals one of the
/// secrets (Okta sends the configured value as it is). Id: body `eventId`; type: body
/// `data.events[0].eventType`.
///
/// Handshake: a `GET` with `X-Okta-Verification-Challenge: C` (and the same header check) is
/// answered 200 `{"verification": C}` (Okta's event hooks guide: "One-time verification
/// request").
public struct OktaScheme: WebhookScheme {
    public let name = "okta"
    let header: String
    let tokens: SecretTokens

    public init(secrets: [String], header: String) {
        self.header = header
        self.tokens = SecretTokens(secrets)
    }

    public var signatureHeaders: [String] { [header] }
    public var handshakeMethods: [HTTPMethod] { [.GET] }

    public func answerHandshake(_ request: HandshakeRequest) -> HandshakeAnswer {
        do throws(VerificationFailure) {
            _ = try authorize(request.headers)
        } catch {
            return HandshakeAnswer(status: 401, body: JSONWriter.object(["error": error.code]))
        }
        guard let challenge = request.headers.first(name: "X-Okta-Verification-Challenge") else {
            return .invalid("X-Okta-Verification-Challenge")
        }
        return HandshakeAnswer(body: JSONWriter.object(["verification": challenge]))
    }

    public func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        let index = try authorize(request.headers)
        let json = request.bodyJSON
        return VerifiedWebhook(
            id: json?["eventId"]?.scalarText, type: json?.value(atPointer: "/data/events/0/eventType")?.scalarText,
            keyIndex: index)
    }

    private func authorize(_ headers: HTTPHeaders) throws(VerificationFailure) -> Int {
        guard let presented = headers.first(name: header) else { throw .missing("\(header) is missing") }
        guard let index = tokens.index(of: presented) else {
            throw .invalid("\(header) matches none of \(tokens.tokens.count) secrets")
        }
        return index
    }
}

extension Provider {
    static let okta = Provider(
        name: "okta", signature: "the header verify.header (default Authorization) equals a secret",
        handshake: "GET with X-Okta-Verification-Challenge: C (header checked): 200 {\"verification\": C}",
        id: "body eventId", type: "body data.events[0].eventType", keys: ["header"],
        make: { config in
            let header = config.reader.string("header") ?? "Authorization"
            return config.secrets.map { OktaScheme(secrets: $0, header: header) }
        },
        signHeaders: { request in [("Authorization", request.secret)] }
    )
    .rehearsing(OktaScheme.rehearsal)
}

extension OktaScheme {
    /// Okta's one-time verification GET, with `--secret` as the Authorization value.
    static func rehearsal(url: String, secret: String) -> HandshakeRehearsal {
        let challenge = HandshakeRehearsal.challenge()
        return HandshakeRehearsal(
            method: .GET, url: url, headers: [("Authorization", secret), ("X-Okta-Verification-Challenge", challenge)],
            check: HandshakeRehearsal.expecting(JSONWriter.object(["verification": challenge])))
    }
}
