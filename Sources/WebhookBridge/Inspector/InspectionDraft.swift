import NIOCore
import NIOHTTP1
import Synchronization
import WebhookCore

/// A request's inspector record while the request is handled: the stages note what they
/// learn (through ``RequestTrace``, at the points its span does), and the answer writes it
/// to the ``InspectorLog``. A sink that is not waited for may answer later: its result then
/// updates the record in place.
final class InspectionDraft: Sendable {
    private struct State {
        var request: InspectedRequest
        /// Set once written to the log.
        var sequence: UInt64?
        var outcome: String?
    }

    let log: InspectorLog
    /// The request's headers as kept (cut to their bound): the record's and its event's.
    let headers: HeaderBlock
    /// The body as kept (a slice of the headers' storage), and the request's own: an
    /// event whose data lies within the kept part shares the record's storage.
    private let keptBody: ByteBuffer
    private let body: ByteBuffer?
    private let started = ContinuousClock.now
    private let state: Mutex<State>

    init(
        log: InspectorLog, source: String, method: HTTPMethod, uri: String, client: String?, headers: HTTPHeaders,
        body: ByteBuffer?
    ) {
        self.log = log
        (self.headers, keptBody) = HeaderBlock.capture(
            headers, body: body, headerLimit: InspectorLog.headerBytes, bodyLimit: log.maxBodyBytes)
        self.body = body
        var request = InspectedRequest(time: .now(), source: source, method: method.rawValue, uri: uri, client: client)
        request.headers = self.headers
        request.body = keptBody
        request.bodyBytes = body?.readableBytes ?? 0
        state = Mutex(State(request: request))
    }

    /// An event was taken: kept for the event stream with the request's headers, its data
    /// shared with the record when it is (part of) the body kept.
    func noteTaken(_ event: WebhookEvent) {
        guard let body, let offset = Self.offset(of: event.data, in: body),
            offset + event.data.readableBytes <= keptBody.readableBytes
        else {
            // Not within the kept body: the event outlives the record on headers of its own.
            log.stream(event, keptHeaders: headers.detached())
            return
        }
        var shared = event
        shared.data = keptBody.getSlice(at: keptBody.readerIndex + offset, length: event.data.readableBytes)!
        log.stream(shared, keptHeaders: headers, sharesRecord: true)
    }

    /// Where `part`'s bytes start within `whole`'s, when they are a part of them.
    private static func offset(of part: ByteBuffer, in whole: ByteBuffer) -> Int? {
        part.withUnsafeReadableBytes { part in
            whole.withUnsafeReadableBytes { whole -> Int? in
                guard let partStart = part.baseAddress, let wholeStart = whole.baseAddress else {
                    return part.isEmpty ? 0 : nil
                }
                let offset = wholeStart.distance(to: partStart)
                return offset >= 0 && offset + part.count <= whole.count ? offset : nil
            }
        }
    }

    /// The outcome as the span names it (`accepted`, `rate_limited`, `in_progress`, …).
    func note(outcome: String) { state.withLock { $0.outcome = outcome } }

    /// A refusal's cause and detail, as logged.
    func noteRejection(cause: String, detail: String?) {
        state.withLock {
            $0.request.cause = cause
            $0.request.detail = detail
        }
    }

    func noteKey(_ index: Int?) { state.withLock { $0.request.keyIndex = index } }

    func noteEvent(id: String, type: String) {
        state.withLock {
            $0.request.eventID = id
            $0.request.type = type
        }
    }

    func noteBatch(size: Int) { state.withLock { $0.request.batchSize = size } }

    /// A sink's answer: in the draft, or in the record when it came after the request's.
    func noteDelivery(sink: String, required: Bool, _ result: Result<DeliveryReceipt, SinkError>) {
        var entry = InspectedRequest.SinkResult(sink: sink, required: required)
        switch result {
        case .success(let receipt): entry.receipt = receipt
        case .failure(let error): entry.failure = error.reason
        }
        let recorded = state.withLock { state -> UInt64? in
            if state.sequence == nil { state.request.sinks.append(entry) }
            return state.sequence
        }
        if let recorded { log.update(recorded) { [entry] in $0.sinks.append(entry) } }
    }

    /// A required sink's failure was kept in the spool (`queued`) or the dead letters
    /// (`dead-lettered`).
    func noteFate(sink: String, _ fate: String) {
        state.withLock { state in
            if let index = state.request.sinks.lastIndex(where: { $0.sink == sink }) {
                state.request.sinks[index].fate = fate
            } else {
                var entry = InspectedRequest.SinkResult(sink: sink, required: true)
                entry.fate = fate
                state.request.sinks.append(entry)
            }
        }
    }

    /// Writes the record with the answer: its status, the outcome in the inspector's words,
    /// the latency.
    func finish(answer: BridgeAnswer) {
        let elapsed = ContinuousClock.now - started
        let log = self.log
        state.withLock { state in
            state.request.status = Int(answer.status.code)
            state.request.latencyMicroseconds = Int(
                elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000)
            Self.resolve(&state, answer: answer)
            // Moved, not copied, into the log (a later result updates the log's record), while
            // the draft is locked (the log's lock never waits for a draft's), so a result that
            // comes after this finds the sequence.
            var request = Self.written
            swap(&request, &state.request)
            state.sequence = log.append(request)
        }
    }

    /// What a draft holds once its record is in the log.
    private static let written = InspectedRequest(time: Timestamp(millisecondsSince1970: 0), source: "", method: "", uri: "")

    /// The outcomes the inspector shows as they are; any other is `rejected` with its cause
    /// (the answer's error code when nothing more precise was noted).
    static let shownOutcomes: Set<String> = ["accepted", "queued", "duplicate", "filtered", "handshake"]

    private static func resolve(_ state: inout State, answer: BridgeAnswer) {
        let noted = state.outcome
        if let noted, shownOutcomes.contains(noted) {
            let deadLettered = state.request.sinks.contains { $0.fate == "dead-lettered" }
            state.request.outcome = noted == "queued" && deadLettered ? "dead-lettered" : noted
            return
        }
        state.request.outcome = "rejected"
        if state.request.cause == nil {
            state.request.cause = answer.code ?? noted ?? "status \(answer.status.code)"
        }
    }
}
