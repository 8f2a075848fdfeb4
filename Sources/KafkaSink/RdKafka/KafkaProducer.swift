import CRdKafka
import Logging
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A librdkafka producer: messages in, delivery reports out as completions on the sender's
/// event loop (or awaited results).
///
/// librdkafka's events (delivery reports, errors, logs) are drained from its main queue by
/// ``pollEvents(timeoutMilliseconds:)``: while the sink runs, on an event loop that
/// librdkafka wakes when the queue stops being empty (``drainEvents(on:)``; the one C
/// callback only schedules that drain), and once more when the sink stops. Every `send`
/// waits for its message's delivery report, so a successful return means the brokers
/// acknowledged it (`acks=all`).
///
/// The only type in the sink that touches C. `@unchecked Sendable`: the handle is
/// thread-safe by librdkafka's contract and the Swift state is behind a `Mutex`.
final class KafkaProducer: @unchecked Sendable {
    /// A delivery report: where the message landed.
    struct Delivery: Sendable, Equatable {
        let partition: Int32
        let offset: Int64
    }

    /// A failed delivery, with librdkafka's error code.
    struct Failure: Error, Sendable, CustomStringConvertible {
        let code: rd_kafka_resp_err_t
        let description: String

        init(_ code: rd_kafka_resp_err_t) {
            self.code = code
            self.description = String(cString: rd_kafka_err2str(code))
        }

        init(_ code: rd_kafka_resp_err_t, _ description: String) {
            self.code = code
            self.description = description
        }

        /// No retry can fix it (too large, unknown or invalid topic, not authorized): the event
        /// goes to the dead letters, not back to the queue.
        var isPermanent: Bool {
            switch code {
            case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE,
                RD_KAFKA_RESP_ERR_INVALID_RECORD, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
                RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION, RD_KAFKA_RESP_ERR__INVALID_ARG, RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
                RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
                return true
            default:
                return false
            }
        }

        /// The error says this producer instance is done: the broker fenced it or lost track
        /// of its idempotence state (producer id, epoch, sequence numbers). librdkafka 2.0 to
        /// 2.8 (rdkafka_request.c, the same there in every release) reports `PRODUCER_FENCED`
        /// and `INVALID_PRODUCER_EPOCH` from a Produce request only per message, then bumps the
        /// epoch itself, locally, without asking the broker: a broker that fenced the producer
        /// id refuses every bumped epoch too, so only a new producer (a new id) produces again.
        /// `OUT_OF_ORDER_SEQUENCE_NUMBER` on the first request in flight and
        /// `UNKNOWN_PRODUCER_ID` on a batch sent before are fatal errors there, and reach the
        /// delivery reports as well; otherwise librdkafka retries them itself and they never
        /// arrive here. `__FENCED` is its name for a fenced transactional producer.
        static func endsProducer(_ code: rd_kafka_resp_err_t) -> Bool {
            switch code {
            case RD_KAFKA_RESP_ERR_PRODUCER_FENCED, RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH,
                RD_KAFKA_RESP_ERR_UNKNOWN_PRODUCER_ID, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                RD_KAFKA_RESP_ERR__FENCED:
                return true
            default:
                return false
            }
        }
    }

    /// What a send is told when its delivery report arrives.
    typealias Completion = @Sendable (Result<Delivery, Failure>) -> Void

    /// A send waiting for its delivery report, and the event loop its completion runs on
    /// (nil: whichever thread drains the reports).
    private struct Waiter {
        let loop: (any EventLoop)?
        let completion: Completion
    }

    private struct State {
        var waiting: [UInt: Waiter] = [:]
        var nextID: UInt = 1
        var brokersDown = false
        var lastError: String?
        /// Why this instance can never produce again: a fatal error, or a delivery report with
        /// an error that ends the producer (``Failure/endsProducer(_:)``).
        var ended: String?
        /// After shutdown: sends are refused instead of waiting for a drain that is gone.
        var closed = false
        /// Topics whose metadata was asked for (see ``warmUp(topic:)``).
        var warmedTopics: Set<String> = []
        /// Topics whose metadata request waits for the one running, and whether one is.
        var metadataQueue: [String] = []
        var metadataRunning = false
    }

