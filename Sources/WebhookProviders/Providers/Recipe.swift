import WebhookEncoding
import WebhookCrypto
import WebhookCore

/// How a provider that signs in headers signs, as data: the header, the proof (an HMAC with
/// its algorithm and encoding, or the secret itself), how the header is written (a prefix,
/// several values, or `t=…,v1=…` items), the signed content, the timestamp rule, and where
/// the id and type come from. One recipe drives the verifier (``RecipeScheme``), the signer
/// (`sign`, `send`) and the catalog's description (`providers`, docs/providers.md), so adding
/// such a provider is one recipe (``Provider/recipe(_:_:note:)``) and one registry line.
public struct Recipe: Sendable {
    /// The header carrying the signature.
    public var header: String
    /// Headers that may carry it instead (Box's secondary, DocuSign's numbered ones).
    public var extraHeaders: [String] = []
    public var proof: Proof = .hmac(.sha256, .hex)
    /// What precedes the encoded signature (`sha256=`), or the token (`Bearer `).
    public var prefix: String = ""
    /// Several signatures in one header, split by this, each with ``prefix`` (PagerDuty's
    /// `v1=a,v1=b`).
    public var listSeparator: Character?
    /// The header is `key=value` items holding the timestamp and the signatures (Stripe's
    /// `t=T,v1=S`); ``prefix`` and ``listSeparator`` are not used then.
    public var items: Items?
    /// Where the signed timestamp is besides ``items``: a header, as UNIX seconds or RFC 3339.
    public var timestampHeader: String?
    public var timestampFormat: TimestampFormat = .unixSeconds
    /// What the HMAC covers (`{timestamp}.{body}`); the body alone by default.
    public var signedContent: SignedContent = .bodyOnly
    public var id = FieldSource()
    public var type = FieldSource()
    /// Headers the provider sends with the same value every time (Box's
    /// `BOX-SIGNATURE-VERSION: 1`): `sign` sends them, and a request that carries one with
    /// another value is refused, as the provider's own SDK refuses it.
    public var constantHeaders: [(name: String, value: String)] = []
    /// A header the provider sends with a delivery's own id (Box's `BOX-DELIVERY-ID`), not
    /// read by the bridge: `sign` fills it.
    public var deliveryHeader: String?
    /// Headers the provider sends that the bridge does not read, with an example value:
    /// `sign` sends them, so a request it makes passes the provider's SDK (Shopify's refuse
    /// one without `X-Shopify-Shop-Domain`).
    public var exampleHeaders: [(name: String, value: String)] = []
    /// A header the provider sends with the time of sending (UNIX seconds) but does not
    /// sign (Sentry's `Sentry-Hook-Timestamp`): not read by the bridge, filled by `sign`.
    public var sentAtHeader: String?

    public init(header: String) { self.header = header }

    /// A recipe in one expression, for the catalog.
    init(
        _ header: String, extraHeaders: [String] = [], _ proof: Proof = .hmac(.sha256, .hex), prefix: String = "",
        listSeparator: Character? = nil, items: Items? = nil, timestampHeader: String? = nil,
        timestampFormat: TimestampFormat = .unixSeconds, signing signedContent: SignedContent = .bodyOnly,
        id: FieldSource = FieldSource(), type: FieldSource = FieldSource(),
        constantHeaders: [(name: String, value: String)] = [], deliveryHeader: String? = nil,
        exampleHeaders: [(name: String, value: String)] = [], sentAtHeader: String? = nil
    ) {
        self.exampleHeaders = exampleHeaders
        self.sentAtHeader = sentAtHeader
        self.constantHeaders = constantHeaders
        self.deliveryHeader = deliveryHeader
        self.header = header
        self.extraHeaders = extraHeaders
        self.proof = proof
        self.prefix = prefix
        self.listSeparator = listSeparator
        self.items = items
        self.timestampHeader = timestampHeader
        self.timestampFormat = timestampFormat
        self.signedContent = signedContent
        self.id = id
        self.type = type
    }

