/// A glob over event types: `*` matches any run of characters (dots included), `?` one.
public struct TypeGlob: Sendable, Equatable, CustomStringConvertible {
    private let pattern: [Character]
    /// The pattern without wildcards, or without its one trailing `*` (most patterns):
    /// matched without making an array of the type's characters.
    private let shortcut: Shortcut?

    private enum Shortcut: Equatable {
        case equal(String), prefix(String)
    }

    public var description: String { String(pattern) }

    public init(_ pattern: String) {
        self.pattern = Array(pattern)
        let wildcards = pattern.filter { $0 == "*" || $0 == "?" }
        if wildcards.isEmpty {
            shortcut = .equal(pattern)
        } else if wildcards == "*", pattern.hasSuffix("*") {
            shortcut = .prefix(String(pattern.dropLast()))
        } else {
            shortcut = nil
        }
    }

    public func matches(_ type: String) -> Bool {
        switch shortcut {
        case .equal(let text): return type == text
        case .prefix(let text): return type.hasPrefix(text)
        case nil: break
        }
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
