import COpenSSL

/// A libcrypto key (EVP_PKEY), freed with its last user. Keys are read when the config is
/// and only used for verifying or signing afterwards, which libcrypto allows from any
/// number of threads at once.
final class KeyHandle: @unchecked Sendable {
    let pointer: OpaquePointer

    init(_ pointer: OpaquePointer) { self.pointer = pointer }
    deinit { EVP_PKEY_free(pointer) }

    /// A public key from DER SubjectPublicKeyInfo.
    static func publicKey(der: [UInt8]) -> KeyHandle? {
        der.withUnsafeBufferPointer { buffer in
            var cursor = buffer.baseAddress
            guard let key = d2i_PUBKEY(nil, &cursor, buffer.count) else { return nil }
            // Trailing bytes after the structure are not a key of ours.
            guard cursor == buffer.baseAddress.map({ $0 + buffer.count }) else {
                EVP_PKEY_free(key)
                return nil
            }
            return KeyHandle(key)
        }
    }

    /// A public key from PEM ("PUBLIC KEY").
    static func publicKey(pem: String) -> KeyHandle? {
        withMemoryBIO(pem) { bio in PEM_read_bio_PUBKEY(bio, nil, nil, nil).map(KeyHandle.init) }
    }

    /// A private key from DER: PKCS#8, or the algorithm's own form (SEC1 for EC).
    static func privateKey(der: [UInt8]) -> KeyHandle? {
        der.withUnsafeBufferPointer { buffer in
            var cursor = buffer.baseAddress
            return d2i_AutoPrivateKey(nil, &cursor, buffer.count).map(KeyHandle.init)
        }
    }

    /// A private key from PEM ("PRIVATE KEY" or "EC PRIVATE KEY"); an encrypted one is
    /// refused rather than asked a passphrase for on the terminal.
    static func privateKey(pem: String) -> KeyHandle? {
        withMemoryBIO(pem) { bio in
            PEM_read_bio_PrivateKey(bio, nil, { _, _, _, _ in 0 }, nil).map(KeyHandle.init)
        }
    }

    private static func withMemoryBIO<T>(_ text: String, _ body: (OpaquePointer) -> T?) -> T? {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { buffer -> T? in
            guard let bio = BIO_new_mem_buf(buffer.baseAddress, Int32(buffer.count)) else { return nil }
            defer { BIO_free(bio) }
            let result = body(bio)
            ERR_clear_error()
            return result
        }
    }

    var baseID: Int32 { EVP_PKEY_get_base_id(pointer) }
    var bits: Int32 { EVP_PKEY_get_bits(pointer) }