    /// What proves a request came from the provider.
    public enum Proof: Sendable {
        /// An HMAC of the signed content, keyed with the secret's UTF-8 bytes.
        case hmac(HMACAlgorithm, SignatureEncoding)
        /// The header holds a secret itself (after ``prefix``), compared in constant time.
        case token
    }

    public enum SignatureEncoding: String, Sendable, CaseIterable { case hex, base64 }

    public enum TimestampFormat: Sendable { case unixSeconds, unixMilliseconds, rfc3339 }

    /// `t=T,v1=S[,v1=S2]`: the item separator and the keys of the timestamp and signatures.
    public struct Items: Sendable {
        public var separator: Character
        public var timestampKey: String
        public var signatureKey: String

        public init(separator: Character, timestampKey: String, signatureKey: String) {
            self.separator = separator
            self.timestampKey = timestampKey
            self.signatureKey = signatureKey
        }

        /// Stripe's `t=T,v1=S[,v1=S2]`, which Calendly, Mux, WorkOS and Persona use too.
        public static let stripeStyle = Items(separator: ",", timestampKey: "t", signatureKey: "v1")
    }

    /// The `signedContent` template: `{timestamp}`, `{body}` and `{id}` between literals.
    public struct SignedContent: Sendable {
        enum Part: Sendable {
            case literal(String), timestamp, body, id
        }
        let parts: [Part]

        public static let bodyOnly = SignedContent(parts: [.body])
        /// `T` + `separator` + body (Stripe's `T.body`, Paddle's `T:body`).
        static func timestampThenBody(_ separator: String = "") -> SignedContent {
            SignedContent(parts: separator.isEmpty ? [.timestamp, .body] : [.timestamp, .literal(separator), .body])
        }
        static let bodyThenTimestamp = SignedContent(parts: [.body, .timestamp])
        /// Slack's and Zoom's `v0:T:body`.
        static let v0 = SignedContent(parts: [.literal("v0:"), .timestamp, .literal(":"), .body])

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

        /// The pieces to MAC, the body never copied.
        func signed(timestamp: String?, body: SignedPart, id: String?) -> [SignedPart] {
            parts.map { part in
                switch part {
                case .literal(let text): .text(text)
                case .timestamp: .text(timestamp ?? "")
                case .body: body
                case .id: .text(id ?? "")
                }
            }
        }

        /// `T.body`, `T + body`, `the body`: for the catalog.
        var summary: String {
            if parts.count == 1 { return "the body" }
            let hasLiteral = parts.contains { if case .literal = $0 { return true } else { return false } }
            let names = parts.map { part in
                switch part {
                case .literal(let text): text
                case .timestamp: "T"
                case .body: "body"
                case .id: "id"
                }
            }
            return names.joined(separator: hasLiteral ? "" : " + ")
        }
    }

    /// Whether the request's time is signed, and so checked against the tolerance.
    public var isTimestamped: Bool { items != nil || timestampHeader != nil }

    /// Every header that may carry the signature: a request with none is refused from its head.
    var signatureHeaders: [String] { [header] + extraHeaders }
}

/// Where an event's id or type comes from: the first of its places that the request has.
public struct FieldSource: Sendable {
    public enum Place: Sendable {
        case header(String)
        /// A JSON pointer into the body (`/data/id`).
        case pointer(String)
        /// This text, always (`list_folder`, `zendesk` after the body's `type`).
        case constant(String)
        /// Computed (Webex's `resource.event`), with its description for the catalog.
        case computed(String, @Sendable (WebhookRequest) -> String?)
    }

    public var places: [Place]

    public init(_ places: [Place] = []) { self.places = places }

    public static func header(_ name: String) -> FieldSource { FieldSource([.header(name)]) }
    public static func pointer(_ pointer: String) -> FieldSource { FieldSource([.pointer(pointer)]) }
    public static let none = FieldSource()

