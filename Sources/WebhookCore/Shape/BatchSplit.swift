import WebhookEncoding

/// A source's `split`: where a body that carries several events keeps them, and where each
/// element keeps its id and type. Each element becomes an event of its own (its own id,
/// dedupe check, route and `data`); the signature is checked once, over the whole body.
public struct BatchSplit: Sendable, Equatable {
    /// The JSON Pointer of the array; `""` for a top-level array.
    public var pointer: String
    /// Pointers into an element for its id, the first present one wins; none, or none
    /// present: `sha256:` of the element's bytes.
    public var idPointers: [String]
    /// Pointers into an element for its type, the first present one wins; none present: the
    /// scheme's type.
    public var typePointers: [String]
    /// The preset's name, for messages; nil when configured.
    public var preset: String?
    /// A preset's pointer whose value, when present, follows the type after a `.`
    /// (GoCardless's `resource_type` + `.` + `action`: `mandates.created`).
    public var typeSuffixPointer: String?

    public init(
        pointer: String, idPointers: [String], typePointers: [String], preset: String? = nil, typeSuffixPointer: String? = nil
    ) {
        self.typeSuffixPointer = typeSuffixPointer
        self.pointer = pointer
        self.idPointers = idPointers
        self.typePointers = typePointers
        self.preset = preset
    }

    /// The splits on by default, by scheme: providers that deliver batches.
    public static let presets: [String: BatchSplit] = [
        "event-grid": BatchSplit(pointer: "", idPointers: ["/id"], typePointers: ["/eventType"], preset: "event-grid"),
        "okta": BatchSplit(pointer: "/data/events", idPointers: ["/uuid"], typePointers: ["/eventType"], preset: "okta"),
        "microsoft-graph": BatchSplit(
            pointer: "/value", idPointers: [], typePointers: ["/changeType", "/lifecycleEvent"], preset: "microsoft-graph"),
        "sendgrid": BatchSplit(pointer: "", idPointers: ["/sg_event_id"], typePointers: ["/event"], preset: "sendgrid"),
        "hubspot": BatchSplit(pointer: "", idPointers: ["/eventId"], typePointers: ["/subscriptionType"], preset: "hubspot"),
        "gocardless": BatchSplit(
            pointer: "/events", idPointers: ["/id"], typePointers: ["/resource_type"], preset: "gocardless",
            typeSuffixPointer: "/action"),
    ]

    /// The elements of `body`, or nil when it holds no array at ``pointer`` (the body is then
    /// one event, as without a split).
    public func elements(of body: JSONValue) -> [JSONValue]? {
        guard case .array(let items)? = body.value(atPointer: pointer) else { return nil }
        return items
    }

    /// An element's id, when one of ``idPointers`` gives a usable one.
    public func id(of element: JSONValue) -> String? {
        for pointer in idPointers {
            if let id = EventID.usable(element.value(atPointer: pointer)?.scalarText) { return id }
        }
        return nil
    }

    /// An element's type, when one of ``typePointers`` gives one.
    public func type(of element: JSONValue) -> String? {
        for pointer in typePointers {
            if let type = element.value(atPointer: pointer)?.scalarText, !type.isEmpty {
                guard let suffix = typeSuffixPointer.flatMap({ element.value(atPointer: $0)?.scalarText }), !suffix.isEmpty
                else { return type }
                return type + "." + suffix
            }
        }
        return nil
    }

    /// `pointer`, the id's and the type's, for `check-config`.
    public var summary: String {
        let id = idPointers.isEmpty ? "hash" : idPointers.joined(separator: " or ")
        let type =
            typePointers.isEmpty
            ? "the scheme's" : typePointers.joined(separator: " or ") + (typeSuffixPointer.map { " + . + \($0)" } ?? "")
        let name = preset.map { "\($0) preset: " } ?? ""
        return "\(name)elements at \"\(pointer)\", id \(id), type \(type)"
    }
}

extension BatchSplit {
    /// Reads a source's `split` at `path`: `false` (no split), or `{"pointer", "id", "type"}`
    /// (`id` and `type` a pointer or a list of them). Without a `split`, the scheme's preset.
    public static func read(_ reader: ConfigReader, scheme: String?, log: ProblemLog) -> BatchSplit?? {
        let path = reader.childPath("split")
        guard let value = reader.raw("split") else { return .some(scheme.flatMap { presets[$0] }) }
        if case .bool(let on) = value {
            guard !on else {
                guard let preset = scheme.flatMap({ presets[$0] }) else {
                    log.add(
                        path,
                        "true needs a scheme with a preset (\(presets.keys.sorted().joined(separator: ", "))); give {\"pointer\": ...} instead"
                    )
                    return nil
                }
                return .some(preset)
            }
            return .some(nil)
        }
        guard let split = ConfigReader(value, path: path, log: log) else { return nil }
        split.rejectUnknownKeys(["pointer", "id", "type"])
        func pointers(_ key: String) -> [String]? {
            guard let raw = split.raw(key) else { return [] }
            let list: [JSONValue]
            switch raw {
            case .string: list = [raw]
            case .array(let items): list = items
            default:
                log.add(split.childPath(key), "must be a JSON Pointer or an array of them")
                return nil
            }
            var result: [String] = []
            for (index, item) in list.enumerated() {
                let itemPath = list.count == 1 && raw != .array(list) ? split.childPath(key) : "\(split.childPath(key))[\(index)]"
                guard case .string(let text) = item, text.hasPrefix("/") else {
                    log.add(itemPath, "must be a JSON Pointer into an element, starting with /")
                    return nil
                }
                result.append(text)
            }
            return result
        }
        let pointer = split.string("pointer", required: true, nonEmpty: false)
        if let pointer, !pointer.isEmpty, !pointer.hasPrefix("/") {
            log.add(split.childPath("pointer"), "must be a JSON Pointer: \"\" for a top-level array, else starting with /")
            return nil
        }
        guard let pointer, let ids = pointers("id"), let types = pointers("type") else { return nil }
        return .some(BatchSplit(pointer: pointer, idPointers: ids, typePointers: types))
    }
}
