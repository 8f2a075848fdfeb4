import NIOHTTP1
import Prometheus
import WebhookCore
import WebhookEncoding

/// The bridge's own paths: `/healthz`, `/readyz`, `/metrics` (when enabled); every other
/// path that is not a source's is 404. Their answers never depend on the request's body.
struct BuiltInEndpoints: Sendable {
    let processor: WebhookProcessor
    let metrics: PrometheusCollectorRegistry?
    let budget: BodyBudget

    func answer(method: HTTPMethod, path: Substring) -> BridgeAnswer {
        switch (method, path) {
        case (.GET, "/healthz"), (.HEAD, "/healthz"):
            return Self.healthy
        case (.GET, "/readyz"), (.HEAD, "/readyz"):
            return processor.requiredSinksReady ? Self.ready : notReady()
        case (.GET, "/metrics"):
            guard let metrics else { return .notFound }
            var bytes = PrometheusExport.addingHelp(metrics.emitToBuffer())
            ProcessMetrics.append(to: &bytes)
            bytes += Array(
                """
                # HELP webhook_buffered_body_bytes Bytes of request bodies held now (limits.maxBufferedBytes bounds them).
                # TYPE webhook_buffered_body_bytes gauge
                webhook_buffered_body_bytes \(budget.reserved)

                """.utf8)
            return BridgeAnswer(
                status: .ok, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")], body: bytes)
        default:
            return .notFound
        }
    }

    private static let healthy = BridgeAnswer(status: .ok, body: JSONWriter.object(["status": "ok"]))
    private static let ready = BridgeAnswer(status: .ok, body: JSONWriter.object(["status": "ready"]))
    /// 503 naming what is not ready: `{"status": "unavailable", "sinks": {"orders": "circuit
    /// open"}, "idempotency": "unreachable"}` (each part only when it applies).
    private func notReady() -> BridgeAnswer {
        var members: [(String, JSONValue)] = [("status", .string("unavailable"))]
        let sinks = processor.unreadySinks
        if !sinks.isEmpty { members.append(("sinks", .object(sinks.map { ($0.name, .string($0.reason)) }))) }
        if !processor.idempotencyStoreReady { members.append(("idempotency", .string("unreachable"))) }
        var body: [UInt8] = []
        JSONWriter.append(.object(members), to: &body)
        return BridgeAnswer(status: .serviceUnavailable, body: body)
    }
}
