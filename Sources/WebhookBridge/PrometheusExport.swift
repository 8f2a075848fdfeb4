import CoreMetrics
import Prometheus

/// The Prometheus side of the bridge's swift-metrics: `GET /metrics` renders this registry.
public enum PrometheusExport {
    /// Bootstraps swift-metrics with a Prometheus factory (once per process) and returns its
    /// registry. Dotted metric and label names (`webhook.sink.latency`, `sink.name`) become
    /// Prometheus names (`webhook_sink_latency`, `sink_name`).
    public static func bootstrap() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = durationBuckets
        factory.nameAndLabelSanitizer = { name, labels in
            (prometheusName(name), labels.map { (prometheusName($0.0), $0.1) })
        }
        MetricsSystem.bootstrap(factory)
        return registry
    }

    /// The buckets of every duration histogram (sink latency, HTTP sink requests): Prometheus'
    /// defaults, which start at 5 ms, and three below them. A Kafka or Redis acknowledgement
    /// takes about a millisecond; with the defaults alone nearly all would fall in the first bucket.
    static let durationBuckets: [Duration] =
        [.microseconds(500), .milliseconds(1), .microseconds(2500)]
        + [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000].map { .milliseconds($0) }

    static func prometheusName(_ name: String) -> String {
        String(
            String.UnicodeScalarView(
                name.unicodeScalars.map { scalar in
                    switch scalar {
                    case "a"..."z", "A"..."Z", "0"..."9", "_": return scalar
                    default: return "_"
                    }
                }))
    }

    /// What each metric counts, for the `# HELP` lines Prometheus' tools expect (swift-metrics
    /// carries no help text).
    static let help: [String: String] = [
        "webhook_requests_total": "Answers to source paths, by source and HTTP status.",
        "webhook_verifications_total": "Signature checks, by source, result and the index of the secret that matched.",
        "webhook_idempotency_total": "Idempotency outcomes (new, duplicate, in_progress, failed), by source.",
        "webhook_events_filtered_total": "Events no route took (answered filtered, stored nowhere), by source.",
        "webhook_sink_deliveries_total": "Deliveries to sinks, by sink and result (ok, failed, rejected).",
        "webhook_sink_latency_seconds": "Time from handing an event to a sink to its acknowledgement, by sink.",
        "webhook_sink_in_flight": "Deliveries waiting for a sink's acknowledgement, by sink.",
        "webhook_spool_bytes": "Bytes counted against spool.maxBytes: not yet forwarded, plus the dead letters.",
        "webhook_spool_backlog_bytes": "Spooled bytes not yet forwarded, by sink.",
        "webhook_dead_letters_total": "Events written to the dead-letter file, by sink.",
        "webhook_admin_requests_total":
            "Requests to the inspector's admin listener, by route and status (never counted as webhooks).",
        "webhook_spool_damaged_lines_total":
            "Spooled lines found damaged on disk and set aside in the dead-letter file, by sink.",
        "webhook_kafka_producer_restarts_total": "Kafka producers replaced after a fatal error, by sink.",
        "webhook_sink_breaker_open":
            "1 while an HTTP sink's circuit breaker is open (deliveries are spooled without a request), else 0.",
        "webhook_sink_http_requests_total":
            "Requests an HTTP sink sent, by sink and the status class of the answer (none: no answer).",
        "webhook_sink_http_request_duration_seconds": "Time from an HTTP sink's request to its answer or failure, by sink.",
        "webhook_tracing_spans_total":
            "Spans the OTLP/HTTP exporter sent to the collector (exported) or lost (dropped: queue full or export failed).",
    ]

    /// `text` (Prometheus exposition) with a `# HELP` line before every `# TYPE` line that has
    /// none.
    static func addingHelp(_ bytes: [UInt8]) -> [UInt8] {
        var out = ""
        var previous = ""
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("# TYPE "), !previous.hasPrefix("# HELP ") {
                let name = line.dropFirst(7).prefix { $0 != " " }
                out += "# HELP \(name) \(help[String(name)] ?? "webhook-bridge metric \(name).")\n"
            }
            out += line + "\n"
            previous = String(line)
        }
        if out.hasSuffix("\n\n") { out.removeLast() }
        return Array(out.utf8)
    }
}
