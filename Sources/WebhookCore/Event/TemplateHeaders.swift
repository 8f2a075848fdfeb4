/// The request headers an event keeps for sink templates (`{header:Name}`): only those the
/// configured templates read, captured when the event is made, so a sink never sees the
/// request's HTTP types and an event whose sinks read no header carries none.
public struct TemplateHeaders: Sendable, ExpressibleByDictionaryLiteral {
    private var fields: [(name: String, value: String)]

    public init(_ fields: [(name: String, value: String)] = []) { self.fields = fields }

    public init(dictionaryLiteral elements: (String, String)...) {
        self.fields = elements.map { (name: $0.0, value: $0.1) }
    }

    /// The first value of `name`, compared without regard to ASCII case (as HTTP does).
    public func first(name: String) -> String? {
        fields.first { Self.sameName($0.name, name) }?.value
    }

    public mutating func add(name: String, value: String) { fields.append((name, value)) }

    private static func sameName(_ a: String, _ b: String) -> Bool {
        a.utf8.elementsEqual(b.utf8) { lowered($0) == lowered($1) }
    }

    private static func lowered(_ byte: UInt8) -> UInt8 { (0x41...0x5A).contains(byte) ? byte | 0x20 : byte }
}
