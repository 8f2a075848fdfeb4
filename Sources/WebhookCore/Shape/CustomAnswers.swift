import WebhookEncoding

/// A source's `respond`: the answer to events that were taken (`accepted`, `queued`,
/// `duplicate`, `filtered`) when the provider wants something else than the bridge's JSON:
/// TwiML for Twilio, an acknowledgement for Salesforce outbound messages. One answer for
/// all four outcomes, or one per outcome (`{"accepted": {...}, "duplicate": {...}}`); an
/// outcome without one keeps the bridge's answer. Error answers never change.
public struct CustomAnswers: Sendable {
    /// One configured answer. `{id}` and `{status}` in the body and header values are
    /// replaced by the event's id (empty for a batch) and the outcome, escaped for the
    /// answer's content type (XML, JSON) so a provider's id can't break the document.
    public struct Answer: Sendable, Equatable {
        /// nil: the outcome's own status (200, or 202 for `queued`).
        public var status: Int?
        public var contentType: String?
        public var body: String
        public var headers: [String: String]
    }

    /// The outcomes an answer can be given for.
    public static let outcomes = ["accepted", "queued", "duplicate", "filtered"]

    let answers: [String: Answer]

    /// The answer for `outcome`, rendered; nil when the bridge's own answer stands.
    public func answer(outcome: String, id: String, defaultStatus: Int) -> (
        status: Int, headers: [(String, String)], body: [UInt8]
    )? {
        guard let answer = answers[outcome] else { return nil }
        var headers: [(String, String)] = []
        if let contentType = answer.contentType { headers.append(("Content-Type", contentType)) }
        for (name, value) in answer.headers.sorted(by: { $0.key < $1.key }) {
            // An id never holds a control character (EventID), so a header stays one line.
            headers.append((name, Self.render(value, id: id, outcome: outcome, escape: { $0 })))
        }
        let body = Self.render(answer.body, id: id, outcome: outcome, escape: Self.escaper(for: answer.contentType))
        return (answer.status ?? defaultStatus, headers, Array(body.utf8))
    }

    /// `text` with `{id}` and `{status}` replaced in one pass: an id that holds `{status}`
    /// stays as it is.
    static func render(_ text: String, id: String, outcome: String, escape: (String) -> String) -> String {
        guard text.contains("{") else { return text }
        var out = ""
        var rest = text[...]
        while let open = rest.firstIndex(of: "{") {
            out += rest[..<open]
            let tail = rest[open...]
            if tail.hasPrefix("{id}") {
                out += escape(id)
                rest = tail.dropFirst(4)
            } else if tail.hasPrefix("{status}") {
                out += outcome
                rest = tail.dropFirst(8)
            } else {
                out += "{"
                rest = tail.dropFirst()
            }
        }
        return out + rest
    }

    /// How a value is written into a body of `contentType`.
    static func escaper(for contentType: String?) -> (String) -> String {
        let type = contentType?.lowercased() ?? ""
        if type.contains("xml") || type.contains("html") {
            return { text in
                var out = ""
                for character in text {
                    switch character {
                    case "&": out += "&amp;"
                    case "<": out += "&lt;"
                    case ">": out += "&gt;"
                    case "\"": out += "&quot;"
                    case "'": out += "&apos;"
                    default: out.append(character)
                    }
                }
                return out
            }
        }
        if type.contains("json") {
            return { text in
                var bytes: [UInt8] = []
                JSONWriter.appendString(text, to: &bytes)
                return String(decoding: bytes.dropFirst().dropLast(), as: UTF8.self)
            }
        }
        return { $0 }
    }
}

extension CustomAnswers {
    /// Reads a source's `respond`: one answer, or an object of answers by outcome.
    public static func read(_ reader: ConfigReader) -> CustomAnswers? {
        guard let respond = reader.object("respond") else { return nil }
        let byOutcome = respond.members.contains { outcomes.contains($0.0) }
        if !byOutcome {
            guard let answer = readAnswer(respond) else { return nil }
            return CustomAnswers(answers: Dictionary(uniqueKeysWithValues: outcomes.map { ($0, answer) }))
        }
        respond.rejectUnknownKeys(outcomes)
        var answers: [String: Answer] = [:]
        for outcome in outcomes {
            guard let object = respond.object(outcome) else { continue }
            if let answer = readAnswer(object) { answers[outcome] = answer }
        }
        return CustomAnswers(answers: answers)
    }

    private static func readAnswer(_ reader: ConfigReader) -> Answer? {
        reader.rejectUnknownKeys(["status", "contentType", "body", "headers"])
        // A taken event is answered 2xx: anything else would have the provider send it again
        // (or give up on the endpoint) although it is stored.
        let status = reader.integer("status", in: 200...299)
        if let status, status == 204 || status == 205 {
            // They carry no body, and HTTP/1.1 framing breaks on a keep-alive connection if one is sent.
            reader.problem(at: "status", "can't be \(status), an answer without a body; use 200 with an empty body")
        }
        let contentType = reader.string("contentType")
        if let contentType, contentType.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            reader.problem(at: "contentType", "must not hold control characters")
        }
        let body = reader.has("body") ? reader.string("body", nonEmpty: false) : ""
        var headers: [String: String] = [:]
        if let object = reader.object("headers") {
            for (name, _) in object.members {
                let token =
                    !name.isEmpty
                    && name.utf8.allSatisfy { byte in
                        (0x21...0x7E).contains(byte) && !"()<>@,;:\\\"/[]?={}".utf8.contains(byte)
                    }
                guard token else {
                    object.problem(at: name, "is not an HTTP header name")
                    continue
                }
                if ["content-length", "transfer-encoding", "connection", "content-type"].contains(name.lowercased()) {
                    object.problem(at: name, "is set by the bridge (use contentType for the Content-Type)")
                    continue
                }
                guard let value = object.string(name, nonEmpty: false) else { continue }
                if value.unicodeScalars.contains(where: { ($0.value < 0x20 && $0 != "\t") || $0.value == 0x7F }) {
                    object.problem(at: name, "must not hold control characters (a header value is one line)")
                    continue
                }
                headers[name] = value
            }
        }
        if reader.has("status"), status == nil { return nil }
        guard let body else { return nil }
        return Answer(status: status, contentType: contentType, body: body, headers: headers)
    }
}
