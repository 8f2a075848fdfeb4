import NIOCore
import NIOHTTP1
import WebhookCore
import WebhookEncoding
import WebhookProviders

/// `webhook-bridge route`: what a source would make of a body, without a signature and
/// without a sink: each event after split and transform, the route that takes it (or
/// `filtered`), and for each route it skips the first condition that failed. It runs the
/// serve path's own shaping and routing (``ShapeStage``), so the two can't disagree.
public enum RouteDryRun {
    /// Why there is nothing to report.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// The report, one line at a time. The event's id and type are read as the scheme reads
    /// them where it can do so without a signature (every recipe provider); `id` and `type`
    /// give them otherwise.
    public static func report(
        config: BridgeConfig, source name: String, body: [UInt8], headers: [(String, String)], query: String? = nil,
        id: String? = nil, type: String? = nil
    ) throws(Failure) -> [String] {
        guard let configured = config.sources[name] else {
            throw Failure(
                description:
                    "--source: no source named \"\(name)\" (sources: \(config.sources.keys.sorted().joined(separator: ", ")))")
        }
        guard let source = SourceTable(config).source(atPath: configured.path) else {
            throw Failure(description: "--source: \(name) has no path")
        }
        var uri = configured.path
        if let query, !query.isEmpty { uri += "?" + query }
        let request = WebhookRequest(
            headers: HTTPHeaders(headers), body: ByteBuffer(bytes: body), uri: uri, receivedAt: .now(),
            parsesBody: source.needsBodyJSON)
        let identity = source.scheme.unverifiedIdentity(request)
        var lines: [String] = []
        if identity == nil && (id == nil || type == nil) {
            lines.append(
                "note: scheme \(source.scheme.name) reads the id and type only from a verified request; without --id and --type, the id is the body's hash and the type webhook"
            )
        }
        let verified = VerifiedWebhook(id: id ?? identity?.id, type: type ?? identity?.type, keyIndex: 0)
        let shaped = ShapeStage.events(verified, request, source: source)
        if case .batch = shaped, let split = configured.split {
            lines.append("split: \(shaped.events.count) events (\(split.summary))")
        }
        for (number, event) in shaped.events.enumerated() {
            lines.append("event \(number + 1) of \(shaped.events.count): id \(event.id), type \(event.type)")
            for (attribute, value) in event.extensionAttributes { lines.append("  \(attribute): \(value)") }
            lines.append("  data: \(text(of: event))")
            let input = ShapeStage.filterInput(event, request, scopes: source.filterScopes)
            var taken = false
            for (index, route) in configured.routes.routes.enumerated() {
                if let refusal = route.refusal(type: event.type, input) {
                    lines.append("  routes[\(index)]: skipped: \(refusal)")
                    continue
                }
                lines.append("  routes[\(index)]: taken: sinks \(route.sinks.joined(separator: ", "))")
                if route.transform != nil || route.attributes != nil,
                    let routed = ShapeStage.route(event, request, source: source)
                {
                    for (attribute, value) in routed.event.extensionAttributes { lines.append("  \(attribute): \(value)") }
                    lines.append("  data after the route's transform: \(text(of: routed.event))")
                }
                taken = true
                break
            }
            if !taken { lines.append("  filtered: no route takes it") }
        }
        return lines
    }

    private static func text(of event: WebhookEvent) -> String {
        if let json = event.bodyJSON {
            var bytes: [UInt8] = []
            JSONWriter.append(json, to: &bytes)
            return String(decoding: bytes, as: UTF8.self)
        }
        return String(validating: event.data.readableBytesView, as: UTF8.self).map { "\"\($0)\" (not JSON)" }
            ?? "\(event.data.readableBytes) bytes, not UTF-8"
    }
}
