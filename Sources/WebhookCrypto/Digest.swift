import COpenSSL

/// The hash functions webhook signatures are made with.
public enum HashAlgorithm: String, Sendable, CaseIterable {
    case sha1, sha256, sha512

    /// The digest's length in bytes.
    public var byteCount: Int {
        switch self {
        case .sha1: 20
        case .sha256: 32
        case .sha512: 64
        }
    }

    /// The block length, to which HMAC pads its key.
    public var blockByteCount: Int { self == .sha512 ? 128 : 64 }

    /// The digest of `bytes`.
    public func hash(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        var context = HashContext(self)
        context.update(bytes)
        return context.finalize()
    }

    /// The digest of `bytes`.
    public func hash(_ bytes: [UInt8]) -> [UInt8] { bytes.withUnsafeBytes { hash($0) } }

    /// The digest of a string's UTF-8 bytes.
    public func hash(_ text: String) -> [UInt8] {
        var context = HashContext(self)
        context.update(text)
        return context.finalize()
    }

    /// libcrypto's implementation, fetched once: OpenSSL 3 otherwise looks the algorithm up
    /// in its provider tables at every initialisation (`EVP_sha256()` and friends do).
    var implementation: OpaquePointer {
        switch self {
        case .sha1: Implementations.sha1
        case .sha256: Implementations.sha256
        case .sha512: Implementations.sha512
        }
    }
}

private enum Implementations {
    // nonisolated(unsafe): an EVP_MD is immutable once fetched and libcrypto shares it
    // between threads; these are never freed.
    nonisolated(unsafe) static let sha1 = fetch("SHA1")
    nonisolated(unsafe) static let sha256 = fetch("SHA256")
    nonisolated(unsafe) static let sha512 = fetch("SHA512")

    static func fetch(_ name: String) -> OpaquePointer {
        guard let digest = EVP_MD_fetch(nil, name, nil) else { fatalError("libcrypto has no \(name) digest") }
        return digest
    }
}

/// A running hash: bytes go in with `update`, the digest comes out of `finalize`.
/// Non-copyable: it owns a libcrypto context, freed when it ends.
public struct HashContext: ~Copyable {
    private let context: OpaquePointer

    public init(_ algorithm: HashAlgorithm) {
        context = Self.newContext()
        guard EVP_DigestInit_ex(context, algorithm.implementation, nil) == 1 else {
            fatalError("libcrypto cannot start a \(algorithm) digest")
        }
    }

    /// A context that goes on from where `state` (an EVP_MD_CTX this module owns) stands.
    init(continuing state: OpaquePointer) {
        context = Self.newContext()
        guard EVP_MD_CTX_copy_ex(context, state) == 1 else { fatalError("libcrypto cannot copy a digest context") }
    }

    private static func newContext() -> OpaquePointer {
        guard let context = EVP_MD_CTX_new() else { fatalError("libcrypto is out of memory") }
        return context
    }

    deinit { EVP_MD_CTX_free(context) }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        EVP_DigestUpdate(context, base, bytes.count)
    }

    public mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    /// A string's UTF-8 bytes.
    public mutating func update(_ text: String) {
        var text = text
        text.withUTF8 { update(UnsafeRawBufferPointer($0)) }
    }

    /// The digest of everything written.
    public consuming func finalize() -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: Int(EVP_MAX_MD_SIZE)) { buffer, count in
            var length: UInt32 = 0
            guard EVP_DigestFinal_ex(context, buffer.baseAddress, &length) == 1 else {
                fatalError("libcrypto cannot finish a digest")
            }
            count = Int(length)
        }
    }
}

/// Whether two byte strings are equal, in time that depends only on their lengths
/// (`CRYPTO_memcmp`): how a signature is compared with the one it should be.
public func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    guard !a.isEmpty else { return true }
    return a.withUnsafeBytes { a in b.withUnsafeBytes { b in CRYPTO_memcmp(a.baseAddress, b.baseAddress, a.count) == 0 } }
}
