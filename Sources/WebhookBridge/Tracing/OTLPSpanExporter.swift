import Foundation
import Logging
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
        var tls: TLSConfiguration?
        var headers: [(String, String)] = []
        var json = false
        /// `OTEL_EXPORTER_OTLP_TIMEOUT`: one export's answer.
        var timeout: TimeAmount = .seconds(10)
        /// `OTEL_BSP_SCHEDULE_DELAY`.
        var scheduleDelay: TimeAmount = .seconds(5)
        /// `OTEL_BSP_MAX_QUEUE_SIZE`.
        var maxQueueSize = 2048
        /// `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`.
        var maxExportBatchSize = 512
        /// The resource's attributes (`service.name`, `telemetry.sdk.*`, `OTEL_RESOURCE_ATTRIBUTES`).
        var resource: [(String, SpanValue)] = []
    }

    let settings: Settings
    private let encoding: OTLPEncoding
    private let logger: Logger
    private let group: any EventLoopGroup

    private struct State {
        var queue: [FinishedSpan] = []
        /// The exporter's task, waiting for a batch or its delay.
        var waiter: CheckedContinuation<Void, Never>?
        /// Which wait a timer belongs to (a late timer never ends a later wait).
        var generation = 0
        var stopping = false
        /// Spans dropped since the last report: the queue was full, or their export failed.
        var dropped = 0
        var failing = false
        var lastReport: ContinuousClock.Instant?
    }
    private let state = Mutex(State())

    init(settings: Settings, logger: Logger, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.settings = settings
        self.encoding = OTLPEncoding(
            resource: settings.resource, scopeName: "webhook-bridge", scopeVersion: ProcessMetrics.version)
        self.logger = logger
        self.group = group
    }

    /// Queues a finished span (called as each span ends).
    func add(_ span: FinishedSpan) {
        let maxQueue = settings.maxQueueSize
        let batch = settings.maxExportBatchSize
        let wake = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard state.queue.count < maxQueue, !state.stopping else {
                state.dropped += 1
                return nil
            }
            state.queue.append(span)
            guard state.queue.count >= batch else { return nil }
            defer { state.waiter = nil }
            return state.waiter
        }
        wake?.resume()
    }

    /// Exports until a graceful shutdown (or cancellation), then sends what is queued.
    func run() async throws {
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                while true {
                    await waitForBatch()
                    let (spans, stopping) = state.withLock { state in
                        defer { state.queue.removeAll(keepingCapacity: true) }
                        return (state.queue, state.stopping)
                    }
                    var start = spans.startIndex
                    while start < spans.endIndex {
                        let end = min(start + settings.maxExportBatchSize, spans.endIndex)
                        let sent = await export(spans[start..<end])
                        start = end
                        if !sent, stopping {
                            // Stopping, and the collector takes nothing: the rest is not
                            // tried batch by batch, which would hold up the shutdown.
                            state.withLock { $0.dropped += spans.endIndex - start }
                            break
                        }
                    }
                    if stopping { break }
                }
            } onGracefulShutdown: {
                self.stop()
            }
        } onCancel: {
            self.stop()
        }
        report(force: true)
    }

    /// Ends the wait; the spans queued by then are the last exported.
    private func stop() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
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
    private func export(_ batch: ArraySlice<FinishedSpan>) async -> Bool {
        guard !batch.isEmpty else { return true }
        let body = settings.json ? encoding.json(batch) : encoding.protobuf(batch)
        var headers = settings.headers
        headers.append(("Content-Type", settings.json ? "application/json" : "application/x-protobuf"))
        headers.append(("User-Agent", "webhook-bridge/\(ProcessMetrics.version)"))
        var failure: String?
        for attempt in 0..<2 {
            if attempt > 0 {
                guard !state.withLock({ $0.stopping }) else { break }
                try? await Task.sleep(for: .seconds(1))
            }
            do {
                let answer = try await WebhookClient.send(
                    host: settings.host, port: settings.port, path: settings.path, headers: headers, body: body,
                    timeout: settings.timeout, tls: settings.tls, maximumBodyBytes: 1 << 20, group: group)
                let status = Int(answer.status.code)
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
    /// The settings for `config`, with the `OTEL_*` variables of OpenTelemetry's SDK
    /// configuration that apply to an OTLP/HTTP span exporter over it (the traces-specific
    /// one before the general one).
    init(config: BridgeConfig.Tracing, environment: [String: String]) throws {
        func variable(_ name: String) -> String? {
            (environment["OTEL_EXPORTER_OTLP_TRACES_" + name] ?? environment["OTEL_EXPORTER_OTLP_" + name])
                .flatMap { $0.isEmpty ? nil : $0 }
        }
        func milliseconds(_ name: String, _ text: String?) throws -> TimeAmount? {
            guard let text else { return nil }
            guard let value = Int64(text.trimmingCharacters(in: .whitespaces)), value >= 0 else {
                throw ConfigurationFailure("\(name)=\(text) is not a whole number of milliseconds")
            }
            return .milliseconds(value)
        }
        func count(_ name: String) throws -> Int? {
            guard let text = environment[name], !text.isEmpty else { return nil }
            guard let value = Int(text.trimmingCharacters(in: .whitespaces)), value > 0 else {
                throw ConfigurationFailure("\(name)=\(text) is not a positive whole number")
            }
            return value
        }

        var url = config.tracesURL
        if let traces = environment["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"], !traces.isEmpty {
            url = traces
        } else if let base = environment["OTEL_EXPORTER_OTLP_ENDPOINT"], !base.isEmpty {
            var trimmed = Substring(base)
            while trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
            url = trimmed + "/v1/traces"
        }
        guard let parts = URLComponents(string: url), let scheme = parts.scheme?.lowercased(),
            scheme == "http" || scheme == "https", let host = parts.host, !host.isEmpty
        else { throw ConfigurationFailure("the traces endpoint \(url) is not an http:// or https:// URL") }
        let secure = scheme == "https"
        self.init(
            host: host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host, port: parts.port ?? (secure ? 443 : 80),
            path: (parts.percentEncodedPath.isEmpty ? "/" : parts.percentEncodedPath)
                + (parts.percentEncodedQuery.map { "?" + $0 } ?? ""))

        if secure {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.minimumTLSVersion = .tlsv12
            do {
                if let file = variable("CERTIFICATE") {
                    tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(file))
                }
                if let file = variable("CLIENT_CERTIFICATE") {
                    tls.certificateChain = try NIOSSLCertificate.fromPEMFile(file).map { .certificate($0) }
                }
                if let file = variable("CLIENT_KEY") {
                    tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: file, format: .pem))
                }
            } catch {
                throw ConfigurationFailure("the collector's TLS files (OTEL_EXPORTER_OTLP_*CERTIFICATE, *CLIENT_KEY): \(error)")
            }
            self.tls = tls
        }

        var headers = config.headers.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        if let text = variable("HEADERS") {
            for (name, value) in Self.pairs(text) {
                headers.removeAll { $0.0.lowercased() == name.lowercased() }
                headers.append((name, value))
            }
        }
        self.headers = headers

        switch variable("PROTOCOL") ?? config.transport.rawValue {
        case "http/json": json = true
        case "http/protobuf": json = false
        case let other: throw ConfigurationFailure("the OTLP protocol \(other) is not http/protobuf or http/json")
        }
        if let timeout = try milliseconds("OTEL_EXPORTER_OTLP_TIMEOUT", variable("TIMEOUT")) { self.timeout = timeout }
        if let delay = try milliseconds("OTEL_BSP_SCHEDULE_DELAY", environment["OTEL_BSP_SCHEDULE_DELAY"]) {
            scheduleDelay = delay
        }
        if let size = try count("OTEL_BSP_MAX_QUEUE_SIZE") { maxQueueSize = size }
        if let size = try count("OTEL_BSP_MAX_EXPORT_BATCH_SIZE") { maxExportBatchSize = size }
        maxExportBatchSize = min(maxExportBatchSize, maxQueueSize)

        // OpenTelemetry's resource: OTEL_SERVICE_NAME before OTEL_RESOURCE_ATTRIBUTES'
        // service.name before the config's.
        var attributes = Self.pairs(environment["OTEL_RESOURCE_ATTRIBUTES"] ?? "")
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
    /// `OTEL_EXPORTER_OTLP_HEADERS` and `OTEL_RESOURCE_ATTRIBUTES` use it); others skipped.
    static func pairs(_ text: String) -> [(String, String)] {
        text.split(separator: ",").compactMap { item in
            guard let equals = item.firstIndex(of: "=") else { return nil }
            let key = item[..<equals].trimmingCharacters(in: .whitespaces)
            let value = item[item.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            guard !key.isEmpty else { return nil }
            return (key.removingPercentEncoding ?? key, value.removingPercentEncoding ?? value)
        }
    }
}

/// A tracing setting the bridge cannot use, said at startup.
struct ConfigurationFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
