import WebhookEncoding
import WebhookCrypto
import WebhookCore

/// Standard Webhooks (and Svix, its origin): `webhook-signature` holds space-separated
/// `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` (key: base64 after `whsec_`) and/or
/// `v1a,<base64 Ed25519 signature>` (public key: base64 after `whpk_`). The `svix-` headers
/// are read when the `webhook-` ones are absent.
public struct StandardWebhooksScheme: WebhookScheme {
    /// One configured secret.
    enum Key {
        case symmetric(HMACKey)
        case ed25519(Ed25519PublicKey)
    }

    public let name: String
    public var signatureHeaders: [String] { ["webhook-signature", "svix-signature"] }
    let keys: [Key]
    let tolerance: Int
    /// Signature entries looked at per request.
    static let maximumSignatures = 16

    private static let type = ["type"]

    /// Parses the secrets; throws the index and reason of the first one that is malformed.
    public init(name: String = "standard-webhooks", secrets: [String], toleranceSeconds: Int) throws(SecretError) {
        self.name = name
        self.tolerance = toleranceSeconds
        var keys: [Key] = []
        for (index, secret) in secrets.enumerated() {
            if secret.hasPrefix("whpk_") {
                guard let raw = Base64.decode(secret.dropFirst(5)),
                    let key = Ed25519PublicKey(rawRepresentation: raw)
                else { throw SecretError(index: index, reason: "whpk_ must be followed by a base64 Ed25519 public key") }
                keys.append(.ed25519(key))
            } else {
                let body = secret.hasPrefix("whsec_") ? secret.dropFirst(6) : secret[...]
                guard let raw = Base64.decode(body), !raw.isEmpty else {
                    throw SecretError(index: index, reason: "must be whsec_ followed by base64 (or whpk_ and a public key)")
                }
                keys.append(.symmetric(HMACKey(raw)))
            }
        }
        self.keys = keys
    }

    /// A header under its Standard Webhooks name or Svix's (the names made once: over 15
    /// bytes, each would be a heap allocation per request).
    private enum Header {
        case signature, id, timestamp

        var names: (String, String) {
            switch self {
            case .signature: return Self.signatureNames
            case .id: return Self.idNames
            case .timestamp: return Self.timestampNames
            }
        }

        private static let signatureNames = ("webhook-signature", "svix-signature")
        private static let idNames = ("webhook-id", "svix-id")
        private static let timestampNames = ("webhook-timestamp", "svix-timestamp")
    }

    private func header(_ request: WebhookRequest, _ header: Header) -> String? {
        let (name, alias) = header.names
        return request.headers.first(name: name) ?? request.headers.first(name: alias)
    }

    public func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        guard let signatures = header(request, .signature) else { throw .missing("webhook-signature is missing") }
        guard let id = header(request, .id) else { throw .missing("webhook-id is missing") }
        let timestampText = header(request, .timestamp)
        guard let timestampText else { throw .missing("webhook-timestamp is missing") }
        guard Int64(timestampText) != nil else { throw .invalid("webhook-timestamp is not a UNIX timestamp") }

