import Testing
import NIOCore
import WebhookCore
import WebhookEncoding
import WebhookProviders

@Suite("JSON parser and pointers")
struct JSONTests {
    @Test(
        "valid documents parse",
        arguments: [
            #"{"a": [1, -2.5e3, true, false, null, "x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"]}"#,
            "  0 ", #""""#, "[]", "{}", "[[[[]]]]", "-0.0E+1",
        ])
    func valid(text: String) {
        #expect(JSONParser.isValid(Array(text.utf8)))
    }

    @Test(
        "invalid documents are refused",
        arguments: [
            "", "{", "[1,]", "{\"a\":1,}", "01", "1.", "-", "tru", "\"\u{01}\"", "\"\\x\"", "{\"a\" 1}",
            "[1] 2", "\"\\ud83d\"", "{\"a\":1,\"a\":2}", "NaN", "'a'",
        ])
    func invalid(text: String) {
        #expect(!JSONParser.isValid(Array(text.utf8)))
    }

    @Test(
        "a duplicate member name is refused wherever it is: among few members and past the sixteenth",
        arguments: [2, 15, 16, 17, 40])
    func duplicates(count: Int) throws {
        let names = (0..<count).map { "m\($0)" }
        for duplicate in [0, count / 2, count - 1] {
            let members = (names + [names[duplicate]]).map { #""\#($0)": 1"# }
            #expect(throws: JSONParser.SyntaxError.self) {
                try JSONParser.parse(Array("{\(members.joined(separator: ","))}".utf8))
            }
        }
        let unique = names.map { #""\#($0)": 1"# }.joined(separator: ",")
        #expect(try JSONParser.parse(Array("{\(unique)}".utf8))["m\(count - 1)"] == .number("1"))
    }

    @Test("invalid UTF-8 inside a string is refused")
    func invalidUTF8() {
        #expect(!JSONParser.isValid([0x22, 0xFF, 0xFE, 0x22]))
    }

    @Test("deep nesting is refused rather than overflowing the stack")
    func depth() {
        let deep = Array(repeating: UInt8(ascii: "["), count: 100_000)
        #expect(!JSONParser.isValid(deep))
    }

    @Test("JSON pointers follow RFC 6901, escapes included")
    func pointers() throws {
        let value = try JSONParser.parse(Array(#"{"a/b": {"m~n": [10, {"id": "x"}]}, "n": 5}"#.utf8))
        #expect(value.value(atPointer: "/a~1b/m~0n/1/id") == .string("x"))
        #expect(value.value(atPointer: "/a~1b/m~0n/0")?.scalarText == "10")
        #expect(value.value(atPointer: "/n")?.scalarText == "5")
        #expect(value.value(atPointer: "/a~1b/m~0n/2") == nil)
        #expect(value.value(atPointer: "") == value)
        #expect(value.value(atPointer: "n") == nil)
    }
}

@Suite("JSON strings scanned sixteen and eight bytes at a time")
struct JSONStringWordTests {
    @Test("a quote, backslash, control or non-ASCII character at any offset of a long string: seen by scanner, parser, writer")
    func everyOffset() throws {
        let specials: [String] = ["\"", "\\", "\n", "\u{01}", "\u{1F}", "é", "\u{7F}", "😀"]
        for length in [0, 1, 7, 8, 9, 15, 16, 17, 23, 24, 25, 31, 32, 33, 47, 48, 49] {
            for offset in 0...length {
                for special in specials {
                    var text = String(repeating: "x", count: length)
                    text.insert(contentsOf: special, at: text.index(text.startIndex, offsetBy: offset))
                    var written: [UInt8] = []
                    JSONWriter.appendString(text, to: &written)
                    #expect(try JSONParser.parse(written) == .string(text), "\(length) \(offset) \(special.debugDescription)")
                    let member = Array(#"{"k":"#.utf8) + written + Array("}".utf8)
                    #expect(JSONParser.topLevelTexts(member, ["k"]) == [text], "\(length) \(offset) \(special.debugDescription)")
                }
                // A raw control character inside a string is refused wherever it is.
                var raw = Array(("\"" + String(repeating: "y", count: length) + "\"").utf8)
                raw.insert(0x0A, at: 1 + offset)
                #expect(!JSONParser.isValid(raw), "\(length) \(offset)")
            }
        }
    }
}

@Suite("A request body's JSON, scanned or parsed once")
struct LazyJSONTests {
    @Test("a source that needs the body's JSON parses it for the scheme's id and type instead of scanning it too")
    func parsesOnceWhenNeeded() {
        let body = ByteBuffer(string: #"{"id":"evt_1","type":"invoice.paid","data":{"n":1}}"#)
        let scanning = LazyJSON(body)
        let parsing = LazyJSON(body, parsesWhole: true)
        #expect(scanning.topLevelTexts(["type", "id", "data"]) == ["invoice.paid", "evt_1", nil])
        #expect(parsing.topLevelTexts(["type", "id", "data"]) == ["invoice.paid", "evt_1", nil])
        // The scan built only the texts; the parse built the document the pipeline reads next.
        #expect(scanning.valueIfParsed == nil)
        #expect(parsing.valueIfParsed?["data"] == .object([("n", .number("1"))]))
        #expect(scanning.isJSON == true && parsing.isJSON == true)

        for lazy in [LazyJSON(ByteBuffer(string: "id=evt_1")), LazyJSON(ByteBuffer(string: "id=evt_1"), parsesWhole: true)] {
            #expect(lazy.topLevelTexts(["id"]) == [nil])
            #expect(lazy.isJSON == false)
            #expect(lazy.value == nil)
        }
    }
}
