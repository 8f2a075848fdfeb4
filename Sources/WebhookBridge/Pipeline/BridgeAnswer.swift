import NIOHTTP1
import WebhookCore
import WebhookEncoding
import WebhookProviders

/// An HTTP answer to a provider (SPEC section 5), independent of the server that sends it.
public struct BridgeAnswer: Sendable, Equatable {
    public var status: HTTPResponseStatus
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// The error code a refusal's body names (`signature_invalid`, `busy`), for the
    /// inspector; not part of the answer's equality.
    public var code: String?

    public init(status: HTTPResponseStatus, headers: [(String, String)] = [], body: [UInt8], code: String? = nil) {
        self.status = status
        self.headers = headers
        self.body = body
        self.code = code
    }

    public static func == (lhs: BridgeAnswer, rhs: BridgeAnswer) -> Bool {
        lhs.status == rhs.status && lhs.body == rhs.body
            && lhs.headers.map { "\($0.0):\($0.1)" } == rhs.headers.map { "\($0.0):\($0.1)" }
    }

    /// A provider's handshake answered as it requires.
    init(_ handshake: HandshakeAnswer) {
        var headers = handshake.headers
        if let contentType = handshake.contentType { headers.insert(("Content-Type", contentType), at: 0) }
        self.init(status: HTTPResponseStatus(statusCode: handshake.status), headers: headers, body: handshake.body)
    }

    /// `{"id": ID, "status": STATUS}`.
    static func event(_ status: HTTPResponseStatus, id: String, _ outcome: String) -> BridgeAnswer {
        BridgeAnswer(status: status, body: JSONWriter.object(["id": id, "status": outcome]))
    }

    /// `{"error": CODE}`, with extra headers.
    static func error(_ status: HTTPResponseStatus, _ code: String, headers: [(String, String)] = []) -> BridgeAnswer {
        BridgeAnswer(status: status, headers: headers, body: JSONWriter.object(["error": code]), code: code)
    }

    static let notFound = error(.notFound, "not_found")
    static let tooLarge = error(.payloadTooLarge, "too_large")
    static let unavailable = error(.serviceUnavailable, "unavailable", headers: [("Retry-After", "5")])
    /// Bodies being received already fill `limits.maxBufferedBytes` (SPEC section 8).
    static let busy = error(.serviceUnavailable, "busy", headers: [("Retry-After", "1")])
    static let inProgress = error(.conflict, "in_progress", headers: [("Retry-After", "1")])
}
