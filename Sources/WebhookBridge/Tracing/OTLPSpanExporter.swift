import Foundation
import HTTPSink
import Logging
import Metrics
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization

/// Exports finished spans over OTLP/HTTP (`POST /v1/traces`, protobuf or JSON bodies) in
/// batches, as OpenTelemetry's batch span processor does: spans wait in a bounded queue (a
/// span that finds it full is dropped and counted); a batch leaves every `scheduleDelay`, or
/// as soon as `maxExportBatchSize` spans wait; one export at a time; what is queued at
/// shutdown is sent before the service returns. A collector that is down or refuses a batch
/// costs that batch (one retry for the answers OTLP calls retryable), never a request: a
/// span's end only appends to the queue, and wakes the exporter only when a batch is full.
final class OTLPSpanExporter: Service, Sendable {
    struct Settings: Sendable {
        var host: String
        var port: Int
        var path: String
        /// Made once, for `https`.
        var sslContext: NIOSSLContext?
        var headers: [(String, String)] = []
        var json = false
        /// `OTEL_EXPORTER_OTLP_TIMEOUT`: one export's connection, then its answer.
        var timeout: TimeAmount = .seconds(10)
        /// `OTEL_BSP_EXPORT_TIMEOUT`: the whole flush at shutdown.
        var shutdownTimeout: TimeAmount = .seconds(30)
        /// `OTEL_BSP_SCHEDULE_DELAY`.
        var scheduleDelay: TimeAmount = .seconds(5)
        /// `OTEL_BSP_MAX_QUEUE_SIZE`.
        var maxQueueSize = 2048
        /// `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`.
        var maxExportBatchSize = 512
        /// The resource's attributes (`service.name`, `telemetry.sdk.*`, `OTEL_RESOURCE_ATTRIBUTES`).
        var resource: [(String, SpanValue)] = []
    }

    /// `webhook_tracing_spans_total` by `result`: spans the collector took (`exported`) and
    /// spans lost (`dropped`: the queue was full, or their export failed).
    struct Counters: Sendable {
        var exported: Counter
        var dropped: Counter

        static func standard() -> Counters {
            Counters(
                exported: Counter(label: "webhook.tracing.spans.total", dimensions: [("result", "exported")]),
                dropped: Counter(label: "webhook.tracing.spans.total", dimensions: [("result", "dropped")]))
        }
    }

    let settings: Settings
    /// Made when the service starts (after the metrics backend is in place).
    private let makeCounters: @Sendable () -> Counters
    private let encoding: OTLPEncoding
    private let logger: Logger
    private let group: any EventLoopGroup
    /// One kept-alive connection to the collector.
    private let poster: HTTPPoster

    private struct State {
        var queue: [FinishedSpan] = []
        /// The exporter's task, waiting for a batch or its delay.
        var waiter: CheckedContinuation<Void, Never>?
        /// Which wait a timer belongs to (a late timer never ends a later wait).
        var generation = 0
        var stopping = false
        /// Set by the stop: past it, what is left is dropped.
        var deadline: NIODeadline?
        /// Spans dropped since the last report: the queue was full, or their export failed.
        var dropped = 0
        /// Spans dropped and not yet counted in the metric.
        var uncounted = 0
        var failing = false
        var lastReport: ContinuousClock.Instant?
    }
    private let state = Mutex(State())

    init(
        settings: Settings, logger: Logger, counters: @escaping @Sendable () -> Counters = Counters.standard,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.settings = settings
        self.makeCounters = counters
        self.encoding = OTLPEncoding(
            resource: settings.resource, scopeName: "webhook-bridge", scopeVersion: ProcessMetrics.version)
        self.logger = logger
        self.group = group
        self.poster = HTTPPoster(
            host: settings.host, port: settings.port, tls: settings.sslContext, headers: settings.headers,
            userAgent: "webhook-bridge/\(ProcessMetrics.version)", connectTimeout: settings.timeout, group: group)
    }

