import WebhookEncoding
import WebhookCore

/// A built-in provider that is the `hmac` engine with fixed settings: an HMAC of the body in
/// a header, with a prefix and an encoding, the id and type from headers or body fields. Its
/// `verify` may override the defaults the way `hmac` sets them (`header`, `idHeader`,
/// `idPointer`, `typeHeader`, `typePointer`), so a provider that renames a header needs no
/// new release.
struct HMACVariantScheme: WebhookScheme {
    let name: String
    let engine: HMACScheme
    /// Sets what the settings can't express (a constant or a composed type).
    let refine: (@Sendable (inout VerifiedWebhook, WebhookRequest) -> Void)?

    var signatureHeaders: [String] { engine.signatureHeaders }

    func verify(_ request: WebhookRequest) throws(VerificationFailure) -> VerifiedWebhook {
        var verified = try engine.verify(request)
        refine?(&verified, request)
        return verified
    }
}

extension Provider {
    /// The `verify` keys of an HMAC variant besides `secrets` and `toleranceSeconds`.
    static let variantKeys = ["header", "idHeader", "idPointer", "typeHeader", "typePointer"]

    /// A provider over the `hmac` engine (see ``HMACVariantScheme``).
    static func hmacVariant(
        name: String, settings: HMACScheme.Settings, signature: String, id: String, type: String,
        refine: (@Sendable (inout VerifiedWebhook, WebhookRequest) -> Void)? = nil
    ) -> Provider {
        Provider(
            name: name, signature: signature, id: id, type: type, keys: variantKeys,
            make: { config in
                var settings = settings
                var ok = true
                if let header = config.reader.string("header") {
                    settings.header = header
                    settings.extraHeaders = []
                }
                if let idHeader = config.reader.string("idHeader") {
                    settings.idHeader = idHeader
                    settings.idPointer = nil
                }
                if let typeHeader = config.reader.string("typeHeader") {
                    settings.typeHeader = typeHeader
                    settings.typePointer = nil
                }
                for key in ["idPointer", "typePointer"] {
                    guard let pointer = config.reader.string(key) else { continue }
                    guard pointer.hasPrefix("/") else {
                        config.log.add(config.reader.childPath(key), "must be a JSON pointer starting with /")
                        ok = false
                        continue
                    }
                    if key == "idPointer" {
                        settings.idPointer = pointer
                        settings.idHeader = nil
                    } else {
                        settings.typePointer = pointer
                        settings.typeHeader = nil
                    }
                }
                let typeOverridden = config.reader.has("typeHeader") || config.reader.has("typePointer")
                guard ok, let secrets = config.secrets else { return nil }
                return HMACVariantScheme(
                    name: name,
                    engine: HMACScheme(name: name, settings: settings, secrets: secrets, toleranceSeconds: config.tolerance),
                    refine: typeOverridden ? nil : refine)
            },
            signHeaders: { request in
                let mac = request.mac(settings.algorithm)
                let encoded = settings.encoding == .hex ? Hex.encode(mac) : Base64.encode(mac)
                var headers = [(settings.header, settings.prefix + encoded)]
                if let idHeader = settings.idHeader { headers.append((idHeader, request.id)) }
                if let typeHeader = settings.typeHeader { headers += request.typed(typeHeader) }
                return headers
            })
    }
}

extension HMACScheme.Settings {
    /// Settings for a variant: `header` carrying `prefix` + the `encoding` of the `algorithm`
    /// HMAC of the body.
    static func variant(
        _ header: String, prefix: String = "", algorithm: HMACAlgorithm = .sha256, encoding: HMACScheme.SignatureEncoding = .hex,
        idHeader: String? = nil, idPointer: String? = nil, typeHeader: String? = nil, typePointer: String? = nil
    ) -> Self {
        var settings = Self(header: header)
        settings.prefix = prefix
        settings.algorithm = algorithm
        settings.encoding = encoding
        settings.idHeader = idHeader
        settings.idPointer = idPointer
        settings.typeHeader = typeHeader
        settings.typePointer = typePointer
        return settings
    }
}
