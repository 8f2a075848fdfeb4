import NIOCore

/// A connection's one deadline (SPEC section 8): a complete head within `idleTimeoutMs` while
/// idle, a complete body within `bodyTimeoutMs` of its head; none while a request is processed.
/// Time is the event loop's (`EventLoop.now`), so a test on an `EmbeddedEventLoop` moves it.
///
/// One pending timer at most. Moving the deadline later leaves the timer alone (it re-arms
/// itself when it fires early), so a keep-alive connection does not cancel and schedule a
/// timer for every request: the timer fires about once per timeout, not once per request.
struct ConnectionDeadline {
    private(set) var at: NIODeadline?
    private var timer: (callback: NIOScheduledCallback, at: NIODeadline)?

    /// Sets the deadline (nil: none). `expiry` is made only when a timer must be scheduled; no
    /// timer for a connection that is gone (an answer finished after the client left).
    mutating func set<Expiry: NIOScheduledCallbackHandler & Sendable>(
        _ deadline: NIODeadline?, on channel: any Channel, expiry: @autoclosure () -> Expiry
    ) {
        at = deadline
        guard let deadline, channel.isActive else { return }
        if let timer, timer.at <= deadline { return }
        timer?.callback.cancel()
        timer = (try? channel.eventLoop.scheduleCallback(at: deadline, handler: expiry())).map { ($0, deadline) }
    }

    /// The timer fired: true when the deadline has passed (and is cleared); false when there
    /// is none or it is later (then the timer is armed again for it).
    mutating func fired<Expiry: NIOScheduledCallbackHandler & Sendable>(
        on channel: any Channel, expiry: @autoclosure () -> Expiry
    ) -> Bool {
        timer = nil
        guard let at else { return false }
        guard at <= channel.eventLoop.now else {
            set(at, on: channel, expiry: expiry())
            return false
        }
        self.at = nil
        return true
    }

    /// No deadline and no timer (the connection is going away).
    mutating func cancel() {
        at = nil
        timer?.callback.cancel()
        timer = nil
    }
}
