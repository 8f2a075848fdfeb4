import WebhookEncoding
import WebhookCore

/// Linear: `Linear-Signature: <hex HMAC-SHA256 of the body>`; the signed body's
/// `webhookTimestamp` (milliseconds) must be within the tolerance either way, as Linear's SDK
/// checks. Id: `Linear-Delivery`; type: body `type`.
public struct LinearScheme: WebhookScheme {
    public let name = "linear"
    public var signatureHeaders: [String] { ["Linear-Signature"] }
    let keyring: HMACKeyring
    let tolerance: Int

    public init(secrets: [String], toleranceSeconds: Int) {
        self.keyring = HMACKeyring(secrets: secrets)
        self.tolerance = toleranceSeconds
    }

    public func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        guard let header = request.headers.first(name: "Linear-Signature") else { throw .missing("Linear-Signature is missing") }
        guard let signature = Hex.decode(header) else { throw .invalid("Linear-Signature is not hex") }
        guard let index = keyring.firstMatch(.sha256, [.bytes(request.body)], candidates: [signature]) else {
            throw .invalid("Linear-Signature does not match \(keyring.tried)")
        }
        let json = request.bodyJSON
        guard let text = json?["webhookTimestamp"]?.scalarText else { throw .missing("the body has no webhookTimestamp") }
        guard let milliseconds = Int64(text) else { throw .invalid("webhookTimestamp is not a number of milliseconds") }
        try checkAge(
            of: milliseconds / 1000, field: "webhookTimestamp", tolerance: tolerance, now: request.receivedAt)
        return VerifiedWebhook(
            id: request.headers.first(name: "Linear-Delivery"), type: json?["type"]?.scalarText, keyIndex: index)
    }
}

extension Provider {
    static let linear = Provider(
        name: "linear", signature: "Linear-Signature: hex HMAC-SHA256 of the body; body webhookTimestamp (ms) within tolerance",
        id: "Linear-Delivery", type: "body type",
        make: { config in config.secrets.map { LinearScheme(secrets: $0, toleranceSeconds: config.tolerance) } },
        signHeaders: { request in
            // Linear also sends the body's type as Linear-Event.
            [("Linear-Signature", Hex.encode(request.mac())), ("Linear-Delivery", request.id)]
                + request.typed("Linear-Event")
        })
}
