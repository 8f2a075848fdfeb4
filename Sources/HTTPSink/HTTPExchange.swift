import NIOCore

/// One request on one kept-alive connection, and what to do with its answer. A class: it
/// goes down the channel pipeline without being boxed.
final class HTTPExchange {
    /// The request head, encoded (`POST … HTTP/1.1`, the headers, the blank line).
    let head: ByteBuffer
    let body: ByteBuffer
    /// How long the answer may take, from the request's first byte to the answer's last.
    let timeout: TimeAmount
    private let completion: (Result<HTTPAnswer, ExchangeFailure>) -> Void
    /// Set once the completion ran: the handler and the write's promise can both see the
    /// end of an exchange (a write to a connection that closed meanwhile), and only the
    /// first one counts. Touched only on the connection's event loop.
    private var completed = false

    init(
        head: ByteBuffer, body: ByteBuffer, timeout: TimeAmount,
        completion: @escaping (Result<HTTPAnswer, ExchangeFailure>) -> Void
    ) {
        self.head = head
        self.body = body
        self.timeout = timeout
        self.completion = completion
    }

    /// Runs the completion, the first time only; on the connection's event loop.
    func complete(_ result: Result<HTTPAnswer, ExchangeFailure>) {
        guard !completed else { return }
        completed = true
        completion(result)
    }
}

/// What a receiver answered: the status, what the sink reads of the headers, and the start
/// of the body (for a dead letter).
struct HTTPAnswer: Sendable {
    /// How much of an answer's body is kept.
    static let keptBodyBytes = 512

    var status: Int
    var retryAfter: String?
    /// The first ``keptBodyBytes`` of the body.
    var bodyPrefix: [UInt8]
    /// False when the receiver closes the connection after this answer.
    var keepAlive: Bool
}

/// Why an exchange got no answer.
enum ExchangeFailure: Error, CustomStringConvertible {
    /// No answer within the timeout; the connection was closed.
    case timedOut(TimeAmount)
    /// The connection closed or failed before the answer was complete. `answered` tells
    /// whether any of the answer had arrived (a request on a reused connection that the
    /// receiver had already closed is safe to send again on a new one only when not).
    case connectionLost(String, answered: Bool)
    /// The answer is not HTTP/1.1 as the sink reads it.
    case malformed(String)

    var description: String {
        switch self {
        case .timedOut(let timeout): return "no answer within \(timeout.nanoseconds / 1_000_000) ms"
        case .connectionLost(let reason, _): return "connection lost: \(reason)"
        case .malformed(let reason): return "not an HTTP answer: \(reason)"
        }
    }
}

