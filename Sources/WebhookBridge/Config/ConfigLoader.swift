import WebhookEncoding
import Foundation
import WebhookCore
import Spool
import WebhookProviders

/// Reads and validates a config file (SPEC section 3). `serve`, `check-config` and reload all
/// go through here, so they agree on what is valid.
public enum ConfigLoader {
    /// Paths the bridge serves itself; a source can't take them.
    public static let reservedPaths: Set<String> = ["/healthz", "/readyz", "/metrics"]

    /// Parses and validates `bytes`, substituting `${NAME}` from `environment`.
    ///
    /// - Parameter libraries: the sink and store libraries (`Bridge.libraries`): each reads
    ///   the settings of its `type`'s sinks (or store) and checks what only it can judge
    ///   (librdkafka's `properties`) in the same pass as everything else, so one run reports
    ///   every problem.
    /// - Parameter exporters: the OTLP exporters there are (this build's unless a test says).
    public static func load(
        _ bytes: [UInt8], environment: [String: String], libraries: BridgeLibraries,
        exporters: BridgeConfig.Tracing.Exporters = .built
    ) throws(ConfigError) -> BridgeConfig {
        let document: JSONValue
        do {
            document = try JSONParser.parse(bytes)
        } catch {
            let before = bytes.prefix(error.offset)
            let line = before.reduce(1) { $1 == 0x0A ? $0 + 1 : $0 }
            let column = error.offset - (before.lastIndex(of: 0x0A).map { $0 + 1 } ?? 0) + 1
            throw ConfigError(problems: [
                ConfigProblem(path: "", message: "not valid JSON at line \(line), column \(column): \(error.reason)")
            ])
        }
        let log = ProblemLog()
        let substituted = EnvironmentSubstitution.apply(to: document, path: "", environment: environment, log: log)
        let config = read(substituted, log: log, libraries: libraries, exporters: exporters)
        if let config {
            for sink in config.sinks.values.sorted(by: { $0.name < $1.name }) {
                for library in libraries.sinks where library.type == sink.type {
                    for problem in library.validate(sink, limits: config.limits) {
                        log.add(joinPath("sinks.\(sink.name)", problem.path), problem.message)
                    }
                }
            }
        }
        if var config, log.problems.isEmpty {
            config.warnings = log.warnings
            return config
        }
        throw ConfigError(problems: log.problems)
    }

    // MARK: - Top level

