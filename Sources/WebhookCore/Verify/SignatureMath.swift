import Crypto
import Foundation
import NIOCore

/// The HMAC algorithms providers use.
public enum HMACAlgorithm: String, Sendable, CaseIterable {
    case sha1, sha256, sha512

    /// The MAC of the concatenation of `parts`, computed without joining them.
    func mac(key: SymmetricKey, parts: [SignedPart]) -> [UInt8] {
        switch self {
        case .sha1: return Self.compute(PreparedHMAC<Insecure.SHA1>(key: key), parts)
        case .sha256: return Self.compute(PreparedHMAC<SHA256>(key: key), parts)
        case .sha512: return Self.compute(PreparedHMAC<SHA512>(key: key), parts)
        }
    }

    /// The same with a key whose schedule is already done.
    func mac(key: HMACKey, parts: [SignedPart]) -> [UInt8] {
        switch self {
        case .sha1: return Self.compute(key.sha1, parts)
        case .sha256: return Self.compute(key.sha256, parts)
        case .sha512: return Self.compute(key.sha512, parts)
        }
    }

    private static func compute<H: HashFunction>(_ hmac: PreparedHMAC<H>, _ parts: [SignedPart]) -> [UInt8] {
        Array(
            hmac.code { hasher in
                for part in parts {
                    switch part {
                    case .text(let text): hasher.update(text)
                    case .bytes(let buffer): buffer.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
                    }
                }
            })
    }
}

/// A secret with its HMAC key schedule done once, for each algorithm: the padded key is
/// hashed into the inner and outer states when the config is read, which was a sixth of
/// what verifying a request cost. A copy of a prepared state is updated per request.
struct HMACKey: Sendable {
    let sha1: PreparedHMAC<Insecure.SHA1>
    let sha256: PreparedHMAC<SHA256>
    let sha512: PreparedHMAC<SHA512>

    init(_ key: SymmetricKey) {
        sha1 = PreparedHMAC(key: key)
        sha256 = PreparedHMAC(key: key)
        sha512 = PreparedHMAC(key: key)
    }
}

/// HMAC (RFC 2104) over swift-crypto's hash functions: H((K ^ opad) || H((K ^ ipad) || m)),
/// with both padded-key blocks absorbed once. swift-crypto's own `HMAC` takes content only
/// as `DataProtocol`, walked generically at run time: a quarter of the cost of verifying a
/// 1 KiB body went there. Here the content goes in as raw bytes, and the tests check every
/// algorithm against `HMAC` on keys shorter than, equal to and longer than a block.
struct PreparedHMAC<H: HashFunction>: @unchecked Sendable {
    // @unchecked: `HashFunction` is `Sendable` in swift-crypto 4, which this package
    // resolves; unchecked so the 3.x versions Package.swift also accepts build too. The
    // states are copy-on-write: a request's copy never changes the prepared one.
    private let inner: H
    private let outer: H

    init(key: SymmetricKey) {
        var block = key.withUnsafeBytes { Array($0) }
        if block.count > H.blockByteCount { block = Array(H.hash(data: block)) }
        block += [UInt8](repeating: 0, count: H.blockByteCount - block.count)
        var inner = H()
        inner.update(data: block.map { $0 ^ 0x36 })
        var outer = H()
        outer.update(data: block.map { $0 ^ 0x5C })
        self.inner = inner
        self.outer = outer
    }

    /// The code of what `feed` writes into the hasher it is given.
    func code(_ feed: (inout H) -> Void) -> H.Digest {
        var hasher = inner
        feed(&hasher)
        let innerDigest = hasher.finalize()
        var outerHasher = outer
        innerDigest.withUnsafeBytes { outerHasher.update(bufferPointer: $0) }
        return outerHasher.finalize()
    }
}

extension HashFunction {
    /// Hashes a string's UTF-8 bytes.
    mutating func update(_ text: String) {
        var text = text
        text.withUTF8 { update(bufferPointer: UnsafeRawBufferPointer($0)) }
    }
}

/// A piece of signed content: literal text or the raw body.
enum SignedPart {
    case text(String)
    case bytes(ByteBuffer)
}

/// Compares two byte strings in time that depends only on their lengths.
func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    a.withUnsafeBytes { a in b.withUnsafeBytes { b in constantTimeEquals(a, b) } }
}

/// The same for a digest and bytes.
func constantTimeEquals(_ digest: some Digest, _ bytes: [UInt8]) -> Bool {
    digest.withUnsafeBytes { a in bytes.withUnsafeBytes { b in constantTimeEquals(a, b) } }
}

private func constantTimeEquals(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
    guard a.count == b.count else { return false }
    var difference: UInt8 = 0
    for index in 0..<a.count { difference |= a[index] ^ b[index] }
    return difference == 0
}

