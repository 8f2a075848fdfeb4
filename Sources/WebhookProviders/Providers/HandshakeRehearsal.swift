import NIOHTTP1
import WebhookCore

/// A provider's setup request, as `send --handshake` makes it to rehearse the provider's
/// setup against a deployment, and the check the provider applies to the answer.
public struct HandshakeRehearsal: Sendable {
    public var method: HTTPMethod
    /// The URL to call (the target with the provider's query parameters added).
    public var url: String
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// nil when the provider would accept the answer (status, headers, body), else why not.
    public let check: @Sendable (_ status: Int, _ headers: HTTPHeaders, _ body: [UInt8]) -> String?

    init(
        method: HTTPMethod, url: String, headers: [(String, String)] = [], body: [UInt8] = [],
        check: @escaping @Sendable (Int, HTTPHeaders, [UInt8]) -> String?
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.check = check
    }

    /// `url` with `name=value` added to its query.
    static func adding(_ parameters: [(String, String)], to url: String) -> String {
        var result = url
        for (name, value) in parameters {
            result += (result.contains("?") ? "&" : "?") + FormParameters.encode(name) + "=" + FormParameters.encode(value)
        }
        return result
    }

    /// Checks for a 200 whose body is exactly `expected`.
    static func expecting(_ expected: [UInt8], contentType: String? = nil) -> @Sendable (Int, HTTPHeaders, [UInt8]) -> String? {
        { status, headers, body in
            guard status == 200 else { return "the answer is \(status), not 200" }
            guard body == expected else {
                return
                    "the body is \"\(String(decoding: body, as: UTF8.self))\", not \"\(String(decoding: expected, as: UTF8.self))\""
            }
            if let contentType, !(headers.first(name: "Content-Type") ?? "").hasPrefix(contentType) {
                return "the Content-Type is \(headers.first(name: "Content-Type") ?? "missing"), not \(contentType)"
            }
            return nil
        }
    }

    /// A random challenge.
    static func challenge() -> String { "challenge-" + WebhookSigner.randomID().dropFirst(4) }
}
