import Foundation
import WebhookEncoding

/// A route's `match`: a JSON filter in the `$`-operator dialect of Hookdeck and Convoy,
/// compiled once when the config is read (regular expressions included) and evaluated on
/// values already parsed.
///
/// The top level names scopes (`body`, `headers`, `query`, `path`, `event`) or combines them
/// with `$and`, `$or` and `$not`. Below a scope, an object's keys are field names (all must
/// hold) or operators applied to the value itself; a plain value matches an equal value or
/// an array that contains it. A missing field or a value of another type is no match.
public struct EventFilter: Sendable {
    /// Where a condition looks.
    public enum Scope: String, Sendable, CaseIterable {
        /// The event's JSON body (its element, for a split batch); a body that is not JSON is
        /// its text, as a string.
        case body
        /// The request's headers, by lowercase name; a repeated header's values joined with `, `.
        case headers
        /// The query parameters of the request's URL, decoded; a repeated one is an array.
        case query
        /// The request's path, as a string.
        case path
        /// The event's CloudEvent attributes (`id`, `type`, `source`, `subject`, ...).
        case event
    }

    /// A set of scopes, as bits: asked on every request, so no hashing.
    public struct Scopes: OptionSet, Sendable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        public init(_ scope: Scope) {
            self.init(rawValue: 1 << UInt8(Scope.allCases.firstIndex(of: scope)!))
        }

