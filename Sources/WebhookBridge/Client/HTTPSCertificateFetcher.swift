import NIOCore
import NIOSSL
import WebhookCore
import WebhookProviders

/// Fetches SNS signing certificates (and SubscribeURLs) over HTTPS with the project's client:
/// TLS verified against the system trust roots plus an optional CA file, a 5 s timeout, at
/// most 64 KiB of body. Runs on NIO's event loops; the awaiting request's task is suspended,
/// never blocked.
public struct HTTPSCertificateFetcher: CertificateFetcher {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    let timeout: TimeAmount

    public init(timeout: TimeAmount = .seconds(5)) { self.timeout = timeout }

    public func publicKey(at url: String, caFile: String?) async throws -> [UInt8] {
        let body = try await fetch(url, caFile: caFile, expectingOK: true).body
        do {
            let certificate = try NIOSSLCertificate(bytes: body, format: .pem)
            return try certificate.extractPublicKey().toSPKIBytes()
        } catch {
            throw CertificateFetchFailure(description: "\(url) is not a PEM certificate", isDefinite: true)
        }
    }

    public func document(at url: String, caFile: String?) async throws -> [UInt8] {
        try await fetch(url, caFile: caFile, expectingOK: true).body
    }

    public func get(_ url: String, caFile: String?) async throws -> Int {
        Int(try await fetch(url, caFile: caFile, expectingOK: false).status.code)
    }

    private func fetch(_ url: String, caFile: String?, expectingOK: Bool) async throws -> WebhookClient.Response {
        guard let target = HTTPSURL(url) else { throw Failure(description: "\(url) is not an https URL") }
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caFile { tls.additionalTrustRoots = [.file(caFile)] }
        let response = try await WebhookClient.send(
            host: target.host, port: target.port, method: .GET, path: target.path, timeout: timeout, tls: tls,
            maximumBodyBytes: 65536)
        if expectingOK, response.status != .ok {
            // A 4xx is the host's final word; a 5xx may pass.
            throw CertificateFetchFailure(
                description: "\(url) answered \(response.status.code)", isDefinite: (400..<500).contains(response.status.code))
        }
        return response
    }
}

/// `https://host[:port]/path?query`, split for the client.
struct HTTPSURL {
    let host: String
    let port: Int
    let path: String

    init?(_ url: String) {
        guard url.hasPrefix("https://") else { return nil }
        let rest = url.dropFirst(8)
        let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = rest[..<slash]
        let path = rest[slash...]
        self.path = path.isEmpty ? "/" : (path.hasPrefix("?") ? "/" + path : String(path))
        if let colon = authority.lastIndex(of: ":"), !authority.hasSuffix("]") {
            guard let port = Int(authority[authority.index(after: colon)...]) else { return nil }
            host = String(authority[..<colon])
            self.port = port
        } else {
            host = String(authority)
            port = 443
        }
        if host.isEmpty || host.contains("@") { return nil }
    }
}
