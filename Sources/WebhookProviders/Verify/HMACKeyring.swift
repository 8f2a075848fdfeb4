import WebhookCrypto
import WebhookCore

/// A source's HMAC secrets, in `secrets` order, and the one search every HMAC scheme does:
/// which secret, if any, produced one of the signatures the request carries.
public struct HMACKeyring: Sendable {
    let keys: [HMACKey]

    /// Keys from the secret strings' UTF-8 bytes, as most providers use them.
    public init(secrets: [String]) { self.keys = secrets.map { HMACKey(Array($0.utf8)) } }

    /// The index of the first secret whose MAC of `parts` equals one of `candidates`
    /// (compared in constant time), or nil. Each secret's MAC is computed once.
    func firstMatch(_ algorithm: HMACAlgorithm, _ parts: [SignedPart], candidates: [[UInt8]]) -> Int? {
        guard !candidates.isEmpty else { return nil }
        for (index, key) in keys.enumerated() {
            let matched = key.prepared(algorithm).withAuthenticationCode({ PreparedHMAC.feed(&$0, parts) }) { code in
                candidates.contains { constantTimeEquals(code, $0) }
            }
            if matched { return index }
        }
        return nil
    }

    /// "none of N secrets", for a rejection's log line.
    var tried: String { keys.count == 1 ? "the secret" : "none of \(keys.count) secrets" }

    /// The MAC of `parts` with the secret at `index` (handshake answers, signing).
    func mac(_ algorithm: HMACAlgorithm, _ parts: [SignedPart], keyIndex index: Int) -> [UInt8] {
        algorithm.mac(key: keys[index], parts: parts)
    }
}

/// Signature candidates taken from a header: at most this many, so a hostile header with
/// thousands of entries can't make verification expensive.
let maximumSignatureCandidates = 16
