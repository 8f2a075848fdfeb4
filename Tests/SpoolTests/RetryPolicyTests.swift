import Testing
import WebhookCore

@testable import Spool

@Suite("spool.retry: the backoff's schedule and the horizon")
struct RetryPolicyTests {
    @Test("the defaults: waits of up to 0.5, 1, 2, 4 ... s, never more than 5 minutes, full jitter below the ceiling")
    func defaultSchedule() {
        let policy = RetryPolicy()
        let ceilings = (1...12).map { policy.ceiling(afterFailures: $0) }
        #expect(
            ceilings == [
                .milliseconds(500), .seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(16), .seconds(32),
                .seconds(64), .seconds(128), .seconds(256), .seconds(300), .seconds(300),
            ])
        #expect(policy.ceiling(afterFailures: 10_000) == .seconds(300))
        // Full jitter: anywhere from nothing to the ceiling.
        #expect(policy.delay(afterFailures: 3, fraction: 0) == .zero)
        #expect(policy.delay(afterFailures: 3, fraction: 0.5) == .seconds(1))
        for _ in 0..<100 {
            let wait = policy.delay(afterFailures: 4)
            #expect(wait >= .zero && wait < .seconds(4))
        }
    }

    @Test("another multiplier and ceiling; the horizon counts from the event's receipt")
    func customSchedule() {
        let policy = RetryPolicy(initial: .milliseconds(100), maximum: .milliseconds(1000), multiplier: 3, maxAge: .seconds(60))
        #expect(
            (1...4).map { policy.ceiling(afterFailures: $0) } == [
                .milliseconds(100), .milliseconds(300), .milliseconds(900), .milliseconds(1000),
            ])
        let received = Timestamp(secondsSince1970: 1_000)
        #expect(!policy.isExpired(received: received, now: Timestamp(millisecondsSince1970: 1_059_999)))
        #expect(policy.isExpired(received: received, now: Timestamp(secondsSince1970: 1_060)))
    }
}
