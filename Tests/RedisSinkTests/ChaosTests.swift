import BridgeTestSupport
import Foundation
import Synchronization
import Testing
import WebhookBridge
import WebhookCore

@Suite("Chaos: a sink outage and kill -9 under load", .serialized)
struct ChaosTests {
    @Test("every event answered 2xx is in Redis afterwards; none answered otherwise is counted as accepted")
    func outageAndKill() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        // Redis itself must keep what it acknowledged across its own kill for the check to be fair.
        try FileManager.default.createDirectory(atPath: directory.file("redis"), withIntermediateDirectories: true)
        let redis = try RedisServer(persistentIn: directory.file("redis"))
        defer { redis.stop() }
        let port = try RedisServer.freePort()
        // Spooled events retried within a second: the default backoff grows to 5 minutes,
        // longer than an outage in this test lasts.
        let config = directory.file("config.json")
        try Data(
            """
            {"listen": {"host": "127.0.0.1", "port": \(port)},
             "limits": {"ackTimeoutMs": 500},
             "spool": {"directory": "\(directory.file("spool"))", "maxBytes": 104857600, "retry": {"initialMs": 100, "maxMs": 1000}},
             "sinks": {"jobs": {"type": "redis", "url": "\(redis.url)", "stream": "webhooks:{source}"}},
             "sources": {"gh": {"path": "/gh", "verify": {"scheme": "github", "secrets": ["gh-secret"]}, "sinks": ["jobs"]}}}
            """.utf8
        ).write(to: URL(fileURLWithPath: config))

        let traffic = Traffic(port: port)
        // Polls the providers' progress; fails the test rather than hang if it stalls.
        func waitForMore(_ count: Int) async {
            let target = traffic.answered + count
            let deadline = ContinuousClock.now + .seconds(60)
            while traffic.answered < target {
                guard ContinuousClock.now < deadline else {
                    Issue.record("only \(traffic.answered) of \(target) requests answered after 60 s")
                    return
                }
                try? await Task.sleep(for: .milliseconds(10))
            }
        }

        var bridge: BridgeProcess? = try BridgeProcess(config: config)
        let firstLoad = traffic.start()
        await waitForMore(100)
        redis.stop()  // the sink goes away: events are spooled
        await waitForMore(100)
        try redis.start()  // and comes back
        await waitForMore(100)
        bridge?.kill9()  // the bridge dies mid-load
        bridge = nil
        await traffic.stop(firstLoad)

        bridge = try BridgeProcess(config: config)  // restarted on the same spool
        let secondLoad = traffic.start()
        await waitForMore(100)
        await traffic.stop(secondLoad)

        let statuses = traffic.answers.withLock { $0 }
        let accepted = Set(statuses.filter { $0.value == 200 || $0.value == 202 }.keys)
        #expect(statuses.values.contains(202), "the outage never spooled anything: \(Set(statuses.values))")
        #expect(accepted.count > 300)

        // The forwarder drains the spool into Redis; then every accepted id must be there.
        let client = RedisClientForTest(url: redis.url)
        var inRedis: Set<String> = []
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            inRedis = Set(try await client.streamIDs("webhooks:gh"))
            if accepted.isSubset(of: inRedis) { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        let missing = accepted.subtracting(inRedis)
        #expect(missing.isEmpty, "\(missing.count) accepted events are not in Redis: \(missing.sorted().prefix(10))")
        // Whatever is in Redis was sent by a provider (nothing invented), and nothing that got
        // a definite refusal was counted as accepted.
        #expect(inRedis.isSubset(of: Set(statuses.keys)))
        #expect(accepted.isDisjoint(with: Set(statuses.filter { $0.value >= 400 }.keys)))
        bridge?.kill9()
    }
}

/// Four providers sending unique signed events until stopped; every answer recorded by id
/// (0 when none came: a refused or cut connection).
final class Traffic: Sendable {
    let answers = Mutex([String: Int]())
    private let counter = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    private let port: Int

    init(port: Int) { self.port = port }

    var answered: Int { answers.withLock { $0.count } }

    func start() -> Task<Void, Never> {
        stopping.store(false, ordering: .relaxed)
        return Task {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        while !self.stopping.load(ordering: .relaxed) {
                            let id = "c-\(self.counter.add(1, ordering: .relaxed).oldValue)"
                            let body = #"{"id": "\#(id)"}"#
                            let status = try? await WebhookClient.send(
                                host: "127.0.0.1", port: self.port, path: "/gh", headers: githubHeaders(body, delivery: id),
                                body: Array(body.utf8), timeout: .seconds(5)
                            ).status.code
                            self.answers.withLock { $0[id] = Int(status ?? 0) }
                        }
                    }
                }
            }
        }
    }

    func stop(_ task: Task<Void, Never>) async {
        stopping.store(true, ordering: .relaxed)
        await task.value
    }
}
