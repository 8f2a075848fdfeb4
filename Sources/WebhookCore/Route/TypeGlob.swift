/// A glob over event types: `*` matches any run of characters (dots included), `?` one.
public struct TypeGlob: Sendable, Equatable, CustomStringConvertible {
    private let pattern: [Character]
    public var description: String { String(pattern) }

    public init(_ pattern: String) { self.pattern = Array(pattern) }

    public func matches(_ type: String) -> Bool {
        let text = Array(type)
        var p = 0
        var t = 0
        var star: Int?
        var resume = 0
        while t < text.count {
            if p < pattern.count, pattern[p] == "?" || pattern[p] == text[t] {
                p += 1
                t += 1
            } else if p < pattern.count, pattern[p] == "*" {
                star = p
                resume = t
                p += 1
            } else if let s = star {
                p = s + 1
                resume += 1
                t = resume
            } else {
                return false
            }
        }
        while p < pattern.count, pattern[p] == "*" { p += 1 }
        return p == pattern.count
    }
}