    /// Queues a finished span (called as each span ends).
    func add(_ span: FinishedSpan) {
        let maxQueue = settings.maxQueueSize
        let batch = settings.maxExportBatchSize
        let wake = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard state.queue.count < maxQueue, !state.stopping else {
                state.dropped += 1
                state.uncounted += 1
                return nil
            }
            state.queue.append(span)
            guard state.queue.count >= batch else { return nil }
            defer { state.waiter = nil }
            return state.waiter
        }
        wake?.resume()
    }

    /// Exports until a graceful shutdown (or cancellation), then sends what is queued
    /// within `shutdownTimeout`.
    func run() async throws {
        let counters = makeCounters()
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                while true {
                    await waitForBatch()
                    var spans: [FinishedSpan] = []
                    let last = state.withLock { state in
                        swap(&spans, &state.queue)
                        return state.stopping
                    }
                    var start = 0
                    while start < spans.count {
                        let deadline = state.withLock { $0.deadline }
                        if let deadline, deadline <= .now() { break }
                        let end = min(start + settings.maxExportBatchSize, spans.count)
                        let sent = await export(spans[start..<end], deadline: deadline, counters: counters)
                        start = end
                        // Stopping, and the collector takes nothing: the rest is not tried
                        // batch by batch, which would hold up the shutdown.
                        if !sent, deadline != nil { break }
                    }
                    let lost = spans.count - start
                    let uncounted = state.withLock { state in
                        state.dropped += lost
                        state.uncounted += lost
                        defer { state.uncounted = 0 }
                        return state.uncounted
                    }
                    if uncounted > 0 { counters.dropped.increment(by: uncounted) }
                    if last { break }
                }
            } onGracefulShutdown: {
                self.stop()
            }
        } onCancel: {
            self.stop()
        }
        poster.shutdown()
        let uncounted = state.withLock { state in
            defer { state.uncounted = 0 }
            return state.uncounted
        }
        if uncounted > 0 { counters.dropped.increment(by: uncounted) }
        report(force: true)
    }

    /// Ends the wait; the spans queued by then are the last exported.
    private func stop() {
        let timeout = settings.shutdownTimeout
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if !state.stopping { state.deadline = .now() + timeout }
            state.stopping = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// Returns once a batch is full, the delay has passed, or the service stops.
    private func waitForBatch() async {
        let delay = settings.scheduleDelay
        let batch = settings.maxExportBatchSize
        let loop = group.next()
        var timer: Scheduled<Void>?
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let generation = state.withLock { state -> Int? in
                if state.stopping || state.queue.count >= batch { return nil }
                state.generation += 1
                state.waiter = continuation
                return state.generation
            }
            guard let generation else { return continuation.resume() }
            timer = loop.scheduleTask(in: delay) { [self] in
                let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                    guard state.generation == generation else { return nil }
                    defer { state.waiter = nil }
                    return state.waiter
                }
                waiter?.resume()
            }
        }
        timer?.cancel()
    }

    /// Sends one batch; a failure drops it (after one retry for a retryable one, unless the
    /// service is stopping). Returns whether the collector took it.
    private func export(_ batch: ArraySlice<FinishedSpan>, deadline: NIODeadline?, counters: Counters) async -> Bool {
        guard !batch.isEmpty else { return true }
        let body = ByteBuffer(bytes: settings.json ? encoding.json(batch) : encoding.protobuf(batch))
        let contentType = settings.json ? "application/json" : "application/x-protobuf"
        var failure: String?
        for attempt in 0..<2 {
            if attempt > 0 {
                guard !state.withLock({ $0.stopping }) else { break }
                try? await Task.sleep(for: .seconds(1))
            }
            var timeout = settings.timeout
            if let deadline { timeout = min(timeout, max(deadline - .now(), .milliseconds(1))) }
            do {
                let answer = try await poster.post(
                    path: settings.path, contentType: contentType, body: body, timeout: timeout)
                let status = answer.status
                if (200..<300).contains(status) {
                    failure = nil
                    break
                }
                failure = "the collector answered \(status)"
                // OTLP/HTTP: 429, 502, 503 and 504 may be retried; any other answer is final.
                guard [429, 502, 503, 504].contains(status) else { break }
            } catch {
                failure = "\(error)"
            }
        }
        state.withLock { state in
            if failure != nil { state.dropped += batch.count }
            state.failing = failure != nil
        }
        if failure == nil {
            counters.exported.increment(by: batch.count)
        } else {
            counters.dropped.increment(by: batch.count)
        }
        if let failure {
            report(reason: failure)
        } else {
            report()
        }
        return failure == nil
    }

    /// Logs dropped spans: at once when they start, then at most once a minute.
    private func report(reason: String? = nil, force: Bool = false) {
        let now = ContinuousClock.now
        let due = state.withLock { state -> (dropped: Int, failing: Bool)? in
            guard state.dropped > 0 else { return nil }
            if !force, let last = state.lastReport, now - last < .seconds(60) { return nil }
            defer {
                state.dropped = 0
                state.lastReport = now
            }
            return (state.dropped, state.failing)
        }
        guard let due else { return }
        var metadata: Logger.Metadata = ["tracing.dropped_spans": "\(due.dropped)"]
        if let reason { metadata["tracing.error"] = "\(reason)" }
        logger.warning(
            "spans dropped: \(due.failing ? "the collector did not take them" : "the export queue was full")",
            metadata: metadata)
    }
}