    /// Member names of top-level pointers (`/id`): read by a scan of the body that builds
    /// nothing else, unless something parsed the body already.
    var topLevelKeys: [String] {
        places.compactMap { place in
            guard case .pointer(let pointer) = place else { return nil }
            let key = pointer.dropFirst()
            // An index (`/0`) reads an array body, which the scan of an object's members can't.
            let isIndex = !key.isEmpty && key.allSatisfy(\.isASCII) && key.allSatisfy(\.isNumber)
            return key.contains("/") || key.contains("~") || isIndex ? nil : String(key)
        }
    }

    /// The value in `request`; `texts` are the top-level members named by `keys` (read for
    /// the ``topLevelKeys`` of the id and the type at once).
    func value(in request: WebhookRequest, keys: [String], texts: [String?]) -> String? {
        for place in places {
            let found: String?
            switch place {
            case .header(let name): found = request.headers.first(name: name)
            case .pointer(let pointer):
                if let index = keys.firstIndex(where: { $0.utf8.elementsEqual(pointer.utf8.dropFirst()) }) {
                    found = texts[index]
                } else {
                    found = request.bodyJSON?.value(atPointer: pointer)?.scalarText
                }
            case .constant(let text): found = text
            case .computed(_, let compute): found = compute(request)
            }
            if let found { return found }
        }
        return nil
    }

    /// `X-GitHub-Delivery`, `body data.id, else zendesk`: for the catalog.
    var summary: String {
        places.map { place in
            switch place {
            case .header(let name): name
            case .pointer(let pointer): "body " + pointer.dropFirst().replacingSlashes
            case .constant(let text): text
            case .computed(let description, _): description
            }
        }
        .joined(separator: ", else ")
    }

    /// The first header place: the one a signer fills in.
    var firstHeader: String? {
        for case .header(let name) in places { return name }
        return nil
    }

    /// The id's and the type's places as `verify` sets them over `id` and `type` (see
    /// ``read(_:from:default:)``); nil after a problem, both read so both are reported.
    static func readPlaces(_ reader: ConfigReader, id: FieldSource, type: FieldSource) -> (id: FieldSource, type: FieldSource)? {
        let id = read("id", from: reader, default: id)
        let type = read("type", from: reader, default: type)
        guard let id, let type else { return nil }
        return (id, type)
    }

    /// Reads `<key>Header` and `<key>Pointer` of `verify` (`idHeader`, `typePointer`): when
    /// either is given they replace the provider's places (the header first), and its
    /// constant fallback stays last (Zendesk's `zendesk`). Nil, with the problem recorded,
    /// for a pointer that does not start with `/`.
    static func read(_ key: String, from reader: ConfigReader, default fallback: FieldSource) -> FieldSource? {
        let header = reader.string(key + "Header")
        let pointer = reader.string(key + "Pointer")
        if let pointer, !pointer.hasPrefix("/") {
            reader.problem(at: key + "Pointer", "must be a JSON pointer starting with /")
            return nil
        }
        if header == nil, pointer == nil { return fallback }
        let constants = fallback.places.filter { if case .constant = $0 { true } else { false } }
        return FieldSource((header.map { [.header($0)] } ?? []) + (pointer.map { [.pointer($0)] } ?? []) + constants)
    }
}

extension Substring {
    fileprivate var replacingSlashes: String { String(map { $0 == "/" ? "." : $0 }) }
}

// MARK: - Signing and describing