        // The MAC of "id.timestamp.body" under each symmetric key, computed when first compared.
        var macs: [[UInt8]?] = []
        var firstMAC = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        var firstComputed = false
        var ed25519Content: [UInt8]?
        var matched: Int?
        // A hostile header could list thousands of entries; providers send one per active key.
        // Entries are found on UTF-8 bytes: String's own split walks grapheme clusters, at
        // twice the cost.
        withUnsafeTemporaryAllocation(byteCount: 64, alignment: 8) { scratch in
            var rest = signatures.utf8[...]
            var entries = 0
            search: while entries < Self.maximumSignatures, !rest.isEmpty {
                let end = rest.firstIndex(of: UInt8(ascii: " ")) ?? rest.endIndex
                let entryBytes = rest[..<end]
                rest = end == rest.endIndex ? rest[end...] : rest[rest.index(after: end)...]
                guard !entryBytes.isEmpty else { continue }
                entries += 1
                let entry = Substring(entryBytes)
                guard let comma = entryBytes.firstIndex(of: UInt8(ascii: ",")) else { continue }
                let version = entry[..<comma]
                // Decoded into the scratch buffer: a signature longer than 64 bytes is none of ours.
                guard let length = Base64.decode(entry[entry.index(after: comma)...], into: scratch) else { continue }
                let signature = UnsafeRawBufferPointer(rebasing: scratch[..<length])
                for (index, key) in keys.enumerated() {
                    switch (version, key) {
                    case ("v1", .symmetric(let secret)):
                        func feed(_ context: inout HashContext) {
                            context.update(id)
                            context.update(".")
                            context.update(timestampText)
                            context.update(".")
                            request.body.withUnsafeReadableBytes { context.update($0) }
                        }
                        if index == 0 {
                            // The first key's MAC is kept in words on the stack: no array for the
                            // usual request (one key, one entry), and still one HMAC per key for many.
                            if !firstComputed {
                                secret.sha256.withAuthenticationCode(feed) { code in
                                    precondition(code.count == MemoryLayout.size(ofValue: firstMAC))
                                    withUnsafeMutableBytes(of: &firstMAC) { $0.copyMemory(from: code) }
                                }
                                firstComputed = true
                            }
                            let equal = withUnsafeBytes(of: &firstMAC) { constantTimeEquals($0, signature) }
                            if equal {
                                matched = index
                                break search
                            }
                            continue
                        }
                        if macs.isEmpty { macs = Array(repeating: nil, count: keys.count) }
                        let mac = macs[index] ?? secret.sha256.authenticationCode(feed)
                        macs[index] = mac
                        if constantTimeEquals(signature, mac) {
                            matched = index
                            break search
                        }
                    case ("v1a", .ed25519(let publicKey)):
                        if ed25519Content == nil {
                            ed25519Content = Array("\(id).\(timestampText).".utf8) + Array(request.body.readableBytesView)
                        }
                        if publicKey.isValidSignature(Array(signature), for: ed25519Content!) {
                            matched = index
                            break search
                        }
                    default:
                        continue
                    }
                }
            }
        }
        guard let matched else {
            throw .invalid("webhook-signature does not match \(keys.count == 1 ? "the secret" : "none of \(keys.count) secrets")")
        }
        try checkTimestamp(timestampText, header: "webhook-timestamp", tolerance: tolerance, now: request.receivedAt)
        return VerifiedWebhook(id: id, type: request.topLevelTexts(Self.type)[0], keyIndex: matched)
    }
}

/// A secret that can't be used, by its index in `secrets`.
public struct SecretError: Error, Sendable {
    public let index: Int
    public let reason: String
}

extension Provider {
    static let standardWebhooks = Provider(
        name: "standard-webhooks", aliases: ["svix", "clerk", "resend"],
        signature:
            "webhook-signature (svix-signature): v1, base64 HMAC-SHA256 of id.timestamp.body keyed with the base64 after whsec_; v1a, Ed25519 with a whpk_ key",
        id: "webhook-id / svix-id", type: "body type",
        make: { config in
            config.withKeys { secrets throws(SecretError) in
                try StandardWebhooksScheme(name: config.scheme, secrets: secrets, toleranceSeconds: config.tolerance)
            }
        },
        signHeaders: { request throws(WebhookSigner.Failure) in
            let prefix = request.scheme == "standard-webhooks" ? "webhook" : "svix"  // Svix, Clerk and Resend send svix-*
            let signed = "\(request.id).\(request.timestamp)."
            let signature: String
            if request.secret.hasPrefix("whsk_") {
                guard let raw = Base64.decode(request.secret.dropFirst(5)), raw.count >= 32,
                    let key = Ed25519PrivateKey(seed: Array(raw.prefix(32)))
                else { throw WebhookSigner.Failure("--secret: whsk_ must be followed by a base64 Ed25519 private key") }
                signature = "v1a," + Base64.encode(key.signature(for: Array(signed.utf8) + request.body))
            } else {
                let encoded = request.secret.hasPrefix("whsec_") ? request.secret.dropFirst(6) : request.secret[...]
                guard let key = Base64.decode(encoded), !key.isEmpty else {
                    throw WebhookSigner.Failure("--secret: must be whsec_ followed by base64 (or whsk_ and a private key)")
                }
                signature = "v1," + Base64.encode(request.mac(prefix: signed, key: key))
            }
            return [("\(prefix)-id", request.id), ("\(prefix)-timestamp", request.timestamp), ("\(prefix)-signature", signature)]
        })
}
