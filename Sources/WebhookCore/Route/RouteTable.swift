/// Where a source's events go (SPEC section 3): every event to a fixed set of sinks, or the
/// first route whose type globs match.
public struct RouteTable: Sendable, Equatable {
    /// One route: `types` nil matches every type.
    public struct Route: Sendable, Equatable {
        public let types: [TypeGlob]?
        public let sinks: [String]

        public init(types: [TypeGlob]?, sinks: [String]) {
            self.types = types
            self.sinks = sinks
        }
    }

    public let routes: [Route]

    /// Every event goes to all of `sinks`.
    public init(sinks: [String]) { self.routes = [Route(types: nil, sinks: sinks)] }

    public init(routes: [Route]) { self.routes = routes }

    /// The sinks for an event of `type`; empty when no route matches.
    public func sinks(forType type: String) -> [String] {
        for route in routes {
            guard let globs = route.types else { return route.sinks }
            if globs.contains(where: { $0.matches(type) }) { return route.sinks }
        }
        return []
    }

    /// Every sink some route can send to.
    public var allSinks: Set<String> { Set(routes.flatMap(\.sinks)) }
}
