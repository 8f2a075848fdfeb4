import WebhookEncoding
import WebhookCrypto
import WebhookCore

/// SendGrid's signed Event Webhook: `X-Twilio-Email-Event-Webhook-Signature` holds a base64
/// DER ECDSA P-256/SHA-256 signature over `<timestamp><body>`, the timestamp being
/// `X-Twilio-Email-Event-Webhook-Timestamp`. `secrets` are the verification keys SendGrid
/// shows (base64 DER, or PEM). Id: the body hash; type: `sendgrid.events`.
public struct SendGridScheme: WebhookScheme {
    public let name = "sendgrid"
    public var signatureHeaders: [String] { [Self.signatureHeader] }
    let keys: [P256PublicKey]
    let tolerance: Int

    static let signatureHeader = "X-Twilio-Email-Event-Webhook-Signature"
    static let timestampHeader = "X-Twilio-Email-Event-Webhook-Timestamp"

    public init(secrets: [String], toleranceSeconds: Int) throws(SecretError) {
        var keys: [P256PublicKey] = []
        for (index, secret) in secrets.enumerated() {
            let key: P256PublicKey?
            if secret.contains("-----BEGIN") {
                key = P256PublicKey(pemRepresentation: secret)
            } else {
                key = Base64.decode(secret).flatMap { P256PublicKey(derRepresentation: $0) }
            }
            guard let key else { throw SecretError(index: index, reason: "must be a P-256 public key (base64 DER or PEM)") }
            keys.append(key)
        }
        self.keys = keys
        self.tolerance = toleranceSeconds
    }

    public func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        guard let header = request.headers.first(name: Self.signatureHeader) else {
            throw .missing("\(Self.signatureHeader) is missing")
        }
        guard let timestamp = request.headers.first(name: Self.timestampHeader) else {
            throw .missing("\(Self.timestampHeader) is missing")
        }
        guard let signature = Base64.decode(header), !signature.isEmpty else {
            throw .invalid("\(Self.signatureHeader) is not a base64 DER ECDSA signature")
        }
        let content = Array(timestamp.utf8) + Array(request.body.readableBytesView)
        guard let index = keys.firstIndex(where: { $0.isValidSignature(der: signature, for: content) }) else {
            throw .invalid("\(Self.signatureHeader) matches no key")
        }
        try checkTimestamp(timestamp, header: Self.timestampHeader, tolerance: tolerance, now: request.receivedAt)
        return VerifiedWebhook(id: nil, type: "sendgrid.events", keyIndex: index)
    }
}

extension Provider {
    static let sendgrid = Provider(
        name: "sendgrid",
        signature:
            "X-Twilio-Email-Event-Webhook-Signature: base64 DER ECDSA P-256/SHA-256 of timestamp + body; secrets are the verification keys",
        id: "hash", type: "sendgrid.events",
        make: { config in
            config.withKeys { secrets throws(SecretError) in
                try SendGridScheme(secrets: secrets, toleranceSeconds: config.tolerance)
            }
        },
        signHeaders: { request throws(WebhookSigner.Failure) in
            let key: P256PrivateKey?
            if request.secret.contains("-----BEGIN") {
                key = P256PrivateKey(pemRepresentation: request.secret)
            } else {
                key = Base64.decode(request.secret).flatMap { P256PrivateKey(derRepresentation: $0) }
            }
            guard let key else {
                throw WebhookSigner.Failure("--secret: sendgrid signs with a P-256 private key (base64 DER or PEM)")
            }
            return [
                (SendGridScheme.signatureHeader, Base64.encode(key.signature(for: Array(request.timestamp.utf8) + request.body))),
                (SendGridScheme.timestampHeader, request.timestamp),
            ]
        })
}
