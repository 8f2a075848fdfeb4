/// An HMAC key (RFC 2104) for one hash function, with its key schedule done once: the padded
/// key blocks are absorbed into an inner and an outer state when the config is read (that was
/// a sixth of what verifying a request cost), and a request continues from copies of them:
/// H((K ^ opad) || H((K ^ ipad) || m)). The content goes in as raw bytes, in as many pieces
/// as the caller has. The tests check it against RFC 4231's and RFC 2202's vectors and
/// against Python's `hmac` on keys shorter than, equal to and longer than a block.
public struct PreparedHMAC: Sendable {
    public let algorithm: HashAlgorithm
    private let inner: HashContext
    private let outer: HashContext

    public init(key: [UInt8], algorithm: HashAlgorithm) {
        self.algorithm = algorithm
        var block = key.count > algorithm.blockByteCount ? algorithm.hash(key) : key
        block += [UInt8](repeating: 0, count: algorithm.blockByteCount - block.count)
        var inner = HashContext(algorithm)
        inner.update(block.map { $0 ^ 0x36 })
        var outer = HashContext(algorithm)
        outer.update(block.map { $0 ^ 0x5C })
        self.inner = inner
        self.outer = outer
    }

    /// The code of what `feed` writes into the context it is given.
    public func authenticationCode(_ feed: (inout HashContext) -> Void) -> [UInt8] {
        withAuthenticationCode(feed) { Array($0) }
    }

    /// Gives `body` the code of what `feed` writes, in a buffer that lives only for the call:
    /// no array is made (the inner digest stays on the stack too).
    public func withAuthenticationCode<Result>(
        _ feed: (inout HashContext) -> Void, _ body: (UnsafeRawBufferPointer) -> Result
    ) -> Result {
        let count = algorithm.byteCount
        return withUnsafeTemporaryAllocation(byteCount: 64, alignment: 8) { buffer in
            var context = inner
            feed(&context)
            context.finalize(into: buffer)
            var outerContext = outer
            outerContext.update(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
            outerContext.finalize(into: buffer)
            return body(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
        }
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
