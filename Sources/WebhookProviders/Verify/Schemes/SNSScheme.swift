import WebhookEncoding
import WebhookCrypto
import Foundation
import Synchronization
import WebhookCore

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
    let certificateHost: HostPattern
    let topicArns: [String]?
    let autoConfirm: Bool
    let caFile: String?
    let cache = SigningKeyCache()

    public init(certificateHost: String?, topicArns: [String]?, autoConfirm: Bool, caFile: String?) {
        self.certificateHost = HostPattern(certificateHost ?? Self.defaultCertificateHost)
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

        let key = try await cache.rsaKey(
            at: certificateURL, caFile: caFile, client: request.client, fetcher: services.certificates)
        let valid = key.isValidPKCS1v15Signature(
            signature, for: Array(stringToSign.utf8), digest: version == "1" ? .sha1 : .sha256)
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

    func checkURL(_ url: String, what: String, pem: Bool) throws(VerificationFailure) {
        try checkFetchURL(url, what: what, hostPattern: certificateHost, pathSuffix: pem ? ".pem" : nil)
    }
}

/// A URL a request names for the bridge to fetch (SNS's and PayPal's certificates): https on
/// port 443, no user, a host matching `hostPattern`, and with `pathSuffix` a path ending so
/// with no query or fragment (so one certificate has one URL, a request can't make the
/// bridge fetch endless variants of it, nor knock on another port of an allowed host).
func checkFetchURL(_ url: String, what: String, hostPattern: HostPattern, pathSuffix: String?) throws(VerificationFailure) {
    guard let components = URLComponents(string: url), components.scheme == "https", let host = components.host else {
        throw .invalid("\(what) \(url) is not an https URL")
    }
    guard components.user == nil, components.password == nil else { throw .invalid("\(what) \(url) has user information") }
    if let port = components.port, port != 443 { throw .invalid("\(what) \(url) names port \(port); only 443 is used") }
    guard hostPattern.matches(host) else { throw .invalid("\(what) host \(host) does not match verify.certificateHost") }
    if let pathSuffix {
        guard components.path.hasSuffix(pathSuffix), components.query == nil, components.fragment == nil else {
            throw .invalid(
                "\(what) \(url) is not a\(pathSuffix.isEmpty ? "" : " " + pathSuffix) path without query or fragment")
        }
    }
}

/// `verify.certificateHost`: a regular expression (ICU's syntax, as a filter's `$regex`) a
/// certificate URL's host must match. Compiled once and shared by every event loop without
/// a lock; it used to be compiled again for every host not seen before, so forged requests
/// naming new hosts cost a compilation each.
struct HostPattern: Sendable {
    let pattern: String
    private let compiled: EventFilter.Pattern?

    /// A pattern that does not compile (the config check refuses one) matches nothing.
    init(_ pattern: String) {
        self.pattern = pattern
        self.compiled = try? EventFilter.Pattern(pattern)
    }

    func matches(_ host: String) -> Bool { compiled?.matches(host) ?? false }
}

/// `verify.certificateHost` and `verify.caFile` of a certificate-signed scheme (`sns`,
/// `paypal`): a valid regular expression (warned when not anchored) and a readable file.
/// nil after a problem.
func readCertificateSettings(_ reader: ConfigReader, log: ProblemLog) -> (host: String?, caFile: String?)? {
    var ok = true
    let host = reader.string("certificateHost")
    if let host, (try? EventFilter.Pattern(host)) == nil {
        log.add(reader.childPath("certificateHost"), "is not a valid regular expression")
        ok = false
    }
    if let host, !(host.hasPrefix("^") && host.hasSuffix("$")) {
        log.warn(
            reader.childPath("certificateHost"),
            "is not anchored with ^ and $: it also matches longer host names (\(host.trimmingCharacters(in: ["^", "$"])).example.net)"
        )
    }
    let caFile = reader.string("caFile")
    if let caFile, !FileManager.default.isReadableFile(atPath: caFile) {
        log.add(reader.childPath("caFile"), "cannot read \(caFile)")
        ok = false
    }
    return ok ? (host, caFile) : nil
}

/// Signing keys by certificate URL, each fetched once; requests for a URL being fetched wait
/// for that fetch.
///
/// Good keys and failures are kept apart, so requests that can't be verified never push out
/// a key that works: at most ``limit`` keys (the least recently used forgotten first), and at
/// most ``failureLimit`` failed URLs, each remembered for ``failureTTL`` (the same unusable URL
/// is not fetched again on every request; the oldest failure goes first). At most
/// ``maximumFetches`` fetches run at once, and at most ``maximumFetchesPerClient`` for one
/// client address, so one sender of messages naming slow or unusable URLs can't take every
/// slot from SNS's own notifications; beyond, the request is answered 503 and SNS retries it.
///
/// State, under one lock: `keys` and `failures` (settled URLs), `fetching` (a URL's running
/// fetch, which its requests share), and the running counts. A fetch is started and counted
/// under the lock, and on its end it is uncounted and its URL moved, also under the lock,
/// to `keys` or `failures`: a URL is in at most one of the three.
final class SigningKeyCache: Sendable {
    static let limit = 64
    static let failureLimit = 256
    static let failureTTL: Duration = .seconds(60)
    static let maximumFetches = 8
    static let maximumFetchesPerClient = 2

