import Logging
import NIOHTTP1
import Synchronization
import WebhookCore

/// The request path's log lines that anyone could multiply, throttled: rejections and
/// handshakes per source and cause (2,000 unsigned requests in 4 s were 2,000 lines), and
/// failures per kind (during an outage every request fails the same way). Each line that is
/// written says how many were left out since (`log.suppressed`).
final class PipelineLog: Sendable {
    let logger: Logger
    private let failures = LogThrottle()
    private let rejections = LogThrottle()

    init(logger: Logger) { self.logger = logger }

    /// A request's log context (its lines name the source and the request).
    func request(source: String, headers: HTTPHeaders) -> RequestLogger {
        RequestLogger(logger: logger, source: source, headers: headers, number: Self.nextRequestNumber())
    }

    /// "webhook rejected" at info, one line per source and cause per interval.
    func rejection(source: String, headers: HTTPHeaders, reason: String, detail: String) {
        guard let suppressed = rejections.admit("\(source) \(reason)") else { return }
        var metadata: Logger.Metadata = ["webhook.reason": "\(reason)", "webhook.detail": "\(detail)"]
        if suppressed > 0 { metadata["log.suppressed"] = "\(suppressed)" }
        request(source: source, headers: headers).info("webhook rejected", metadata: metadata)
    }

    /// "handshake answered", throttled as rejections are: some handshakes are unsigned.
    func handshake(source: String, headers: HTTPHeaders, metadata: Logger.Metadata) {
        guard let suppressed = rejections.admit("\(source) handshake") else { return }
        var metadata = metadata
        if suppressed > 0 { metadata["log.suppressed"] = "\(suppressed)" }
        request(source: source, headers: headers).info("handshake answered", metadata: metadata)
    }

    /// `message` for a failure of kind `key`, once per interval.
    func failure(
        _ key: String, level: Logger.Level, _ message: Logger.Message, metadata: Logger.Metadata, logger: RequestLogger
    ) {
        guard let suppressed = failures.admit(key) else { return }
        var metadata = metadata
        if suppressed > 0 { metadata["log.suppressed"] = "\(suppressed)" }
        logger.log(level: level, message, metadata: metadata)
    }

    private static let requestCounter = Atomic<UInt64>(0)

    private static func nextRequestNumber() -> UInt64 { requestCounter.add(1, ordering: .relaxed).oldValue }
}

/// A request's log context. It becomes metadata only when a line is logged: setting
/// `Logger` metadata for every request cost 4% of the CPU under load, for lines that are
/// rarely written.
struct RequestLogger: Sendable {
    let logger: Logger
    let source: String
    let headers: HTTPHeaders
    /// Numbers the request within the process, for its id.
    let number: UInt64
    var eventID: String?

    /// A random prefix per process, so request ids of two processes don't collide.
    private static let processPrefix = String(UInt32.random(in: 0...UInt32.max), radix: 36)

    /// The provider's request id when it sends one, so a log line can be matched with the
    /// provider's delivery log (its first 128 bytes); else one of ours.
    var requestID: String {
        headers.first(name: "X-Request-Id").map { LoggedValue.bounded($0, bytes: 128) } ?? "\(Self.processPrefix)-\(number)"
    }

    /// `metadata` is only built when the line is written (a debug line on every request
    /// must cost nothing at the usual levels).
    func log(
        level: Logger.Level, _ message: @autoclosure () -> Logger.Message,
        metadata: @autoclosure () -> Logger.Metadata = [:],
        file: String = #fileID, function: String = #function, line: UInt = #line
    ) {
        logger.log(level: level, message(), metadata: withContext(metadata()), file: file, function: function, line: line)
    }

    /// The line's metadata with the request's context; every value bounded (see
    /// ``LoggedValue``), since most of them hold something a request chose.
    private func withContext(_ metadata: Logger.Metadata) -> Logger.Metadata {
        var all = metadata.mapValues { LoggedValue.bounded($0) }
        all["webhook.source"] = "\(source)"
        all["http.request_id"] = "\(requestID)"
        if let eventID { all["webhook.id"] = "\(eventID)" }
        return all
    }

    func info(
        _ message: @autoclosure () -> Logger.Message, metadata: @autoclosure () -> Logger.Metadata = [:],
        file: String = #fileID, function: String = #function, line: UInt = #line
    ) {
        log(level: .info, message(), metadata: metadata(), file: file, function: function, line: line)
    }

    func warning(
        _ message: @autoclosure () -> Logger.Message, metadata: @autoclosure () -> Logger.Metadata = [:],
        file: String = #fileID, function: String = #function, line: UInt = #line
    ) {
        log(level: .warning, message(), metadata: metadata(), file: file, function: function, line: line)
    }

    func error(
        _ message: @autoclosure () -> Logger.Message, metadata: @autoclosure () -> Logger.Metadata = [:],
        file: String = #fileID, function: String = #function, line: UInt = #line
    ) {
        log(level: .error, message(), metadata: metadata(), file: file, function: function, line: line)
    }
}
