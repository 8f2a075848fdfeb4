import Crypto
import Foundation
import Synchronization
import _CryptoExtras

/// AWS SNS over HTTP/S (what S3, SES and most AWS services push through). The body is a JSON
/// message signed by SNS with the private key of the X.509 certificate at `SigningCertURL`:
/// RSA PKCS#1 v1.5 over the SNS string to sign, with SHA1 (`SignatureVersion` 1) or SHA256
/// (2) (AWS docs, "Verifying the signatures of Amazon SNS messages").
///
/// The certificate URL must be https, its host must match `verify.certificateHost` (default
/// `^sns\.[a-zA-Z0-9-]{3,}\.amazonaws\.com(\.cn)?$`) and its path end in `.pem`; it is fetched
/// over TLS (system roots plus `verify.caFile`) by the bridge, once per URL (a bounded cache,
/// concurrent requests for one URL share the fetch). `verify.topicArns`, when given, lists the
/// only topics accepted. `SubscriptionConfirmation` and `UnsubscribeConfirmation` are verified
/// the same way, answered 200 and not forwarded; their `SubscribeURL` is logged, and with
/// `verify.autoConfirm` the bridge GETs it (host checked the same way). Id: `MessageId`; type:
/// the topic name (the last `:` part of `TopicArn`).
public final class SNSScheme: WebhookScheme {
    public let name = "sns"
    static let defaultCertificateHost = #"^sns\.[a-zA-Z0-9-]{3,}\.amazonaws\.com(\.cn)?$"#
    let certificateHost: String
    let topicArns: [String]?
    let autoConfirm: Bool
    let caFile: String?
    let cache = SigningKeyCache()

    public init(certificateHost: String?, topicArns: [String]?, autoConfirm: Bool, caFile: String?) {
        self.certificateHost = certificateHost ?? Self.defaultCertificateHost
        self.topicArns = topicArns
        self.autoConfirm = autoConfirm
        self.caFile = caFile
    }

    public func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        throw .unavailable("sns needs the bridge to fetch signing certificates")
    }

    public func verify(_ request: WebhookRequest, services: VerificationServices) async throws(VerificationFailure)
        -> VerifiedWebhook
    {
        guard let message = request.bodyJSON, case .object = message else {
            throw .missing("the body is not an SNS JSON message")
        }
        func field(_ name: String) -> String? { message[name]?.scalarText }
        guard let encoded = field("Signature") else { throw .missing("Signature is missing") }
        guard let type = field("Type") else { throw .invalid("Type is missing") }
        guard let version = field("SignatureVersion"), version == "1" || version == "2" else {
            throw .invalid("SignatureVersion is \(field("SignatureVersion") ?? "missing"), not 1 or 2")
        }
        guard let certificateURL = field("SigningCertURL") else { throw .invalid("SigningCertURL is missing") }
        try checkURL(certificateURL, what: "SigningCertURL", pem: true)
        guard let topic = field("TopicArn") else { throw .invalid("TopicArn is missing") }
        if let topicArns, !topicArns.contains(topic) { throw .invalid("the topic \(topic) is not in verify.topicArns") }

        let names: [String]
        switch type {
        case "Notification":
            names = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
        case "SubscriptionConfirmation", "UnsubscribeConfirmation":
            names = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
        default:
            throw .invalid("Type \(type) is not an SNS message type")
        }
        var stringToSign = ""
        for name in names {
            guard let value = field(name) else {
                if name == "Subject" { continue }  // the only optional one
                throw .invalid("\(name) is missing")
            }
            stringToSign += name + "\n" + value + "\n"
        }
        guard let signature = Base64.decode(encoded) else { throw .invalid("Signature is not base64") }

        guard let fetcher = services.certificates else { throw .unavailable("no certificate fetcher") }
        let der: [UInt8]
        do {
            der = try await cache.key(for: certificateURL) { try await fetcher.publicKey(at: certificateURL, caFile: self.caFile) }
        } catch {
            throw .unavailable("cannot fetch \(certificateURL): \(error)")
        }
        guard let key = try? _RSA.Signing.PublicKey(derRepresentation: der) else {
            throw .unavailable("\(certificateURL) does not hold an RSA key of 2048 bits or more")
        }
        let rsaSignature = _RSA.Signing.RSASignature(rawRepresentation: signature)
        let data = Array(stringToSign.utf8)
        let valid =
            version == "1"
            ? key.isValidSignature(rsaSignature, for: Insecure.SHA1.hash(data: data), padding: .insecurePKCS1v1_5)
            : key.isValidSignature(rsaSignature, for: SHA256.hash(data: data), padding: .insecurePKCS1v1_5)
        guard valid else {
            throw .invalid("Signature (version \(version)) does not match the certificate at \(certificateURL)")
        }

        let topicName = String(topic.split(separator: ":", omittingEmptySubsequences: false).last ?? "")
        guard type == "Notification" else {
            guard let subscribeURL = field("SubscribeURL") else { throw .invalid("SubscribeURL is missing") }
            var verified = VerifiedWebhook(id: field("MessageId"), type: type, keyIndex: 0, handshake: .empty)
            var confirm = autoConfirm && type == "SubscriptionConfirmation"
            do {
                try checkURL(subscribeURL, what: "SubscribeURL", pem: false)
            } catch {
                confirm = false  // logged, never followed to a host that is not SNS's
            }
            verified.followUp = .subscription(url: subscribeURL, topic: topic, confirm: confirm, caFile: caFile)
            return verified
        }
        return VerifiedWebhook(id: field("MessageId"), type: topicName, keyIndex: 0)
    }

    /// https, a host matching `certificateHost`, and for a certificate a path ending `.pem`.
    func checkURL(_ url: String, what: String, pem: Bool) throws(VerificationFailure) {
        guard let components = URLComponents(string: url), components.scheme == "https", let host = components.host else {
            throw .invalid("\(what) \(url) is not an https URL")
        }
        guard Self.host(host, matches: certificateHost) else {
            throw .invalid("\(what) host \(host) does not match verify.certificateHost")
        }
        if pem, !components.path.hasSuffix(".pem") { throw .invalid("\(what) \(url) does not end in .pem") }
    }

    static func host(_ host: String, matches pattern: String) -> Bool {
        guard let regex = try? Regex(pattern) else { return false }
        return (try? regex.firstMatch(in: host)) != nil
    }
}