    /// The curve of an EC key ("prime256v1" for P-256).
    var groupName: String? {
        var name = [CChar](repeating: 0, count: 64)
        var length = 0
        guard EVP_PKEY_get_utf8_string_param(pointer, "group", &name, name.count, &length) == 1 else { return nil }
        return String(decoding: name.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Whether `signature` is the key's signature of `message`, hashed with `digest` (nil
    /// for Ed25519, which hashes by itself).
    func verifies(_ signature: [UInt8], of message: [UInt8], digest: HashAlgorithm?) -> Bool {
        guard let context = EVP_MD_CTX_new() else { return false }
        defer {
            EVP_MD_CTX_free(context)
            ERR_clear_error()
        }
        guard EVP_DigestVerifyInit(context, nil, digest?.implementation, nil, pointer) == 1 else { return false }
        return signature.withUnsafeBufferPointer { signature in
            message.withUnsafeBufferPointer { message in
                EVP_DigestVerify(context, signature.baseAddress, signature.count, message.baseAddress, message.count) == 1
            }
        }
    }

    /// The key's signature of `message`.
    func sign(_ message: [UInt8], digest: HashAlgorithm?) -> [UInt8]? {
        guard let context = EVP_MD_CTX_new() else { return nil }
        defer {
            EVP_MD_CTX_free(context)
            ERR_clear_error()
        }
        guard EVP_DigestSignInit(context, nil, digest?.implementation, nil, pointer) == 1 else { return nil }
        return message.withUnsafeBufferPointer { message -> [UInt8]? in
            var length = 0
            guard EVP_DigestSign(context, nil, &length, message.baseAddress, message.count) == 1 else { return nil }
            var signature = [UInt8](repeating: 0, count: length)
            guard EVP_DigestSign(context, &signature, &length, message.baseAddress, message.count) == 1 else { return nil }
            return Array(signature.prefix(length))
        }
    }

    /// The raw public key of an Ed25519 key (32 bytes).
    var rawPublicKey: [UInt8] {
        var raw = [UInt8](repeating: 0, count: 32)
        var length = raw.count
        guard EVP_PKEY_get_raw_public_key(pointer, &raw, &length) == 1 else { return [] }
        return Array(raw.prefix(length))
    }

    /// The public half, as DER SubjectPublicKeyInfo.
    var publicKeyDER: [UInt8] {
        var output: UnsafeMutablePointer<UInt8>?
        let length = i2d_PUBKEY(pointer, &output)
        guard length > 0, let output else { return [] }
        defer { CRYPTO_free(output, #fileID, #line) }
        return Array(UnsafeBufferPointer(start: output, count: Int(length)))
    }
}

/// An Ed25519 public key (RFC 8032): Discord's application keys, Standard Webhooks' `whpk_`.
public struct Ed25519PublicKey: Sendable {
    let key: KeyHandle

    /// From the 32 raw bytes.
    public init?(rawRepresentation raw: [UInt8]) {
        guard raw.count == 32, let key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, raw, raw.count) else {
            return nil
        }
        self.key = KeyHandle(key)
    }

    public var rawRepresentation: [UInt8] { key.rawPublicKey }

    /// Whether `signature` (64 bytes) signs `message`.
    public func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
        signature.count == 64 && key.verifies(signature, of: message, digest: nil)
    }
}

/// An Ed25519 private key, for `webhook-bridge send` (and the tests).
public struct Ed25519PrivateKey: Sendable {
    let key: KeyHandle

    /// From the 32-byte seed.
    public init?(seed: [UInt8]) {
        guard seed.count == 32, let key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, seed, seed.count) else {
            return nil
        }
        self.key = KeyHandle(key)
    }

    /// A new random key.
    public init() {
        var generator = SystemRandomNumberGenerator()
        self.init(seed: (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) })!
    }

    public var seed: [UInt8] {
        var raw = [UInt8](repeating: 0, count: 32)
        var length = raw.count
        guard EVP_PKEY_get_raw_private_key(key.pointer, &raw, &length) == 1 else { return [] }
        return raw
    }

    public var publicKey: Ed25519PublicKey { Ed25519PublicKey(rawRepresentation: key.rawPublicKey)! }

    /// The 64-byte signature of `message`.
    public func signature(for message: [UInt8]) -> [UInt8] {
        guard let signature = key.sign(message, digest: nil) else { fatalError("libcrypto cannot sign with Ed25519") }
        return signature
    }
}

/// An ECDSA P-256 public key (SendGrid's verification key); signatures are DER, over SHA-256.
public struct P256PublicKey: Sendable {
    let key: KeyHandle

    /// From PEM ("PUBLIC KEY").
    public init?(pemRepresentation pem: String) {
        guard let key = KeyHandle.publicKey(pem: pem), Self.isP256(key) else { return nil }
        self.key = key
    }

    /// From DER SubjectPublicKeyInfo.
    public init?(derRepresentation der: [UInt8]) {
        guard let key = KeyHandle.publicKey(der: der), Self.isP256(key) else { return nil }
        self.key = key
    }

    static func isP256(_ key: KeyHandle) -> Bool { key.baseID == EVP_PKEY_EC && key.groupName == "prime256v1" }

    public var derRepresentation: [UInt8] { key.publicKeyDER }

    /// Whether `signature` (DER) signs `message`.
    public func isValidSignature(der signature: [UInt8], for message: [UInt8]) -> Bool {
        key.verifies(signature, of: message, digest: .sha256)
    }
}

/// An ECDSA P-256 private key, for `webhook-bridge send` (and the tests).
public struct P256PrivateKey: Sendable {
    let key: KeyHandle

    /// From PEM ("PRIVATE KEY" or "EC PRIVATE KEY").
    public init?(pemRepresentation pem: String) {
        guard let key = KeyHandle.privateKey(pem: pem), P256PublicKey.isP256(key) else { return nil }
        self.key = key
    }

    /// From DER (PKCS#8 or SEC1).
    public init?(derRepresentation der: [UInt8]) {
        guard let key = KeyHandle.privateKey(der: der), P256PublicKey.isP256(key) else { return nil }
        self.key = key
    }

