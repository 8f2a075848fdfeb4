import Logging
import Metrics
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization
import WebhookCore
import WebhookCrypto
import WebhookEncoding

/// Posts events to a receiver over HTTP(S) (SPEC section 12): the CloudEvents HTTP binding
/// (binary or structured), signed the Standard Webhooks way, over kept-alive connections
/// (at most `maxInFlight` requests at once), behind a circuit breaker.
///
/// A 2xx is delivered. 408, 429, 5xx, a timeout or a connection failure is transient (the
/// bridge spools the event, and the spool believes `Retry-After`); any other answer is
/// permanent: the event goes to the dead letters with the status and the start of the answer.
public final class HTTPSink: CallbackDeliveringSink {
    public let name: String
    let settings: HTTPSinkSettings
    private let pool: HTTPConnectionPool
    let breaker: CircuitBreaker
    private let logger: Logger
    private let metrics: HTTPSinkMetrics
    private let signers: [PreparedHMAC]
    /// `Host`, `User-Agent` and the configured headers, encoded once: the same for every
    /// request.
    private let fixedHeaders: [UInt8]
    /// Until when the receiver asked to be left alone (its last `Retry-After`): deliveries
    /// before then fail at once, direct ones spooled, the spool waiting out the rest.
    private let quietUntil = Mutex<NIODeadline?>(nil)

    /// Retry-After values over this are cut to it: a receiver can pause its sink for an hour,
    /// not for days.
    static let longestRetryAfter: Duration = .seconds(3600)

    init(name: String, settings: HTTPSinkSettings, tls: NIOSSLContext?, logger: Logger) {
        self.name = name
        self.settings = settings
        var named = logger
        named[metadataKey: "sink.name"] = "\(name)"
        self.logger = named
        let logger = named
        self.pool = HTTPConnectionPool(
            endpoint: .init(host: settings.host, port: settings.port, tls: tls), maximum: settings.maxInFlight,
            connectTimeout: .milliseconds(Int64(settings.timeoutMs)), group: MultiThreadedEventLoopGroup.singleton)
        let metrics = HTTPSinkMetrics(sink: name)
        self.metrics = metrics
        self.breaker = CircuitBreaker(threshold: settings.breakerFailures, open: .milliseconds(Int64(settings.breakerOpenMs))) {
            open in
            metrics.breakerOpen.record(open ? 1 : 0)
            if open {
                logger.warning(
                    "circuit open: events go to the spool until a probe succeeds",
                    metadata: ["sink.breaker.failures": "\(settings.breakerFailures)"])
            } else {
                logger.notice("circuit closed: the receiver answers again")
            }
        }
        self.signers = settings.signingKeys.map { PreparedHMAC(key: $0, algorithm: .sha256) }
        var fixed = [("Host", HTTPPoster.hostHeader(host: settings.host, port: settings.port, secure: settings.secure))]
        fixed.append(("User-Agent", "webhook-bridge"))
        fixed += settings.headers.map { ($0.name, $0.value) }
        self.fixedHeaders = Array(fixed.map { "\($0.0): \($0.1)\r\n" }.joined().utf8)
        metrics.breakerOpen.record(0)
    }

    public var isReady: Bool { !breaker.isOpen }
    public var unreadyReason: String? { breaker.isOpen ? "circuit open" : nil }
    public var ownTimeoutMs: Int? { settings.timeoutMs }

    public func deliver(_ event: WebhookEvent) async throws -> DeliveryReceipt {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let result = await withCheckedContinuation { continuation in
            deliver(event, on: loop) { continuation.resume(returning: $0) }
        }
        return try result.get()
    }

    public func deliver(
        _ event: WebhookEvent, on eventLoop: any EventLoop,
        completion: @escaping @Sendable (Result<DeliveryReceipt, SinkError>) -> Void
    ) {
        if let refusal = refusalNow() {
            if eventLoop.inEventLoop {
                completion(.failure(refusal))
            } else {
                eventLoop.execute { completion(.failure(refusal)) }
            }
            return
        }
        let (target, request) = self.request(for: event)
        let started = NIODeadline.now()
        let place = settings.host + target
        pool.execute(request, on: eventLoop) { [self] result in
            metrics.duration.recordNanoseconds((NIODeadline.now() - started).nanoseconds)
            switch result {
            case .success(let answer):
                metrics.count(status: answer.status)
                completion(classify(answer, place: place))
            case .failure(let error):
                metrics.count(status: nil)
                breaker.recordFailure()
                completion(.failure(.unavailable(sink: name, reason: "\(place): \(error)")))
            }
        }
    }

