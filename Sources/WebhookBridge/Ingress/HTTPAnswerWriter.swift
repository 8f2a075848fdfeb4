import NIOCore
import NIOHTTP1

/// Writes an HTTP/1.1 answer as one buffer: status line, headers, body. Every answer of the
/// bridge is one of its own (headers it wrote, a `Content-Length`), so no framing checks and
/// no separate head, body and end writes as with NIO's typed response encoder.
enum HTTPAnswerWriter {
    /// Writes the answer into `buffer`, emptied first: a connection passes the buffer of its
    /// previous answer, whose storage is reused once NIO has written and released it.
    static func encode(
        _ answer: BridgeAnswer, version: HTTPVersion, keepAlive: Bool, withBody: Bool, into buffer: inout ByteBuffer
    ) {
        buffer.clear(minimumCapacity: 160 + answer.body.count)
        buffer.writeStaticString(version.minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ")
        buffer.writeString(String(answer.status.code))
        buffer.writeStaticString(" ")
        buffer.writeString(answer.status.reasonPhrase)
        buffer.writeStaticString("\r\n")
        var hasContentType = false
        for (name, value) in answer.headers {
            if !hasContentType, name.utf8.count == 12, name.lowercased() == "content-type" { hasContentType = true }
            buffer.writeString(name)
            buffer.writeStaticString(": ")
            buffer.writeString(value)
            buffer.writeStaticString("\r\n")
        }
        if !answer.body.isEmpty, !hasContentType { buffer.writeStaticString("Content-Type: application/json\r\n") }
        buffer.writeStaticString("Content-Length: ")
        buffer.writeString(String(answer.body.count))
        if !keepAlive {
            buffer.writeStaticString("\r\nConnection: close")
        } else if version.minor == 0 {
            // HTTP/1.0 closes by default: a kept connection must be said so.
            buffer.writeStaticString("\r\nConnection: keep-alive")
        }
        buffer.writeStaticString("\r\n\r\n")
        if withBody { buffer.writeBytes(answer.body) }
    }

    /// `100 Continue`: the body may come.
    static func continueAnswer(allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 25)
        buffer.writeStaticString("HTTP/1.1 100 Continue\r\n\r\n")
        return buffer
    }
}