    static func read(
        _ document: JSONValue, log: ProblemLog, libraries: BridgeLibraries,
        exporters: BridgeConfig.Tracing.Exporters = .built
    ) -> BridgeConfig? {
        guard let root = ConfigReader(document, path: "", log: log) else { return nil }
        root.rejectUnknownKeys([
            "listen", "limits", "idempotency", "spool", "tracing", "admin", "sinks", "sources", "trustedProxies",
        ])

        var listen = BridgeConfig.Listen()
        if let reader = root.object("listen") {
            reader.rejectUnknownKeys(["host", "port", "tls"])
            if let host = reader.string("host") { listen.host = host }
            if let port = reader.integer("port", in: 0...65535) { listen.port = port }
            if let tls = reader.object("tls") {
                tls.rejectUnknownKeys(["certificate", "privateKey"])
                let certificate = tls.string("certificate", required: true)
                let key = tls.string("privateKey", required: true)
                if let certificate, let key { listen.tls = .init(certificate: certificate, privateKey: key) }
            }
        }

        var limits = BridgeConfig.Limits()
        if let reader = root.object("limits") {
            reader.rejectUnknownKeys([
                "maxBodyBytes", "ackTimeoutMs", "bodyTimeoutMs", "idleTimeoutMs", "maxConcurrentRequests",
                "maxHeaderCount", "maxBufferedBytes", "maxBufferedBytesPerClient",
            ])
            if let value = reader.integer("maxBodyBytes", in: 1...(1 << 30)) { limits.maxBodyBytes = value }
            if let value = reader.integer("ackTimeoutMs", in: 1...600_000) { limits.ackTimeoutMs = value }
            if let value = reader.integer("bodyTimeoutMs", in: 1...3_600_000) { limits.bodyTimeoutMs = value }
            if let value = reader.integer("idleTimeoutMs", in: 1...86_400_000) { limits.idleTimeoutMs = value }
            if let value = reader.integer("maxConcurrentRequests", in: 1...1_000_000) { limits.maxConcurrentRequests = value }
            if let value = reader.integer("maxHeaderCount", in: 1...10_000) { limits.maxHeaderCount = value }
            if let value = reader.integer("maxBufferedBytes", in: 1...(1 << 40)) {
                if value < limits.maxBodyBytes {
                    log.add(
                        reader.childPath("maxBufferedBytes"),
                        "must be at least limits.maxBodyBytes (\(limits.maxBodyBytes)), or no body of that size could be received"
                    )
                } else {
                    limits.maxBufferedBytes = value
                }
            }
            if let value = reader.integer("maxBufferedBytesPerClient", in: 1...(1 << 40)) {
                if value < limits.maxBodyBytes || value > limits.maxBufferedBytes {
                    log.add(
                        reader.childPath("maxBufferedBytesPerClient"),
                        "must be between limits.maxBodyBytes (\(limits.maxBodyBytes)) and limits.maxBufferedBytes (\(limits.maxBufferedBytes))"
                    )
                } else {
                    limits.maxBufferedBytesPerClient = value
                }
            }
        }

        var idempotency = BridgeConfig.Idempotency()
        if let reader = root.object("idempotency") {
            if let ttl = reader.integer("ttlSeconds", in: 1...Int(Int32.max)) { idempotency.ttlSeconds = ttl }
            if let maxKeys = reader.integer("maxKeys", in: 1...Int.max) { idempotency.maxKeys = maxKeys }
            let type = reader.string("store") ?? "memory"
            if let library = libraries.stores.first(where: { $0.type == type }) {
                let common = ["store", "ttlSeconds", "maxKeys"]
                // A key of another store gets a clearer word than "unknown key".
                for (key, _) in reader.members where !common.contains(key) && !library.keys.contains(key) {
                    if let owner = libraries.stores.first(where: { $0.keys.contains(key) }) {
                        log.add(reader.childPath(key), "only the \(owner.type) store takes a \(key)")
                    }
                }
                let others = Set(libraries.stores.flatMap(\.keys)).subtracting(library.keys)
                reader.rejectUnknownKeys(common + library.keys + others.sorted())
                if let settings = library.readSettings(reader) {
                    idempotency.store = .init(type: type, settings: settings)
                }
            } else {
                reader.rejectUnknownKeys(["store", "ttlSeconds", "maxKeys"] + libraries.stores.flatMap(\.keys))
                log.add(reader.childPath("store"), "must be \(oneOf(libraries.stores.map(\.type))), not \"\(type)\"")
            }
        }

        var spool: BridgeConfig.Spool?
        if let reader = root.object("spool") {
            reader.rejectUnknownKeys(["directory", "maxBytes", "retry"])
            if let directory = reader.string("directory", required: true) {
                spool = .init(directory: directory)
                if let maxBytes = reader.integer("maxBytes", in: 4096...Int.max) { spool?.maxBytes = maxBytes }
                if let retry = reader.object("retry").flatMap(readRetry) { spool?.retry = retry }
            }
        }

        let tracing = root.object("tracing").flatMap { readTracing($0, log: log, exporters: exporters) }
        let admin = root.object("admin").flatMap { readAdmin($0, listen: listen, limits: limits) }
        let trustedProxies = readCIDRs(root, "trustedProxies", log: log)

        var sinks: [String: SinkConfig] = [:]
        if let reader = root.object("sinks", required: true) {
            if reader.members.isEmpty { log.add("sinks", "must name at least one sink") }
            for (name, value) in reader.members {
                if let sink = readSink(name: name, value, path: reader.childPath(name), types: libraries.sinks, log: log) {
                    sinks[name] = sink
                }
            }
        }
        var owners: [String: String] = [:]
        for name in (root.object("sinks")?.members.map(\.0) ?? []) {
            guard let sink = sinks[name] else { continue }
            for claim in sink.settings.exclusiveValues {
                let key = "\(sink.type) \(claim.key) \(claim.value)"
                if let owner = owners[key] {
                    log.add("sinks.\(name).\(claim.key)", "is also the \(claim.key) of sink \"\(owner)\"; \(claim.reason)")
                } else {
                    owners[key] = name
                }
            }
        }
        let sinkNames = Set(root.object("sinks").map { $0.members.map(\.0) } ?? [])

        var sources: [String: SourceConfig] = [:]
        if let reader = root.object("sources", required: true) {
            if reader.members.isEmpty { log.add("sources", "must name at least one source") }
            var pathOwners: [String: String] = [:]
            for (name, value) in reader.members {
                let path = reader.childPath(name)
                guard let source = readSource(name: name, value, path: path, sinkNames: sinkNames, log: log) else { continue }
                if let owner = pathOwners[source.path] {
                    log.add(joinPath(path, "path"), "\"\(source.path)\" is already the path of source \"\(owner)\"")
                } else {
                    pathOwners[source.path] = name
                }
                sources[name] = source
                if source.scheme.learnsSecrets, idempotency.store.type != "redis", spool == nil {
                    log.add(
                        joinPath(path, "verify.scheme"),
                        "\(source.scheme.name) learns its secret in a handshake and must keep it: set spool (kept in <spool.directory>/learned-secrets.json) or idempotency.store redis (shared by replicas)"
                    )
                }
                if let lifetime = source.scheme.singleUseTokenLifetime, lifetime > idempotency.ttlSeconds {
                    log.warn(
                        joinPath(path, "verify.toleranceSeconds"),
                        "lets a signature be replayed for \(lifetime) s, longer than idempotency.ttlSeconds (\(idempotency.ttlSeconds)) keeps its single-use token: a request captured and replayed after that would be accepted"
                    )
                }
            }
        }

        return BridgeConfig(
            listen: listen, limits: limits, idempotency: idempotency, spool: spool, tracing: tracing, admin: admin,
            trustedProxies: trustedProxies ?? [], sinks: sinks, sources: sources)
    }