    /// Why a delivery fails now without a request: the receiver's `Retry-After` has not
    /// passed, or the breaker is open; nil when it may go.
    private func refusalNow() -> SinkError? {
        let now = NIODeadline.now()
        let quiet = quietUntil.withLock { until -> TimeAmount? in
            guard let deadline = until else { return nil }
            if deadline <= now {
                until = nil
                return nil
            }
            return deadline - now
        }
        if let quiet {
            let milliseconds = quiet.nanoseconds / 1_000_000
            return .unavailable(
                sink: name, reason: "the receiver asked for no request for \(milliseconds) ms more (Retry-After)",
                retryAfter: .nanoseconds(quiet.nanoseconds))
        }
        if breaker.admit(now: now) == .refuse {
            return .unavailable(
                sink: name, reason: "circuit open: the receiver failed \(settings.breakerFailures) times in a row")
        }
        return nil
    }

    /// The answer as a delivery: 2xx delivered; 408, 429 and 5xx transient; the rest
    /// permanent. Every answer but a transient one tells the breaker the receiver is up.
    func classify(_ answer: HTTPAnswer, place: String) -> Result<DeliveryReceipt, SinkError> {
        // The answer's start as text, made only for a failure (not for every 2xx with a body).
        var text: String { String(decoding: answer.bodyPrefix, as: UTF8.self) }
        switch answer.status {
        case 200..<300:
            breaker.recordAnswer()
            return .success(DeliveryReceipt(sink: name, place: place, offset: .status(answer.status)))
        case 408, 429, 500..<600:
            breaker.recordFailure()
            let retryAfter = answer.retryAfter.flatMap { Self.retryAfter($0, now: Timestamp.now()) }
            if let retryAfter {
                let components = retryAfter.components
                let wait = TimeAmount.nanoseconds(components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000)
                let until = NIODeadline.now() + wait
                quietUntil.withLock { $0 = max($0 ?? until, until) }
            }
            return .failure(
                .unavailable(
                    sink: name, reason: "\(place): HTTP \(answer.status)\(text.isEmpty ? "" : ": " + text)",
                    retryAfter: retryAfter))
        default:
            breaker.recordAnswer()
            let text = text
            return .failure(
                .rejected(
                    sink: name, reason: "\(place): HTTP \(answer.status)\(text.isEmpty ? "" : ": " + text)",
                    details: [("deadletterstatus", String(answer.status)), ("deadletteranswer", text)]))
        }
    }

    /// The request for `event`: its target rendered, its body and headers by `mode`, signed;
    /// the head encoded straight into bytes.
    func request(for event: WebhookEvent, now: Timestamp = .now()) -> (target: String, HTTPConnectionPool.Request) {
        let target = settings.target.render(event, sanitizer: .urlComponent)
        var head = ByteBufferAllocator().buffer(capacity: 512 + fixedHeaders.count)
        head.writeStaticString("POST ")
        head.writeString(target)
        head.writeStaticString(" HTTP/1.1\r\n")
        head.writeBytes(fixedHeaders)
        func header(_ name: String, _ value: String) {
            head.writeString(name)
            head.writeStaticString(": ")
            head.writeString(value)
            head.writeStaticString("\r\n")
        }
        let body: ByteBuffer
        switch settings.mode {
        case .binary:
            body = event.data
            if let contentType = event.dataContentType { header("Content-Type", Self.safe(contentType)) }
            event.forEachAttribute { name, value in
                guard name != "datacontenttype" else { return }
                head.writeStaticString("ce-")
                header(name, Self.headerValue(value))
            }
        case .structured:
            var line = ByteBufferAllocator().buffer(capacity: event.data.readableBytes + 384)
            CloudEventJSON.appendLine(event, to: &line)
            line.moveWriterIndex(to: line.writerIndex - 1)  // the line's newline
            body = line
            head.writeStaticString("Content-Type: application/cloudevents+json\r\n")
        }
        header("Content-Length", String(body.readableBytes))
        if !signers.isEmpty {
            // An id is never a control character (EventID), and the head is written as bytes
            // with no check on the way out: one that holds one goes percent-encoded, signed as sent.
            let id = Self.safe(event.id)
            let timestamp = String(now.millisecondsSince1970 / 1000)
            let prefix = "\(id).\(timestamp)."
            header("webhook-id", id)
            header("webhook-timestamp", timestamp)
            head.writeStaticString("webhook-signature: ")
            for (index, signer) in signers.enumerated() {
                if index > 0 { head.writeStaticString(" ") }
                let code = signer.authenticationCode { context in
                    context.update(prefix)
                    body.withUnsafeReadableBytes { context.update($0) }
                }
                head.writeStaticString("v1,")
                head.writeString(Base64.encode(code))
            }
            head.writeStaticString("\r\n")
        }
        head.writeStaticString("\r\n")
        return (target, .init(head: head, body: body, timeout: .milliseconds(Int64(settings.timeoutMs))))
    }

