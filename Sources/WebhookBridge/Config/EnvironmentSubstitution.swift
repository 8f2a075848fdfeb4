import WebhookEncoding
import WebhookCore

/// `${NAME}` and `${NAME:-fallback}` in config strings (SPEC section 3).
enum EnvironmentSubstitution {
    /// Replaces references in every string of `value`, reporting unset names at their path.
    static func apply(to value: JSONValue, path: String, environment: [String: String], log: ProblemLog) -> JSONValue {
        switch value {
        case .string(let text):
            if text.hasPrefix("${"), text.hasSuffix("}"), text.firstIndex(of: "}") == text.index(before: text.endIndex) {
                log.wholeReferences.insert(path)
            }
            return .string(substitute(text, path: path, environment: environment, log: log))
        case .array(let items):
            return .array(items.enumerated().map { apply(to: $1, path: "\(path)[\($0)]", environment: environment, log: log) })
        case .object(let members):
            return .object(members.map { ($0, apply(to: $1, path: joinPath(path, $0), environment: environment, log: log)) })
        default:
            return value
        }
    }

    static func substitute(_ text: String, path: String, environment: [String: String], log: ProblemLog) -> String {
        guard text.contains("${") else { return text }
        var result = ""
        var rest = text[...]
        while let start = rest.firstRange(of: "${") {
            result += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                log.add(path, "unterminated ${ in string")
                return text
            }
            let reference = rest[start.upperBound..<end]
            let name: Substring
            let fallback: Substring?
            if let separator = reference.firstRange(of: ":-") {
                name = reference[..<separator.lowerBound]
                fallback = reference[separator.upperBound...]
            } else {
                name = reference
                fallback = nil
            }
            if name.isEmpty || !name.allSatisfy({ $0 == "_" || $0.isASCII && ($0.isLetter || $0.isNumber) }) {
                log.add(path, "\"${\(reference)}\" is not a valid environment variable reference")
            } else if let value = environment[String(name)] {
                result += value
            } else if let fallback {
                result += fallback
            } else {
                log.add(path, "environment variable \(name) is not set (write ${\(name):-fallback} for a default)")
                result += "${\(reference)}"  // keep the text, so no second problem follows from it
            }
            rest = rest[rest.index(after: end)...]
        }
        result += rest
        return result
    }
}