        public static let body = Scopes(.body)
        public static let headers = Scopes(.headers)
        public static let query = Scopes(.query)
        public static let path = Scopes(.path)
        public static let event = Scopes(.event)
    }

    let root: Root
    /// The scopes some condition reads: the others need not be built for a request.
    public let scopes: Scopes
    /// The filter as configured, for messages.
    public let source: JSONValue

    init(root: Root, scopes: Scopes, source: JSONValue) {
        self.root = root
        self.scopes = scopes
        self.source = source
    }

    /// True when `input` passes the filter.
    public func matches(_ input: Input) -> Bool { root.holds(input) }

    /// The first condition `input` fails, or nil when it passes.
    public func firstFailure(_ input: Input) -> Failure? { root.firstFailure(input) }

    /// What a filter is evaluated on: each scope's value, built only for the scopes the filter
    /// reads (``scopes``); a scope left nil holds nothing.
    public struct Input: Sendable {
        public var body: JSONValue?
        public var headers: JSONValue?
        public var query: JSONValue?
        public var path: JSONValue?
        public var event: JSONValue?

        public init(
            body: JSONValue? = nil, headers: JSONValue? = nil, query: JSONValue? = nil, path: JSONValue? = nil,
            event: JSONValue? = nil
        ) {
            self.body = body
            self.headers = headers
            self.query = query
            self.path = path
            self.event = event
        }

        subscript(scope: Scope) -> JSONValue? {
            switch scope {
            case .body: return body
            case .headers: return headers
            case .query: return query
            case .path: return path
            case .event: return event
            }
        }
    }

    /// A condition that did not hold: where, which operator, what it wanted and what was there.
    public struct Failure: Sendable, Equatable, CustomStringConvertible {
        /// `body.data.object.amount`.
        public let path: String
        /// `$gte`; `$eq` for a plain value.
        public let operation: String
        /// The operand as configured, as compact JSON.
        public let expected: String
        /// The value found, as compact JSON; nil when the path is missing.
        public let found: String?

        public var description: String {
            "\(path) \(operation) \(expected): " + (found.map { "found \($0)" } ?? "missing")
        }
    }

    // MARK: - The compiled form

    indirect enum Root: Sendable {
        case scope(Scope, Condition)
        case all([Root])
        case any([Root], source: JSONValue)
        case not(Root, source: JSONValue)

        func holds(_ input: Input) -> Bool {
            switch self {
            case .scope(let scope, let condition): return condition.holds(input[scope])
            case .all(let roots): return roots.allSatisfy { $0.holds(input) }
            case .any(let roots, _): return roots.contains { $0.holds(input) }
            case .not(let root, _): return !root.holds(input)
            }
        }

        func firstFailure(_ input: Input) -> Failure? {
            switch self {
            case .scope(let scope, let condition):
                return condition.firstFailure(input[scope], path: scope.rawValue)
            case .all(let roots):
                for root in roots { if let failure = root.firstFailure(input) { return failure } }
                return nil
            case .any(_, let source):
                return holds(input) ? nil : Failure(path: "$", operation: "$or", expected: Self.text(source), found: nil)
            case .not(_, let source):
                return holds(input) ? nil : Failure(path: "$", operation: "$not", expected: Self.text(source), found: nil)
            }
        }

        static func text(_ value: JSONValue) -> String { Condition.text(value) }
    }

    /// A value's test, below a scope.
    indirect enum Condition: Sendable {
        /// A plain value: equal, or an array that contains it (an array operand: contains all).
        case equals(Operand)
        /// An object: `fields` hold on the value's members (on an array, all on one element),
        /// `operators` on the value itself.
        case object(fields: [(String, Condition)], operators: [Condition])
        case compare(Comparison, Operand)
        case contains(Operand, negated: Bool)
        /// `$startsWith` / `$endsWith`: one of the texts.
        case affix([String], suffix: Bool, source: JSONValue)
        case exists(Bool)
        case regex(Pattern)
        case all([Condition], source: JSONValue)
        case any([Condition], source: JSONValue)
        case not(Condition, source: JSONValue)

        enum Comparison: String, Sendable {
            case eq = "$eq"
            case neq = "$neq"
            case gt = "$gt"
            case gte = "$gte"
            case lt = "$lt"
            case lte = "$lte"
        }

        func holds(_ value: JSONValue?) -> Bool {
            switch self {
            case .equals(let operand):
                guard let value else { return false }
                return operand.plainMatch(value)
            case .object(let fields, let operators):
                return operators.allSatisfy { $0.holds(value) } && Self.fieldsHold(fields, value)
            case .compare(let comparison, let operand):
                guard let value else { return false }
                switch comparison {
                case .eq: return operand.equals(value)
                case .neq: return operand.sameKind(as: value) && !operand.equals(value)
                case .gt: return operand.compared(to: value).map { $0 > 0 } ?? false
                case .gte: return operand.compared(to: value).map { $0 >= 0 } ?? false
                case .lt: return operand.compared(to: value).map { $0 < 0 } ?? false
                case .lte: return operand.compared(to: value).map { $0 <= 0 } ?? false
                }
            case .contains(let operand, let negated):
                guard let value else { return false }
                if negated { return operand.canHold(value) && !operand.isIn(value) }
                return operand.isIn(value)
            case .affix(let texts, let suffix, _):
                guard case .string(let string)? = value else { return false }
                return texts.contains { suffix ? string.hasSuffix($0) : string.hasPrefix($0) }
            case .exists(let wanted):
                return (value != nil) == wanted
            case .regex(let pattern):
                guard case .string(let string)? = value else { return false }
                return pattern.matches(string)
            case .all(let conditions, _):
                return conditions.allSatisfy { $0.holds(value) }
            case .any(let conditions, _):
                return conditions.contains { $0.holds(value) }
            case .not(let condition, _):
                return !condition.holds(value)
            }
        }

        /// Field conditions: on an object, each on its member; on an array, all on one element
        /// (`{"items": {"sku": "A", "qty": 2}}` wants one item with both); on anything else,
        /// each on a missing value.
        static func fieldsHold(_ fields: [(String, Condition)], _ value: JSONValue?) -> Bool {
            if fields.isEmpty { return true }
            switch value {
            case .object(let members)?:
                // The members read once, not once per field.
                return fields.allSatisfy { field in field.1.holds(members.first { $0.0 == field.0 }?.1) }
            case .array(let items)?: return items.contains { fieldsHold(fields, $0) }
            default: return fields.allSatisfy { $0.1.holds(nil) }
            }
        }

        func firstFailure(_ value: JSONValue?, path: String) -> Failure? {
            if holds(value) { return nil }
            switch self {
            case .object(let fields, let operators):
                for condition in operators {
                    if let failure = condition.firstFailure(value, path: path) { return failure }
                }
                switch value {
                case .object?:
                    for (key, condition) in fields {
                        if let failure = condition.firstFailure(value?[key], path: joinPath(path, key)) { return failure }
                    }
                case .array?:
                    let wanted = JSONValue.object(fields.map { ($0.0, $0.1.source) })
                    return Failure(
                        path: path, operation: "an element with", expected: Self.text(wanted), found: Self.found(value))
                default:
                    for (key, condition) in fields {
                        if let failure = condition.firstFailure(nil, path: joinPath(path, key)) { return failure }
                    }
                }
                return nil
            case .all(let conditions, _):
                for condition in conditions {
                    if let failure = condition.firstFailure(value, path: path) { return failure }
                }
                return nil
            default:
                return Failure(path: path, operation: operation, expected: Self.text(source), found: Self.found(value))
            }
        }

        /// The operator's name, for ``Failure``.
        var operation: String {
            switch self {
            case .equals, .object: return "$eq"
            case .compare(let comparison, _): return comparison.rawValue
            case .contains(_, let negated): return negated ? "$nin" : "$in"
            case .affix(_, let suffix, _): return suffix ? "$endsWith" : "$startsWith"
            case .exists: return "$exist"
            case .regex: return "$regex"
            case .all: return "$and"
            case .any: return "$or"
            case .not: return "$not"
            }
        }

        /// The operand as configured.
        var source: JSONValue {
            switch self {
            case .equals(let operand), .compare(_, let operand), .contains(let operand, _): return operand.value
            case .object(let fields, let operators):
                var members = fields.map { ($0.0, $0.1.source) }
                for condition in operators { members.append((condition.operation, condition.source)) }
                return .object(members)
            case .exists(let wanted): return .bool(wanted)
            case .regex(let pattern): return .string(pattern.text)
            case .affix(_, _, let source), .all(_, let source), .any(_, let source), .not(_, let source): return source
            }
        }

        static func text(_ value: JSONValue) -> String {
            var bytes: [UInt8] = []
            JSONWriter.append(value, to: &bytes)
            return String(decoding: bytes, as: UTF8.self)
        }

        /// A found value for a message: compact JSON, cut at 80 characters.
        static func found(_ value: JSONValue?) -> String? {
            guard let value else { return nil }
            let text = text(value)
            return text.count > 80 ? String(text.prefix(77)) + "..." : text
        }
    }

    /// An operator's value, with its number read once.
    struct Operand: Sendable {
        let value: JSONValue
        /// The value as a number, when it is one.
        let number: Double?
        /// The value as an integer, when it is one that fits in 64 bits.
        let integer: Int?

        init(_ value: JSONValue) {
            self.value = value
            if case .number(let text) = value {
                number = Double(text)
                integer = Int(text)
            } else {
                number = nil
                integer = nil
            }
        }

        /// Deep equality; numbers by value (`10` equals `10.0`).
        func equals(_ other: JSONValue) -> Bool { Self.equal(value, other) }

        /// True when `other` is of the operand's JSON kind (`$neq`: a string is never "not
        /// equal" to a number, it is a type mismatch, which is no match).
        func sameKind(as other: JSONValue) -> Bool { value.kindName == other.kindName }

        /// `$nin`'s precondition: the value is of a kind `$in` could find (an element's kind,
        /// a string for a substring, an array).
        func canHold(_ other: JSONValue) -> Bool {
            if case .array = other { return true }
            switch value {
            case .array(let options): return options.contains { $0.kindName == other.kindName }
            case .string: if case .string = other { return true } else { return false }
            default: return sameKind(as: other)
            }
        }

        static func equal(_ a: JSONValue, _ b: JSONValue) -> Bool {
            // The usual case, strings, without building the pair below.
            if case .string(let x) = a {
                if case .string(let y) = b { return x == y }
                return false
            }
            switch (a, b) {
            case (.number(let x), .number(let y)): return x == y || compareNumbers(x, y) == 0
            case (.array(let xs), .array(let ys)): return xs.count == ys.count && zip(xs, ys).allSatisfy { equal($0, $1) }
            case (.object(let xs), .object(let ys)):
                return xs.count == ys.count
                    && xs.allSatisfy { member in ys.contains { $0.0 == member.0 && equal($0.1, member.1) } }
            default: return a == b
            }
        }

        /// A plain value's match: equal; in an array, an equal element; an array operand
        /// wants every one of its elements in the array (Hookdeck's "array contains").
        func plainMatch(_ other: JSONValue) -> Bool {
            if equals(other) { return true }
            guard case .array(let items) = other else { return false }
            if case .array(let wanted) = value {
                return wanted.allSatisfy { element in items.contains { Self.equal(element, $0) } }
            }
            return items.contains { equals($0) }
        }

        /// `$in`: with an array operand, the value (or, for an array value, one of its
        /// elements) is one of the operand's; with a string operand, the value is a string
        /// that contains it or an array that holds it.
        func isIn(_ other: JSONValue) -> Bool {
            switch value {
            case .array(let options):
                if case .array(let items) = other {
                    return items.contains { item in options.contains { Self.equal($0, item) } }
                }
                return options.contains { Self.equal($0, other) }
            case .string(let text):
                if case .string(let string) = other { return string.contains(text) }
                if case .array(let items) = other { return items.contains { $0 == value } }
                return false
            default:
                return equals(other)
            }
        }

        /// How two JSON numbers compare: exactly for integers (ids above 2^53 stay apart),
        /// else as doubles; nil when one is not a number.
        static func compareNumbers(_ a: String, _ b: String) -> Int? {
            if let order = compareIntegers(a, b) { return order }
            guard let x = Double(a), let y = Double(b) else { return nil }
            return x < y ? -1 : (x > y ? 1 : 0)
        }

        /// Two integer literals (no fraction or exponent) compared by their digits; nil when
        /// either is not one.
        static func compareIntegers(_ a: String, _ b: String) -> Int? {
            func parts(_ text: String) -> (negative: Bool, digits: Substring.UTF8View)? {
                var digits = Substring(text).utf8
                let negative = digits.first == UInt8(ascii: "-")
                if negative { digits = digits.dropFirst() }
                guard !digits.isEmpty, digits.allSatisfy({ $0 &- 0x30 < 10 }) else { return nil }
                while digits.count > 1, digits.first == UInt8(ascii: "0") { digits = digits.dropFirst() }
                return (negative && !(digits.count == 1 && digits.first == UInt8(ascii: "0")), digits)
            }
            guard let x = parts(a), let y = parts(b) else { return nil }
            if x.negative != y.negative { return x.negative ? -1 : 1 }
            var order = x.digits.count != y.digits.count ? (x.digits.count < y.digits.count ? -1 : 1) : 0
            if order == 0, !x.digits.elementsEqual(y.digits) { order = x.digits.lexicographicallyPrecedes(y.digits) ? -1 : 1 }
            return x.negative ? -order : order
        }

        /// How `other` compares to the operand (negative: smaller): numbers by value, strings
        /// by their characters' code points (ISO dates compare as dates); nil for anything
        /// else, which no comparison matches.
        func compared(to other: JSONValue) -> Int? {
            switch (value, other) {
            case (.number(let wanted), .number(let text)):
                // The usual case, integers that fit in 64 bits, without the digit-by-digit
                // comparison below (a tenth of a five-condition match).
                if let integer, let found = Int(text) { return found < integer ? -1 : (found > integer ? 1 : 0) }
                if let order = Self.compareIntegers(text, wanted) { return order }
                guard let number, let found = Double(text) else { return nil }
                return found < number ? -1 : (found > number ? 1 : 0)
            case (.string(let text), .string(let found)):
                if found == text { return 0 }
                return found.unicodeScalars.lexicographicallyPrecedes(text.unicodeScalars) ? -1 : 1
            default:
                return nil
            }
        }
    }

    /// A `$regex`: compiled once (ICU's syntax, as `NSRegularExpression` reads it); finds a
    /// match anywhere in the string unless anchored. `NSRegularExpression` is immutable and
    /// safe to share across threads, so event loops match at once, with no lock (Swift's
    /// `Regex` is not `Sendable`).
    public struct Pattern: Sendable {
        public let text: String
        private let regex: NSRegularExpression

        public init(_ text: String) throws {
            self.text = text
            self.regex = try NSRegularExpression(pattern: text)
        }

        public func matches(_ string: String) -> Bool {
            regex.firstMatch(in: string, range: NSRange(string.startIndex..., in: string)) != nil
        }
    }
}
