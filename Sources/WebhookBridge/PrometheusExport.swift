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
        factory.nameAndLabelSanitizer = { name, labels in
            (prometheusName(name), labels.map { (prometheusName($0.0), $0.1) })
        }
        MetricsSystem.bootstrap(factory)
        return registry
    }

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
}