    // MARK: - The inspector

    /// `admin`: `token` required and not empty (the inspector shows what providers send);
    /// a port of its own.
    static func readAdmin(_ reader: ConfigReader, listen: BridgeConfig.Listen, limits: BridgeConfig.Limits)
        -> BridgeConfig.Admin?
    {
        reader.rejectUnknownKeys(["host", "port", "token", "recent", "maxBodyBytes"])
        let problems = reader.log.problems.count
        let token = reader.string("token", required: true, nonEmpty: false)
        if token?.isEmpty == true {
            reader.problem(at: "token", "must not be empty: without a token anyone who reaches the port reads every request")
        } else if let token, token != token.trimmingCharacters(in: .whitespacesAndNewlines) {
            // A client's bearer token is read without the spaces around it: this one could
            // never match.
            reader.problem(at: "token", "must not begin or end with whitespace")
        } else if let token, token.lowercased().contains("replace-me") {
            reader.problem(
                at: "token", "is still the example's placeholder: set a long random token (openssl rand -hex 32)")
        }
        var admin = BridgeConfig.Admin(token: token ?? "")
        if let host = reader.string("host") { admin.host = host }
        if let port = reader.integer("port", in: 0...65535) {
            if port != 0 && port == listen.port {
                reader.problem(at: "port", "is also listen.port (\(port)): the inspector needs a port of its own")
            }
            admin.port = port
        } else if !reader.has("port") && listen.port == admin.port {
            reader.problem(at: "port", "defaults to 9090, which is listen.port: give the inspector another port")
        }
        if let recent = reader.integer("recent", in: 1...1_000_000) { admin.recent = recent }
        if let maxBodyBytes = reader.integer("maxBodyBytes", in: 0...limits.maxBodyBytes) { admin.maxBodyBytes = maxBodyBytes }
        if let token, !token.isEmpty, token.utf8.count < 16 {
            reader.log.warn(
                reader.childPath("token"),
                "is shorter than 16 characters: a guessable token opens every request's headers and body")
        }
        return reader.log.problems.count == problems ? admin : nil
    }

    // MARK: - Tracing

    /// `spool.retry`: `initialMs`, `maxMs`, `multiplier`, `maxAgeSeconds`, each optional.
    static func readRetry(_ reader: ConfigReader) -> RetryPolicy? {
        reader.rejectUnknownKeys(["initialMs", "maxMs", "multiplier", "maxAgeSeconds"])
        var policy = RetryPolicy()
        let problems = reader.log.problems.count
        if let initial = reader.integer("initialMs", in: 1...86_400_000) { policy.initial = .milliseconds(initial) }
        if let maximum = reader.integer("maxMs", in: 1...86_400_000) { policy.maximum = .milliseconds(maximum) }
        if let multiplier = reader.number("multiplier", in: 1...100) { policy.multiplier = multiplier }
        if let maxAge = reader.integer("maxAgeSeconds", in: 1...31_536_000) { policy.maxAge = .seconds(maxAge) }
        if policy.maximum < policy.initial {
            reader.problem(at: reader.has("maxMs") ? "maxMs" : "initialMs", "maxMs must not be less than initialMs")
        }
        return reader.log.problems.count == problems ? policy : nil
    }

