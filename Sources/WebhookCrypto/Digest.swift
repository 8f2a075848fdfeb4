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

/// A running hash: bytes go in with `update`, the digest comes out of `finalize`. A plain
/// value: a copy goes on independently (how HMAC reuses a prepared key state), and nothing
/// is allocated but the digest.
public struct HashContext: Sendable {
    private enum State {
        case sha1(SHA_CTX)
        case sha256(SHA256_CTX)
        case sha512(SHA512_CTX)
    }

    private var state: State

    public init(_ algorithm: HashAlgorithm) {
        switch algorithm {
        case .sha1:
            var context = SHA_CTX()
            SHA1_Init(&context)
            state = .sha1(context)
        case .sha256:
            var context = SHA256_CTX()
            SHA256_Init(&context)
            state = .sha256(context)
        case .sha512:
            var context = SHA512_CTX()
            SHA512_Init(&context)
            state = .sha512(context)
        }
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        switch state {
        case .sha1(var context):
            SHA1_Update(&context, base, bytes.count)
            state = .sha1(context)
        case .sha256(var context):
            SHA256_Update(&context, base, bytes.count)
            state = .sha256(context)
        case .sha512(var context):
            SHA512_Update(&context, base, bytes.count)
            state = .sha512(context)
        }
    }

    public mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    /// A string's UTF-8 bytes.
    public mutating func update(_ text: String) {
        var text = text
        text.withUTF8 { update(UnsafeRawBufferPointer($0)) }
    }

    /// The digest of everything written (the context is spent).
    public consuming func finalize() -> [UInt8] {
        let count = digestByteCount
        let state = self.state
        return [UInt8](unsafeUninitializedCapacity: count) { buffer, written in
            Self.final(state, into: buffer.baseAddress!)
            written = count
        }
    }

    /// Writes the digest to the start of `output`, which must hold at least
    /// ``digestByteCount`` bytes (the context is spent): no array is made.
    public consuming func finalize(into output: UnsafeMutableRawBufferPointer) {
        precondition(output.count >= digestByteCount, "a digest buffer of \(output.count) bytes")
        let bytes = output.bindMemory(to: UInt8.self)
        Self.final(state, into: bytes.baseAddress!)
    }

    /// The length of the digest `finalize` makes.
    public var digestByteCount: Int {
        switch state {
        case .sha1: 20
        case .sha256: 32
        case .sha512: 64
        }
    }

    private static func final(_ state: State, into output: UnsafeMutablePointer<UInt8>) {
        switch state {
        case .sha1(var context): SHA1_Final(output, &context)
        case .sha256(var context): SHA256_Final(output, &context)
        case .sha512(var context): SHA512_Final(output, &context)
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

/// The same for bytes in a buffer (a code computed on the stack) and an array.
public func constantTimeEquals(_ a: UnsafeRawBufferPointer, _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    guard !a.isEmpty else { return true }
    return b.withUnsafeBytes { b in CRYPTO_memcmp(a.baseAddress, b.baseAddress, a.count) == 0 }
}

/// The same for two buffers.
public func constantTimeEquals(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
    guard a.count == b.count else { return false }
    guard !a.isEmpty else { return true }
    return CRYPTO_memcmp(a.baseAddress, b.baseAddress, a.count) == 0
}