/// `sha256:` + the hex SHA-256 of the body: the id of an event whose provider sends none.
public func bodyHashID(_ body: ByteBuffer) -> String {
    var hasher = SHA256()
    body.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
    return "sha256:" + Hex.encode(hasher.finalize())
}

/// Checks a signed UNIX timestamp (seconds) against the tolerance, in both directions: SPEC
/// section 4 refuses a timestamp "outside toleranceSeconds", stale or future.
@discardableResult
func checkTimestamp(
    _ text: String?, header: String, tolerance: Int, now: Timestamp
) throws(VerificationFailure) -> Int64 {
    guard let text, !text.isEmpty else { throw .missing("\(header) is missing") }
    guard let seconds = Int64(text.trimmingSpaces) else { throw .invalid("\(header) is not a UNIX timestamp") }
    try checkAge(of: seconds, field: header, tolerance: tolerance, now: now)
    return seconds
}

/// Checks that `seconds` lies within `tolerance` of now; overflow counts as expired.
func checkAge(of seconds: Int64, field: String, tolerance: Int, now: Timestamp) throws(VerificationFailure) {
    let (age, overflow) = now.secondsSince1970.subtractingReportingOverflow(seconds)
    guard !overflow else { throw .expired("\(field) is out of range") }
    guard age.magnitude <= UInt64(tolerance) else {
        throw .expired("\(field) is \(age) s \(age >= 0 ? "old" : "ahead"); the tolerance is \(tolerance) s")
    }
}


/// A header holding a timestamp and hex signatures as `key=value` items, as Stripe
/// (`t=…,v1=…`) and Paddle (`ts=…;h1=…`) send: verifies that one signature is the HMAC-SHA256
/// of `timestamp + separator + body` with one of the secrets, then the timestamp's age (stale
/// only, as both providers' SDKs check). Returns the matching secret's index.
func verifyTimestampedHeader(
    _ request: WebhookRequest, header name: String, itemSeparator: Character, timestampKey: Substring, signatureKey: Substring,
    contentSeparator: String, keyring: HMACKeyring, tolerance: Int
) throws(VerificationFailure) -> Int {
    guard let header = request.headers.first(name: name) else { throw .missing("\(name) is missing") }
    var timestamp: String?
    var signatures: [[UInt8]] = []
    for item in header.split(separator: itemSeparator) {
        let pair = item.split(separator: "=", maxSplits: 1)
        guard pair.count == 2 else { continue }
        switch pair[0].trimmingSpaces {
        case timestampKey: timestamp = timestamp ?? String(pair[1])
        case signatureKey:
            if signatures.count < maximumSignatureCandidates, let mac = Hex.decode(pair[1]) { signatures.append(mac) }
        default: continue
        }
    }
    guard let timestamp, Int64(timestamp) != nil, !signatures.isEmpty else {
        throw .invalid("\(name) has no \(timestampKey)= timestamp or no \(signatureKey)= signature")
    }
    let parts: [SignedPart] = [.text(timestamp + contentSeparator), .bytes(request.body)]
    guard let index = keyring.firstMatch(.sha256, parts, candidates: signatures) else {
        throw .invalid("\(name) does not match \(keyring.tried)")
    }
    try checkTimestamp(
        timestamp, header: "\(name) \(timestampKey)", tolerance: tolerance, now: request.receivedAt)
    return index
}

/// Slack's and Zoom's `v0=<hex HMAC-SHA256 of "v0:<ts>:<body>">` with the timestamp in its
/// own header, refused outside the tolerance either way. Returns the matching secret's index.
func verifyV0Signature(
    _ request: WebhookRequest, signatureHeader: String, timestampHeader: String, keyring: HMACKeyring, tolerance: Int
) throws(VerificationFailure) -> Int {
    guard let header = request.headers.first(name: signatureHeader) else { throw .missing("\(signatureHeader) is missing") }
    guard let timestamp = request.headers.first(name: timestampHeader) else { throw .missing("\(timestampHeader) is missing") }
    guard header.hasPrefix("v0="), let signature = Hex.decode(header.dropFirst(3)) else {
        throw .invalid("\(signatureHeader) is not v0=<hex>")
    }
    guard Int64(timestamp) != nil else { throw .invalid("\(timestampHeader) is not a UNIX timestamp") }
    guard let index = keyring.firstMatch(.sha256, [.text("v0:\(timestamp):"), .bytes(request.body)], candidates: [signature])
    else {
        throw .invalid("\(signatureHeader) does not match \(keyring.tried)")
    }
    try checkTimestamp(timestamp, header: timestampHeader, tolerance: tolerance, now: request.receivedAt)
    return index
}
