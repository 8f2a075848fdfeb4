import NIOSSL
import WebhookCore

extension RedisEndpoint.TLS {
    /// The client's TLS context: TLS 1.2 or later; the server's certificate verified against
    /// the system's trust store, or against `ca` alone, and its name against the URL's host
    /// (NIOSSL's default `fullVerification`); `cert` and `key` presented when the server asks.
    /// Files are read here, once, so a bad one stops the start with its option named.
    func makeContext() throws(RedisClient.Failure) -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        if let caFile {
            let roots = try load("ca", caFile) { try NIOSSLCertificate.fromPEMFile($0) }
            guard !roots.isEmpty else { throw RedisClient.Failure(description: "ca: no certificate in \(caFile)") }
            configuration.trustRoots = .certificates(roots)
        }
        if let certificateFile, let keyFile {
            let chain = try load("cert", certificateFile) { try NIOSSLCertificate.fromPEMFile($0) }
            guard !chain.isEmpty else { throw RedisClient.Failure(description: "cert: no certificate in \(certificateFile)") }
            let key = try load("key", keyFile) { try NIOSSLPrivateKey(file: $0, format: .pem) }
            configuration.certificateChain = chain.map { .certificate($0) }
            configuration.privateKey = .privateKey(key)
        }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw RedisClient.Failure(description: "the TLS files do not make a TLS context (does key belong to cert?): \(error)")
        }
    }

    private func load<T>(_ option: String, _ path: String, _ body: (String) throws -> T) throws(RedisClient.Failure) -> T {
        do {
            return try body(path)
        } catch {
            throw RedisClient.Failure(description: "\(option): cannot load \(path): \(error)")
        }
    }
}
