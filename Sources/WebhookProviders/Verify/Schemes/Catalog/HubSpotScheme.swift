import WebhookEncoding
import WebhookCrypto
import WebhookCore

/// HubSpot (signature v3): `X-HubSpot-Signature-v3: <base64 HMAC-SHA256 of method + URL +
/// body + X-HubSpot-Request-Timestamp>` keyed with the app's client secret; the timestamp is
/// in milliseconds and must be within the tolerance. The URL is the one HubSpot called, with
/// its query: `verify.publicUrl` (as for `twilio`), percent-escapes of `:/?@!$'()*,;`
/// decoded as HubSpot's SDKs do. Id: the body hash (a batch is one event); type: body
/// `[0].subscriptionType`.
struct HubSpotScheme: WebhookScheme {
    let name = "hubspot"
    let keyring: HMACKeyring
    let publicURL: PublicURL
    let tolerance: Int

    var signatureHeaders: [String] { ["X-HubSpot-Signature-v3"] }

    func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        guard let header = request.headers.first(name: "X-HubSpot-Signature-v3") else {
            throw .missing("X-HubSpot-Signature-v3 is missing")
        }
        guard let timestamp = request.headers.first(name: "X-HubSpot-Request-Timestamp") else {
            throw .missing("X-HubSpot-Request-Timestamp is missing")
        }
        guard let milliseconds = Int64(timestamp) else { throw .invalid("X-HubSpot-Request-Timestamp is not a number") }
        guard let signature = Base64.decode(header) else { throw .invalid("X-HubSpot-Signature-v3 is not base64") }
        let url = Self.decoded(publicURL.url(for: request))
        guard
            let index = keyring.firstMatch(
                .sha256, [.text("POST" + url), .bytes(request.body), .text(timestamp)], candidates: [signature])
        else { throw .invalid("X-HubSpot-Signature-v3 does not match \(keyring.tried) for \(url)") }
        try checkAge(
            of: milliseconds / 1000, field: "X-HubSpot-Request-Timestamp", tolerance: tolerance, now: request.receivedAt)
        return VerifiedWebhook(
            id: nil, type: request.bodyJSON?.value(atPointer: "/0/subscriptionType")?.scalarText, keyIndex: index)
    }

    /// The URL as HubSpot signs it: these escapes decoded.
    static func decoded(_ url: String) -> String {
        var text = url
        for (escape, character) in [
            ("%3A", ":"), ("%2F", "/"), ("%3F", "?"), ("%40", "@"), ("%21", "!"), ("%24", "$"), ("%27", "'"), ("%28", "("),
            ("%29", ")"), ("%2A", "*"), ("%2C", ","), ("%3B", ";"),
        ] {
            text = text.replacing(escape, with: character).replacing(escape.lowercased(), with: character)
        }
        return text
    }
}

extension Provider {
    static let hubspot = Provider(
        name: "hubspot",
        signature:
            "X-HubSpot-Signature-v3: base64 HMAC-SHA256 of method + publicUrl (with query) + body + X-HubSpot-Request-Timestamp (ms, within tolerance)",
        id: "hash", type: "body [0].subscriptionType", keys: ["publicUrl"],
        make: { config in
            config.withPublicURL { HubSpotScheme(keyring: HMACKeyring(secrets: $0), publicURL: $1, tolerance: config.tolerance) }
        },
        signHeaders: { request throws(WebhookSigner.Failure) in
            guard let url = request.input.url else {
                throw WebhookSigner.Failure("--url: hubspot signs the URL it calls; give it")
            }
            let milliseconds = String(request.input.timestamp * 1000)
            let mac = request.mac(prefix: "POST" + HubSpotScheme.decoded(url), suffix: milliseconds)
            return [("X-HubSpot-Signature-v3", Base64.encode(mac)), ("X-HubSpot-Request-Timestamp", milliseconds)]
        })
}
