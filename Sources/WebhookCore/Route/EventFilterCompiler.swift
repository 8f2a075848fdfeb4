import WebhookEncoding

extension EventFilter {
    /// The operators a filter may use.
    public static let operators = [
        "$eq", "$neq", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$startsWith", "$endsWith", "$exist", "$regex", "$and",
        "$or", "$not",
    ]

    /// Compiles a configured `match` at `path`; each problem (an unknown scope or operator, an
    /// operand of the wrong kind, an invalid `$regex`) goes to `log` with its JSON path, and
    /// the result is nil when there was one.
    public static func compile(_ value: JSONValue, path: String, log: ProblemLog) -> EventFilter? {
        let before = log.problems.count
        var scopes: Scopes = []
        guard let root = compileRoot(value, path: path, scopes: &scopes, log: log), log.problems.count == before else {
            return nil
        }
        return EventFilter(root: root, scopes: scopes, source: value)
    }

    private static func compileRoot(_ value: JSONValue, path: String, scopes: inout Scopes, log: ProblemLog) -> Root? {
        guard case .object(let members) = value, !members.isEmpty else {
            log.add(path, "must be an object whose keys are body, headers, query, path or event (or $and, $or, $not)")
            return nil
        }
        var roots: [Root] = []
        for (key, member) in members {
            let memberPath = joinPath(path, key)
            if let scope = Scope(rawValue: key) {
                scopes.insert(Scopes(scope))
                let operand = scope == .headers ? lowercasingNames(member) : member
                if let condition = compileCondition(operand, path: memberPath, log: log) {
                    roots.append(.scope(scope, condition))
                }
                continue
            }
            switch key {
            case "$and", "$or":
                guard case .array(let items) = member, !items.isEmpty else {
                    log.add(memberPath, "must be a non-empty array of filters")
                    continue
                }
                let compiled = items.enumerated().compactMap { index, item in
                    compileRoot(item, path: "\(memberPath)[\(index)]", scopes: &scopes, log: log)
                }
                roots.append(key == "$and" ? .all(compiled) : .any(compiled, source: member))
            case "$not":
                if let inner = compileRoot(member, path: memberPath, scopes: &scopes, log: log) {
                    roots.append(.not(inner, source: member))
                }
            default:
                let known = Scope.allCases.map(\.rawValue) + ["$and", "$or", "$not"]
                let hint = closestKey(to: key, in: known).map { "; did you mean \($0)?" } ?? ""
                log.add(memberPath, "is not a scope: use body, headers, query, path or event (or $and, $or, $not)\(hint)")
            }
        }
        return roots.count == 1 ? roots[0] : .all(roots)
    }

    /// Header names in a filter, lowercased: a request's names are matched in lowercase.
    private static func lowercasingNames(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(let members):
            return .object(members.map { $0.0.hasPrefix("$") ? ($0.0, lowercasingNames($0.1)) : ($0.0.lowercased(), $0.1) })
        case .array(let items):
            // `$and`/`$or` hold filters of names too.
            return .array(items.map(lowercasingNames))
        default:
            return value
        }
    }

    private static func compileCondition(_ value: JSONValue, path: String, log: ProblemLog) -> Condition? {
        guard case .object(let members) = value else { return .equals(Operand(value)) }
        var fields: [(String, Condition)] = []
        var operators: [Condition] = []
        for (key, member) in members {
            let memberPath = joinPath(path, key)
            guard key.hasPrefix("$") else {
                if let condition = compileCondition(member, path: memberPath, log: log) { fields.append((key, condition)) }
                continue
            }
            if let condition = compileOperator(key, member, path: memberPath, log: log) { operators.append(condition) }
        }
        return .object(fields: fields, operators: operators)
    }

    private static func compileOperator(_ name: String, _ operand: JSONValue, path: String, log: ProblemLog) -> Condition? {
        switch name {
        case "$eq", "$neq":
            return .compare(name == "$eq" ? .eq : .neq, Operand(operand))
        case "$gt", "$gte", "$lt", "$lte":
            switch operand {
            case .number, .string: break
            default:
                log.add(path, "must be a number or a string, not \(operand.kindName)")
                return nil
            }
            let comparison: Condition.Comparison = ["$gt": .gt, "$gte": .gte, "$lt": .lt][name] ?? .lte
            return .compare(comparison, Operand(operand))
        case "$in", "$nin":
            switch operand {
            case .array, .string: return .contains(Operand(operand), negated: name == "$nin")
            default:
                log.add(path, "must be an array of values or a string, not \(operand.kindName)")
                return nil
            }
        case "$startsWith", "$endsWith":
            let texts: [String]
            switch operand {
            case .string(let text): texts = [text]
            case .array(let items)
            where !items.isEmpty && items.allSatisfy({ $0.scalarText != nil && $0.kindName == "a string" }):
                texts = items.compactMap(\.scalarText)
            default:
                log.add(path, "must be a string or an array of strings, not \(operand.kindName)")
                return nil
            }
            return .affix(texts, suffix: name == "$endsWith", source: operand)
        case "$exist":
            guard case .bool(let wanted) = operand else {
                log.add(path, "must be true or false, not \(operand.kindName)")
                return nil
            }
            return .exists(wanted)
        case "$regex":
            guard case .string(let text) = operand else {
                log.add(path, "must be a regular expression as a string, not \(operand.kindName)")
                return nil
            }
            do {
                return .regex(try Pattern(text))
            } catch {
                log.add(path, "is not a valid regular expression (ICU syntax, close to PCRE)")
                return nil
            }
        case "$and", "$or":
            guard case .array(let items) = operand, !items.isEmpty else {
                log.add(path, "must be a non-empty array of conditions")
                return nil
            }
            let conditions = items.enumerated().compactMap { index, item in
                compileCondition(item, path: "\(path)[\(index)]", log: log)
            }
            guard conditions.count == items.count else { return nil }
            return name == "$and" ? .all(conditions, source: operand) : .any(conditions, source: operand)
        case "$not":
            return compileCondition(operand, path: path, log: log).map { .not($0, source: operand) }
        default:
            let hint = closestKey(to: name, in: operators).map { "; did you mean \($0)?" } ?? ""
            log.add(path, "unknown operator \(name)\(hint) (operators: \(operators.joined(separator: " ")))")
            return nil
        }
    }
}