    /// `value` as it is, unless it holds a control character (a line break would end the
    /// header): then percent-encoded like an attribute.
    static func safe(_ value: String) -> String {
        value.utf8.contains { $0 < 0x20 || $0 == 0x7F } ? headerValue(value) : value
    }

    /// A CloudEvents attribute as an HTTP header value: a space, `"`, `%`, and every byte
    /// outside printable ASCII percent-encoded (the HTTP binding's rule).
    static func headerValue(_ value: String) -> String {
        if value.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != 0x22 && $0 != 0x25 }) { return value }
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for byte in value.utf8 {
            if byte > 0x20 && byte < 0x7F && byte != 0x22 && byte != 0x25 {
                out.append(byte)
            } else {
                out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `Retry-After` as a wait: delta-seconds, or an HTTP date (IMF-fixdate); nil when it is
    /// neither. At most ``longestRetryAfter``; a date in the past is no wait.
    static func retryAfter(_ text: String, now: Timestamp) -> Duration? {
        let trimmed = text.trimmingSpaces
        if let seconds = Int(trimmed), seconds >= 0 { return min(.seconds(seconds), longestRetryAfter) }
        guard let date = HTTPDate.parse(trimmed) else { return nil }
        let milliseconds = max(0, date.millisecondsSince1970 - now.millisecondsSince1970)
        return min(.milliseconds(milliseconds), longestRetryAfter)
    }

    /// Waits for shutdown; then closes the idle connections (requests in flight finish).
    public func run() async throws {
        try? await gracefulShutdown()
        pool.shutdown()
    }
}

/// `webhook.sink.http.requests.total` by status class (`2xx` ... `5xx`, `none` for no
/// answer), `webhook.sink.http.request.duration.seconds`, and `webhook.sink.breaker.open`
/// (1 while open), all by `sink`.
final class HTTPSinkMetrics: Sendable {
    let breakerOpen: Gauge
    let duration: Timer
    private let classes: [Counter]
    private let none: Counter

    init(sink: String) {
        breakerOpen = Gauge(label: "webhook.sink.breaker.open", dimensions: [("sink", sink)])
        duration = Timer(label: "webhook.sink.http.request.duration.seconds", dimensions: [("sink", sink)])
        classes = (1...5).map {
            Counter(label: "webhook.sink.http.requests.total", dimensions: [("sink", sink), ("class", "\($0)xx")])
        }
        none = Counter(label: "webhook.sink.http.requests.total", dimensions: [("sink", sink), ("class", "none")])
    }

    func count(status: Int?) {
        guard let status, (100..<600).contains(status) else { return none.increment() }
        classes[status / 100 - 1].increment()
    }
}

/// HTTP dates (RFC 9110's IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`), as `Retry-After`
/// carries them.
enum HTTPDate {
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func parse<S: StringProtocol>(_ text: S) -> Timestamp? {
        let parts = text.split(separator: " ")
        guard parts.count == 6, parts[0].hasSuffix(","), parts[5] == "GMT", parts[1].count == 2, parts[3].count == 4,
            parts[4].count == 8, let month = months.firstIndex(of: String(parts[2]))
        else { return nil }
        let monthText = month + 1 < 10 ? "0\(month + 1)" : "\(month + 1)"
        return Timestamp(rfc3339: "\(parts[3])-\(monthText)-\(parts[1])T\(parts[4])Z")
    }
}
