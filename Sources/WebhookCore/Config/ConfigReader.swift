import WebhookEncoding

/// Typed, path-aware reads from one JSON object of the config.
///
/// Every read that fails records a problem at the member's path and returns nil, so the
/// loader carries on and reports everything wrong in one pass. Sink libraries read their
/// own settings with it (``EventSinkFactory/read(_:)``).
public struct ConfigReader {
    /// The object's JSON path (`sinks.bus`).
    public let path: String
    public let members: [(String, JSONValue)]
    public let log: ProblemLog

    /// A reader for `value`, or nil (with a problem recorded) when it is not an object.
    public init?(_ value: JSONValue, path: String, log: ProblemLog) {
        guard case .object(let members) = value else {
            log.add(path, "must be an object, not \(value.kindName)")
            return nil
        }
        self.path = path
        self.members = members
        self.log = log
    }

    public func has(_ key: String) -> Bool { members.contains { $0.0 == key } }

    public func raw(_ key: String) -> JSONValue? { members.first { $0.0 == key }?.1 }

    public func childPath(_ key: String) -> String { joinPath(path, key) }

    /// Records a problem at the member `key` (the object itself when nil).
    public func problem(at key: String?, _ message: String) {
        log.add(key.map(childPath) ?? path, message)
    }

    /// The template in the string `key` (`{source}.{type}`), or `fallback` parsed when the
    /// key is absent; nil, with the problem recorded, when it is missing or does not parse.
    public func template(_ key: String, required: Bool, default fallback: String? = nil) -> Template? {
        guard let text = string(key, required: required) ?? fallback else { return nil }
        do {
            return try Template(parsing: text)
        } catch {
            log.add(childPath(key), error.message)
            return nil
        }
    }

    /// Records every member whose name is not in `allowed`.
    public func rejectUnknownKeys(_ allowed: [String]) {
        for (key, _) in members where !allowed.contains(key) {
            let hint = closestKey(to: key, in: allowed).map { "; did you mean \"\($0)\"?" } ?? ""
            log.add(childPath(key), "unknown key\(hint)")
        }
    }

    /// The digits of a number, or of a string that was one whole `${NAME}` reference.
    private func numberText(_ key: String, _ value: JSONValue) -> String? {
        switch value {
        case .number(let literal): return literal
        case .string(let text) where log.wholeReferences.contains(childPath(key)):
            return String(text.trimmingSpaces)
        default: return nil
        }
    }

    /// What was found instead, for a problem message.
    private func describe(_ key: String, _ value: JSONValue, number: Bool) -> String {
        if case .string(let text) = value, log.wholeReferences.contains(childPath(key)) {
            return "\"\(text)\" (from the environment)"
        }
        return number && value.kindName == "a number" ? "a decimal" : value.kindName
    }

    func missing(_ key: String) {
        log.add(childPath(key), "is required")
    }

    public func string(_ key: String, required: Bool = false, nonEmpty: Bool = true) -> String? {
        guard let value = raw(key) else {
            if required { missing(key) }
            return nil
        }
        guard case .string(let text) = value else {
            log.add(childPath(key), "must be a string, not \(value.kindName)")
            return nil
        }
        if nonEmpty && text.isEmpty {
            log.add(childPath(key), "must not be empty")
            return nil
        }
        return text
    }

    /// A credential (a token a request must present): a string that is not empty or only
    /// whitespace, as a variable that is set but empty would make it.
    public func credential(_ key: String, required: Bool = false) -> String? {
        guard let text = string(key, required: required) else { return nil }
        guard !text.allSatisfy(\.isWhitespace) else {
            log.add(childPath(key), "must not be blank")
            return nil
        }
        return text
    }

    public func integer(_ key: String, in range: ClosedRange<Int>, required: Bool = false) -> Int? {
        guard let value = raw(key) else {
            if required { missing(key) }
            return nil
        }
        guard let literal = numberText(key, value), let number = Int(literal) else {
            log.add(childPath(key), "must be an integer, not \(describe(key, value, number: true))")
            return nil
        }
        guard range.contains(number) else {
            if range.upperBound == Int.max {
                log.add(childPath(key), "must be at least \(range.lowerBound)")
            } else {
                log.add(childPath(key), "must be between \(range.lowerBound) and \(range.upperBound)")
            }
            return nil
        }
        return number
    }

    public func number(_ key: String, minimumExclusive: Double, required: Bool = false) -> Double? {
        guard let number = number(key, required: required) else { return nil }
        guard number > minimumExclusive, number.isFinite else {
            log.add(childPath(key), "must be greater than \(Int(minimumExclusive))")
            return nil
        }
        return number
    }

    public func number(_ key: String, in range: ClosedRange<Double>, required: Bool = false) -> Double? {
        guard let number = number(key, required: required) else { return nil }
        guard range.contains(number) else {
            log.add(childPath(key), "must be from \(range.lowerBound) to \(range.upperBound), not \(number)")
            return nil
        }
        return number
    }

    private func number(_ key: String, required: Bool) -> Double? {
        guard let value = raw(key) else {
            if required { missing(key) }
            return nil
        }
        guard let literal = numberText(key, value), let number = Double(literal) else {
            log.add(childPath(key), "must be a number, not \(describe(key, value, number: false))")
            return nil
        }
        return number
    }

    public func bool(_ key: String) -> Bool? {
        guard let value = raw(key) else { return nil }
        if case .bool(let flag) = value { return flag }
        if case .string(let text) = value, log.wholeReferences.contains(childPath(key)), text == "true" || text == "false" {
            return text == "true"
        }
        log.add(childPath(key), "must be true or false, not \(describe(key, value, number: false))")
        return nil
    }

    /// An array of strings; each bad item is reported at its own index.
    public func stringArray(_ key: String, required: Bool = false, nonEmpty: Bool = true) -> [String]? {
        guard let value = raw(key) else {
            if required { missing(key) }
            return nil
        }
        guard case .array(let items) = value else {
            log.add(childPath(key), "must be an array of strings, not \(value.kindName)")
            return nil
        }
        if nonEmpty && items.isEmpty {
            log.add(childPath(key), "must not be empty")
            return nil
        }
        var result: [String] = []
        var ok = true
        for (index, item) in items.enumerated() {
            guard case .string(let text) = item, !text.isEmpty else {
                log.add(
                    "\(childPath(key))[\(index)]",
                    item.kindName == "a string" ? "must not be empty" : "must be a string, not \(item.kindName)")
                ok = false
                continue
            }
            result.append(text)
        }
        return ok ? result : nil
    }

    public func object(_ key: String, required: Bool = false) -> ConfigReader? {
        guard let value = raw(key) else {
            if required { missing(key) }
            return nil
        }
        return ConfigReader(value, path: childPath(key), log: log)
    }
}

/// The allowed key nearest to a typo, when it is near enough to be worth suggesting.
public func closestKey(to key: String, in allowed: [String]) -> String? {
    let lowered = key.lowercased()
    var best: (String, Int)?
    for candidate in allowed {
        let distance = editDistance(Array(lowered.utf8), Array(candidate.lowercased().utf8))
        if distance <= max(2, candidate.count / 3), distance < candidate.count, distance < (best?.1 ?? .max) {
            best = (candidate, distance)
        }
    }
    return best?.0
}

private func editDistance(_ a: [UInt8], _ b: [UInt8]) -> Int {
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}
