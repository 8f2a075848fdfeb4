import WebhookEncoding
import NIOHTTP1
import WebhookCore

/// Providers that sign `T.body` and send `t=T,v1=S[,v1=S2…]` in one header, like Stripe:
/// Calendly and Mux. The timestamp must be within the tolerance (either way).
struct TimestampedHeaderScheme: WebhookScheme {
    let name: String
    let header: String
    let keyring: HMACKeyring
    let tolerance: Int
    let id: IDSource
    let type: IDSource

    var signatureHeaders: [String] { [header] }

    func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        let index = try verifyTimestampedHeader(
            request, header: header, itemSeparator: ",", timestampKey: "t", signatureKey: "v1", contentSeparator: ".",
            keyring: keyring, tolerance: tolerance)
        return VerifiedWebhook(id: id.value(in: request), type: type.value(in: request), keyIndex: index)
    }
}

extension Provider {
    static func timestampedHeader(name: String, header: String, id: IDSource, type: IDSource, idText: String, typeText: String)
        -> Provider
    {
        Provider(
            name: name, signature: "\(header): t=T,v1=S hex HMAC-SHA256 of T.body; T within tolerance", id: idText,
            type: typeText, keys: ["idHeader", "idPointer", "typeHeader", "typePointer"],
            make: { config in
                guard let found = config.sources(id: id, type: type) else { return nil }
                let (idSource, typeSource, secrets) = found
                return TimestampedHeaderScheme(
                    name: name, header: header, keyring: HMACKeyring(secrets: secrets), tolerance: config.tolerance, id: idSource,
                    type: typeSource)
            },
            signHeaders: { request in
                [(header, "t=\(request.timestamp),v1=\(Hex.encode(request.mac(prefix: "\(request.timestamp).")))")]
            })
    }

    /// Calendly: `Calendly-Webhook-Signature: t=T,v1=S`; id the body hash, type body `event`.
    static let calendly = timestampedHeader(
        name: "calendly", header: "Calendly-Webhook-Signature", id: IDSource(), type: IDSource(pointer: "/event"),
        idText: "hash", typeText: "body event")

    /// Mux: `Mux-Signature: t=T,v1=S[,v1=S2]`; id body `id`, type body `type`.
    static let mux = timestampedHeader(
        name: "mux", header: "Mux-Signature", id: IDSource(pointer: "/id"), type: IDSource(pointer: "/type"),
        idText: "body id", typeText: "body type")
}

/// Zendesk: `X-Zendesk-Webhook-Signature: <base64 HMAC-SHA256 of timestamp + body>` with
/// `X-Zendesk-Webhook-Signature-Timestamp` (ISO 8601) within the tolerance. Id: body `id`,
/// else the hash; type: body `type`, else `zendesk`.
///
/// Box: `BOX-SIGNATURE-PRIMARY` or `BOX-SIGNATURE-SECONDARY: <base64 HMAC-SHA256 of body +
/// timestamp>` with `BOX-DELIVERY-TIMESTAMP` (RFC 3339) within the tolerance; either header
/// with either secret (Box's primary and secondary keys). Id: body `id`; type: body `trigger`.
struct TimestampedBodyScheme: WebhookScheme {
    let name: String
    let headers: [String]
    let timestampHeader: String
    let timestampFirst: Bool
    let keyring: HMACKeyring
    let tolerance: Int
    let id: IDSource
    let type: IDSource
    let defaultType: String?

    var signatureHeaders: [String] { headers }

    func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        let values = headers.compactMap { request.headers.first(name: $0) }
        guard !values.isEmpty else { throw .missing("\(headers.joined(separator: " or ")) is missing") }
        guard let timestamp = request.headers.first(name: timestampHeader) else { throw .missing("\(timestampHeader) is missing") }
        let candidates = values.compactMap { Base64.decode($0) }
        guard !candidates.isEmpty else { throw .invalid("\(headers[0]) is not base64") }
        let parts: [SignedPart] =
            timestampFirst ? [.text(timestamp), .bytes(request.body)] : [.bytes(request.body), .text(timestamp)]
        guard let index = keyring.firstMatch(.sha256, parts, candidates: candidates) else {
            throw .invalid("\(headers.joined(separator: " / ")) does not match \(keyring.tried)")
        }
        guard let sent = Timestamp(rfc3339: timestamp) else { throw .invalid("\(timestampHeader) is not an RFC 3339 time") }
        try checkAge(of: sent.secondsSince1970, field: timestampHeader, tolerance: tolerance, now: request.receivedAt)
        return VerifiedWebhook(id: id.value(in: request), type: type.value(in: request) ?? defaultType, keyIndex: index)
    }
}

extension Provider {
    static let zendesk = Provider(
        name: "zendesk",
        signature:
            "X-Zendesk-Webhook-Signature: base64 HMAC-SHA256 of X-Zendesk-Webhook-Signature-Timestamp + body; timestamp within tolerance",
        id: "body id, else hash", type: "body type, else zendesk", keys: ["idHeader", "idPointer", "typeHeader", "typePointer"],
        make: { config in
            guard let found = config.sources(id: IDSource(pointer: "/id"), type: IDSource(pointer: "/type")) else { return nil }
            let (id, type, secrets) = found
            return TimestampedBodyScheme(
                name: "zendesk", headers: ["X-Zendesk-Webhook-Signature"], timestampHeader: "X-Zendesk-Webhook-Signature-Timestamp",
                timestampFirst: true, keyring: HMACKeyring(secrets: secrets), tolerance: config.tolerance, id: id, type: type,
                defaultType: "zendesk")
        },
        signHeaders: { request in
            let time = Timestamp(secondsSince1970: request.input.timestamp).rfc3339
            return [
                ("X-Zendesk-Webhook-Signature", Base64.encode(request.mac(prefix: time))),
                ("X-Zendesk-Webhook-Signature-Timestamp", time),
            ]
        })

    static let box = Provider(
        name: "box",
        signature:
            "BOX-SIGNATURE-PRIMARY or BOX-SIGNATURE-SECONDARY: base64 HMAC-SHA256 of body + BOX-DELIVERY-TIMESTAMP (RFC 3339, within tolerance); either key",
        id: "body id", type: "body trigger", keys: ["idHeader", "idPointer", "typeHeader", "typePointer"],
        make: { config in
            guard let found = config.sources(id: IDSource(pointer: "/id"), type: IDSource(pointer: "/trigger")) else { return nil }
            let (id, type, secrets) = found
            return TimestampedBodyScheme(
                name: "box", headers: ["BOX-SIGNATURE-PRIMARY", "BOX-SIGNATURE-SECONDARY"], timestampHeader: "BOX-DELIVERY-TIMESTAMP",
                timestampFirst: false, keyring: HMACKeyring(secrets: secrets), tolerance: config.tolerance, id: id, type: type,
                defaultType: nil)
        },
        signHeaders: { request in
            let time = Timestamp(secondsSince1970: request.input.timestamp).rfc3339
            return [("BOX-SIGNATURE-PRIMARY", Base64.encode(request.mac(suffix: time))), ("BOX-DELIVERY-TIMESTAMP", time)]
        })
}
