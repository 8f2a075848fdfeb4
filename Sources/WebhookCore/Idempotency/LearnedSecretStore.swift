/// Secrets a provider hands over in a handshake instead of the operator writing them in the
/// config (Asana's `X-Hook-Secret`): kept for good, per source, so a restart, a reload and
/// (with a shared store) every replica verify the events signed with them.
public protocol LearnedSecretStore: Sendable {
    /// The secrets learned for `source`, oldest first.
    func secrets(for source: String) async throws -> [String]
    /// Keeps `secret` for `source` unless it is held already, and only while fewer than
    /// `limit` are held (nil: no limit); the check and the addition are one step, so two
    /// replicas answering two handshakes at once can't both pass a limit of one.
    func learn(_ secret: String, for source: String, limit: Int?) async throws -> LearnOutcome
    /// Where the secrets are kept, for logs (`redis`, a file's path).
    var location: String { get }
}

/// What ``LearnedSecretStore/learn(_:for:limit:)`` did.
public enum LearnOutcome: Sendable, Equatable {
    /// Kept now.
    case learned
    /// Held already (the provider retried its handshake).
    case known
    /// Not kept: `limit` secrets are held.
    case full
}
