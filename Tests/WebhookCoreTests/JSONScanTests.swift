import Testing
import WebhookCore
import WebhookEncoding

/// `JSONParser.topLevelTexts` must agree with a full parse on every input: same valid/invalid
/// verdict, same texts.
@Suite("JSON top-level scan")
struct JSONScanTests {
    static let names = ["type", "id", "n", "K"]

    /// What the full parser says.
    static func expected(_ bytes: [UInt8], _ names: [String]) -> [String?]? {
        guard let value = try? JSONParser.parse(bytes) else { return nil }
        return names.map { value[$0]?.scalarText }
    }

    static let documents: [String] = [
        #"{"type":"invoice.paid","id":"evt_1","data":{"type":"nested","id":2}}"#,
        #"{"id": 12.5e-3, "type": true, "n": null, "K": [1, {"a": "b"}]}"#,
        #"{"type": false, "id": {"x": 1}}"#,
        #"{"type":"caf\u00e9 \ud83d\ude00 \"q\" \\ \/","id":"évènement 😀"}"#,
        #"  {"type" : "a" , "id" : -0 }  "#,
        #"["type", "id"]"#, #""type""#, "42", "null", "{}", "[]",
        // Duplicates: at the top, nested, in arrays of objects, and ones only decoding finds.
        #"{"type":"a","type":"b"}"#, #"{"a":{"x":1,"x":2}}"#, #"[{"x":1},{"x":1,"x":1}]"#,
        #"{"a":{"x":1},"b":{"x":1}}"#, #"{"type":"a","typ\u0065":"b"}"#, #"{"K":1,"\u212a":2}"#,
        #"{"é":1,"é":2}"#, #"{"e\u0301":1,"é":2}"#,
        // Broken documents.
        #"{"type":"a",}"#, #"{"type":"a"} x"#, #"{"type":"a\u00"}"#, #"{"type":"\ud83d"}"#,
        #"{"type":"\udc00"}"#, #"{"type":01}"#, #"{"type":1.}"#, #"{"type":tru}"#, #"{"type" "a"}"#,
        #"{"type":"a""#, #"{"type":"a\x"}"#, #"{type:"a"}"#, "{", "", " ", #"{"a":[1,2}"#,
        "{\"type\":\"a\u{01}\"}", #"{"a":"b"}{"#,
    ]

    @Test("agrees with the parser on valid and broken documents", arguments: documents)
    func agrees(text: String) {
        let bytes = Array(text.utf8)
        #expect(JSONParser.topLevelTexts(bytes, Self.names) == Self.expected(bytes, Self.names))
        #expect(JSONParser.isValid(bytes) == ((try? JSONParser.parse(bytes)) != nil))
    }

