import WebhookCrypto
import WebhookEncoding
import WebhookProviders

/// JSON Web Keys for keys a test makes: what a provider's key set URL would serve.
public enum JSONWebKeys {
    /// An RSA public key of 2048 bits as a JWK (`n` and `e` read from its DER).
    public static func rsa(_ key: RSAPublicKey, kid: String) -> JSONValue {
        let der = key.derRepresentation
        // n: the 257-byte INTEGER (a leading zero, then 2048 bits); e: the INTEGER after it.
        let nStart = (0..<der.count - 4).first { Array(der[$0...$0 + 3]) == [0x02, 0x82, 0x01, 0x01] }! + 4
        let n = Array(der[nStart..<nStart + 257])
        let eStart = nStart + 257 + 2
        let e = Array(der[eStart..<eStart + Int(der[nStart + 257 + 1])])
        return .object([
            ("kty", .string("RSA")), ("kid", .string(kid)), ("alg", .string("RS256")), ("use", .string("sig")),
            ("n", .string(JSONWebToken.base64URLEncode(n))), ("e", .string(JSONWebToken.base64URLEncode(e))),
        ])
    }

    /// A P-256 public key as a JWK.
    public static func ec(_ key: P256PublicKey, kid: String) -> JSONValue {
        let point = Array(key.derRepresentation.suffix(64))
        return .object([
            ("kty", .string("EC")), ("crv", .string("P-256")), ("kid", .string(kid)), ("use", .string("sig")),
            ("x", .string(JSONWebToken.base64URLEncode(point.prefix(32)))),
            ("y", .string(JSONWebToken.base64URLEncode(point.suffix(32)))),
        ])
    }

    /// A key set's JSON bytes.
    public static func set(_ keys: [JSONValue]) -> [UInt8] {
        var bytes: [UInt8] = []
        JSONWriter.append(.object([("keys", .array(keys))]), to: &bytes)
        return bytes
    }
}
