import WebhookEncoding
import WebhookCrypto
import Foundation
import NIOCore
import WebhookCore

/// PayPal (REST webhooks): `PAYPAL-TRANSMISSION-SIG` is the base64 RSA signature (PKCS#1
/// v1.5, SHA-256: `PAYPAL-AUTH-ALGO: SHA256withRSA`) over
/// `<PAYPAL-TRANSMISSION-ID>|<PAYPAL-TRANSMISSION-TIME>|<webhook id>|<CRC-32 of the body, in
/// decimal>`, by the certificate at `PAYPAL-CERT-URL` (PayPal's docs, "Verify webhook
/// signature", and the SDKs' `WebhookEvent.validateReceivedEvent`). The webhook id is the one
/// PayPal gave the subscription (`verify.webhookId`): a message signed for another
/// subscription does not verify.
///
/// The certificate URL must be https on port 443 with no query, its path under
/// `/v1/notifications/certs/` (where PayPal serves them), its host matching
/// `verify.certificateHost` (default `^api(-m)?(\.sandbox)?\.paypal\.com$`); it is fetched over
/// TLS (system roots plus `verify.caFile`) and cached as `sns`'s are. The signed
/// `PAYPAL-TRANSMISSION-TIME` (RFC 3339; each delivery attempt is a new transmission, with
/// its own id and time) must lie within `verify.toleranceSeconds` (default 300) of the
/// bridge's clock, so a captured notification can't be replayed later. Id: body `id` (the
/// event's, the same on every retry); type: body `event_type`.
public final class PayPalScheme: WebhookScheme {
    public let name = "paypal"
    static let defaultCertificateHost = #"^api(-m)?(\.sandbox)?\.paypal\.com$"#
    static let signatureHeader = "PAYPAL-TRANSMISSION-SIG"
    static let certificatePath = "/v1/notifications/certs/"
    let webhookID: String
    let certificateHost: HostPattern
    let caFile: String?
    let tolerance: Int
    let cache = SigningKeyCache()

    public init(webhookID: String, certificateHost: String?, caFile: String?, toleranceSeconds: Int = 300) {
        self.webhookID = webhookID
        self.tolerance = toleranceSeconds
        self.certificateHost = HostPattern(certificateHost ?? Self.defaultCertificateHost)
        self.caFile = caFile
    }

    public var signatureHeaders: [String] { [Self.signatureHeader] }

    public func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        throw .unavailable("paypal needs the bridge to fetch signing certificates")
    }

    public func verify(_ request: WebhookRequest, services: VerificationServices) async throws(VerificationFailure)
        -> VerifiedWebhook
    {
        let headers = request.headers
        guard let encoded = headers.first(name: Self.signatureHeader), !encoded.isEmpty else {
            throw .missing("\(Self.signatureHeader) is missing")
        }
        func required(_ name: String) throws(VerificationFailure) -> String {
            guard let value = headers.first(name: name), !value.isEmpty else { throw .missing("\(name) is missing") }
            return value
        }
        let transmissionID = try required("PAYPAL-TRANSMISSION-ID")
        let time = try required("PAYPAL-TRANSMISSION-TIME")
        let certificateURL = try required("PAYPAL-CERT-URL")
        if let algorithm = headers.first(name: "PAYPAL-AUTH-ALGO"), algorithm.lowercased() != "sha256withrsa" {
            throw .invalid("PAYPAL-AUTH-ALGO is \(algorithm), not SHA256withRSA")
        }
        try checkFetchURL(certificateURL, what: "PAYPAL-CERT-URL", hostPattern: certificateHost, pathSuffix: "")
        // Only where PayPal keeps its certificates: a forged request can't make the bridge
        // fetch (and trust a PEM at) any other path of PayPal's API hosts.
        guard let path = URLComponents(string: certificateURL)?.path, path.hasPrefix(Self.certificatePath),
            path.count > Self.certificatePath.count, !path.contains("..")
        else { throw .invalid("PAYPAL-CERT-URL \(certificateURL) is not under \(Self.certificatePath)") }
        guard let signature = Base64.decode(encoded) else { throw .invalid("\(Self.signatureHeader) is not base64") }

        let key = try await cache.rsaKey(
            at: certificateURL, caFile: caFile, client: request.client, fetcher: services.certificates)
        let message = Self.signedText(transmissionID: transmissionID, time: time, webhookID: webhookID, body: request.body)
        guard key.isValidPKCS1v15Signature(signature, for: Array(message.utf8), digest: .sha256) else {
            throw .invalid("\(Self.signatureHeader) does not match the certificate at \(certificateURL) for this webhookId")
        }
        guard let sent = Timestamp(rfc3339: time) else { throw .invalid("PAYPAL-TRANSMISSION-TIME is not an RFC 3339 time") }
        try checkAge(of: sent.secondsSince1970, field: "PAYPAL-TRANSMISSION-TIME", tolerance: tolerance, now: request.receivedAt)
        let fields = request.topLevelTexts(["id", "event_type"])
        return VerifiedWebhook(id: fields[0], type: fields[1], keyIndex: 0)
    }

    /// `transmission id|time|webhook id|crc32(body)`, the CRC in decimal.
    static func signedText(transmissionID: String, time: String, webhookID: String, body: ByteBuffer) -> String {
        let crc = body.withUnsafeReadableBytes { CRC32.checksum($0) }
        return "\(transmissionID)|\(time)|\(webhookID)|\(crc)"
    }
}

extension Provider {
    static let paypal = Provider(
        name: "paypal",
        signature:
            "PAYPAL-TRANSMISSION-SIG: base64 RSA SHA-256 over transmission id|PAYPAL-TRANSMISSION-TIME|verify.webhookId|CRC-32 of the body (decimal), by the certificate at PAYPAL-CERT-URL (https, host matching verify.certificateHost), fetched over TLS and cached; PAYPAL-TRANSMISSION-TIME (RFC 3339) within tolerance",
        id: "body id", type: "body event_type",
        keys: ["webhookId", "certificateHost", "caFile", "toleranceSeconds"], usesSecrets: false,
        make: { config in
            let settings = readCertificateSettings(config.reader, log: config.log)
            let webhookID = config.reader.string("webhookId", required: true)
            let tolerance = config.reader.integer("toleranceSeconds", in: 0...Int(Int32.max))
            guard let settings, let webhookID, tolerance != nil || !config.reader.has("toleranceSeconds") else { return nil }
            return PayPalScheme(
                webhookID: webhookID, certificateHost: settings.host, caFile: settings.caFile,
                toleranceSeconds: tolerance ?? 300)
        },
        sign: nil)
}