    private let handle: OpaquePointer
    private let queue: OpaquePointer
    private let state = Mutex(State())
    private let logger: Logger
    /// Runs once the C handles are destroyed (the sink counts its live producers).
    private let onDestroy: @Sendable () -> Void
    /// When the producer was made.
    let created = ContinuousClock.now

    /// Creates the producer; throws the property and librdkafka's reason when the
    /// configuration is refused.
    init(configuration: [String: String], logger: Logger, onDestroy: @escaping @Sendable () -> Void = {})
        throws(KafkaConfigurationError)
    {
        let conf = try Self.makeConfiguration(configuration)
        rd_kafka_conf_set_events(conf, Int32(RD_KAFKA_EVENT_DR | RD_KAFKA_EVENT_ERROR | RD_KAFKA_EVENT_LOG))
        var reason = [CChar](repeating: 0, count: 512)
        guard let handle = rd_kafka_new(RD_KAFKA_PRODUCER, conf, &reason, reason.count) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaConfigurationError(property: nil, reason: text(of: reason))
        }
        self.handle = handle
        self.queue = rd_kafka_queue_get_main(handle)
        rd_kafka_set_log_queue(handle, queue)
        self.logger = logger
        self.onDestroy = onDestroy
    }

    /// Checks `configuration` against librdkafka without creating a client.
    static func validate(_ configuration: [String: String]) throws(KafkaConfigurationError) {
        rd_kafka_conf_destroy(try makeConfiguration(configuration))
    }

    private static func makeConfiguration(_ configuration: [String: String]) throws(KafkaConfigurationError) -> OpaquePointer {
        let conf = rd_kafka_conf_new()!
        var reason = [CChar](repeating: 0, count: 512)
        // log.queue routes librdkafka's logs to the event queue, so they reach swift-log.
        for (name, value) in configuration.sorted(by: { $0.key < $1.key }) + [("log.queue", "true")] {
            if rd_kafka_conf_set(conf, name, value, &reason, reason.count) != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                throw KafkaConfigurationError(property: name, reason: text(of: reason))
            }
        }
        return conf
    }

    /// A valid address for zero-length values and keys.
    nonisolated(unsafe) private static let emptyByte: UnsafeMutablePointer<UInt8> = {
        let pointer = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
        pointer.initialize(to: 0)
        return pointer
    }()

    deinit {
        let handles = Handles(handle: handle, queue: queue, waker: waker.withLock { $0 }, onDestroy: onDestroy)
        guard retired.load(ordering: .relaxed) else {
            handles.destroy()
            return
        }
        // A replaced producer may be released last by a delivery task on an event loop;
        // rd_kafka_destroy can block for seconds, so it runs on the blocking pool.
        KafkaBlocking.pool.submit { _ in handles.destroy() }
    }

    /// Set when the sink replaced this producer: its last release may happen on any thread.
    private let retired = Atomic<Bool>(false)

    /// Marks the producer as replaced (see `deinit`).
    func retire() { retired.store(true, ordering: .relaxed) }

    /// The C handles, destroyed once; then the waker librdkafka may have called until then.
    private struct Handles: @unchecked Sendable {
        let handle: OpaquePointer
        let queue: OpaquePointer
        let waker: Unmanaged<QueueWaker>?
        let onDestroy: @Sendable () -> Void

        func destroy() {
            rd_kafka_queue_destroy(queue)
            rd_kafka_destroy(handle)
            waker?.release()
            onDestroy()
        }
    }

    // MARK: - Events drained by an event loop

    /// Set by ``drainEvents(on:)``; kept (not released) until the handles are destroyed, as
    /// a librdkafka thread may be calling it.
    private let waker = Mutex<Unmanaged<QueueWaker>?>(nil)

    /// From now on `loop` drains the event queue: librdkafka calls back from its own thread
    /// when the queue stops being empty (`rd_kafka_queue_cb_event_enable`), and the callback
    /// hands `loop` one drain. A delivery report then reaches its request with one wake-up
    /// (the loop's) instead of two (a poll thread's, then the loop's). Once per producer.
    func drainEvents(on loop: any EventLoop) {
        let created = Unmanaged.passRetained(QueueWaker(producer: self, loop: loop))
        let installed = waker.withLock { waker -> Bool in
            guard waker == nil else { return false }
            waker = created
            return true
        }
        guard installed else {
            created.release()
            return
        }
        rd_kafka_queue_cb_event_enable(queue, queueStoppedBeingEmpty, created.toOpaque())
        created.takeUnretainedValue().wake()  // what arrived before
    }

    /// Hands the event queue back to ``pollEvents(timeoutMilliseconds:)`` callers and lets go
    /// of the producer (the waker held it).
    func stopDrainingEvents() {
        guard let current = waker.withLock({ $0 }) else { return }
        rd_kafka_queue_cb_event_enable(queue, nil, nil)
        // A drain still running may hold the last reference: rd_kafka_destroy, which can
        // block for seconds, must not then run on its event loop.
        retire()
        current.takeUnretainedValue().deactivate()
    }

    /// True unless librdkafka reported every broker down since the last successful delivery.
    var isReachable: Bool { state.withLock { !$0.brokersDown && $0.ended == nil } }

    /// Why this producer can never produce again, if it can't: the sink replaces it.
    var endReason: String? { state.withLock { $0.ended } }

    /// Marks the producer as done for `reason` unless it already is; logs it the first time.
    private func end(_ reason: String) {
        let first = state.withLock { state -> Bool in
            guard state.ended == nil else { return false }
            state.ended = reason
            return true
        }
        if first { logger.critical("kafka producer can't produce again; replacing it", metadata: ["kafka.error": "\(reason)"]) }
    }

    /// Raises a fabricated fatal error (`rd_kafka_test_fatal_error`), for tests.
    func raiseFatalErrorForTesting() {
        _ = rd_kafka_test_fatal_error(handle, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, "raised by a test")
    }

    /// Produces one message; `completion` runs once, with its delivery report, on `loop`
    /// (or on whichever thread drains the reports when `loop` is nil). A send refused at
    /// once completes on the caller's thread when that is `loop`.
    ///
    /// The drain hands the reports of one round to each loop in one task, so a loop is woken
    /// once per round, not once per message.
    func send(
        topic: String, key: String, value: ByteBuffer, headerCount: Int,
        headers: (_ add: (_ name: String, _ value: String) -> Void) -> Void, on loop: (any EventLoop)?,
        completion: @escaping Completion
    ) {
        // One lock for the waiter and the topic's warm-up (the state is shared by every loop).
        let registered = state.withLock { state -> Result<(id: UInt, fetch: Bool), Failure> in
            if state.closed { return .failure(Failure(RD_KAFKA_RESP_ERR__DESTROY, "the producer is shut down")) }
            if let ended = state.ended {
                return .failure(Failure(RD_KAFKA_RESP_ERR__FATAL, "the producer can't produce again (\(ended))"))
            }
            let id = state.nextID
            state.nextID &+= 1
            state.waiting[id] = Waiter(loop: loop, completion: completion)
            return .success((id, Self.queueWarmUp(topic, in: &state)))
        }
        let id: UInt
        switch registered {
        case .failure(let failure):
            onLoop(loop) { completion(.failure(failure)) }
            return
        case .success(let registration):
            id = registration.id
            if registration.fetch { KafkaBlocking.pool.submit { [self] _ in fetchQueuedMetadata() } }
        }
        let error = produce(topic: topic, key: key, value: value, headerCount: headerCount, headers: headers, opaque: id)
        if error != RD_KAFKA_RESP_ERR_NO_ERROR, let waiter = state.withLock({ $0.waiting.removeValue(forKey: id) }) {
            onLoop(waiter.loop) { waiter.completion(.failure(Failure(error))) }
        }
    }

    /// `headers` calls its argument with each header, `headerCount` of them at most (the
    /// list's first size).
    private func produce(
        topic: String, key: String, value: ByteBuffer, headerCount: Int,
        headers: (_ add: (_ name: String, _ value: String) -> Void) -> Void, opaque: UInt
    ) -> rd_kafka_resp_err_t {
        let list = rd_kafka_headers_new(headerCount)!
        headers { name, value in
            var name = name
            var value = value
            // Both by pointer and length: a short string passed as a C string is copied to
            // the heap first (it has no bytes of its own to point at), once per header.
            name.withUTF8 { nameBytes in
                value.withUTF8 { bytes in
                    // An empty value stays empty, not null.
                    let pointer = bytes.baseAddress.map(UnsafeRawPointer.init) ?? UnsafeRawPointer(Self.emptyByte)
                    nameBytes.withMemoryRebound(to: CChar.self) { nameText in
                        _ = rd_kafka_header_add(list, nameText.baseAddress, nameText.count, pointer, bytes.count)
                    }
                }
            }
        }
        var key = key
        let result: rd_kafka_resp_err_t = topic.withCString { topicName in
            key.withUTF8 { utf8 in
                let keyBytes = UnsafeRawBufferPointer(utf8)
                return value.withUnsafeReadableBytes { valueBytes in
                    // Kafka reads a NULL pointer as a null value (a tombstone) or a null key;
                    // an empty body or key must stay empty, not null.
                    let valuePointer = valueBytes.baseAddress ?? UnsafeRawPointer(Self.emptyByte)
                    let keyPointer = keyBytes.baseAddress ?? UnsafeRawPointer(Self.emptyByte)
                    // The argument list on the stack: no array per message.
                    return withUnsafeTemporaryAllocation(of: rd_kafka_vu_t.self, capacity: 6) { values in
                        values.initialize(repeating: rd_kafka_vu_t())
                        values[0].vtype = RD_KAFKA_VTYPE_TOPIC
                        values[0].u.cstr = topicName
                        values[1].vtype = RD_KAFKA_VTYPE_VALUE
                        values[1].u.mem.ptr = UnsafeMutableRawPointer(mutating: valuePointer)
                        values[1].u.mem.size = valueBytes.count
                        values[2].vtype = RD_KAFKA_VTYPE_KEY
                        values[2].u.mem.ptr = UnsafeMutableRawPointer(mutating: keyPointer)
                        values[2].u.mem.size = keyBytes.count
                        values[3].vtype = RD_KAFKA_VTYPE_HEADERS
                        values[3].u.headers = list
                        values[4].vtype = RD_KAFKA_VTYPE_MSGFLAGS
                        values[4].u.i = RD_KAFKA_MSG_F_COPY
                        values[5].vtype = RD_KAFKA_VTYPE_OPAQUE
                        values[5].u.ptr = UnsafeMutableRawPointer(bitPattern: opaque)
                        guard let error = rd_kafka_produceva(handle, values.baseAddress, values.count) else {
                            return RD_KAFKA_RESP_ERR_NO_ERROR
                        }
                        let code = rd_kafka_error_code(error)
                        rd_kafka_error_destroy(error)
                        return code
                    }
                }
            }
        }
        // On success librdkafka owns the headers; on failure they are still ours.
        if result != RD_KAFKA_RESP_ERR_NO_ERROR { rd_kafka_headers_destroy(list) }
        return result
    }

    /// Drains librdkafka's event queue for up to `timeoutMilliseconds`, at most
    /// `maximumEvents` events: resolves delivery reports, tracks broker reachability,
    /// forwards logs. Returns the events handled.
    @discardableResult
    func pollEvents(timeoutMilliseconds: Int32, maximumEvents: Int = .max) -> Int {
        var handled = 0
        var timeout = timeoutMilliseconds
        // The lists of the previous round, kept with their capacity (a round normally runs
        // on the waker's loop; a concurrent one, at a stop, makes its own).
        var scratch = pollScratch.withLock { $0.take() } ?? PollScratch()
        defer {
            scratch.completions.run()
            scratch.reports.removeAll(keepingCapacity: true)
            pollScratch.withLock { $0 = scratch }
        }
        while handled < maximumEvents, let event = rd_kafka_queue_poll(queue, timeout) {
            handled += 1
            timeout = 0  // after the first event, take only what is already there
            let type = rd_kafka_event_type(event)
            // Reports gathered so far are not held back behind logging or error handling.
            if type != Int32(RD_KAFKA_EVENT_DR) { scratch.completions.run() }
            switch type {
            case Int32(RD_KAFKA_EVENT_DR):
                scratch.reports.removeAll(keepingCapacity: true)
                var ending: rd_kafka_resp_err_t?
                while let message = rd_kafka_event_message_next(event) {
                    let error = message.pointee.err
                    if error != RD_KAFKA_RESP_ERR_NO_ERROR, Failure.endsProducer(error) { ending = error }
                    scratch.reports.append(
                        Report(
                            id: UInt(bitPattern: message.pointee._private),
                            result: error == RD_KAFKA_RESP_ERR_NO_ERROR
                                ? .success(Delivery(partition: message.pointee.partition, offset: message.pointee.offset))
                                : .failure(Failure(error))))
                }
                state.withLock { state in
                    for report in scratch.reports {
                        if case .success = report.result { state.brokersDown = false }
                        guard let waiter = state.waiting.removeValue(forKey: report.id) else { continue }
                        scratch.completions.add(waiter, report.result)
                    }
                }
                if let ending {
                    // Its own sends fail as transient with this report; the sink then fails
                    // the rest and delivers the backlog with a new producer.
                    end("\(String(cString: rd_kafka_err2name(ending))) in a delivery report: \(Failure(ending).description)")
                }
            case Int32(RD_KAFKA_EVENT_ERROR):
                let code = rd_kafka_event_error(event)
                let text = String(cString: rd_kafka_event_error_string(event))
                let fatal = rd_kafka_event_error_is_fatal(event) != 0
                state.withLock {
                    if code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN { $0.brokersDown = true }
                    $0.lastError = text
                }
                if fatal {
                    // librdkafka's event carries the generic _FATAL; the underlying error says why.
                    var reason = [CChar](repeating: 0, count: 512)
                    let underlying = rd_kafka_fatal_error(handle, &reason, reason.count)
                    end("fatal error \(String(cString: rd_kafka_err2name(underlying))): \(KafkaSinkText.of(reason))")
                } else {
                    logger.warning("kafka error", metadata: ["kafka.error": "\(text)"])
                }
            case Int32(RD_KAFKA_EVENT_LOG):
                var facility: UnsafePointer<CChar>?
                var text: UnsafePointer<CChar>?
                var level: Int32 = 0
                if rd_kafka_event_log(event, &facility, &text, &level) == 0, let text {
                    logger.log(
                        level: level <= 3 ? .error : (level <= 5 ? .notice : .debug), "\(String(cString: text))",
                        metadata: ["kafka.facility": "\(facility.map { String(cString: $0) } ?? "")"])
                }
            default:
                break
            }
            rd_kafka_event_destroy(event)
        }
        return handled
    }

    /// Asks a broker for metadata; true when one answered within the timeout. Used to notice
    /// that brokers are back after librdkafka reported them all down.
    func probeBrokers(timeoutMilliseconds: Int32) -> Bool {
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let error = rd_kafka_metadata(handle, 0, nil, &metadata, timeoutMilliseconds)
        if let metadata { rd_kafka_metadata_destroy(metadata) }
        let reachable = error == RD_KAFKA_RESP_ERR_NO_ERROR
        if reachable { state.withLock { $0.brokersDown = false } }
        return reachable
    }

    /// Asks the brokers for `topic`'s metadata, once per topic, off the caller's thread.
    /// librdkafka 2.0 otherwise learns a new topic's partitions only at its next periodic
    /// metadata refresh: the first message to a topic waited 0.9 s (measured against the mock
    /// cluster), and with it the provider's first request after a start. With the request,
    /// it waits about 2 ms.
    ///
    /// One request at a time, on the blocking pool (the request blocks); not while the brokers
    /// are down (a request would only wait out its timeout); a failed request is tried again
    /// with the topic's next message; at most ``maximumWarmedTopics`` topics, so templated
    /// topic names can't grow the set without bound (later ones wait for the periodic
    /// refresh, as before).
    func warmUp(topic: String) {
        if state.withLock({ Self.queueWarmUp(topic, in: &$0) }) {
            KafkaBlocking.pool.submit { [self] _ in fetchQueuedMetadata() }
        }
    }

    /// Queues `topic`'s metadata request unless it was asked for already; true when the
    /// caller must start the fetch.
    private static func queueWarmUp(_ topic: String, in state: inout State) -> Bool {
        guard !state.brokersDown, state.warmedTopics.count < maximumWarmedTopics,
            state.warmedTopics.insert(topic).inserted
        else { return false }
        state.metadataQueue.append(topic)
        guard !state.metadataRunning else { return false }
        state.metadataRunning = true
        return true
    }

    /// Asks for the queued topics' metadata, one after the other, until none is left.
    private func fetchQueuedMetadata() {
        while let topic = state.withLock({ state -> String? in
            if state.metadataQueue.isEmpty {
                state.metadataRunning = false
                return nil
            }
            return state.metadataQueue.removeFirst()
        }) {
            var error = RD_KAFKA_RESP_ERR__FAIL
            if let topicHandle = rd_kafka_topic_new(handle, topic, nil) {
                var metadata: UnsafePointer<rd_kafka_metadata>?
                error = rd_kafka_metadata(handle, 0, topicHandle, &metadata, 2000)
                if let metadata { rd_kafka_metadata_destroy(metadata) }
                rd_kafka_topic_destroy(topicHandle)
            }
            if error != RD_KAFKA_RESP_ERR_NO_ERROR { _ = state.withLock { $0.warmedTopics.remove(topic) } }
        }
    }

    static let maximumWarmedTopics = 10_000

    /// Waits (blocking) until queued messages are delivered or the timeout passes.
    func flush(timeoutMilliseconds: Int32) -> Bool {
        rd_kafka_flush(handle, timeoutMilliseconds) == RD_KAFKA_RESP_ERR_NO_ERROR
    }

    /// Messages handed to librdkafka and not yet reported.
    var inFlight: Int { state.withLock { $0.waiting.count } }

    /// Refuses further sends, drops what librdkafka still holds (so nothing lands after its
    /// caller was told it failed) and fails every send still waiting. Used after the final
    /// flush on shutdown.
    func failWaiting(_ reason: String) {
        let waiting = state.withLock { state -> [Waiter] in
            state.closed = true
            defer { state.waiting = [:] }
            return Array(state.waiting.values)
        }
        _ = rd_kafka_purge(handle, Int32(RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT))
        var completions = Completions()
        for waiter in waiting { completions.add(waiter, .failure(Failure(RD_KAFKA_RESP_ERR__DESTROY, reason))) }
        completions.run()
    }

    /// What a round of ``pollEvents(timeoutMilliseconds:maximumEvents:)`` gathers into.
    private struct PollScratch {
        var reports: [Report] = []
        var completions = Completions()
    }

    private let pollScratch = Mutex<PollScratch?>(nil)

    /// One message's delivery report, read off librdkafka's event.
    private struct Report {
        let id: UInt
        let result: Result<Delivery, Failure>
    }

    /// Completions gathered in one poll round, grouped by the event loop they run on: one
    /// `execute` per loop and round.
    private struct Completions {
        private var byLoop: [(loop: any EventLoop, calls: [(Completion, Result<Delivery, Failure>)])] = []
        private var here: [(Completion, Result<Delivery, Failure>)] = []

        mutating func add(_ waiter: Waiter, _ result: Result<Delivery, Failure>) {
            // The draining loop's own (half of them with two loops) run here, after the lock,
            // with no list of their own.
            guard let loop = waiter.loop, !loop.inEventLoop else {
                here.append((waiter.completion, result))
                return
            }
            if let index = byLoop.firstIndex(where: { $0.loop === loop }) {
                byLoop[index].calls.append((waiter.completion, result))
            } else {
                byLoop.append((loop, [(waiter.completion, result)]))
            }
        }

        /// Hands each loop its completions and runs the rest here.
        mutating func run() {
            // `add` put only other loops' completions here (the caller's own are in `here`).
            for (loop, calls) in byLoop {
                loop.execute { for (completion, result) in calls { completion(result) } }
            }
            for (completion, result) in here { completion(result) }
            // The lists handed to other loops went with their closures; these keep their room.
            byLoop.removeAll(keepingCapacity: true)
            here.removeAll(keepingCapacity: true)
        }
    }
}

