import NIOCore
import NIOHTTP1
import WebhookCore
import WebhookEncoding
import WebhookProviders

/// What a verified request becomes before routing (SPEC section 10): one event, or one per
/// element of a batch the source splits; each with the source's `transform` and
/// `attributes` applied. Then, per event, the route that takes it and that route's own
/// `transform` and `attributes`. Pure functions of the request and the config: the serve
/// path and `webhook-bridge route` share them.
enum ShapeStage {
    /// The events of a request: one (no array for the request's event to hold), or a split
    /// batch's.
    enum Shaped {
        case single(WebhookEvent)
        case batch([WebhookEvent])

        var events: [WebhookEvent] {
            switch self {
            case .single(let event): return [event]
            case .batch(let events): return events
            }
        }
    }

    static func events(_ verified: VerifiedWebhook, _ request: WebhookRequest, source: ConfiguredSource) -> Shaped {
        if let split = source.config.split, let body = request.bodyJSON, let elements = split.elements(of: body) {
            // Each element gets an id of its own: the whole body's hash is never needed.
            let batch = WebhookProcessor.event(verified, request, source: source, id: "")
            let events = elements.map { element in
                var event = Self.element(element, of: batch, split: split, fallbackType: verified.type)
                shape(&event, transform: source.config.transform, attributes: source.config.attributes)
                return event
            }
            return .batch(events)
        }
        var single = WebhookProcessor.event(verified, request, source: source)
        shape(&single, transform: source.config.transform, attributes: source.config.attributes)
        return .single(single)
    }

    /// An element of a batch as an event: the element is its `data`, its id and type read
    /// from it; the rest (source, time, scheme, key, headers) from the request's event.
    static func element(_ element: JSONValue, of request: WebhookEvent, split: BatchSplit, fallbackType: String?) -> WebhookEvent
    {
        var bytes: [UInt8] = []
        JSONWriter.append(element, to: &bytes)
        let data = ByteBuffer(bytes: bytes)
        var event = request
        event.id = split.id(of: element) ?? bodyHashID(data)
        event.type = split.type(of: element) ?? fallbackType ?? "webhook"
        event.data = data
        event.dataContentType = "application/json"
        event.bodyJSON = element
        event.bodyIsJSON = true
        return event
    }

    /// Applies a `transform` (to a JSON body; any other passes unchanged), then `attributes`.
    static func shape(_ event: inout WebhookEvent, transform: JSONPatch?, attributes: EventAttributes?) {
        if let transform, let body = event.bodyJSON {
            let patched = transform.apply(to: body)
            var bytes: [UInt8] = []
            bytes.reserveCapacity(event.data.readableBytes)
            JSONWriter.append(patched, to: &bytes)
            event.data = ByteBuffer(bytes: bytes)
            event.bodyJSON = patched
            event.bodyIsJSON = true
        }
        attributes?.apply(to: &event)
    }

    /// The route that takes `event` (nil: filtered), and the event as that route shapes it.
    static func route(_ event: WebhookEvent, _ request: WebhookRequest, source: ConfiguredSource) -> (
        index: Int, event: WebhookEvent
    )? {
        let routes = source.config.routes
        guard let index = routes.route(type: event.type, filterInput(event, request, scopes: source.filterScopes)) else {
            return nil
        }
        let route = routes.routes[index]
        guard route.transform != nil || route.attributes != nil else { return (index, event) }
        var shaped = event
        shape(&shaped, transform: route.transform, attributes: route.attributes)
        return (index, shaped)
    }

    /// The values a route's `match` reads, built for the scopes some filter uses.
    static func filterInput(_ event: WebhookEvent, _ request: WebhookRequest, scopes: EventFilter.Scopes) -> EventFilter.Input
    {
        var input = EventFilter.Input()
        if scopes.isEmpty { return input }
        if scopes.contains(.body) {
            if let json = event.bodyJSON {
                input.body = json
            } else if event.bodyIsJSON != true, let text = String(validating: event.data.readableBytesView, as: UTF8.self) {
                input.body = .string(text)
            }
        }
        if scopes.contains(.headers) { input.headers = headersValue(request.headers) }
        let question = request.uri.firstIndex(of: "?")
        if scopes.contains(.query) {
            var members: [(String, JSONValue)] = []
            if let question {
                for (name, value) in FormParameters.parse(request.uri[request.uri.index(after: question)...].utf8) {
                    if let index = members.firstIndex(where: { $0.0 == name }) {
                        if case .array(let values) = members[index].1 {
                            members[index].1 = .array(values + [.string(value)])
                        } else {
                            members[index].1 = .array([members[index].1, .string(value)])
                        }
                    } else {
                        members.append((name, .string(value)))
                    }
                }
            }
            input.query = .object(members)
        }
        if scopes.contains(.path) { input.path = .string(String(request.uri[..<(question ?? request.uri.endIndex)])) }
        if scopes.contains(.event) { input.event = .object(event.attributes.map { ($0.name, .string($0.value)) }) }
        return input
    }

    /// Headers by lowercase name; a repeated header's values joined with `, `.
    static func headersValue(_ headers: HTTPHeaders) -> JSONValue {
        var members: [(String, JSONValue)] = []
        for (name, value) in headers {
            let lower = name.lowercased()
            if let index = members.firstIndex(where: { $0.0 == lower }), case .string(let earlier) = members[index].1 {
                members[index].1 = .string(earlier + ", " + value)
            } else {
                members.append((lower, .string(value)))
            }
        }
        return .object(members)
    }
}