    @Test("reads the top-level members only")
    func values() {
        let bytes = Array(#"{"data":{"type":"inner"},"type":"outer","id":7,"n":null,"K":[1]}"#.utf8)
        #expect(JSONParser.topLevelTexts(bytes, Self.names) == ["outer", "7", nil, nil])
        #expect(JSONParser.topLevelTexts(bytes, []) == [])
        #expect(JSONParser.topLevelTexts(bytes, ["id", "type", "id"]) == ["7", "outer", "7"])
    }

    @Test("invalid UTF-8 in a string is refused; valid multi-byte text is kept")
    func utf8() {
        let cases: [[UInt8]] = [
            [0x22, 0xFF, 0x22], [0x22, 0xC3, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22], [0x22, 0xC0, 0xAF, 0x22],
            [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], [0x22, 0xC3, 0xA9, 0x5C, 0x6E, 0xE2, 0x82, 0xAC, 0x22],
            [0x22, 0xC3, 0x5C, 0x6E, 0xA9, 0x22],
        ]
        for string in cases {
            for bytes in [string, Array(#"{"type":"#.utf8) + string + [0x7D], Array(#"{"x":"#.utf8) + string + [0x7D]] {
                #expect(JSONParser.topLevelTexts(bytes, Self.names) == Self.expected(bytes, Self.names), "\(bytes)")
            }
        }
    }

    @Test("long strings: a quote, escape, control or non-ASCII byte at any offset is seen")
    func longStrings() {
        let specials: [[UInt8]] = [[0x5C, 0x22], [0x5C, 0x6E], [0x01], [0x1F], [0xC3, 0xA9], [0xFF], [0x22, 0x2C, 0x22, 0x78, 0x22, 0x3A]]
        for special in specials {
            for offset in 0..<24 {
                let text = Array(repeating: UInt8(ascii: "a"), count: offset) + special + Array(repeating: UInt8(ascii: "b"), count: 30)
                let bytes = Array(#"{"type":""#.utf8) + text + Array(#"","id":1}"#.utf8)
                #expect(JSONParser.topLevelTexts(bytes, Self.names) == Self.expected(bytes, Self.names), "\(special) at \(offset)")
            }
        }
        let plain = Array(#"{"x":""#.utf8) + Array(repeating: UInt8(ascii: "z"), count: 1000) + Array(#"","type":"t"}"#.utf8)
        #expect(JSONParser.topLevelTexts(plain, Self.names) == ["t", nil, nil, nil])
    }

    @Test("objects with many members fall back to the parser and still agree")
    func manyMembers() {
        let members = (0..<40).map { #""m\#($0)":\#($0)"# }
        for duplicate in [false, true] {
            let text = "{" + (members + (duplicate ? [#""m3":0"#] : []) + [#""type":"t""#]).joined(separator: ",") + "}"
            let bytes = Array(text.utf8)
            #expect(JSONParser.topLevelTexts(bytes, Self.names) == Self.expected(bytes, Self.names))
            #expect(JSONParser.topLevelTexts(bytes, Self.names) == (duplicate ? nil : ["t", nil, nil, nil]))
        }
    }

    @Test("more member names open at once than the scan holds (nested objects of 30 each) fall back to the parser and still agree")
    func manyOpenNames() {
        func object(_ level: Int, duplicate: Bool) -> String {
            var members = (0..<30).map { #""n\#($0)":\#($0)"# }
            if level == 5, duplicate { members.append(#""n7":1"#) }
            if level < 6 { members.append(#""child":"# + object(level + 1, duplicate: duplicate)) }
            return "{" + members.joined(separator: ",") + "}"
        }
        for duplicate in [false, true] {
            let text = #"{"type":"t","body":"# + object(1, duplicate: duplicate) + "}"
            let bytes = Array(text.utf8)
            #expect(JSONParser.topLevelTexts(bytes, Self.names) == Self.expected(bytes, Self.names))
            #expect(JSONParser.topLevelTexts(bytes, Self.names) == (duplicate ? nil : ["t", nil, nil, nil]))
        }
    }

    @Test("nesting up to the parser's limit is accepted, one level more refused")
    func depth() {
        for depth in [JSONParser.maximumDepth, JSONParser.maximumDepth + 1] {
            let bytes = Array(repeating: UInt8(ascii: "["), count: depth) + Array(repeating: UInt8(ascii: "]"), count: depth)
            #expect(JSONParser.isValid(bytes) == ((try? JSONParser.parse(bytes)) != nil))
            #expect(JSONParser.isValid(bytes) == (depth <= JSONParser.maximumDepth))
        }
    }

    @Test("agrees with the parser on thousands of mutated documents")
    func mutations() {
        var random = SeededGenerator(seed: 0x5EED)
        let alphabet = Array(#"{}[]":,\\u0aAeE.-+ tfn"#.utf8) + [0x00, 0x1F, 0x80, 0xC3, 0xA9, 0xED, 0xFF]
        var checked = 0
        for document in Self.documents.prefix(5) {
            let original = Array(document.utf8)
            for _ in 0..<2000 {
                var bytes = original
                for _ in 0..<(1 + Int(random.next() % 3)) {
                    let position = Int(random.next() % UInt64(bytes.count + 1))
                    let byte = alphabet[Int(random.next() % UInt64(alphabet.count))]
                    switch random.next() % 3 {
                    case 0 where position < bytes.count: bytes[position] = byte
                    case 1 where position < bytes.count: bytes.remove(at: position)
                    default: bytes.insert(byte, at: position)
                    }
                }
                let scanned = JSONParser.topLevelTexts(bytes, Self.names)
                let parsed = Self.expected(bytes, Self.names)
                #expect(scanned == parsed, "\(String(decoding: bytes, as: UTF8.self))")
                if scanned != parsed { return }
                checked += 1
            }
        }
        #expect(checked == 10_000)
    }
}
