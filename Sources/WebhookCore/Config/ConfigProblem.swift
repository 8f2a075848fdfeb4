/// One thing wrong with a config file, located by its JSON path
/// (`sources.github.verify.secrets: must not be empty`).
/// An `Error` too: a sink factory throws the problem it finds while making a sink.
public struct ConfigProblem: Error, Sendable, Equatable, CustomStringConvertible {
    /// Dotted path of the offending value; array items as `routes[0]`; empty for the document,
    /// which is printed as `$`, so every line reads `PATH: json.path: what is wrong`.
    public let path: String
    public let message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "\(path.isEmpty ? "$" : path): \(message)" }
}

/// A config that failed validation: every problem found, in document order.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public let problems: [ConfigProblem]

    public init(problems: [ConfigProblem]) { self.problems = problems }

    public var description: String { problems.map(\.description).joined(separator: "\n") }
}

/// Collects problems while a config is read, so that one run reports all of them.
public final class ProblemLog {
    public private(set) var problems: [ConfigProblem] = []
    public private(set) var warnings: [ConfigProblem] = []
    /// Paths of strings that were one whole `${NAME}` reference: a number or a boolean may be
    /// given that way (`"port": "${PORT}"`), and is read from the substituted text.
    public var wholeReferences: Set<String> = []

    public init() {}

    public func add(_ path: String, _ message: String) {
        problems.append(ConfigProblem(path: path, message: message))
    }

    public func warn(_ path: String, _ message: String) {
        warnings.append(ConfigProblem(path: path, message: message))
    }
}

/// Builds the JSON path of a child.
public func joinPath(_ parent: String, _ key: String) -> String {
    parent.isEmpty ? key : "\(parent).\(key)"
}