    /// A new random key.
    public init() {
        guard let context = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, nil) else { fatalError("libcrypto is out of memory") }
        defer { EVP_PKEY_CTX_free(context) }
        var key: OpaquePointer?
        guard EVP_PKEY_keygen_init(context) == 1,
            EVP_PKEY_CTX_set_ec_paramgen_curve_nid(context, NID_X9_62_prime256v1) == 1,
            EVP_PKEY_keygen(context, &key) == 1, let key
        else { fatalError("libcrypto cannot make a P-256 key") }
        self.key = KeyHandle(key)
    }

    /// PKCS#8 DER.
    public var derRepresentation: [UInt8] {
        guard let info = EVP_PKEY2PKCS8(key.pointer) else { return [] }
        defer { PKCS8_PRIV_KEY_INFO_free(info) }
        var output: UnsafeMutablePointer<UInt8>?
        let length = i2d_PKCS8_PRIV_KEY_INFO(info, &output)
        guard length > 0, let output else { return [] }
        defer { CRYPTO_free(output, #fileID, #line) }
        return Array(UnsafeBufferPointer(start: output, count: Int(length)))
    }

    public var publicKey: P256PublicKey { P256PublicKey(derRepresentation: key.publicKeyDER)! }

    /// The DER signature of `message`.
    public func signature(for message: [UInt8]) -> [UInt8] {
        guard let signature = key.sign(message, digest: .sha256) else { fatalError("libcrypto cannot sign with P-256") }
        return signature
    }
}

/// An RSA public key of 2048 bits or more (an AWS SNS signing certificate's), for PKCS#1 v1.5
/// signatures.
public struct RSAPublicKey: Sendable {
    let key: KeyHandle

    /// From DER SubjectPublicKeyInfo.
    public init?(derRepresentation der: [UInt8]) {
        guard let key = KeyHandle.publicKey(der: der), key.baseID == EVP_PKEY_RSA, key.bits >= 2048 else { return nil }
        self.key = key
    }

    /// Whether `signature` is the PKCS#1 v1.5 signature of `message` hashed with `digest`.
    public func isValidPKCS1v15Signature(_ signature: [UInt8], for message: [UInt8], digest: HashAlgorithm) -> Bool {
        key.verifies(signature, of: message, digest: digest)
    }
}

extension RSAPublicKey {
    /// From PEM ("PUBLIC KEY"), 2048 bits or more.
    public init?(pemRepresentation pem: String) {
        guard let key = KeyHandle.publicKey(pem: pem), key.baseID == EVP_PKEY_RSA, key.bits >= 2048 else { return nil }
        self.key = key
    }

    /// From a JSON Web Key's `n` and `e` (big-endian unsigned integers).
    public init?(modulus: [UInt8], exponent: [UInt8]) {
        let key = DER.sequence(DER.integer(modulus) + DER.integer(exponent))
        let algorithm = DER.sequence(
            DER.objectIdentifier([0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01]) + [0x05, 0x00])
        self.init(derRepresentation: DER.sequence(algorithm + DER.bitString(key)))
    }

    public var derRepresentation: [UInt8] { key.publicKeyDER }
}

extension P256PublicKey {
    /// From a JSON Web Key's `x` and `y` (32 bytes each).
    public init?(x: [UInt8], y: [UInt8]) {
        guard x.count == 32, y.count == 32 else { return nil }
        let algorithm = DER.sequence(
            DER.objectIdentifier([0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01])  // id-ecPublicKey
                + DER.objectIdentifier([0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07]))  // prime256v1
        self.init(derRepresentation: DER.sequence(algorithm + DER.bitString([0x04] + x + y)))
    }

    /// Whether `signature`, as JOSE writes ECDSA signatures (r and s, 32 bytes each), signs
    /// `message`.
    public func isValidSignature(raw signature: [UInt8], for message: [UInt8]) -> Bool {
        guard signature.count == 64 else { return false }
        let der = DER.sequence(DER.integer(Array(signature[..<32])) + DER.integer(Array(signature[32...])))
        return isValidSignature(der: der, for: message)
    }
}

extension P256PrivateKey {
    /// The signature of `message` as JOSE writes it: r and s, 32 bytes each.
    public func rawSignature(for message: [UInt8]) -> [UInt8] {
        guard let raw = DER.rawECDSA(signature(for: message), width: 32) else {
            fatalError("libcrypto made a P-256 signature that is not DER")
        }
        return raw
    }
}

/// An RSA private key, for `webhook-bridge send` and the tests (PKCS#1 v1.5 signatures).
public struct RSAPrivateKey: Sendable {
    let key: KeyHandle

    /// From PEM ("PRIVATE KEY" or "RSA PRIVATE KEY").
    public init?(pemRepresentation pem: String) {
        guard let key = KeyHandle.privateKey(pem: pem), key.baseID == EVP_PKEY_RSA else { return nil }
        self.key = key
    }

    /// A new random key of `bits`.
    public init(bits: Int = 2048) {
        guard let context = EVP_PKEY_CTX_new_id(EVP_PKEY_RSA, nil) else { fatalError("libcrypto is out of memory") }
        defer { EVP_PKEY_CTX_free(context) }
        var key: OpaquePointer?
        guard EVP_PKEY_keygen_init(context) == 1, EVP_PKEY_CTX_set_rsa_keygen_bits(context, Int32(bits)) == 1,
            EVP_PKEY_keygen(context, &key) == 1, let key
        else { fatalError("libcrypto cannot make an RSA key") }
        self.key = KeyHandle(key)
    }

    public var publicKey: RSAPublicKey { RSAPublicKey(derRepresentation: key.publicKeyDER)! }

    /// The PKCS#1 v1.5 signature of `message` hashed with `digest`.
    public func signature(for message: [UInt8], digest: HashAlgorithm = .sha256) -> [UInt8] {
        guard let signature = key.sign(message, digest: digest) else { fatalError("libcrypto cannot sign with RSA") }
        return signature
    }
}

/// The few DER forms the keys above are written in.
enum DER {
    static func length(_ count: Int) -> [UInt8] {
        guard count >= 0x80 else { return [UInt8(count)] }
        var bytes: [UInt8] = []
        var rest = count
        while rest > 0 {
            bytes.insert(UInt8(rest & 0xFF), at: 0)
            rest >>= 8
        }
        return [0x80 | UInt8(bytes.count)] + bytes
    }

    static func element(_ tag: UInt8, _ content: [UInt8]) -> [UInt8] { [tag] + length(content.count) + content }
    static func sequence(_ content: [UInt8]) -> [UInt8] { element(0x30, content) }
    static func objectIdentifier(_ encoded: [UInt8]) -> [UInt8] { element(0x06, encoded) }
    static func bitString(_ content: [UInt8]) -> [UInt8] { element(0x03, [0x00] + content) }

    /// A non-negative INTEGER from big-endian bytes: leading zeros dropped, one added when the
    /// top bit is set.
    static func integer(_ bytes: [UInt8]) -> [UInt8] {
        var value = Array(bytes.drop { $0 == 0 })
        if value.isEmpty { value = [0] }
        if value[0] & 0x80 != 0 { value.insert(0, at: 0) }
        return element(0x02, value)
    }

    /// r and s of a DER ECDSA signature, each left-padded to `width` bytes.
    static func rawECDSA(_ der: [UInt8], width: Int) -> [UInt8]? {
        var index = 0
        func read(_ tag: UInt8) -> [UInt8]? {
            guard index + 2 <= der.count, der[index] == tag else { return nil }
            var count = Int(der[index + 1])
            index += 2
            if count & 0x80 != 0 {
                let octets = count & 0x7F
                guard octets <= 2, index + octets <= der.count else { return nil }
                count = der[index..<index + octets].reduce(0) { $0 << 8 | Int($1) }
                index += octets
            }
            guard index + count <= der.count else { return nil }
            defer { index += count }
            return Array(der[index..<index + count])
        }
        guard read(0x30) != nil else { return nil }
        index = der.count > 1 && der[1] & 0x80 != 0 ? 2 + Int(der[1] & 0x7F) : 2
        guard let r = read(0x02), let s = read(0x02) else { return nil }
        func pad(_ value: [UInt8]) -> [UInt8]? {
            let trimmed = Array(value.drop { $0 == 0 })
            guard trimmed.count <= width else { return nil }
            return [UInt8](repeating: 0, count: width - trimmed.count) + trimmed
        }
        guard index == der.count, let paddedR = pad(r), let paddedS = pad(s) else { return nil }
        return paddedR + paddedS
    }
}