extension OTLPSpanExporter.Settings {
    /// The longest delay or timeout taken from a variable: a day, in milliseconds.
    static let longestMilliseconds: Int64 = 86_400_000

    /// `OTEL_EXPORTER_OTLP_TRACES_<name>`, else `OTEL_EXPORTER_OTLP_<name>`, with the name
    /// of the one set (an empty value is unset, as OpenTelemetry's configuration says).
    static func variable(_ name: String, in environment: [String: String]) -> (name: String, value: String)? {
        for full in ["OTEL_EXPORTER_OTLP_TRACES_" + name, "OTEL_EXPORTER_OTLP_" + name] {
            if let value = environment[full], !value.trimmingCharacters(in: .whitespaces).isEmpty { return (full, value) }
        }
        return nil
    }

    /// The settings for `config`, with the `OTEL_*` variables of OpenTelemetry's SDK
    /// configuration that apply to an OTLP/HTTP span exporter over it. A value the bridge
    /// can't use is an error that names its variable.
    init(config: BridgeConfig.Tracing, environment: [String: String]) throws {
        func milliseconds(_ name: String, _ text: String) throws -> TimeAmount {
            guard let value = Int64(text.trimmingCharacters(in: .whitespaces)), (1...Self.longestMilliseconds).contains(value)
            else {
                throw ConfigurationFailure(
                    "\(name)=\(text) is not a whole number of milliseconds from 1 to \(Self.longestMilliseconds)")
            }
            return .milliseconds(value)
        }
        func count(_ name: String) throws -> Int? {
            guard let text = environment[name], !text.isEmpty else { return nil }
            guard let value = Int(text.trimmingCharacters(in: .whitespaces)), (1...1_000_000).contains(value) else {
                throw ConfigurationFailure("\(name)=\(text) is not a whole number from 1 to 1000000")
            }
            return value
        }
        let tracesURL = BridgeConfig.Tracing.httpTracesURL
        var url = tracesURL(config.otlpEndpoint)
        var origin = "tracing.otlpEndpoint"
        if let traces = environment["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"], !traces.isEmpty {
            (url, origin) = (traces, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        } else if let base = environment["OTEL_EXPORTER_OTLP_ENDPOINT"], !base.isEmpty {
            (url, origin) = (tracesURL(base), "OTEL_EXPORTER_OTLP_ENDPOINT")
        }
        guard let parts = URLComponents(string: url), let scheme = parts.scheme?.lowercased(),
            scheme == "http" || scheme == "https", let host = parts.host, !host.isEmpty
        else { throw ConfigurationFailure("\(origin): \(url) is not an http:// or https:// URL") }
        let secure = scheme == "https"
        self.init(
            host: host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host, port: parts.port ?? (secure ? 443 : 80),
            path: (parts.percentEncodedPath.isEmpty ? "/" : parts.percentEncodedPath)
                + (parts.percentEncodedQuery.map { "?" + $0 } ?? ""))

        if secure {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.minimumTLSVersion = .tlsv12
            func load<T>(_ name: String, _ read: (String) throws -> T) throws -> T? {
                guard let (variable, file) = Self.variable(name, in: environment) else { return nil }
                do {
                    return try read(file)
                } catch {
                    throw ConfigurationFailure("\(variable)=\(file): \(error)")
                }
            }
            if let roots = try load("CERTIFICATE", { try NIOSSLCertificate.fromPEMFile($0) }) {
                tls.trustRoots = .certificates(roots)
            }
            if let chain = try load("CLIENT_CERTIFICATE", { try NIOSSLCertificate.fromPEMFile($0) }) {
                tls.certificateChain = chain.map { .certificate($0) }
            }
            if let key = try load("CLIENT_KEY", { try NIOSSLPrivateKey(file: $0, format: .pem) }) {
                tls.privateKey = .privateKey(key)
            }
            do {
                sslContext = try NIOSSLContext(configuration: tls)
            } catch {
                throw ConfigurationFailure(
                    "the collector's TLS settings (OTEL_EXPORTER_OTLP_*CERTIFICATE, *CLIENT_KEY): \(error)")
            }
        }

        // The exporter sets these two itself.
        var headers = config.headers.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        if let (variable, text) = Self.variable("HEADERS", in: environment) {
            for (name, value) in try Self.pairs(text, variable: variable) {
                if let problem = Self.headerProblem(name: name, value: value) {
                    throw ConfigurationFailure("\(variable): \(name) \(problem)")
                }
                headers.removeAll { $0.0.lowercased() == name.lowercased() }
                headers.append((name, value))
            }
        }
        headers.removeAll { ["content-type", "user-agent"].contains($0.0.lowercased()) }
        self.headers = headers

        let (protocolOrigin, protocolName) =
            Self.variable("PROTOCOL", in: environment) ?? ("tracing.protocol", config.transport.rawValue)
        switch protocolName {
        case "http/json": json = true
        case "http/protobuf": json = false
        case let other: throw ConfigurationFailure("\(protocolOrigin)=\(other) is not http/protobuf or http/json")
        }
        if let (variable, text) = Self.variable("TIMEOUT", in: environment) { timeout = try milliseconds(variable, text) }
        if let text = environment["OTEL_BSP_SCHEDULE_DELAY"], !text.isEmpty {
            scheduleDelay = try milliseconds("OTEL_BSP_SCHEDULE_DELAY", text)
        }
        if let text = environment["OTEL_BSP_EXPORT_TIMEOUT"], !text.isEmpty {
            shutdownTimeout = try milliseconds("OTEL_BSP_EXPORT_TIMEOUT", text)
        }
        if let size = try count("OTEL_BSP_MAX_QUEUE_SIZE") { maxQueueSize = size }
        if let size = try count("OTEL_BSP_MAX_EXPORT_BATCH_SIZE") { maxExportBatchSize = size }
        maxExportBatchSize = min(maxExportBatchSize, maxQueueSize)

        // OpenTelemetry's resource: OTEL_SERVICE_NAME before OTEL_RESOURCE_ATTRIBUTES'
        // service.name before the config's.
        var attributes = try Self.pairs(environment["OTEL_RESOURCE_ATTRIBUTES"] ?? "", variable: "OTEL_RESOURCE_ATTRIBUTES")
        let serviceName =
            environment["OTEL_SERVICE_NAME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? attributes.last { $0.0 == "service.name" }?.1 ?? config.serviceName
        attributes.removeAll { $0.0 == "service.name" || $0.0.hasPrefix("telemetry.sdk.") }
        var seen: Set<String> = []
        let unique = attributes.reversed().filter { seen.insert($0.0).inserted }.reversed()
        resource =
            [
                ("service.name", .string(serviceName)), ("telemetry.sdk.name", .string("webhook-bridge")),
                ("telemetry.sdk.language", .string("swift")), ("telemetry.sdk.version", .string(ProcessMetrics.version)),
            ] + unique.map { ($0.0, SpanValue.string($0.1)) }
    }

    /// `key=value` pairs separated by commas, percent-decoded (W3C Baggage's format, as
    /// `OTEL_EXPORTER_OTLP_HEADERS` and `OTEL_RESOURCE_ATTRIBUTES` use it). An entry that is
    /// not one is an error naming `variable` (OpenTelemetry's configuration discards the
    /// whole value then; the bridge says so at startup instead of dropping it quietly).
    static func pairs(_ text: String, variable: String) throws -> [(String, String)] {
        try text.split(separator: ",", omittingEmptySubsequences: true).compactMap { item in
            guard !item.allSatisfy(\.isWhitespace) else { return nil }
            guard let equals = item.firstIndex(of: "=") else {
                throw ConfigurationFailure("\(variable): an entry has no \"=\" (key=value,key=value)")
            }
            let key = item[..<equals].trimmingCharacters(in: .whitespaces)
            let value = item[item.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            guard !key.isEmpty, let decodedKey = key.removingPercentEncoding, let decoded = value.removingPercentEncoding
            else { throw ConfigurationFailure("\(variable): an entry has an empty key or a bad percent-encoding") }
            return (decodedKey, decoded)
        }
    }

    /// Why a header (from `tracing.headers` or `OTEL_EXPORTER_OTLP_HEADERS`) can't be sent
    /// with the exports, or nil. The posts are written as they are given: a line break would
    /// end the head early, and a second `Host` or `Content-Length` would have the collector
    /// refuse every batch. (`Content-Type` and `User-Agent` are replaced by the exporter's own.)
    static func headerProblem(name: String, value: String) -> String? {
        if !name.isHTTPToken { return "is not a valid header name" }
        if framingHeaders.contains(name.lowercased()) { return "is set by the exporter" }
        if value.utf8.contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F }) {
            return "must not contain a line break or another control character"
        }
        return nil
    }

    static let framingHeaders: Set<String> = ["host", "content-length", "transfer-encoding", "connection"]
}

/// A tracing setting the bridge cannot use, said at startup.
struct ConfigurationFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