    static func readTracing(
        _ reader: ConfigReader, log: ProblemLog, exporters: BridgeConfig.Tracing.Exporters
    ) -> BridgeConfig.Tracing? {
        reader.rejectUnknownKeys(["otlpEndpoint", "serviceName", "sampleRatio", "protocol", "headers"])
        var port: Int?
        var endpoint = reader.string("otlpEndpoint", required: true)
        if let url = endpoint {
            if let parsed = URLComponents(string: url), ["http", "https"].contains(parsed.scheme?.lowercased()),
                parsed.host?.isEmpty == false
            {
                port = parsed.port ?? (parsed.scheme?.lowercased() == "https" ? 443 : 80)
            } else {
                log.add(reader.childPath("otlpEndpoint"), "must be an http:// or https:// URL with a host, not \"\(url)\"")
                endpoint = nil
            }
        }
        var transport: BridgeConfig.Tracing.Transport = port == 4317 ? .grpc : .httpProtobuf
        let named = reader.string("protocol")
        if let name = named {
            if let chosen = BridgeConfig.Tracing.Transport(rawValue: name) {
                transport = chosen
            } else {
                let names = BridgeConfig.Tracing.Transport.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
                log.add(reader.childPath("protocol"), "must be one of \(names), not \"\(name)\"")
            }
        }
        if transport == .grpc && !exporters.grpc {
            // Sending OTLP/HTTP to a gRPC port would fail at every export, so it is refused here.
            let why = named == nil ? "port 4317 means OTLP/gRPC, which" : "OTLP/gRPC"
            log.add(
                reader.childPath(named == nil ? "otlpEndpoint" : "protocol"),
                "\(why) is not in this build (built without the OTLPGRPC package trait): use the collector's OTLP/HTTP port (4318), or build with `swift build --traits OTLPGRPC`"
            )
        }
        let serviceName = reader.string("serviceName")
        let sampleRatio = reader.number("sampleRatio", in: 0...1)
        var headers: [String: String] = [:]
        if let object = reader.object("headers") {
            for (name, _) in object.members {
                guard let value = object.string(name, nonEmpty: false) else { continue }
                if let problem = OTLPSpanExporter.Settings.headerProblem(name: name, value: value) {
                    object.problem(at: name, problem)
                } else {
                    headers[name] = value
                }
            }
        }
        guard let endpoint else { return nil }
        var tracing = BridgeConfig.Tracing(otlpEndpoint: endpoint, transport: transport)
        tracing.headers = headers
        if let serviceName { tracing.serviceName = serviceName }
        if let sampleRatio { tracing.sampleRatio = sampleRatio }
        return tracing
    }

    // MARK: - Sinks

    /// `"a", "b" or "c"`.
    static func oneOf(_ names: [String]) -> String {
        let quoted = names.map { "\"\($0)\"" }
        return quoted.count > 1 ? quoted.dropLast().joined(separator: ", ") + " or " + quoted.last! : quoted.joined()
    }

    /// A sink's object: `type` picks the library that reads the rest.
    static func readSink(
        name: String, _ value: JSONValue, path: String, types: [any EventSinkFactory], log: ProblemLog
    ) -> SinkConfig? {
        guard let reader = ConfigReader(value, path: path, log: log) else { return nil }
        let required = reader.bool("required") ?? true
        guard let type = reader.string("type", required: true) else { return nil }
        guard let library = types.first(where: { $0.type == type }) else {
            log.add(reader.childPath("type"), "must be \(oneOf(types.map(\.type))), not \"\(type)\"")
            return nil
        }
        reader.rejectUnknownKeys(["type", "required"] + library.keys)
        guard let settings = library.readSettings(reader) else { return nil }
        return SinkConfig(name: name, type: type, required: required, settings: settings)
    }

    // MARK: - Sources

