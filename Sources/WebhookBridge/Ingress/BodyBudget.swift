import Synchronization

/// The bytes of request bodies held at once (`limits.maxBufferedBytes`, SPEC section 8), in
/// all and per client address (`limits.maxBufferedBytesPerClient`).
///
/// Bytes are reserved as they arrive (a request's first bytes reserve up to its declared
/// length, at most 64 KiB at a time), never from a promise in a head: 128 connections that
/// declared 1 MiB each and sent nothing once held the whole budget for 30 s, and every
/// honest request was answered `busy`. A head is still refused at once when its declared
/// body could not fit now (``fits(_:client:)``), before the body is read. One client address
/// holds at most its share, so honest clients elsewhere keep the rest.
///
/// State: the bytes held in all and by each client with any held, under one lock; an entry
/// goes when its client holds nothing. Each reservation is released exactly once, by the
/// connection that made it, when its request is answered or its connection closes.
final class BodyBudget: Sendable {
    private struct Held {
        var total = 0
        var byClient: [String: Int] = [:]
    }

    private let limit: Int
    private let perClient: Int
    private let held = Mutex(Held())

    init(limit: Int, perClient: Int) {
        self.limit = limit
        self.perClient = min(perClient, limit)
    }

    /// Bytes reserved now, across all connections.
    var reserved: Int { held.withLock { $0.total } }

    /// True when `bytes` more would fit now for `client`; takes nothing.
    func fits(_ bytes: Int, client: String?) -> Bool {
        held.withLock { held in
            held.total + bytes <= limit && held.byClient[client ?? "", default: 0] + bytes <= perClient
        }
    }

    /// Takes `bytes` for `client` when they fit; false (and nothing taken) when they don't.
    func reserve(_ bytes: Int, client: String?) -> Bool {
        guard bytes > 0 else { return true }
        let key = client ?? ""
        return held.withLock { held in
            let clientHeld = held.byClient[key, default: 0]
            guard held.total + bytes <= limit, clientHeld + bytes <= perClient else { return false }
            held.total += bytes
            held.byClient[key] = clientHeld + bytes
            return true
        }
    }

    func release(_ bytes: Int, client: String?) {
        guard bytes > 0 else { return }
        let key = client ?? ""
        held.withLock { held in
            held.total -= bytes
            let left = held.byClient[key, default: 0] - bytes
            held.byClient[key] = left > 0 ? left : nil
        }
    }
}
