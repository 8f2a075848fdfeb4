/// The last `capacity` elements appended, each numbered in order from `base + 1`: the oldest
/// makes room for the newest, so what a ring holds is bounded whatever the load. Not locked:
/// its owner holds it in a `Mutex`.
struct SequenceRing<Element> {
    private var slots: [(sequence: UInt64, element: Element)?]
    /// Where the next element goes.
    private var next = 0
    private(set) var lastSequence: UInt64
    /// The number before the first element's.
    let base: UInt64

    init(capacity: Int, base: UInt64 = 0) {
        slots = Array(repeating: nil, count: max(1, capacity))
        self.base = base
        lastSequence = base
    }

    var capacity: Int { slots.count }

    /// Keeps `element` in place of the oldest one when full; returns its sequence number and
    /// the element it replaced, so that the owner releases that one after its lock (freeing a
    /// record inside the lock would make the other event loops wait for it).
    mutating func append(_ element: consuming Element) -> (sequence: UInt64, evicted: Element?) {
        lastSequence += 1
        var slot: (sequence: UInt64, element: Element)? = (lastSequence, element)
        swap(&slot, &slots[next])
        next = (next + 1) % slots.count
        return (lastSequence, slot.map { $0.element })
    }

    /// The slot of `sequence` while it is held.
    private func index(of sequence: UInt64) -> Int? {
        guard sequence > 0, sequence <= lastSequence, lastSequence - sequence < UInt64(slots.count) else { return nil }
        let back = Int(lastSequence - sequence)
        let index = (next - 1 - back + 2 * slots.count) % slots.count
        return slots[index]?.sequence == sequence ? index : nil
    }

    /// The element numbered `sequence`, while it is held.
    func element(_ sequence: UInt64) -> Element? { index(of: sequence).flatMap { slots[$0]?.element } }

    /// Changes the element numbered `sequence` in place, while it is held (a result that came
    /// after its record was made).
    mutating func update(_ sequence: UInt64, _ change: (inout Element) -> Void) {
        guard let index = index(of: sequence), var slot = slots[index] else { return }
        slots[index] = nil  // so the change below does not copy the element
        change(&slot.element)
        slots[index] = slot
    }

    /// The elements held, newest first, those `include` accepts, at most `limit`, starting
    /// below `before` (a sequence number; nil: from the newest).
    func newestFirst(limit: Int, before: UInt64? = nil, where include: (Element) -> Bool) -> [(UInt64, Element)] {
        var found: [(UInt64, Element)] = []
        var index = next
        for _ in 0..<slots.count {
            index = (index - 1 + slots.count) % slots.count
            guard let slot = slots[index] else { break }
            if let before, slot.sequence >= before { continue }
            if include(slot.element) {
                found.append((slot.sequence, slot.element))
                if found.count >= limit { break }
            }
        }
        return found
    }

    /// The elements after `sequence` still held, oldest first, and how many of those after
    /// it the ring has lost (what an event stream resumed with `Last-Event-ID` sends). A
    /// `sequence` below `base` (a number from before this ring) counts from `base`.
    func since(_ sequence: UInt64, limit: Int = .max) -> (elements: [(UInt64, Element)], missed: UInt64) {
        let sequence = max(sequence, base)
        guard sequence < lastSequence else { return ([], 0) }
        let held = min(UInt64(slots.count), lastSequence - base)
        let oldestHeld = lastSequence - held + 1
        let first = max(sequence + 1, oldestHeld)
        var found: [(UInt64, Element)] = []
        found.reserveCapacity(min(limit, Int(lastSequence - first + 1)))
        var wanted = first
        while wanted <= lastSequence && found.count < limit {
            if let index = index(of: wanted), let slot = slots[index] { found.append((slot.sequence, slot.element)) }
            wanted += 1
        }
        return (found, first - (sequence + 1))
    }

    /// Every element held, in no particular order.
    var all: [Element] { slots.compactMap { $0?.element } }
}