/// Signing keys by certificate URL: at most ``limit`` (the oldest forgotten first), each
/// fetched once; requests for a URL being fetched wait for that fetch. A failed fetch is not
/// kept, so the next request tries again.
final class SigningKeyCache: Sendable {
    static let limit = 64
    private let entries = Mutex<(tasks: [String: Task<[UInt8], any Error>], order: [String])>(([:], []))

    func key(for url: String, fetch: @escaping @Sendable () async throws -> [UInt8]) async throws -> [UInt8] {
        let task = entries.withLock { state -> Task<[UInt8], any Error> in
            if let task = state.tasks[url] { return task }
            let task = Task { try await fetch() }
            state.tasks[url] = task
            state.order.append(url)
            if state.order.count > Self.limit { state.tasks[state.order.removeFirst()] = nil }
            return task
        }
        do {
            return try await task.value
        } catch {
            entries.withLock { state in
                state.tasks[url] = nil
                state.order.removeAll { $0 == url }
            }
            throw error
        }
    }
}

extension Provider {
    static let sns = Provider(
        name: "sns",
        signature:
            "body Signature: RSA (SignatureVersion 1 SHA1, 2 SHA256) over the SNS string to sign, by the certificate at SigningCertURL (https, host matching verify.certificateHost, .pem), fetched over TLS and cached",
        handshake:
            "SubscriptionConfirmation / UnsubscribeConfirmation, verified the same way: 200, not forwarded, SubscribeURL logged; verify.autoConfirm GETs it",
        id: "MessageId", type: "the topic name (last : part of TopicArn)",
        keys: ["certificateHost", "topicArns", "autoConfirm", "caFile"], usesSecrets: false,
        make: { config in
            var ok = true
            let host = config.reader.string("certificateHost")
            if let host, (try? Regex(host)) == nil {
                config.log.add(config.reader.childPath("certificateHost"), "is not a valid regular expression")
                ok = false
            }
            let topics = config.reader.stringArray("topicArns")
            if config.reader.has("topicArns"), topics == nil { ok = false }
            let caFile = config.reader.string("caFile")
            if let caFile, !FileManager.default.isReadableFile(atPath: caFile) {
                config.log.add(config.reader.childPath("caFile"), "cannot read \(caFile)")
                ok = false
            }
            let autoConfirm = config.reader.bool("autoConfirm") ?? false
            guard ok else { return nil }
            return SNSScheme(certificateHost: host, topicArns: topics, autoConfirm: autoConfirm, caFile: caFile)
        },
        sign: nil)
}
