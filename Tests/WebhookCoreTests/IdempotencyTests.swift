import Synchronization
import Testing
import WebhookCore

/// A clock the test moves by hand.
final class ManualClock: Sendable {
    private let now = Mutex(Timestamp(secondsSince1970: 1_700_000_000))
    func read() -> Timestamp { now.withLock { $0 } }
    func advance(seconds: Int64) {
        now.withLock { $0 = Timestamp(millisecondsSince1970: $0.millisecondsSince1970 + seconds * 1000) }
    }
}

@Suite("In-memory idempotency store")
struct IdempotencyTests {
    let key = IdempotencyKey(source: "github", id: "d-1")

    @Test("many concurrent reservations of one id: exactly one wins, the rest see it in progress")
    func race() async {
        let store = MemoryIdempotencyStore(ttlSeconds: 60)
        let outcomes = await withTaskGroup(of: ReservationOutcome.self) { group in
            for _ in 0..<500 { group.addTask { await store.reserve(self.key) } }
            return await group.reduce(into: [ReservationOutcome]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 == .reserved }.count == 1)
        #expect(outcomes.filter { $0 == .inProgress }.count == 499)
    }

    @Test("a committed id is a duplicate until its TTL passes")
    func commitAndExpire() async {
        let clock = ManualClock()
        let store = MemoryIdempotencyStore(ttlSeconds: 60, clock: clock.read)
        #expect(await store.reserve(key) == .reserved)
        await store.commit(key)
        #expect(await store.reserve(key) == .duplicate)
        clock.advance(seconds: 59)
        #expect(await store.reserve(key) == .duplicate)
        clock.advance(seconds: 1)
        #expect(await store.reserve(key) == .reserved)
    }

    @Test("a released id (failed delivery) can be reserved again by the retry")
    func release() async {
        let store = MemoryIdempotencyStore(ttlSeconds: 60)
        #expect(await store.reserve(key) == .reserved)
        #expect(await store.reserve(key) == .inProgress)
        await store.release(key)
        #expect(await store.reserve(key) == .reserved)
    }

    @Test("ids are scoped per source")
    func scopedPerSource() async {
        let store = MemoryIdempotencyStore(ttlSeconds: 60)
        #expect(await store.reserve(IdempotencyKey(source: "a", id: "1")) == .reserved)
        #expect(await store.reserve(IdempotencyKey(source: "b", id: "1")) == .reserved)
    }

    @Test("the store stays within maximumKeys, evicting the oldest accepted ids first")
    func bounded() async {
        let store = MemoryIdempotencyStore(ttlSeconds: 3600, maximumKeys: 100)
        for index in 0..<1000 {
            let key = IdempotencyKey(source: "s", id: "\(index)")
            #expect(await store.reserve(key) == .reserved)
            await store.commit(key)
        }
        #expect(store.count == 100)
        // Exactly the newest 100 are remembered: 900 (the oldest kept) is still a duplicate,
        // 899 (the newest evicted) is new again.
        #expect(await store.reserve(IdempotencyKey(source: "s", id: "999")) == .duplicate)
        #expect(await store.reserve(IdempotencyKey(source: "s", id: "900")) == .duplicate)
        #expect(await store.reserve(IdempotencyKey(source: "s", id: "899")) == .reserved)
        #expect(await store.reserve(IdempotencyKey(source: "s", id: "0")) == .reserved)
    }

    @Test("a large store is sharded and still holds exactly its bound, forgetting the oldest ids first")
    func shardedBound() async {
        // Eight shards: three of 8,193 keys and five of 8,192. Keys fall in them by a hash
        // seeded per process: each gets about 10,000 of the 80,000 (a standard deviation of
        // about 94), so each is filled past its share and forgets about 1,800 of its oldest.
        let store = MemoryIdempotencyStore(ttlSeconds: 3600, maximumKeys: 65_539)
        #expect(store.shardCount == 8)
        for index in 0..<80_000 {
            let key = IdempotencyKey(source: "s", id: "\(index)")
            _ = await store.reserve(key)
            await store.commit(key)
        }
        // Each shard was filled past its share (about 10,000 keys each), so each holds it.
        #expect(store.count == 65_539)
        // A shard's oldest go first: the first ids are forgotten, the last ones remembered.
        var newest = 0
        for index in 70_000..<80_000 where await store.reserve(IdempotencyKey(source: "s", id: "\(index)")) == .duplicate {
            newest += 1
        }
        #expect(newest == 10_000)
        var oldest = 0
        for index in 0..<1_000 where await store.reserve(IdempotencyKey(source: "s", id: "\(index)")) == .reserved {
            oldest += 1
        }
        #expect(oldest == 1_000)
        #expect(MemoryIdempotencyStore(ttlSeconds: 60).shardCount == 64)
        #expect(MemoryIdempotencyStore(ttlSeconds: 60, maximumKeys: 16_383).shardCount == 1)
    }

    @Test("a reservation in progress is never evicted, however many ids come after it")
    func reservationSurvivesEviction() async {
        let store = MemoryIdempotencyStore(ttlSeconds: 3600, maximumKeys: 10)
        let held = IdempotencyKey(source: "s", id: "held")
        #expect(await store.reserve(held) == .reserved)
        for index in 0..<100 {
            let key = IdempotencyKey(source: "s", id: "\(index)")
            #expect(await store.reserve(key) == .reserved)
            await store.commit(key)
        }
        #expect(await store.reserve(held) == .inProgress)
        await store.commit(held)
        #expect(await store.reserve(held) == .duplicate)
    }

    @Test("expired ids go before the bound is reached: a full store of expired ids takes new ones")
    func expiredFirst() async {
        let clock = ManualClock()
        let store = MemoryIdempotencyStore(ttlSeconds: 10, maximumKeys: 1000, clock: clock.read)
        for index in 0..<50 {
            let key = IdempotencyKey(source: "s", id: "\(index)")
            _ = await store.reserve(key)
            await store.commit(key)
        }
        clock.advance(seconds: 11)
        #expect(await store.reserve(IdempotencyKey(source: "s", id: "new")) == .reserved)
        #expect(store.count == 1)
        #expect(await store.reserve(IdempotencyKey(source: "s", id: "0")) == .reserved)
    }
}
