#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An IPv4 or IPv6 network (`203.0.113.0/24`, `2001:db8::/32`), for `allow` and
/// `trustedProxies`. A bare address is a network of one.
public struct CIDR: Sendable, Equatable, CustomStringConvertible {
    /// 16 bytes; IPv4 is held as an IPv4-mapped IPv6 address so both families compare alike.
    let network: [UInt8]
    let prefixLength: Int
    public let description: String

    public init?(_ text: String) {
        let pieces = text.split(separator: "/", omittingEmptySubsequences: false)
        guard pieces.count <= 2, let (address, isV4) = CIDR.parseAddress(String(pieces[0])) else { return nil }
        let maximum = isV4 ? 32 : 128
        var length = maximum
        if pieces.count == 2 {
            guard let parsed = Int(pieces[1]), (0...maximum).contains(parsed) else { return nil }
            length = parsed
        }
        let mappedLength = isV4 ? length + 96 : length
        self.network = CIDR.mask(address, prefixLength: mappedLength)
        self.prefixLength = mappedLength
        self.description = text
    }

    /// True when `address` (textual IPv4 or IPv6) lies in this network.
    public func contains(_ address: String) -> Bool {
        guard let (bytes, _) = CIDR.parseAddress(address) else { return false }
        return CIDR.mask(bytes, prefixLength: prefixLength) == network
    }

    static func mask(_ bytes: [UInt8], prefixLength: Int) -> [UInt8] {
        var out = bytes
        for i in 0..<16 {
            let bits = max(0, min(8, prefixLength - i * 8))
            out[i] &= bits == 0 ? 0 : UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
        }
        return out
    }

    /// The 16-byte (IPv4-mapped where needed) form of an address, and whether it was IPv4.
    static func parseAddress(_ text: String) -> ([UInt8], Bool)? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            let raw = withUnsafeBytes(of: &v4) { Array($0) }
            return ([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF] + raw, true)
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return (withUnsafeBytes(of: &v6) { Array($0) }, false)
        }
        return nil
    }
}
