import WebhookEncoding
import Foundation
import NIOCore
import WebhookCrypto
import WebhookCore

/// The HMAC algorithms providers use: `sha1`, `sha256`, `sha512`.
public typealias HMACAlgorithm = HashAlgorithm

extension HashAlgorithm {
    /// The MAC of the concatenation of `parts` keyed with `key`, computed without joining them.
    func mac(key: [UInt8], parts: [SignedPart]) -> [UInt8] {
        PreparedHMAC(key: key, algorithm: self).code(parts)
    }

    /// The same with a key whose schedule is already done.
    func mac(key: HMACKey, parts: [SignedPart]) -> [UInt8] { key.prepared(self).code(parts) }
}

extension PreparedHMAC {
    /// The code of the concatenation of `parts`.
    func code(_ parts: [SignedPart]) -> [UInt8] { authenticationCode { Self.feed(&$0, parts) } }

    /// Writes `parts` into `context`, in order.
    static func feed(_ context: inout HashContext, _ parts: [SignedPart]) {
        for part in parts {
            switch part {
            case .text(let text): context.update(text)
            case .bytes(let buffer): buffer.withUnsafeReadableBytes { context.update($0) }
            }
        }
    }
}

/// A secret with its HMAC key schedule done once for each algorithm, when the config is read.
/// A class: the six prepared states are about 1 KB, which a struct would copy each time a
/// request's verification takes a key out of its keyring.
final class HMACKey: Sendable {
    let sha1: PreparedHMAC
    let sha256: PreparedHMAC
    let sha512: PreparedHMAC

    /// The prepared state for `algorithm`.
    func prepared(_ algorithm: HMACAlgorithm) -> PreparedHMAC {
        switch algorithm {
        case .sha1: sha1
        case .sha256: sha256
        case .sha512: sha512
        }
    }

    init(_ key: [UInt8]) {
        sha1 = PreparedHMAC(key: key, algorithm: .sha1)
        sha256 = PreparedHMAC(key: key, algorithm: .sha256)
        sha512 = PreparedHMAC(key: key, algorithm: .sha512)
    }
}

/// A piece of signed content: literal text or the raw body.
enum SignedPart {
    case text(String)
    case bytes(ByteBuffer)
}

/// `sha256:` + the hex SHA-256 of the body: the id of an event whose provider sends none.
public func bodyHashID(_ body: ByteBuffer) -> String {
    "sha256:" + Hex.encode(body.withUnsafeReadableBytes { HashAlgorithm.sha256.hash($0) })
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
        throw .expired("\(field) is \(age.magnitude) s \(age >= 0 ? "old" : "ahead"); the tolerance is \(tolerance) s")
    }
}
