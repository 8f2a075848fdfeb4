/// Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]`, each `v1` an HMAC-SHA256 of
/// `"<t>.<body>"` keyed with the whole `whsec_…` string. Like Stripe's SDKs, only a stale
/// timestamp is refused, not a future one. Id and type come from the body.
public struct StripeScheme: WebhookScheme {
    public let name = "stripe"
    let keyring: HMACKeyring
    let tolerance: Int

    public init(secrets: [String], toleranceSeconds: Int) {
        self.keyring = HMACKeyring(secrets: secrets)
        self.tolerance = toleranceSeconds
    }

    public func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        guard let header = request.headers.first(name: "Stripe-Signature") else { throw .missing("Stripe-Signature is missing") }
        var timestamp: String?
        var signatures: [[UInt8]] = []
        for item in header.split(separator: ",") {
            let pair = item.split(separator: "=", maxSplits: 1)
            guard pair.count == 2 else { continue }
            switch pair[0].trimmingCharacters {
            case "t": timestamp = timestamp ?? String(pair[1])
            case "v1": if signatures.count < maximumSignatureCandidates, let mac = Hex.decode(pair[1]) { signatures.append(mac) }
            default: continue
            }
        }
        guard let timestamp, Int64(timestamp) != nil, !signatures.isEmpty else {
            throw .invalid("Stripe-Signature has no t= timestamp or no v1= signature")
        }
        guard let index = keyring.firstMatch(.sha256, [.text("\(timestamp)."), .bytes(request.body)], candidates: signatures)
        else {
            throw .invalid("Stripe-Signature matches no secret")
        }
        try checkTimestamp(
            timestamp, header: "Stripe-Signature t", tolerance: tolerance, now: request.receivedAt, direction: .pastOnly)
        let json = request.bodyJSON
        return VerifiedWebhook(id: json?["id"]?.scalarText, type: json?["type"]?.scalarText, keyIndex: index)
    }
}

extension Substring {
    var trimmingCharacters: Substring {
        var slice = self
        while slice.first == " " { slice.removeFirst() }
        while slice.last == " " { slice.removeLast() }
        return slice
    }
}
