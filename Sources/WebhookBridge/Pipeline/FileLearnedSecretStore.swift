import DurableFile
import Foundation
import Synchronization
import WebhookCore
import WebhookEncoding

/// Learned secrets in one file beside the spool, `<spool.directory>/learned-secrets.json`
/// (`{"<source>": ["<secret>", …]}`, mode 0600), replaced atomically and fsynced before a
/// handshake is answered. Read once, then kept in memory: this process is its only writer.
/// Not shared by replicas (the `redis` idempotency store is).
final class FileLearnedSecretStore: LearnedSecretStore {
    let path: String
    /// nil until the file was read.
    private let held = Mutex<[String: [String]]?>(nil)

    init(path: String) { self.path = path }

    /// Far above what the limits let in (100 secrets of 512 bytes per source).
    static let maximumBytes = 4 << 20

    var location: String { path }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    func secrets(for source: String) async throws -> [String] {
        try held.withLock { held in try Self.load(&held, from: path)[source] ?? [] }
    }

    func learn(_ secret: String, for source: String, limit: Int?) async throws -> LearnOutcome {
        try held.withLock { held in
            var all = try Self.load(&held, from: path)
            let mine = all[source] ?? []
            if mine.contains(secret) { return .known }
            if let limit, mine.count >= limit { return .full }
            all[source] = mine + [secret]
            let members = all.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.array($0.value.map(JSONValue.string))) }
            var bytes: [UInt8] = []
            JSONWriter.append(.object(members), to: &bytes)
            do {
                try AtomicFile.replace(path, with: bytes + [0x0A], mode: 0o600)
            } catch {
                throw Failure(description: "\(error)")
            }
            held = all
            return .learned
        }
    }

    /// The file's secrets (an absent file holds none; an unreadable or damaged one is an
    /// error, never taken as empty: that would let a new handshake in).
    private static func load(_ held: inout [String: [String]]?, from path: String) throws -> [String: [String]] {
        if let held { return held }
        var all: [String: [String]] = [:]
        if let bytes = AtomicFile.contents(of: path, limit: Self.maximumBytes + 1) {
            guard bytes.count <= Self.maximumBytes else { throw Failure(description: "\(path) is over 4 MiB") }
            guard case .object(let members)? = try? JSONParser.parse(bytes) else {
                throw Failure(description: "\(path) is not a JSON object of learned secrets")
            }
            for (source, value) in members {
                guard case .array(let items) = value else { throw Failure(description: "\(path): \(source) is not a list") }
                all[source] = items.compactMap(\.scalarText)
            }
        } else if FileManager.default.fileExists(atPath: path) {
            throw Failure(description: "cannot read \(path)")
        }
        held = all
        return all
    }
}