extension Recipe {
    /// The headers the provider would send for `request`.
    func sign(_ request: SigningRequest) -> [(String, String)] {
        let timestamp =
            switch timestampFormat {
            case .unixSeconds: request.timestamp
            case .unixMilliseconds: String(request.input.timestamp * 1000)
            case .rfc3339: Timestamp(secondsSince1970: request.input.timestamp).rfc3339
            }
        var headers: [(String, String)]
        switch proof {
        case .token:
            headers = [(header, prefix + request.secret)]
        case .hmac(let algorithm, let encoding):
            let parts = signedContent.signed(timestamp: timestamp, body: .bytes(.init(bytes: request.body)), id: request.id)
            let mac = algorithm.mac(key: Array(request.secret.utf8), parts: parts)
            let encoded = encoding == .hex ? Hex.encode(mac) : Base64.encode(mac)
            if let items {
                let separator = String(items.separator)
                headers = [(header, "\(items.timestampKey)=\(timestamp)\(separator)\(items.signatureKey)=\(encoded)")]
            } else {
                headers = [(header, prefix + encoded)]
            }
        }
        if let timestampHeader { headers.append((timestampHeader, timestamp)) }
        if let name = id.firstHeader { headers.append((name, request.id)) }
        if let name = type.firstHeader, let value = request.input.type { headers.append((name, value)) }
        if let deliveryHeader { headers.append((deliveryHeader, request.id)) }
        headers += constantHeaders.map { ($0.name, $0.value) }
        headers += exampleHeaders.map { ($0.name, $0.value) }
        if let sentAtHeader { headers.append((sentAtHeader, request.timestamp)) }
        return headers
    }

    /// What a request must carry, in one line.
    var signatureSummary: String {
        let named: String
        switch extraHeaders.count {
        case 0: named = header
        case 1: named = "\(header) or \(extraHeaders[0])"
        default: named = "\(header) (or one of \(extraHeaders.count) more)"
        }
        switch proof {
        case .token:
            return prefix.isEmpty ? "\(named) equals a secret" : "\(named), after \(prefix), equals a secret"
        case .hmac(let algorithm, let encoding):
            let mac = "\(encoding.rawValue) HMAC-\(algorithm.rawValue.uppercased()) of \(signedContent.summary)"
            var text: String
            if let items {
                let separator = String(items.separator)
                text = "\(named): \(items.timestampKey)=T\(separator)\(items.signatureKey)=S, S the \(mac)"
            } else {
                text = "\(named): \(prefix.isEmpty ? "" : prefix + " ")\(mac)"
                if listSeparator != nil { text += " (several \(prefix.isEmpty ? "" : prefix + " ")values allowed)" }
            }
            let unit =
                switch timestampFormat {
                case .unixSeconds: ""
                case .unixMilliseconds: " (milliseconds)"
                case .rfc3339: " (RFC 3339)"
                }
            if let timestampHeader {
                text += "; T = \(timestampHeader)\(unit) within tolerance"
            } else if items != nil {
                text += "; T\(unit) within tolerance"
            }
            if !constantHeaders.isEmpty {
                text += "; " + constantHeaders.map { "\($0.name), when sent, \($0.value)" }.joined(separator: ", ")
            }
            return text
        }
    }
}

extension Provider {
    /// The `verify` keys of every recipe provider besides `secrets` and `toleranceSeconds`: a
    /// renamed signature header, and where the id and type come from (`hmac`'s keys), so a
    /// provider that renames a header needs no new release.
    static let recipeKeys = ["header", "idHeader", "idPointer", "typeHeader", "typePointer"]

    /// The provider that `recipe` describes: verified by ``RecipeScheme``, signed by the
    /// recipe, described from it (`note` adds what the recipe can't say, such as which key).
    static func recipe(_ name: String, _ recipe: Recipe, note: String? = nil) -> Provider {
        var provider = Provider(
            name: name, signature: recipe.signatureSummary + (note.map { "; \($0)" } ?? ""),
            id: recipe.id.places.isEmpty ? "hash" : recipe.id.summary,
            type: recipe.type.places.isEmpty ? "webhook" : recipe.type.summary, keys: recipeKeys,
            make: { config in
                var recipe = recipe
                if let header = config.reader.string("header") {
                    recipe.header = header
                    recipe.extraHeaders = []
                }
                let places = FieldSource.readPlaces(config.reader, id: recipe.id, type: recipe.type)
                guard let places, let secrets = config.secrets else { return nil }
                (recipe.id, recipe.type) = places
                return RecipeScheme(name: name, recipe: recipe, secrets: secrets, toleranceSeconds: config.tolerance)
            },
            signHeaders: { request in recipe.sign(request) })
        provider.recipe = recipe
        return provider
    }
}
