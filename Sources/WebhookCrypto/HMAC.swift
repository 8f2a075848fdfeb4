import COpenSSL

/// An HMAC key (RFC 2104) for one hash function, with its key schedule done once: the padded
/// key blocks are absorbed into an inner and an outer state when the config is read (that was
/// a sixth of what verifying a request cost), and a request continues from copies of them:
/// H((K ^ opad) || H((K ^ ipad) || m)). The content goes in as raw bytes, in as many pieces
/// as the caller has. The tests check it against RFC 4231's and RFC 2202's vectors and
/// against Python's `hmac` on keys shorter than, equal to and longer than a block.
public final class PreparedHMAC: @unchecked Sendable {
    // @unchecked: the two contexts are written only here, then only copied from, which
    // libcrypto allows from any number of threads at once.
    public let algorithm: HashAlgorithm
    private let inner: OpaquePointer
    private let outer: OpaquePointer

    public init(key: [UInt8], algorithm: HashAlgorithm) {
        self.algorithm = algorithm
        var block = key.count > algorithm.blockByteCount ? algorithm.hash(key) : key
        block += [UInt8](repeating: 0, count: algorithm.blockByteCount - block.count)
        inner = Self.absorbed(block.map { $0 ^ 0x36 }, algorithm)
        outer = Self.absorbed(block.map { $0 ^ 0x5C }, algorithm)
    }

    private static func absorbed(_ block: [UInt8], _ algorithm: HashAlgorithm) -> OpaquePointer {
        guard let context = EVP_MD_CTX_new(), EVP_DigestInit_ex(context, algorithm.implementation, nil) == 1 else {
            fatalError("libcrypto cannot start a \(algorithm) digest")
        }
        block.withUnsafeBytes { _ = EVP_DigestUpdate(context, $0.baseAddress, $0.count) }
        return context
    }

    deinit {
        EVP_MD_CTX_free(inner)
        EVP_MD_CTX_free(outer)
    }

    /// The code of what `feed` writes into the context it is given.
    public func authenticationCode(_ feed: (inout HashContext) -> Void) -> [UInt8] {
        var context = HashContext(continuing: inner)
        feed(&context)
        let innerDigest = context.finalize()
        var outerContext = HashContext(continuing: outer)
        outerContext.update(innerDigest)
        return outerContext.finalize()
    }

    /// The code of `bytes`.
    public func authenticationCode(for bytes: [UInt8]) -> [UInt8] { authenticationCode { $0.update(bytes) } }

    /// The code of a string's UTF-8 bytes.
    public func authenticationCode(for text: String) -> [UInt8] { authenticationCode { $0.update(text) } }
}

extension HashAlgorithm {
    /// The HMAC of `message` keyed with `key`, in one go (the key schedule is not kept).
    public func authenticationCode(for message: [UInt8], using key: [UInt8]) -> [UInt8] {
        PreparedHMAC(key: key, algorithm: self).authenticationCode(for: message)
    }
}
