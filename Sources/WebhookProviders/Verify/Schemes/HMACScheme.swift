import WebhookEncoding
import WebhookCrypto
import WebhookCore

/// The generic `hmac` scheme for providers not built in: the signature header, algorithm,
/// encoding and prefix, an optional signed timestamp, the signed content, and where id and
/// type come from are all configured.
public struct HMACScheme: WebhookScheme {
    /// `verify` settings of an `hmac` source.
    public struct Settings: Sendable {
        public var header: String
        public var algorithm: HMACAlgorithm = .sha256
        public var encoding: SignatureEncoding = .hex
        public var prefix: String = ""
        public var timestampHeader: String?
        public var signedContent: SignedContent = .bodyOnly
        public var idHeader: String?
        public var idPointer: String?
        public var typeHeader: String?
        public var typePointer: String?
        /// Built-in variants only: more headers that may carry the signature (DocuSign's
        /// numbered ones), and a separator for several signatures in one header (PagerDuty's
        /// `v1=a,v1=b`; each item then starts with ``prefix``).
        public var extraHeaders: [String] = []
        public var listSeparator: Character?

        public init(header: String) { self.header = header }
    }

    public enum SignatureEncoding: String, Sendable, CaseIterable { case hex, base64 }

    /// The `signedContent` template: `{timestamp}`, `{body}` and `{id}` between literals.
    public struct SignedContent: Sendable {
        enum Part: Sendable {
            case literal(String), timestamp, body, id
        }
        let parts: [Part]

        public static let bodyOnly = SignedContent(parts: [.body])

        init(parts: [Part]) { self.parts = parts }

        /// Parses a template; throws a message for a config problem.
        public init(parsing text: String) throws(TemplateError) {
            var parts: [Part] = []
            var rest = text[...]
            while let open = rest.firstIndex(of: "{") {
                if open > rest.startIndex { parts.append(.literal(String(rest[..<open]))) }
                guard let close = rest[open...].firstIndex(of: "}") else { throw TemplateError("unmatched '{'") }
                switch rest[rest.index(after: open)..<close] {
                case "timestamp": parts.append(.timestamp)
                case "body": parts.append(.body)
                case "id": parts.append(.id)
                case let other: throw TemplateError("unknown placeholder {\(other)}; use {timestamp}, {body} or {id}")
                }
                rest = rest[rest.index(after: close)...]
            }
            if !rest.isEmpty { parts.append(.literal(String(rest))) }
            guard parts.contains(where: { if case .body = $0 { return true } else { return false } }) else {
                throw TemplateError("must contain {body}")
            }
            self.parts = parts
        }

        var usesTimestamp: Bool { parts.contains { if case .timestamp = $0 { return true } else { return false } } }
        var usesID: Bool { parts.contains { if case .id = $0 { return true } else { return false } } }
    }

    public let name: String
    let settings: Settings
    let keyring: HMACKeyring
    let tolerance: Int

    /// `name` is the scheme the events carry (`webhookscheme`): `hmac`, or a built-in provider
    /// that is this engine with fixed settings.
    public init(name: String = "hmac", settings: Settings, secrets: [String], toleranceSeconds: Int) {
        self.name = name
        self.settings = settings
        self.keyring = HMACKeyring(secrets: secrets)
        self.tolerance = toleranceSeconds
    }

    public var signatureHeaders: [String] { [settings.header] + settings.extraHeaders }

    public func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        let values = signatureHeaders.compactMap { request.headers.first(name: $0) }
        guard !values.isEmpty else {
            if let missing = missingSignature(in: request.headers) { throw missing }
            throw .missing("\(settings.header) is missing")
        }
        var candidates: [[UInt8]] = []
        for value in values {
            let items =
                settings.listSeparator.map { value.split(separator: $0).map { String($0).trimmingSpaces } } ?? [value[...]]
            for item in items.prefix(maximumSignatureCandidates) where item.hasPrefix(settings.prefix) {
                let encoded = item.dropFirst(settings.prefix.count)
                if let decoded = settings.encoding == .hex ? Hex.decode(encoded) : Base64.decode(encoded) {
                    candidates.append(decoded)
                }
            }
        }
        guard !candidates.isEmpty else {
            throw .invalid("\(settings.header) is not \(settings.prefix)<\(settings.encoding.rawValue)>")
        }

        var timestamp: String?
        if let timestampHeader = settings.timestampHeader {
            timestamp = request.headers.first(name: timestampHeader)
            guard timestamp != nil else { throw .missing("\(timestampHeader) is missing") }
        }
        let id =
            settings.idHeader.flatMap { request.headers.first(name: $0) }
            ?? settings.idPointer.flatMap { request.bodyJSON?.value(atPointer: $0)?.scalarText }
        if settings.signedContent.usesID, id == nil { throw .missing("the event id the signature covers is missing") }

