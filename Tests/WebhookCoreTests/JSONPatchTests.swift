import Testing
import WebhookCore
import WebhookEncoding

@Suite("JSON Patch transforms (RFC 6902, missing targets skipped)")
struct JSONPatchTests {
    func patch(_ operations: String) throws -> JSONPatch {
        let log = ProblemLog()
        let patch = JSONPatch.read(try JSONParser.parse(Array(operations.utf8)), path: "transform", log: log)
        #expect(log.problems.isEmpty, "\(log.problems)")
        return try #require(patch)
    }

    func apply(_ operations: String, to document: String) throws -> JSONValue {
        try patch(operations).apply(to: JSONParser.parse(Array(document.utf8)))
    }

    func json(_ text: String) throws -> JSONValue { try JSONParser.parse(Array(text.utf8)) }

    @Test("RFC 6902's examples: add to objects and arrays, remove, replace, move, copy")
    func rfcExamples() throws {
        #expect(
            try apply(#"[{"op": "add", "path": "/baz", "value": "qux"}]"#, to: #"{"foo": "bar"}"#)
                == json(#"{"foo": "bar", "baz": "qux"}"#))
        #expect(
            try apply(#"[{"op": "add", "path": "/foo/1", "value": "qux"}]"#, to: #"{"foo": ["bar", "baz"]}"#)
                == json(#"{"foo": ["bar", "qux", "baz"]}"#))
        #expect(try apply(#"[{"op": "add", "path": "/foo/-", "value": 1}]"#, to: #"{"foo": [0]}"#) == json(#"{"foo": [0, 1]}"#))
        #expect(
            try apply(#"[{"op": "remove", "path": "/baz"}]"#, to: #"{"baz": "qux", "foo": "bar"}"#) == json(#"{"foo": "bar"}"#))
        #expect(
            try apply(#"[{"op": "remove", "path": "/foo/1"}]"#, to: #"{"foo": ["bar", "qux", "baz"]}"#)
                == json(#"{"foo": ["bar", "baz"]}"#))
        #expect(
            try apply(#"[{"op": "replace", "path": "/baz", "value": "boo"}]"#, to: #"{"baz": "qux", "foo": "bar"}"#)
                == json(#"{"baz": "boo", "foo": "bar"}"#))
        #expect(
            try apply(
                #"[{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}]"#,
                to: #"{"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}}"#)
                == json(#"{"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}"#))
        #expect(
            try apply(#"[{"op": "move", "from": "/foo/1", "path": "/foo/3"}]"#, to: #"{"foo": ["all", "grass", "cows", "eat"]}"#)
                == json(#"{"foo": ["all", "cows", "eat", "grass"]}"#))
        #expect(
            try apply(#"[{"op": "copy", "from": "/a/b", "path": "/c"}]"#, to: #"{"a": {"b": [1]}}"#)
                == json(#"{"a": {"b": [1]}, "c": [1]}"#))
        #expect(try apply(#"[{"op": "add", "path": "/a~1b", "value": 1}]"#, to: "{}") == json(#"{"a/b": 1}"#))
        #expect(try apply(#"[{"op": "add", "path": "", "value": [1]}]"#, to: #"{"x": 1}"#) == json("[1]"))
    }

    @Test("an operation whose target or from is missing is skipped; the others still apply")
    func missingSkipped() throws {
        let redaction =
            #"[{"op": "remove", "path": "/card/number"}, {"op": "remove", "path": "/email"}, {"op": "replace", "path": "/nope", "value": 1}, {"op": "add", "path": "/a/b/c", "value": 1}, {"op": "move", "from": "/gone", "path": "/x"}, {"op": "copy", "from": "/gone", "path": "/y"}, {"op": "remove", "path": "/list/9"}, {"op": "add", "path": "/list/9", "value": 1}]"#
        #expect(
            try apply(redaction, to: #"{"email": "a@b.c", "list": [1], "keep": true}"#) == json(#"{"list": [1], "keep": true}"#))
        // A move whose destination can't be added leaves the document as it was.
        #expect(try apply(#"[{"op": "move", "from": "/a", "path": "/missing/b"}]"#, to: #"{"a": 1}"#) == json(#"{"a": 1}"#))
        // A leading zero is not an array index (RFC 6901).
        #expect(try apply(#"[{"op": "remove", "path": "/list/01"}]"#, to: #"{"list": [1, 2]}"#) == json(#"{"list": [1, 2]}"#))
    }
}