/// Runs `body` on `loop`: now when the caller is already there (or there is no loop),
/// else as a task on it.
func onLoop(_ loop: (any EventLoop)?, _ body: @escaping @Sendable () -> Void) {
    if let loop, !loop.inEventLoop {
        loop.execute(body)
    } else {
        body()
    }
}

/// librdkafka refused a configuration property (or the configuration as a whole).
struct KafkaConfigurationError: Error, Sendable {
    let property: String?
    let reason: String
}

/// The text in a NUL-terminated C buffer.
private func text(of buffer: [CChar]) -> String { KafkaSinkText.of(buffer) }

enum KafkaSinkText {
    static func of(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Wakes an event loop to drain a producer's event queue; librdkafka calls ``wake()`` from
/// its own threads through `queueStoppedBeingEmpty`.
final class QueueWaker: Sendable {
    /// Events handled per turn of the loop.
    static let eventsPerDrain = 64
    private let state: WakerState
    /// Made once: a wake-up hands the loop this closure, so it allocates nothing.
    private let drain: @Sendable () -> Void

    init(producer: KafkaProducer, loop: any EventLoop) {
        let state = WakerState(producer: producer, loop: loop)
        self.state = state
        self.drain = { state.drain() }
    }

    var isActive: Bool { state.producer.withLock { $0 != nil } }

    func deactivate() { state.producer.withLock { $0 = nil } }

    func wake() {
        if state.schedules() { state.loop.execute(drain) }
    }
}

/// A ``QueueWaker``'s state, which its drain closure holds (not the waker: no cycle).
private final class WakerState: Sendable {
    let loop: any EventLoop
    let producer: Mutex<KafkaProducer?>
    /// A drain is scheduled and has not started: further wake-ups are covered by it.
    private let scheduled = Atomic<Bool>(false)

    init(producer: KafkaProducer, loop: any EventLoop) {
        self.producer = Mutex(producer)
        self.loop = loop
    }

    /// True when the caller must schedule a drain.
    func schedules() -> Bool { !scheduled.exchange(true, ordering: .acquiringAndReleasing) }

    func drain() {
        // Cleared before draining: an event enqueued once the queue is empty again
        // schedules the next drain.
        scheduled.store(false, ordering: .releasing)
        // A bounded drain, so a flood of events (librdkafka's debug logs) can't keep the
        // loop from its connections; a full one schedules the next.
        guard let producer = producer.withLock({ $0 }) else { return }
        if producer.pollEvents(timeoutMilliseconds: 0, maximumEvents: QueueWaker.eventsPerDrain)
            == QueueWaker.eventsPerDrain, schedules()
        {
            loop.execute { self.drain() }
        }
    }
}

/// librdkafka's queue callback: runs on a librdkafka thread, must not call librdkafka.
private func queueStoppedBeingEmpty(_ handle: OpaquePointer?, _ opaque: UnsafeMutableRawPointer?) {
    guard let opaque else { return }
    Unmanaged<QueueWaker>.fromOpaque(opaque).takeUnretainedValue().wake()
}

/// Where the Kafka sink's calls into librdkafka that block run: the flush at a stop, broker
/// probes, making a producer, metadata requests, destroying a replaced producer. A NIO
/// thread pool of the sinks' own, not NIO's shared singleton (one thread per core): a
/// backlog of metadata requests (up to 2 s each) or a slow destroy must not hold back the
/// replacement of a fenced producer, nor anything else that uses the shared pool.
enum KafkaBlocking {
    static let pool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 4)
        pool.start()
        return pool
    }()
}
