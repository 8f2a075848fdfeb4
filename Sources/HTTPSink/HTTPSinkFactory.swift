import NIOSSL
import WebhookCore

/// Makes `http` sinks.
public struct HTTPSinkFactory: EventSinkFactory {
    public init() {}

    public var type: String { "http" }
    public var keys: [String] {
        ["url", "headers", "timeoutMs", "mode", "sign", "maxInFlight", "ca", "certificate", "privateKey", "breaker"]
    }

    public func read(_ reader: ConfigReader) -> HTTPSinkSettings? { HTTPSinkSettings.read(reader) }

    /// The TLS files load into a context (offline: no connection is made).
    public func validate(_ settings: HTTPSinkSettings, limits: BridgeLimits) -> [ConfigProblem] {
        guard settings.secure else { return [] }
        do {
            _ = try Self.tlsContext(settings)
            return []
        } catch {
            return [error]
        }
    }

    public func make(name: String, settings: HTTPSinkSettings, context: SinkContext) throws(ConfigProblem) -> any EventSink {
        let tls = settings.secure ? try Self.tlsContext(settings) : nil
        return HTTPSink(name: name, settings: settings, tls: tls, logger: context.logger)
    }

    /// TLS 1.2 or later; the receiver's certificate verified against the system's trust
    /// store, or `ca` alone, and its name against the URL's host; `certificate` and
    /// `privateKey` presented when the receiver asks for a client certificate.
    static func tlsContext(_ settings: HTTPSinkSettings) throws(ConfigProblem) -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        if let caFile = settings.caFile {
            let roots = try load("ca", caFile) { try NIOSSLCertificate.fromPEMFile($0) }
            guard !roots.isEmpty else { throw ConfigProblem(path: "ca", message: "no certificate in \(caFile)") }
            configuration.trustRoots = .certificates(roots)
        }
        if let certificateFile = settings.certificateFile, let keyFile = settings.privateKeyFile {
            let chain = try load("certificate", certificateFile) { try NIOSSLCertificate.fromPEMFile($0) }
            guard !chain.isEmpty else {
                throw ConfigProblem(path: "certificate", message: "no certificate in \(certificateFile)")
            }
            let key = try load("privateKey", keyFile) { try NIOSSLPrivateKey(file: $0, format: .pem) }
            configuration.certificateChain = chain.map { .certificate($0) }
            configuration.privateKey = .privateKey(key)
        }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw ConfigProblem(
                path: "privateKey",
                message: "the TLS files do not make a TLS context (does privateKey belong to certificate?): \(error)")
        }
    }

    private static func load<T>(_ key: String, _ path: String, _ body: (String) throws -> T) throws(ConfigProblem) -> T {
        do {
            return try body(path)
        } catch {
            throw ConfigProblem(path: key, message: "cannot load \(path): \(error)")
        }
    }
}