    static func readSource(name: String, _ value: JSONValue, path: String, sinkNames: Set<String>, log: ProblemLog)
        -> SourceConfig?
    {
        guard let reader = ConfigReader(value, path: path, log: log) else { return nil }
        reader.rejectUnknownKeys([
            "path", "verify", "sinks", "routes", "allow", "rateLimit", "split", "transform", "attributes", "respond",
        ])

        let urlPath = reader.string("path", required: true)
        if let urlPath {
            if !urlPath.hasPrefix("/") {
                log.add(reader.childPath("path"), "must start with /")
            } else if reservedPaths.contains(urlPath) {
                log.add(reader.childPath("path"), "\(urlPath) is served by the bridge itself")
            } else if urlPath.contains("?") || urlPath.contains("#") || urlPath.contains(" ") {
                log.add(reader.childPath("path"), "must be a plain path without query, fragment or spaces")
            }
        }

        let scheme = reader.object("verify", required: true).flatMap(ProviderRegistry.readVerify)

        func checkSinks(_ names: [String]?, at arrayPath: String) -> [String]? {
            guard let names else { return nil }
            var ok = true
            for (index, sink) in names.enumerated() where !sinkNames.contains(sink) {
                let known = sinkNames.sorted().joined(separator: ", ")
                log.add("\(arrayPath)[\(index)]", "no sink named \"\(sink)\" (sinks: \(known))")
                ok = false
            }
            return ok ? names : nil
        }

        var routes: RouteTable?
        switch (reader.has("sinks"), reader.has("routes")) {
        case (true, true):
            log.add(path, "has both sinks and routes; use one")
        case (false, false):
            log.add(path, "needs sinks or routes")
        case (true, false):
            if let names = checkSinks(reader.stringArray("sinks", required: true), at: reader.childPath("sinks")) {
                routes = RouteTable(sinks: names)
            }
        case (false, true):
            routes = readRoutes(reader, checkSinks: checkSinks, log: log)
        }

        let allow = readCIDRs(reader, "allow", log: log)
        var rateLimit: SourceConfig.RateLimit?
        if let limit = reader.object("rateLimit") {
            limit.rejectUnknownKeys(["perSecond", "burst"])
            let perSecond = limit.number("perSecond", minimumExclusive: 0, required: true)
            let burst = limit.integer("burst", in: 1...Int(Int32.max))
            if let perSecond { rateLimit = .init(perSecond: perSecond, burst: burst ?? max(1, Int(perSecond.rounded(.up)))) }
        }

        let schemeName = reader.object("verify").flatMap { $0.raw("scheme")?.scalarText }
        let split = BatchSplit.read(reader, scheme: schemeName, log: log)
        if case .some(.some) = split, reader.has("split"), let scheme, scheme.singleUseTokenLifetime != nil {
            log.add(
                reader.childPath("split"), "can't split a \(scheme.name) body: its signature covers one token, not each event")
        }
        let transform = reader.raw("transform").flatMap { JSONPatch.read($0, path: reader.childPath("transform"), log: log) }
        let attributes = EventAttributes.read(reader)
        let respond = CustomAnswers.read(reader)

        guard let urlPath, let scheme, let routes, let split else { return nil }
        var source = SourceConfig(name: name, path: urlPath, scheme: scheme, routes: routes, allow: allow, rateLimit: rateLimit)
        source.split = split
        source.transform = transform
        source.attributes = attributes
        source.respond = respond
        return source
    }

    static func readRoutes(
        _ reader: ConfigReader, checkSinks: ([String]?, String) -> [String]?, log: ProblemLog
    ) -> RouteTable? {
        let path = reader.childPath("routes")
        guard case .array(let items)? = reader.raw("routes") else {
            log.add(path, "must be an array of routes")
            return nil
        }
        if items.isEmpty { log.add(path, "must not be empty") }
        var routes: [RouteTable.Route] = []
        var ok = !items.isEmpty
        var catchAll: Int?
        for (index, item) in items.enumerated() {
            let itemPath = "\(path)[\(index)]"
            guard let route = ConfigReader(item, path: itemPath, log: log) else {
                ok = false
                continue
            }
            route.rejectUnknownKeys(["types", "match", "sinks", "transform", "attributes"])
            if let catchAll {
                log.warn(itemPath, "is never used: routes[\(catchAll)] has no types or match and takes every event")
            }
            let match = route.raw("match").flatMap { EventFilter.compile($0, path: route.childPath("match"), log: log) }
            if route.has("match"), match == nil { ok = false }
            let transform = route.raw("transform").flatMap { JSONPatch.read($0, path: route.childPath("transform"), log: log) }
            if route.has("transform"), transform == nil { ok = false }
            let attributes = EventAttributes.read(route)
            let types = route.stringArray("types")
            if route.has("types"), types == nil { ok = false }
            guard let sinks = checkSinks(route.stringArray("sinks", required: true), route.childPath("sinks")) else {
                ok = false
                continue
            }
            if types == nil, match == nil, catchAll == nil { catchAll = index }
            routes.append(
                .init(types: types?.map(TypeGlob.init), sinks: sinks, match: match, transform: transform, attributes: attributes))
        }
        return ok ? RouteTable(routes: routes) : nil
    }

    static func readCIDRs(_ reader: ConfigReader, _ key: String, log: ProblemLog) -> [CIDR]? {
        guard let texts = reader.stringArray(key) else { return nil }
        var result: [CIDR] = []
        for (index, text) in texts.enumerated() {
            if let cidr = CIDR(text) {
                result.append(cidr)
            } else {
                log.add("\(reader.childPath(key))[\(index)]", "\"\(text)\" is not an IPv4 or IPv6 address or CIDR")
            }
        }
        return result.count == texts.count ? result : nil
    }
}
