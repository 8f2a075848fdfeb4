import WebhookEncoding
import WebhookCrypto
import WebhookCore

/// Twilio: `X-Twilio-Signature: <base64 HMAC-SHA1 of URL + sorted form parameters>` keyed
/// with the auth token. For JSON bodies Twilio signs the URL alone, which then carries
/// `bodySHA256=<hex SHA-256 of the body>`; that hash is checked too. Like Twilio's SDKs, a
/// signature over the URL with its port removed or with the default port added both pass.
/// Id: `I-Twilio-Idempotency-Token`, else the body hash; type: the `MessageStatus` or
/// `CallStatus` parameter, else `twilio`.
public struct TwilioScheme: WebhookScheme {
    public let name = "twilio"
    public var signatureHeaders: [String] { ["X-Twilio-Signature"] }
    let keyring: HMACKeyring
    let publicURL: PublicURL

    public init(secrets: [String], publicURL: PublicURL) {
        self.keyring = HMACKeyring(secrets: secrets)
        self.publicURL = publicURL
    }

    public func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        guard let header = request.headers.first(name: "X-Twilio-Signature") else {
            throw .missing("X-Twilio-Signature is missing")
        }
        guard let signature = Base64.decode(header) else { throw .invalid("X-Twilio-Signature is not base64") }
        let url = publicURL.url(for: request)
        let query = url.firstIndex(of: "?").map { FormParameters.parse(url[url.index(after: $0)...].utf8) } ?? []

        var parameters: [(String, String)] = []
        if let bodyHash = query.first(where: { $0.0 == "bodySHA256" })?.1 {
            let digest = request.body.withUnsafeReadableBytes { HashAlgorithm.sha256.hash($0) }
            guard let expected = Hex.decode(bodyHash), constantTimeEquals(digest, expected) else {
                throw .invalid("bodySHA256 does not match the body")
            }
        } else if Self.isForm(request) {
            parameters = FormParameters.parse(request.body.readableBytesView)
        }
        let signedParameters = Self.canonical(parameters)
        var matched: Int?
        for candidate in PublicURL.portVariants(of: url) {
            matched = keyring.firstMatch(.sha1, [.text(candidate + signedParameters)], candidates: [signature])
            if matched != nil { break }
        }
        guard let matched else { throw .invalid("X-Twilio-Signature does not match \(keyring.tried) for \(url)") }
        let status = parameters.first { $0.0 == "MessageStatus" }?.1 ?? parameters.first { $0.0 == "CallStatus" }?.1
        return VerifiedWebhook(
            id: request.headers.first(name: "I-Twilio-Idempotency-Token"), type: status ?? "twilio", keyIndex: matched)
    }

    static func isForm(_ request: WebhookRequest) -> Bool {
        request.headers.first(name: "Content-Type")?.lowercased().hasPrefix("application/x-www-form-urlencoded") ?? false
    }

    /// Names in byte order, each name's values in byte order, concatenated as name + value.
    static func canonical(_ parameters: [(String, String)]) -> String {
        let sorted = parameters.sorted { lhs, rhs in
            lhs.0 == rhs.0 ? lhs.1.utf8.lexicographicallyPrecedes(rhs.1.utf8) : lhs.0.utf8.lexicographicallyPrecedes(rhs.0.utf8)
        }
        return sorted.reduce(into: "") { $0 += $1.0 + $1.1 }
    }
}

extension Provider {
    static let twilio = Provider(
        name: "twilio",
        signature:
            "X-Twilio-Signature: base64 HMAC-SHA1 of the public URL + sorted form parameters (JSON: of the URL, whose bodySHA256 must match)",
        id: "I-Twilio-Idempotency-Token, else hash", type: "MessageStatus / CallStatus, else twilio", keys: ["publicUrl"],
        make: { config in config.withPublicURL { TwilioScheme(secrets: $0, publicURL: $1) } },
        sign: { request throws(WebhookSigner.Failure) in
            guard var url = request.input.url else {
                throw WebhookSigner.Failure("--url: twilio signs the URL it calls; give it")
            }
            var parameters = ""
            if JSONParser.isValid(request.body) {
                url += (url.contains("?") ? "&" : "?") + "bodySHA256=" + Hex.encode(HashAlgorithm.sha256.hash(request.body))
            } else {
                parameters = TwilioScheme.canonical(FormParameters.parse(request.body))
            }
            let signature = HMACAlgorithm.sha1.mac(
                key: Array(request.secret.utf8), parts: [.text(url + parameters)])
            return WebhookSigner.Output(
                headers: [("X-Twilio-Signature", Base64.encode(signature)), ("I-Twilio-Idempotency-Token", request.id)],
                url: url)
        })
}
