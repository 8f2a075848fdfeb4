import Testing

@testable import Spool

/// SpoolSignal's races: a signal, the wait's own timeout and the waiting task's cancellation
/// arriving together must resume each wait exactly once (a second resume would crash, a
/// missed one would hang this test).
@Suite("Spool signal: signal, timeout and cancellation racing")
struct SpoolSignalTests {
    @Test("a signal sent before the wait is kept; a wait with nothing sent times out")
    func basics() async {
        let signal = SpoolSignal()
        signal.signal()
        #expect(await signal.wait(timeout: .seconds(30)) == .signalled)
        #expect(await signal.wait(timeout: .milliseconds(5)) == .timedOut)
        signal.finish()
        #expect(await signal.wait(timeout: .seconds(30)) == .finished)
    }

    @Test("2,000 waits racing a signaller, their own 1 ms timeouts and cancellation: each resumes once")
    func races() async {
        let signal = SpoolSignal()
        let signaller = Task {
            while !Task.isCancelled {
                signal.signal()
                await Task.yield()
            }
        }
        var outcomes: [SpoolSignal.Wake: Int] = [:]
        for round in 0..<2000 {
            let waiter = Task { await signal.wait(timeout: .milliseconds(1)) }
            if round % 3 == 0 { waiter.cancel() }
            outcomes[await waiter.value, default: 0] += 1
        }
        signaller.cancel()
        _ = await signaller.value
        #expect(outcomes.values.reduce(0, +) == 2000)
        #expect(outcomes[.signalled, default: 0] > 0)
    }
}
