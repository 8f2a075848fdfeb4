import NIOSSL
import Synchronization
import WebhookCore

/// The server's TLS context (`listen.tls`), replaceable on SIGHUP: connections opened after a
/// reload use the new certificate, open ones keep theirs.
public final class TLSSettings: Sendable {
    private let current: Mutex<NIOSSLContext>

    /// Loads the PEM certificate chain and private key; throws a `BridgeSetupError` that
    /// names the file and what is wrong with it.
    public init(_ tls: BridgeConfig.TLS) throws {
        self.current = Mutex(try Self.makeContext(tls))
    }

    var context: NIOSSLContext { current.withLock { $0 } }

    /// Loads new files; the running context stays if they are bad.
    public func reload(_ tls: BridgeConfig.TLS) throws {
        let context = try Self.makeContext(tls)
        current.withLock { $0 = context }
    }

    static func makeContext(_ tls: BridgeConfig.TLS) throws -> NIOSSLContext {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(tls.certificate)
        } catch {
            throw BridgeSetupError("listen.tls.certificate: cannot load \(tls.certificate): \(error)")
        }
        guard !chain.isEmpty else { throw BridgeSetupError("listen.tls.certificate: no certificate in \(tls.certificate)") }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: tls.privateKey, format: .pem)
        } catch {
            throw BridgeSetupError("listen.tls.privateKey: cannot load \(tls.privateKey): \(error)")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = ["http/1.1"]
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw BridgeSetupError("listen.tls: the certificate and key do not make a TLS context: \(error)")
        }
    }
}