    private struct State {
        var keys: [String: (key: [UInt8], used: UInt64)] = [:]
        var failures: [String: (error: any Error, at: ContinuousClock.Instant)] = [:]
        var fetching: [String: Task<[UInt8], any Error>] = [:]
        var running = 0
        var runningByClient: [String: Int] = [:]
        /// Ticks with every use of a key, for least-recently-used eviction.
        var uses: UInt64 = 0
    }

    private let state = Mutex(State())

    private enum Lookup {
        case key([UInt8])
        case fetch(Task<[UInt8], any Error>)
    }

    func key(
        for url: String, client: String? = nil, fetch: @escaping @Sendable () async throws -> [UInt8]
    ) async throws -> [UInt8] {
        let now = ContinuousClock.now
        let lookup = try state.withLock { state -> Lookup in
            if let entry = state.keys[url] {
                state.uses &+= 1
                state.keys[url]?.used = state.uses
                return .key(entry.key)
            }
            if let failure = state.failures[url] {
                if now - failure.at < Self.failureTTL { throw failure.error }
                state.failures[url] = nil
            }
            if let task = state.fetching[url] { return .fetch(task) }
            let clientKey = client ?? ""
            guard state.running < Self.maximumFetches,
                state.runningByClient[clientKey, default: 0] < Self.maximumFetchesPerClient
            else {
                throw CertificateFetchFailure(description: "too many certificate fetches at once", isDefinite: false)
            }
            state.running += 1
            state.runningByClient[clientKey, default: 0] += 1
            let task = Task {
                do {
                    let key = try await fetch()
                    self.finished(url, client: clientKey, with: .success(key))
                    return key
                } catch {
                    self.finished(url, client: clientKey, with: .failure(error))
                    throw error
                }
            }
            state.fetching[url] = task
            return .fetch(task)
        }
        switch lookup {
        case .key(let key): return key
        case .fetch(let task): return try await task.value
        }
    }

    /// The RSA key of the certificate at `url` (SNS's, PayPal's), fetched once: a host that
    /// answered with nothing usable there makes the request's signature invalid (401); a
    /// fetch that may work later, unavailable (503).
    func rsaKey(at url: String, caFile: String?, client: String?, fetcher: (any CertificateFetcher)?)
        async throws(VerificationFailure) -> RSAPublicKey
    {
        guard let fetcher else { throw .unavailable("no certificate fetcher") }
        let der: [UInt8]
        do {
            der = try await key(for: url, client: client) { try await fetcher.publicKey(at: url, caFile: caFile) }
        } catch let failure as CertificateFetchFailure where failure.isDefinite {
            throw .invalid("\(url): \(failure.description)")
        } catch {
            throw .unavailable("cannot fetch \(url): \(error)")
        }
        guard let key = RSAPublicKey(derRepresentation: der) else {
            throw .invalid("\(url) does not hold an RSA key of 2048 bits or more")
        }
        return key
    }

    /// A fetch ended: uncounted, and its URL settled among the keys or the failures.
    private func finished(_ url: String, client: String, with result: Result<[UInt8], any Error>) {
        state.withLock { state in
            state.running -= 1
            let left = state.runningByClient[client, default: 0] - 1
            state.runningByClient[client] = left > 0 ? left : nil
            state.fetching[url] = nil
            switch result {
            case .success(let key):
                if state.keys.count >= Self.limit, let oldest = state.keys.min(by: { $0.value.used < $1.value.used }) {
                    state.keys[oldest.key] = nil
                }
                state.uses &+= 1
                state.keys[url] = (key, state.uses)
            case .failure(let error):
                if state.failures.count >= Self.failureLimit, let oldest = state.failures.min(by: { $0.value.at < $1.value.at }) {
                    state.failures[oldest.key] = nil
                }
                state.failures[url] = (error, .now)
            }
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
            let settings = readCertificateSettings(config.reader, log: config.log)
            var ok = settings != nil
            let topics = config.reader.stringArray("topicArns")
            if config.reader.has("topicArns"), topics == nil { ok = false }
            let autoConfirm = config.reader.bool("autoConfirm") ?? false
            if autoConfirm, topics == nil {
                // Any AWS account could subscribe the endpoint and have the bridge confirm it.
                config.log.add(
                    config.reader.childPath("autoConfirm"),
                    "needs topicArns: without it, a topic in any AWS account could subscribe this endpoint and be confirmed")
                ok = false
            }
            guard ok, let settings else { return nil }
            return SNSScheme(
                certificateHost: settings.host, topicArns: topics, autoConfirm: autoConfirm, caFile: settings.caFile)
        },
        sign: nil)
}
