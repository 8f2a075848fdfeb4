import WebhookEncoding

/// Where a source's events go (SPEC sections 3 and 10): every event to a fixed set of sinks,
/// or the first route whose type globs and `match` both hold. An event no route takes is
/// filtered: stored nowhere.
public struct RouteTable: Sendable {
    /// One route: `types` nil matches every type, `match` nil every event.
    public struct Route: Sendable {
        public let types: [TypeGlob]?
        public var match: EventFilter?
        public let sinks: [String]
        /// Applied to the events this route takes, after the source's own.
        public var transform: JSONPatch?
        public var attributes: EventAttributes?

        public init(
            types: [TypeGlob]?, sinks: [String], match: EventFilter? = nil, transform: JSONPatch? = nil,
            attributes: EventAttributes? = nil
        ) {
            self.types = types
            self.sinks = sinks
            self.match = match
            self.transform = transform
            self.attributes = attributes
        }

        /// True when the route takes an event of `type` whose filter input is `input`.
        public func takes(type: String, _ input: @autoclosure () -> EventFilter.Input) -> Bool {
            if let types, !types.contains(where: { $0.matches(type) }) { return false }
            guard let match else { return true }
            return match.matches(input())
        }

        /// Why the route does not take the event: its types or its match's first failing
        /// condition; nil when it takes it.
        public func refusal(type: String, _ input: EventFilter.Input) -> String? {
            if let types, !types.contains(where: { $0.matches(type) }) {
                return "type \"\(type)\" matches none of \(types.map { "\"\($0)\"" }.joined(separator: ", "))"
            }
            return match?.firstFailure(input)?.description
        }
    }

    public let routes: [Route]

    /// Every event goes to all of `sinks`.
    public init(sinks: [String]) { self.routes = [Route(types: nil, sinks: sinks)] }

    public init(routes: [Route]) { self.routes = routes }

    /// The index of the route that takes the event: the first whose types and match hold;
    /// nil when none does (the event is filtered).
    public func route(type: String, _ input: @autoclosure () -> EventFilter.Input) -> Int? {
        var built: EventFilter.Input?
        for (index, route) in routes.enumerated() {
            let taken = route.takes(
                type: type,
                {
                    if let built { return built }
                    built = input()
                    return built!
                }())
            if taken { return index }
        }
        return nil
    }

    /// The sinks for an event of `type` by its type alone (routes with a `match` skipped
    /// unless `input` is given); empty when no route takes it.
    public func sinks(forType type: String, _ input: EventFilter.Input = EventFilter.Input()) -> [String] {
        route(type: type, input).map { routes[$0].sinks } ?? []
    }

    /// The scopes the routes' filters read.
    public var filterScopes: EventFilter.Scopes {
        routes.reduce(into: []) { $0.formUnion($1.match?.scopes ?? []) }
    }

    /// Every sink some route can send to.
    public var allSinks: Set<String> { Set(routes.flatMap(\.sinks)) }
}
