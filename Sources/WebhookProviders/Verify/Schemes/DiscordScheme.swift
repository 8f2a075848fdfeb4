import WebhookEncoding
import WebhookCrypto
import WebhookCore

/// Discord interactions: `X-Signature-Ed25519` holds the hex Ed25519 signature over
/// `<X-Signature-Timestamp><body>`; `secrets` are the application's hex public keys. Id and
/// type come from the body; a PING (`"type": 1`) is answered `{"type":1}` and not forwarded.
public struct DiscordScheme: WebhookScheme {
    public let name = "discord"
    public var signatureHeaders: [String] { ["X-Signature-Ed25519"] }
    let keys: [Ed25519PublicKey]
    let tolerance: Int

    public init(secrets: [String], toleranceSeconds: Int) throws(SecretError) {
        var keys: [Ed25519PublicKey] = []
        for (index, secret) in secrets.enumerated() {
            guard let raw = Hex.decode(secret), let key = Ed25519PublicKey(rawRepresentation: raw) else {
                throw SecretError(index: index, reason: "must be the application's public key: 64 hex digits")
            }
            keys.append(key)
        }
        self.keys = keys
        self.tolerance = toleranceSeconds
    }

    public func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        guard let header = request.headers.first(name: "X-Signature-Ed25519") else {
            throw .missing("X-Signature-Ed25519 is missing")
        }
        guard let timestamp = request.headers.first(name: "X-Signature-Timestamp") else {
            throw .missing("X-Signature-Timestamp is missing")
        }
        guard let signature = Hex.decode(header), signature.count == 64 else {
            throw .invalid("X-Signature-Ed25519 is not a hex Ed25519 signature")
        }
        let content = Array(timestamp.utf8) + Array(request.body.readableBytesView)
        guard let index = keys.firstIndex(where: { $0.isValidSignature(signature, for: content) }) else {
            throw .invalid("X-Signature-Ed25519 matches no key")
        }
        try checkTimestamp(timestamp, header: "X-Signature-Timestamp", tolerance: tolerance, now: request.receivedAt)
        let json = request.bodyJSON
        let type = json?["type"]?.scalarText
        if type == "1" {
            return VerifiedWebhook(
                id: json?["id"]?.scalarText, type: "1", keyIndex: index,
                handshake: HandshakeAnswer(body: Array(#"{"type":1}"#.utf8)))
        }
        return VerifiedWebhook(id: json?["id"]?.scalarText, type: type, keyIndex: index)
    }
}

extension Provider {
    static let discord = Provider(
        name: "discord",
        signature: "X-Signature-Ed25519: hex Ed25519 of X-Signature-Timestamp + body; secrets are hex public keys",
        handshake: "signed POST PING: 200 {\"type\":1}", id: "body id", type: "body type",
        make: { config in
            config.withKeys { secrets throws(SecretError) in
                try DiscordScheme(secrets: secrets, toleranceSeconds: config.tolerance)
            }
        },
        signHeaders: { request throws(WebhookSigner.Failure) in
            guard let seed = Hex.decode(request.secret), let key = Ed25519PrivateKey(seed: seed) else {
                throw WebhookSigner.Failure("--secret: discord signs with an Ed25519 private key (64 hex digits)")
            }
            let signature = key.signature(for: Array(request.timestamp.utf8) + request.body)
            return [("X-Signature-Ed25519", Hex.encode(signature)), ("X-Signature-Timestamp", request.timestamp)]
        })
}
