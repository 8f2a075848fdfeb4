import NIOHTTP1
import W3CTraceContext

/// The W3C trace context a request carries, checked before anything else reads it: a valid
/// `traceparent`, and of `tracestate` only the list members W3C Trace Context allows (at most
/// 32, each key and value within its grammar and length, 512 characters in all).
///
/// Nothing else of the request reaches the tracer: it is given these two values alone, so
/// whatever it logs about a context it can't use can never hold another header (a `Cookie`,
/// an `Authorization`) or more than these bounded values. An invalid `tracestate` costs only
/// its invalid members, never the `traceparent`.
struct IncomingTraceContext: Sendable, Equatable {
    let traceParent: String
    /// nil when no member of the request's `tracestate` is valid.
    let traceState: String?
    /// The caller's trace (a request not sampled continues it without a span).
    let traceID: TraceID
    /// The caller's span: the parent of the bridge's request span.
    let spanID: SpanID
    /// The caller's `sampled` flag: with a parent, it decides whether spans are recorded.
    let sampled: Bool

    /// W3C: "at most 32 list-members".
    static let maximumMembers = 32
    /// W3C: vendors propagate at least 512 characters of `tracestate`; when it must be cut,
    /// members over 128 characters go first, then members from the end.
    static let maximumStateLength = 512
    static let longMember = 128
    /// Version 00 is 55 characters; a later version may append fields.
    static let maximumParentLength = 256

    /// nil when the request carries no usable `traceparent` (none, several, or invalid).
    init?(headers: HTTPHeaders) {
        let parents = headers["traceparent"]
        guard parents.count == 1, let parent = parents.first, parent.utf8.count <= Self.maximumParentLength,
            let context = try? TraceContext(traceParentHeaderValue: parent, traceStateHeaderValue: nil)
        else { return nil }
        traceParent = parent
        traceID = context.traceID
        spanID = context.spanID
        sampled = context.flags.contains(.sampled)
        traceState = Self.validState(headers["tracestate"])
    }

    /// The valid members of the `tracestate` header lines (joined with commas, as HTTP
    /// combines repeated fields), in order, without duplicate keys, within the limits.
    static func validState(_ lines: [String]) -> String? {
        var members: [Substring] = []
        var keys: Set<Substring> = []
        scan: for line in lines {
            for rawMember in line.split(separator: ",", omittingEmptySubsequences: false) {
                let member = rawMember.trimmingSpaces  // OWS; CR and LF never reach a header value
                guard !member.isEmpty, let key = validKey(of: member), keys.insert(key).inserted else { continue }
                members.append(member)
                if members.count == maximumMembers { break scan }
            }
        }
        func joinedLength() -> Int { members.reduce(0) { $0 + $1.utf8.count } + max(members.count - 1, 0) }
        if joinedLength() > maximumStateLength { members.removeAll { $0.utf8.count > longMember } }
        while joinedLength() > maximumStateLength { members.removeLast() }
        return members.isEmpty ? nil : members.joined(separator: ",")
    }

    /// The key of `member` when the member is `key=value` within W3C's grammar, else nil.
    ///
    ///     key = simple-key / multi-tenant-key
    ///     simple-key = lcalpha 0*255( lcalpha / DIGIT / "_" / "-"/ "*" / "/" )
    ///     multi-tenant-key = tenant-id "@" system-id
    ///     tenant-id = ( lcalpha / DIGIT ) 0*240( lcalpha / DIGIT / "_" / "-"/ "*" / "/" )
    ///     system-id = lcalpha 0*13( lcalpha / DIGIT / "_" / "-"/ "*" / "/" )
    ///     value = 0*255(chr) nblk-chr ; chr = %x20 / nblk-chr
    ///     nblk-chr = %x21-2B / %x2D-3C / %x3E-7E
    static func validKey(of member: Substring) -> Substring? {
        guard let equals = member.utf8.firstIndex(of: UInt8(ascii: "=")) else { return nil }
        let key = member.utf8[..<equals]
        let value = member.utf8[member.utf8.index(after: equals)...]
        guard isValidKey(key), isValidValue(value) else { return nil }
        return Substring(key)
    }

    private static func isValidKey(_ key: Substring.UTF8View) -> Bool {
        if let at = key.firstIndex(of: UInt8(ascii: "@")) {
            let tenant = key[..<at]
            let system = key[key.index(after: at)...]
            guard let tenantFirst = tenant.first, isLowercaseAlpha(tenantFirst) || isDigit(tenantFirst), tenant.count <= 241,
                let systemFirst = system.first, isLowercaseAlpha(systemFirst), system.count <= 14
            else { return false }
            return tenant.allSatisfy(isKeyByte) && system.allSatisfy(isKeyByte)
        }
        guard let first = key.first, isLowercaseAlpha(first), key.count <= 256 else { return false }
        return key.allSatisfy(isKeyByte)
    }

    private static func isValidValue(_ value: Substring.UTF8View) -> Bool {
        guard let last = value.last, last != 0x20, value.count <= 256 else { return false }
        return value.allSatisfy {
            $0 == 0x20 || ((0x21...0x7E).contains($0) && $0 != UInt8(ascii: ",") && $0 != UInt8(ascii: "="))
        }
    }

    private static func isLowercaseAlpha(_ byte: UInt8) -> Bool { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) }
    private static func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }
    private static func isKeyByte(_ byte: UInt8) -> Bool {
        isLowercaseAlpha(byte) || isDigit(byte) || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
            || byte == UInt8(ascii: "*") || byte == UInt8(ascii: "/")
    }
}