/// The sink's side of one connection: writes one ``HTTPExchange`` at a time (the pool never
/// writes a second before the first is answered: no pipelining) as raw bytes, and reads the
/// answer with a parser of its own: the status line, the few headers the sink needs, and the
/// body by `Content-Length`, chunks, or the connection's close. NIO's HTTP client codec
/// (llhttp, a header validator, an event per part) cost as much per request as the rest of
/// the bridge's path.
final class HTTPExchangeHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = HTTPExchange
    typealias OutboundOut = ByteBuffer

    /// The longest answer head read (status line and headers).
    static let maximumHeadBytes = 65_536

    enum Reading {
        /// Waiting for the status line and headers.
        case head
        /// `remaining` body bytes to come.
        case body(remaining: Int)
        /// A chunk-size line next.
        case chunkSize
        /// `remaining` bytes of a chunk, then its CRLF.
        case chunkData(remaining: Int)
        /// The CRLF after a chunk's data.
        case chunkEnd
        /// Trailer lines after the last chunk, up to a blank line.
        case trailers
        /// The body ends when the connection closes.
        case untilClose
    }

    private var exchange: HTTPExchange?
    private var answer: HTTPAnswer?
    private var reading = Reading.head
    private var pending: ByteBuffer?
    /// Whether any byte of the current answer arrived.
    private var answered = false
    private var timer: Scheduled<Void>?

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let exchange = unwrapOutboundIn(data)
        precondition(self.exchange == nil, "an exchange is already in flight on this connection")
        guard context.channel.isActive else {
            // Closed between the pool's look at it and this write: nothing was sent.
            exchange.complete(.failure(.connectionLost("closed before the request was sent", answered: false)))
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        self.exchange = exchange
        answer = nil
        answered = false
        reading = .head
        let timeout = exchange.timeout
        timer = context.eventLoop.scheduleTask(in: timeout) { [weak self] in
            self?.fail(.timedOut(timeout))
            context.close(promise: nil)
        }
        if exchange.body.readableBytes > 0 {
            context.write(wrapOutboundOut(exchange.head), promise: nil)
            context.write(wrapOutboundOut(exchange.body), promise: promise)
        } else {
            context.write(wrapOutboundOut(exchange.head), promise: promise)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard exchange != nil else {
            // Bytes no request asked for: the connection can't be trusted with the next one.
            context.close(promise: nil)
            return
        }
        answered = true
        if var buffered = pending {
            pending = nil
            buffered.writeBuffer(&bytes)
            bytes = buffered
        }
        let finished: HTTPAnswer?
        do {
            finished = try parse(&bytes)
        } catch {
            fail(error)
            context.close(promise: nil)
            return
        }
        guard var finished else {
            if bytes.readableBytes > 0 { pending = bytes }
            return
        }
        if bytes.readableBytes > 0 {
            // More than the answer (a receiver that pipelines or lies about lengths): the
            // answer counts, the connection is not trusted with another request.
            finished.keepAlive = false
        }
        finish(finished, context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        endAtClose(.connectionLost("closed by the receiver", answered: answered))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Over TLS a receiver that closes without close_notify shows up here first
        // (`uncleanShutdown`): an answer framed by the close is still complete.
        endAtClose(.connectionLost("\(error)", answered: answered))
        context.close(promise: nil)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        fail(.connectionLost("the connection was torn down", answered: answered))
    }

    /// The connection ended: an answer framed by the close is complete, anything else failed.
    private func endAtClose(_ failure: ExchangeFailure) {
        if case .untilClose = reading, let complete = answer {
            finish(complete, context: nil)
        } else {
            fail(failure)
        }
    }

    // MARK: - The answer

    /// Reads what `bytes` holds of the answer; returns it once it is complete (the bytes
    /// after it stay in `bytes`), nil while more is to come. The completion is the caller's
    /// to run, after this returns: it may hand the connection to the next request at once.
    private func parse(_ bytes: inout ByteBuffer) throws(ExchangeFailure) -> HTTPAnswer? {
        while true {
            switch reading {
            case .head:
                guard let end = Self.find(Self.blankLine, in: bytes) else {
                    if bytes.readableBytes > Self.maximumHeadBytes { throw .malformed("a head over 64 KiB") }
                    return nil
                }
                let head = bytes.readSlice(length: end + 4)!
                guard let parsed = try Self.head(head) else { continue }  // 1xx: the real answer follows
                answer = parsed.answer
                reading = parsed.reading
                if case .body(remaining: 0) = reading { return parsed.answer }
            case .body(let remaining):
                let count = min(remaining, bytes.readableBytes)
                keep(bytes.readSlice(length: count)!)
                if count == remaining { return answer }
                reading = .body(remaining: remaining - count)
                return nil
            case .chunkSize:
                guard let end = Self.find(Self.lineEnd, in: bytes) else {
                    if bytes.readableBytes > 1024 { throw .malformed("a chunk-size line over 1 KiB") }
                    return nil
                }
                let line = bytes.readSlice(length: end + 2)!
                let size = try Self.chunkSize(line)
                reading = size == 0 ? .trailers : .chunkData(remaining: size)
            case .chunkData(let remaining):
                let count = min(remaining, bytes.readableBytes)
                keep(bytes.readSlice(length: count)!)
                if count < remaining {
                    reading = .chunkData(remaining: remaining - count)
                    return nil
                }
                reading = .chunkEnd
            case .chunkEnd:
                guard bytes.readableBytes >= 2 else { return nil }
                guard bytes.readBytes(length: 2) == [0x0D, 0x0A] else { throw .malformed("a chunk not followed by CRLF") }
                reading = .chunkSize
            case .trailers:
                guard let end = Self.find(Self.lineEnd, in: bytes) else {
                    if bytes.readableBytes > Self.maximumHeadBytes { throw .malformed("trailers over 64 KiB") }
                    return nil
                }
                bytes.moveReaderIndex(forwardBy: end + 2)
                if end == 0 { return answer }
            case .untilClose:
                keep(bytes.readSlice(length: bytes.readableBytes)!)
                return nil
            }
        }
    }

    /// Keeps the start of the body, up to ``HTTPAnswer/keptBodyBytes``.
    private func keep(_ slice: ByteBuffer) {
        guard var partial = answer else { return }
        let room = HTTPAnswer.keptBodyBytes - partial.bodyPrefix.count
        guard room > 0 else { return }
        answer = nil  // appended in place, not copied
        partial.bodyPrefix += slice.getBytes(at: slice.readerIndex, length: min(room, slice.readableBytes)) ?? []
        answer = partial
    }

    private func finish(_ complete: HTTPAnswer, context: ChannelHandlerContext?) {
        timer?.cancel()
        timer = nil
        let exchange = self.exchange
        self.exchange = nil
        answer = nil
        reading = .head
        pending = nil
        if !complete.keepAlive { context?.close(promise: nil) }
        exchange?.complete(.success(complete))
    }

    private func fail(_ failure: ExchangeFailure) {
        timer?.cancel()
        timer = nil
        guard let exchange else { return }
        self.exchange = nil
        answer = nil
        pending = nil
        exchange.complete(.failure(failure))
    }

    private static let blankLine: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A]
    private static let lineEnd: [UInt8] = [0x0D, 0x0A]

    /// The offset of `needle` in `buffer`'s readable bytes.
    static func find(_ needle: [UInt8], in buffer: ByteBuffer) -> Int? {
        buffer.withUnsafeReadableBytes { bytes -> Int? in
            guard bytes.count >= needle.count else { return nil }
            var index = 0
            let last = bytes.count - needle.count
            while index <= last {
                if bytes[index] == needle[0] {
                    var matched = 1
                    while matched < needle.count && bytes[index + matched] == needle[matched] { matched += 1 }
                    if matched == needle.count { return index }
                }
                index += 1
            }
            return nil
        }
    }

    /// The status line and headers: the answer so far and how its body is framed; nil for
    /// an interim (1xx) answer, which is skipped.
    static func head(_ head: ByteBuffer) throws(ExchangeFailure) -> (answer: HTTPAnswer, reading: Reading)? {
        let text = String(decoding: head.readableBytesView, as: UTF8.self)
        // CRLF is one Character.
        var lines = text.split(separator: "\r\n", omittingEmptySubsequences: true)[...]
        guard let statusLine = lines.popFirst() else { throw .malformed("no status line") }
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0] == "HTTP/1.1" || parts[0] == "HTTP/1.0", parts[1].utf8.count == 3,
            let status = Int(parts[1]), (100...999).contains(status)
        else { throw .malformed("status line \(statusLine.prefix(60).debugDescription)") }
        if (100..<200).contains(status) && status != 101 { return nil }
        var contentLength: Int?
        var chunked = false
        var connection: Substring?
        var retryAfter: String?
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else {
                throw .malformed("header line \(line.prefix(60).debugDescription)")
            }
            let name = line[..<colon]
            let value = line[line.index(after: colon)...].trimmingCharacters(in: " \t")
            switch name.lowercased() {
            case "content-length":
                guard let length = Int(value), length >= 0, contentLength == nil || contentLength == length else {
                    throw .malformed("Content-Length \(value.prefix(30).debugDescription)")
                }
                contentLength = length
            case "transfer-encoding":
                chunked = value.lowercased().hasSuffix("chunked")
                if !chunked { throw .malformed("Transfer-Encoding \(value.prefix(30).debugDescription)") }
            case "connection": connection = Substring(value.lowercased())
            case "retry-after": retryAfter = String(value)
            default: break
            }
        }
        let http10 = parts[0] == "HTTP/1.0"
        var keepAlive = http10 ? connection?.contains("keep-alive") == true : connection?.contains("close") != true
        let reading: Reading
        if status == 204 || status == 304 {
            reading = .body(remaining: 0)
        } else if chunked {
            reading = .chunkSize
        } else if let contentLength {
            reading = .body(remaining: contentLength)
        } else {
            reading = .untilClose
            keepAlive = false
        }
        return (HTTPAnswer(status: status, retryAfter: retryAfter, bodyPrefix: [], keepAlive: keepAlive), reading)
    }

    /// A chunk-size line's size (hex, extensions after `;` ignored).
    static func chunkSize(_ line: ByteBuffer) throws(ExchangeFailure) -> Int {
        var size = 0
        var digits = 0
        for byte in line.readableBytesView {
            let value: Int
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = Int(byte - 0x30)
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = Int(byte - 0x57)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): value = Int(byte - 0x37)
            default:
                guard digits > 0 else { throw .malformed("a chunk-size line without a size") }
                return size
            }
            guard digits < 15 else { throw .malformed("a chunk over 2^60 bytes") }
            size = size * 16 + value
            digits += 1
        }
        throw .malformed("a chunk-size line without CRLF")
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: String) -> Substring {
        var result = self
        while let first = result.first, set.contains(first) { result = result.dropFirst() }
        while let last = result.last, set.contains(last) { result = result.dropLast() }
        return result
    }
}
