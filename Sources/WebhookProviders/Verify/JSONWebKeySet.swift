import Foundation
import Synchronization
import WebhookCore
import WebhookCrypto
import WebhookEncoding

/// A JSON Web Key Set (RFC 7517) as the `jwt` scheme uses one: the RSA and P-256 signing keys
/// of a `verify.jwksUrl`, by `kid`, fetched when a token names a key not yet known, at most
/// once a minute (a flood of made-up `kid`s makes one fetch a minute, not one a request).
/// Requests waiting for a fetch share it. A fetch that fails (a timeout, a 5xx) answers 503
/// so the sender retries; a set that answers but lacks the token's key refuses it (401).
final class JSONWebKeySet: Sendable {
    let url: String
    let caFile: String?
    /// The least time between two fetches.
    static let refreshInterval: Duration = .seconds(60)
    /// The most keys kept from one set.
    static let maximumKeys = 64

    struct Keys: Sendable {
        var byID: [(kid: String?, key: JSONWebToken.Key)] = []
    }

    /// The least time before a failed fetch is tried again (meanwhile: 503).
    static let retryInterval: Duration = .seconds(10)

    private struct State {
        var keys = Keys()
        /// When the set was last fetched successfully.
        var fetchedAt: ContinuousClock.Instant?
        var fetching: Task<Keys, any Error>?
        var failure: (at: ContinuousClock.Instant, description: String)?
    }

    private let state = Mutex(State())

    init(url: String, caFile: String?) {
        self.url = url
        self.caFile = caFile
    }

    enum Setting {
        case none
        case set(JSONWebKeySet)
        case failed
    }

    /// `verify.jwksUrl` (https, else `fallback`) and `verify.caFile` (readable, and only with
    /// a URL), problems recorded at their paths.
    static func read(_ reader: ConfigReader, default fallback: String? = nil) -> Setting {
        guard let url = reader.string("jwksUrl") ?? fallback else {
            if reader.has("caFile") {
                reader.problem(at: "caFile", "is only used with jwksUrl")
                return .failed
            }
            return .none
        }
        guard url.hasPrefix("https://"), url.count > 8 else {
            reader.problem(at: "jwksUrl", "must be an https:// URL (the key set is fetched over TLS)")
            return .failed
        }
        let caFile = reader.string("caFile")
        if let caFile, !FileManager.default.isReadableFile(atPath: caFile) {
            reader.problem(at: "caFile", "cannot read \(caFile)")
            return .failed
        }
        return .set(JSONWebKeySet(url: url, caFile: caFile))
    }

    /// The keys a token naming `kid` (nil: none named) may be signed with: the set's keys
    /// with that `kid` (all of them without one), fetched first when the set has none such
    /// and was not fetched in the last minute.
    func keys(for kid: String?, fetcher: any CertificateFetcher) async throws(VerificationFailure) -> [JSONWebToken.Key] {
        enum Step {
            case found([JSONWebToken.Key])
            case wait(Task<Keys, any Error>)
            case failed(String)
        }
        let now = ContinuousClock.now
        let step = state.withLock { state -> Step in
            let found = Self.matching(state.keys, kid)
            if !found.isEmpty { return .found(found) }
            if let task = state.fetching { return .wait(task) }
            if let failure = state.failure, now - failure.at < Self.retryInterval { return .failed(failure.description) }
            if let fetchedAt = state.fetchedAt, now - fetchedAt < Self.refreshInterval { return .found([]) }
            let (url, caFile) = (self.url, self.caFile)
            let task = Task { () throws -> Keys in
                do {
                    let keys = try Self.parse(try await fetcher.document(at: url, caFile: caFile))
                    self.state.withLock {
                        $0.keys = keys
                        $0.fetching = nil
                        $0.fetchedAt = .now
                        $0.failure = nil
                    }
                    return keys
                } catch {
                    self.state.withLock {
                        $0.fetching = nil
                        $0.failure = (.now, "\(error)")
                    }
                    throw error
                }
            }
            state.fetching = task
            return .wait(task)
        }
        switch step {
        case .failed(let description):
            throw .unavailable("cannot fetch \(url) (tried again after 10 s): \(description)")
        case .found(let keys):
            guard !keys.isEmpty else {
                throw .invalid("the key set at \(url) has no key \(kid.map { "with kid \($0.prefix(64))" } ?? "")")
            }
            return keys
        case .wait(let task):
            let keys: Keys
            do {
                keys = try await task.value
            } catch {
                throw .unavailable("cannot fetch \(url): \(error)")
            }
            let found = Self.matching(keys, kid)
            guard !found.isEmpty else {
                throw .invalid("the key set at \(url) has no key \(kid.map { "with kid \($0.prefix(64))" } ?? "")")
            }
            return found
        }
    }

    private static func matching(_ keys: Keys, _ kid: String?) -> [JSONWebToken.Key] {
        keys.byID.filter { kid == nil || $0.kid == kid }.map(\.key)
    }

    /// The RSA (2048 bits or more) and P-256 keys of a set; others (encryption keys, other
    /// curves, symmetric keys) are left out. Not a set at all is a definite failure.
    static func parse(_ bytes: [UInt8]) throws -> Keys {
        guard let document = try? JSONParser.parse(bytes), case .array(let entries)? = document["keys"]
        else { throw CertificateFetchFailure(description: "not a JSON Web Key Set (no keys array)", isDefinite: true) }
        var keys = Keys()
        for entry in entries.prefix(maximumKeys) {
            if let use = entry["use"]?.scalarText, use != "sig" { continue }
            let kid = entry["kid"]?.scalarText
            switch entry["kty"]?.scalarText {
            case "RSA":
                guard let n = entry["n"]?.scalarText.flatMap({ JSONWebToken.base64URL($0[...]) }),
                    let e = entry["e"]?.scalarText.flatMap({ JSONWebToken.base64URL($0[...]) }),
                    let key = RSAPublicKey(modulus: n, exponent: e)
                else { continue }
                keys.byID.append((kid, .rsa(key)))
            case "EC":
                guard entry["crv"]?.scalarText == "P-256",
                    let x = entry["x"]?.scalarText.flatMap({ JSONWebToken.base64URL($0[...]) }),
                    let y = entry["y"]?.scalarText.flatMap({ JSONWebToken.base64URL($0[...]) }),
                    let key = P256PublicKey(x: x, y: y)
                else { continue }
                keys.byID.append((kid, .ec(key)))
            default:
                continue
            }
        }
        return keys
    }
}
