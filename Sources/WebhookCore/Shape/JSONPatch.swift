import WebhookEncoding

/// A `transform`: a JSON Patch (RFC 6902) applied to an event's JSON body before the sinks
/// see it, with `add`, `remove`, `replace`, `move` and `copy`. One difference from the RFC:
/// an operation whose target (or `from`) is missing is skipped rather than failing the whole
/// patch, so one redaction list serves every event, whichever fields it has.
public struct JSONPatch: Sendable {
    enum Operation: Sendable {
        case add([String], JSONValue)
        case remove([String])
        case replace([String], JSONValue)
        case move(from: [String], to: [String])
        case copy(from: [String], to: [String])
    }

    let operations: [Operation]

    /// How many operations the patch has.
    public var operationCount: Int { operations.count }

    /// The operations `op` may name.
    public static let operationNames = ["add", "remove", "replace", "move", "copy"]

    /// The patched document.
    public func apply(to document: JSONValue) -> JSONValue {
        var document = document
        for operation in operations {
            switch operation {
            case .add(let path, let value):
                _ = Self.add(value, at: path[...], in: &document)
            case .remove(let path):
                _ = Self.remove(path[...], from: &document)
            case .replace(let path, let value):
                _ = Self.replace(path[...], with: value, in: &document)
            case .move(let from, let to):
                guard let value = Self.value(at: from[...], in: document) else { continue }
                var moved = document
                if Self.remove(from[...], from: &moved), Self.add(value, at: to[...], in: &moved) { document = moved }
            case .copy(let from, let to):
                if let value = Self.value(at: from[...], in: document) { _ = Self.add(value, at: to[...], in: &document) }
            }
        }
        return document
    }

    // MARK: - Pointer arithmetic

    /// The reference tokens of an RFC 6901 pointer (`~1` is `/`, `~0` is `~`); nil when it is
    /// not a pointer.
    public static func tokens(_ pointer: String) -> [String]? {
        if pointer.isEmpty { return [] }
        guard pointer.hasPrefix("/") else { return nil }
        return pointer.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map {
            String($0).replacing("~1", with: "/").replacing("~0", with: "~")
        }
    }

    static func value(at path: ArraySlice<String>, in document: JSONValue) -> JSONValue? {
        var current = document
        for token in path {
            switch current {
            case .object:
                guard let next = current[token] else { return nil }
                current = next
            case .array(let items):
                guard let index = index(token, count: items.count) else { return nil }
                current = items[index]
            default: return nil
            }
        }
        return current
    }

    /// An array index token: digits, no leading zero, below `count`.
    static func index(_ token: String, count: Int) -> Int? {
        guard !token.isEmpty, token.utf8.allSatisfy({ (0x30...0x39).contains($0) }), token == "0" || !token.hasPrefix("0"),
            let index = Int(token), index < count
        else { return nil }
        return index
    }

    /// Runs `change` on the container that holds the last token; false when a container on
    /// the way is missing.
    static func withParent(
        of path: ArraySlice<String>, in document: inout JSONValue, _ change: (inout JSONValue, String) -> Bool
    ) -> Bool {
        guard let head = path.first else { return false }
        if path.count == 1 { return change(&document, head) }
        switch document {
        case .object(var members):
            guard let index = members.firstIndex(where: { $0.0 == head }) else { return false }
            document = .null  // the members are mutated in place, not copied
            defer { document = .object(members) }
            return withParent(of: path.dropFirst(), in: &members[index].1, change)
        case .array(var items):
            guard let index = index(head, count: items.count) else { return false }
            document = .null
            defer { document = .array(items) }
            return withParent(of: path.dropFirst(), in: &items[index], change)
        default:
            return false
        }
    }

    /// RFC 6902 `add`: sets a member, inserts into an array (`-` appends), or replaces the
    /// whole document for the empty path.
    static func add(_ value: JSONValue, at path: ArraySlice<String>, in document: inout JSONValue) -> Bool {
        if path.isEmpty {
            document = value
            return true
        }
        return withParent(of: path, in: &document) { parent, token in
            switch parent {
            case .object(var members):
                parent = .null
                if let index = members.firstIndex(where: { $0.0 == token }) {
                    members[index].1 = value
                } else {
                    members.append((token, value))
                }
                parent = .object(members)
                return true
            case .array(var items):
                let position = token == "-" ? items.count : index(token, count: items.count + 1)
                guard let position else { return false }
                parent = .null
                items.insert(value, at: position)
                parent = .array(items)
                return true
            default:
                return false
            }
        }
    }

