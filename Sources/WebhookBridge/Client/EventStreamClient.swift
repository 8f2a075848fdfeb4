import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A client of a Server-Sent Events stream (the inspector's `GET /api/events`): one
/// connection, its events handed over as they arrive. What `webhook-bridge listen` follows.
public enum EventStreamClient {
    /// One event of the stream.
    public struct Event: Sendable {
        public var id: String?
        public var data: String
    }

    /// What the stream said besides events.
    public enum Message: Sendable {
        case event(Event)
        /// A comment line (`: …`), such as the inspector's note of events it no longer holds.
        case comment(String)
        /// An id without data: where the stream is now (events the client's filter left out).
        case position(String)
    }

    /// Why a stream could not be followed.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        /// The answer's status when the server refused the stream (401: the token).
        public let status: HTTPResponseStatus?
        public let description: String
    }

    /// Connects, asks for `path` with `headers`, and calls `receive` for each message in
    /// order (awaiting it before reading on) until the server ends the stream, which
    /// returns, or the connection fails, which throws. A non-2xx answer throws with its status.
    public static func follow(
        host: String, port: Int, path: String, headers: [(String, String)], tls: TLSConfiguration? = nil,
        connectTimeout: TimeAmount = .seconds(10), group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        receive: (Message) async throws -> Void
    ) async throws {
        // TCP keepalive: a stream may be quiet for long, and a dead peer must still be noticed.
        let channel = try await WebhookClient.connect(
            host: host, port: port, tls: tls, timeout: connectTimeout, keepAlive: true, group: group)
        try await channel.executeThenClose { inbound, outbound in
            var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path)
            head.headers.add(name: "Host", value: "\(host):\(port)")
            head.headers.add(name: "Accept", value: "text/event-stream")
            for (name, value) in headers { head.headers.add(name: name, value: value) }
            try await outbound.write(.head(head))
            try await outbound.write(.end(nil))
            var parser = EventStreamParser()
            var refused: (HTTPResponseStatus, [UInt8])?
            for try await part in inbound {
                switch part {
                case .head(let head):
                    if !(200..<300).contains(head.status.code) { refused = (head.status, []) }
                case .body(let chunk):
                    if refused != nil {
                        refused!.1 += chunk.readableBytesView.prefix(512)
                        continue
                    }
                    for message in parser.feed(chunk.readableBytesView) { try await receive(message) }
                case .end:
                    if let (status, body) = refused {
                        throw Failure(
                            status: status,
                            description: "\(status.code) \(status.reasonPhrase) \(String(decoding: body, as: UTF8.self))")
                    }
                    return
                }
            }
            if let (status, _) = refused {
                throw Failure(status: status, description: "\(status.code) \(status.reasonPhrase)")
            }
        }
    }
}

/// The Server-Sent Events wire format (WHATWG HTML, "event stream interpretation"): lines
/// ending in LF, CR LF or CR; `field: value`; a blank line ends an event; `:` starts a
/// comment.
public struct EventStreamParser: Sendable {
    private var line: [UInt8] = []
    private var lastWasCR = false
    private var id: String?
    private var data: [String] = []
    private var hasData = false
    /// An `id` field since the last blank line.
    private var sawID = false

    public init() {}

    /// The messages the bytes complete.
    public mutating func feed(_ bytes: some Sequence<UInt8>) -> [EventStreamClient.Message] {
        var messages: [EventStreamClient.Message] = []
        for byte in bytes {
            if byte == 0x0A && lastWasCR {
                lastWasCR = false
                continue
            }
            lastWasCR = byte == 0x0D
            if byte == 0x0A || byte == 0x0D {
                if let message = endLine() { messages.append(message) }
            } else {
                line.append(byte)
            }
        }
        return messages
    }

    private mutating func endLine() -> EventStreamClient.Message? {
        defer { line.removeAll(keepingCapacity: true) }
        if line.isEmpty {
            defer {
                data = []
                hasData = false
                sawID = false
            }
            guard hasData else { return sawID ? id.map { .position($0) } : nil }
            return .event(EventStreamClient.Event(id: id, data: data.joined(separator: "\n")))
        }
        let text = String(decoding: line, as: UTF8.self)
        if text.hasPrefix(":") { return .comment(String(text.dropFirst()).trimmingPrefix(" ").description) }
        let field: Substring
        var value: Substring
        if let colon = text.firstIndex(of: ":") {
            field = text[..<colon]
            value = text[text.index(after: colon)...]
            if value.hasPrefix(" ") { value = value.dropFirst() }
        } else {
            field = text[...]
            value = ""
        }
        switch field {
        case "id":
            if !value.contains("\0") {
                id = String(value)
                sawID = true
            }
        case "data":
            data.append(String(value))
            hasData = true
        default: break
        }
        return nil
    }
}