        let parts: [SignedPart] = settings.signedContent.parts.map { part in
            switch part {
            case .literal(let text): return .text(text)
            case .timestamp: return .text(timestamp ?? "")
            case .body: return .bytes(request.body)
            case .id: return .text(id ?? "")
            }
        }
        let matched = keyring.firstMatch(settings.algorithm, parts, candidates: candidates)
        guard let matched else { throw .invalid("\(settings.header) does not match \(keyring.tried)") }
        if let timestampHeader = settings.timestampHeader {
            try checkTimestamp(timestamp, header: timestampHeader, tolerance: tolerance, now: request.receivedAt)
        }
        let type =
            settings.typeHeader.flatMap { request.headers.first(name: $0) }
            ?? settings.typePointer.flatMap { request.bodyJSON?.value(atPointer: $0)?.scalarText }
        return VerifiedWebhook(id: id, type: type, keyIndex: matched)
    }
}

extension Provider {
    static let hmac = Provider(
        name: "hmac",
        signature:
            "configured: header, algorithm (sha1/sha256/sha512), encoding (hex/base64), prefix, timestampHeader with signedContent ({timestamp}, {body}, {id})",
        id: "idHeader / idPointer, else hash", type: "typeHeader / typePointer, else webhook",
        keys: [
            "header", "algorithm", "encoding", "prefix", "timestampHeader", "signedContent", "idHeader", "idPointer",
            "typeHeader", "typePointer",
        ],
        make: { config in
            guard let header = config.reader.string("header", required: true) else { return nil }
            var settings = HMACScheme.Settings(header: header)
            var ok = true
            if let text = config.reader.string("algorithm") {
                if let algorithm = HMACAlgorithm(rawValue: text) {
                    settings.algorithm = algorithm
                } else {
                    config.log.add(config.reader.childPath("algorithm"), "must be sha1, sha256 or sha512")
                    ok = false
                }
            }
            if let text = config.reader.string("encoding") {
                if let encoding = HMACScheme.SignatureEncoding(rawValue: text) {
                    settings.encoding = encoding
                } else {
                    config.log.add(config.reader.childPath("encoding"), "must be hex or base64")
                    ok = false
                }
            }
            settings.prefix = config.reader.string("prefix", nonEmpty: false) ?? ""
            settings.timestampHeader = config.reader.string("timestampHeader")
            if let text = config.reader.string("signedContent") {
                do throws(TemplateError) {
                    settings.signedContent = try HMACScheme.SignedContent(parsing: text)
                } catch {
                    config.log.add(config.reader.childPath("signedContent"), error.message)
                    ok = false
                }
            }
            switch (settings.signedContent.usesTimestamp, settings.timestampHeader != nil) {
            case (false, true):
                // Valid (SPEC section 4 lists the two as independent options): the header's
                // timestamp is still checked against the tolerance.
                config.log.warn(
                    config.reader.childPath("signedContent"),
                    "has no {timestamp} while timestampHeader is set: the timestamp is checked but not signed, so a replay can carry a fresh one"
                )
            case (true, false):
                config.log.add(config.reader.childPath("signedContent"), "uses {timestamp} but timestampHeader is not set")
                ok = false
            default:
                break
            }
            settings.idHeader = config.reader.string("idHeader")
            settings.typeHeader = config.reader.string("typeHeader")
            for key in ["idPointer", "typePointer"] {
                guard let pointer = config.reader.string(key) else { continue }
                guard pointer.hasPrefix("/") else {
                    config.log.add(config.reader.childPath(key), "must be a JSON pointer starting with /")
                    ok = false
                    continue
                }
                if key == "idPointer" { settings.idPointer = pointer } else { settings.typePointer = pointer }
            }
            if settings.signedContent.usesID, settings.idHeader == nil, settings.idPointer == nil {
                config.log.add(config.reader.childPath("signedContent"), "uses {id} but neither idHeader nor idPointer is set")
                ok = false
            }
            guard ok, let secrets = config.secrets else { return nil }
            return HMACScheme(settings: settings, secrets: secrets, toleranceSeconds: config.tolerance)
        },
        signHeaders: { request throws(WebhookSigner.Failure) in
            guard let settings = request.input.hmac else {
                throw WebhookSigner.Failure("hmac needs --signature-header (and the source's other hmac settings)")
            }
            let parts: [SignedPart] = settings.signedContent.parts.map { part in
                switch part {
                case .literal(let text): return .text(text)
                case .timestamp: return .text(request.timestamp)
                case .body: return .bytes(.init(bytes: request.body))
                case .id: return .text(request.id)
                }
            }
            let signature = settings.algorithm.mac(key: Array(request.secret.utf8), parts: parts)
            let encoded = settings.encoding == .hex ? Hex.encode(signature) : Base64.encode(signature)
            var headers = [(settings.header, settings.prefix + encoded)]
            if let header = settings.timestampHeader { headers.append((header, request.timestamp)) }
            if let header = settings.idHeader { headers.append((header, request.id)) }
            if let header = settings.typeHeader, let type = request.input.type { headers.append((header, type)) }
            return headers
        })
}