    /// RFC 6902 `replace`: the value where it is (a member keeps its place), only if there is one.
    static func replace(_ path: ArraySlice<String>, with value: JSONValue, in document: inout JSONValue) -> Bool {
        if path.isEmpty {
            document = value
            return true
        }
        return withParent(of: path, in: &document) { parent, token in
            switch parent {
            case .object(var members):
                guard let index = members.firstIndex(where: { $0.0 == token }) else { return false }
                parent = .null
                members[index].1 = value
                parent = .object(members)
                return true
            case .array(var items):
                guard let index = index(token, count: items.count) else { return false }
                parent = .null
                items[index] = value
                parent = .array(items)
                return true
            default:
                return false
            }
        }
    }

    static func remove(_ path: ArraySlice<String>, from document: inout JSONValue) -> Bool {
        withParent(of: path, in: &document) { parent, token in
            switch parent {
            case .object(var members):
                guard let index = members.firstIndex(where: { $0.0 == token }) else { return false }
                parent = .null
                members.remove(at: index)
                parent = .object(members)
                return true
            case .array(var items):
                guard let index = index(token, count: items.count) else { return false }
                parent = .null
                items.remove(at: index)
                parent = .array(items)
                return true
            default:
                return false
            }
        }
    }
}

// MARK: - Reading one from the config

extension JSONPatch {
    /// Reads a configured `transform` (an array of operations) at `path`; problems go to
    /// `log` with their JSON path.
    public static func read(_ value: JSONValue, path: String, log: ProblemLog) -> JSONPatch? {
        guard case .array(let items) = value else {
            log.add(path, "must be an array of JSON Patch operations ({\"op\": \"remove\", \"path\": \"/pointer\"})")
            return nil
        }
        var operations: [Operation] = []
        var ok = true
        for (index, item) in items.enumerated() {
            guard let reader = ConfigReader(item, path: "\(path)[\(index)]", log: log) else {
                ok = false
                continue
            }
            if let operation = readOperation(reader) { operations.append(operation) } else { ok = false }
        }
        return ok ? JSONPatch(operations: operations) : nil
    }

    private static func readOperation(_ reader: ConfigReader) -> Operation? {
        guard let op = reader.string("op", required: true) else { return nil }
        func pointer(_ key: String) -> [String]? {
            guard let text = reader.string(key, required: true, nonEmpty: false) else { return nil }
            guard let tokens = tokens(text) else {
                reader.problem(at: key, "must be a JSON Pointer: empty or starting with /, not \"\(text)\"")
                return nil
            }
            return tokens
        }
        func value() -> JSONValue? {
            guard let value = reader.raw("value") else {
                reader.problem(at: "value", "is required for \"\(op)\"")
                return nil
            }
            return value
        }
        switch op {
        case "add", "replace":
            reader.rejectUnknownKeys(["op", "path", "value"])
            guard let path = pointer("path"), let value = value() else { return nil }
            return op == "add" ? .add(path, value) : .replace(path, value)
        case "remove":
            reader.rejectUnknownKeys(["op", "path"])
            guard let path = pointer("path") else { return nil }
            if path.isEmpty {
                reader.problem(at: "path", "can't be the whole document")
                return nil
            }
            return .remove(path)
        case "move", "copy":
            reader.rejectUnknownKeys(["op", "from", "path"])
            guard let from = pointer("from"), let to = pointer("path") else { return nil }
            if op == "move", to.count > from.count, Array(to.prefix(from.count)) == from {
                reader.problem(at: "path", "is inside from: a value can't move into itself")
                return nil
            }
            return op == "move" ? .move(from: from, to: to) : .copy(from: from, to: to)
        case "test":
            reader.problem(at: "op", "\"test\" is not supported: a transform changes events, use a route's match to test them")
            return nil
        default:
            reader.problem(
                at: "op", "must be one of \(operationNames.map { "\"\($0)\"" }.joined(separator: ", ")), not \"\(op)\"")
            return nil
        }
    }
}
