import ArgumentParser
import WebhookCore
import WebhookProviders

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The options `sign` and `send` share: what to sign and with which secret.
struct SigningOptions: ParsableArguments {
    @Option(help: "The scheme: \(WebhookSigner.schemes.joined(separator: ", ")).")
    var scheme: String

    @Option(help: "The secret as the provider holds it (a private key for sendgrid, discord and whsk_ keys).")
    var secret: String

    @Option(help: "The body: a file, or - for standard input (default: empty).")
    var body: String?

    @Option(help: "The UNIX timestamp to sign (default: now).")
    var timestamp: Int64?

    @Option(help: "The event id, for schemes that send it in a header (default: random).")
    var id: String?

    @Option(help: "The event type, for schemes that send it in a header (github, shopify, gitlab, hmac).")
    var type: String?

    // MARK: The generic hmac scheme's settings

    @Option(name: .customLong("signature-header"), help: "hmac: the signature header.")
    var signatureHeader: String?
    @Option(help: "hmac: sha1, sha256 or sha512 (default sha256).")
    var algorithm: String?
    @Option(help: "hmac: hex or base64 (default hex).")
    var encoding: String?
    @Option(help: "hmac: text before the signature in the header.")
    var prefix: String?
    @Option(name: .customLong("timestamp-header"), help: "hmac: the timestamp header.")
    var timestampHeader: String?
    @Option(
        name: .customLong("signed-content"), help: "hmac: what is signed, from {timestamp}, {body} and {id} (default {body}).")
    var signedContent: String?
    @Option(name: .customLong("id-header"), help: "hmac: the id header.")
    var idHeader: String?
    @Option(name: .customLong("type-header"), help: "hmac: the type header.")
    var typeHeader: String?

    /// Reads the body and signs it for `url`.
    func sign(url: String?) throws -> (body: [UInt8], output: WebhookSigner.Output) {
        let bytes = try body.map(readBody) ?? []
        var input = WebhookSigner.Input(
            body: bytes, secret: secret, timestamp: timestamp ?? Timestamp.now().secondsSince1970, id: id, type: type, url: url)
        if scheme == "hmac", let signatureHeader {
            var hmacAlgorithm = HMACAlgorithm.sha256
            var hmacEncoding = Recipe.SignatureEncoding.hex
            if let algorithm {
                guard let parsed = HMACAlgorithm(rawValue: algorithm) else {
                    throw ValidationError("--algorithm: sha1, sha256 or sha512")
                }
                hmacAlgorithm = parsed
            }
            if let encoding {
                guard let parsed = Recipe.SignatureEncoding(rawValue: encoding) else {
                    throw ValidationError("--encoding: hex or base64")
                }
                hmacEncoding = parsed
            }
            var recipe = Recipe(header: signatureHeader)
            recipe.proof = .hmac(hmacAlgorithm, hmacEncoding)
            recipe.prefix = prefix ?? ""
            recipe.timestampHeader = timestampHeader
            recipe.id = idHeader.map(FieldSource.header) ?? .none
            recipe.type = typeHeader.map(FieldSource.header) ?? .none
            if let signedContent {
                do {
                    recipe.signedContent = try Recipe.SignedContent(parsing: signedContent)
                } catch {
                    throw ValidationError("--signed-content: \(error.message)")
                }
            }
            input.hmac = recipe
        }
        do {
            let output = try WebhookSigner.sign(scheme: scheme, input)
            return (output.body ?? bytes, output)
        } catch {
            throw ValidationError(error.description)
        }
    }
}

func readStandardInput() -> [UInt8] {
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = read(0, &chunk, chunk.count)
        if count <= 0 { break }
        bytes.append(contentsOf: chunk[0..<count])
    }
    return bytes
}
