import WebhookEncoding
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A small record (a spool forwarder's position) replaced in place, in one of two
/// checksummed slots of a file whose blocks are allocated when it is created, so that saving
/// it needs no new disk blocks.
///
/// Why not ``AtomicFile``: its temporary file needs a new block, which a full disk refuses,
/// and the spool's disk is full precisely when its forwarder must record progress (forwarded
/// segments are deleted only once a position past them is saved, so a position that can't be
/// saved keeps the disk full and makes the next start send the whole spool again). Writing
/// over bytes the file already has needs no new block on filesystems that write in place
/// (tmpfs, ext4, XFS); on copy-on-write ones (Btrfs, ZFS) it may still fail on a full disk,
/// and the previous record stays.
///
/// Crash safety: a write goes to the slot that does not hold the newest record, with a
/// sequence number one higher, then `fdatasync`. A crash or `kill -9` at any instant leaves
/// the newest record whole, and the slot being written either whole (it then wins) or torn
/// (its checksum fails, so the other one wins): the old record or the new one, never a torn
/// one. The slots are a block apart, so writing one never rewrites the other's block.
///
/// One writer per file at a time (the spool's saves of one queue run one after another);
/// reads may run at any time.
public enum SlotFile {
    public typealias Failure = AtomicFile.Failure

    /// The largest record a slot holds.
    public static let capacity = 256
    static let slotBytes = 4096
    /// A slot: `magic` (4 bytes), sequence (8, little-endian), record length (2), the record,
    /// then the CRC-32 of everything before it (4).
    static let magic: [UInt8] = Array("WBS1".utf8)
    static let overhead = 18

    /// The newest whole record in `path`, or nil when the file is missing or holds none.
    public static func read(_ path: String) -> [UInt8]? {
        guard let bytes = AtomicFile.contents(of: path, limit: 2 * slotBytes) else { return nil }
        return newest(in: bytes)?.record
    }

    /// Saves `record` (at most ``capacity`` bytes) in place, in the slot not holding the newest
    /// record. A missing file is created whole by an atomic replace, which needs room once.
    /// On failure the previous record is still the newest.
    public static func write(_ path: String, _ record: [UInt8]) throws(Failure) {
        precondition(record.count <= capacity, "a slot record holds at most \(capacity) bytes")
        let fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else {
            guard errno == ENOENT else { throw AtomicFile.failure("open", path) }
            var file = [UInt8](repeating: 0, count: 2 * slotBytes)
            let slot = encode(record, sequence: 1)
            file.replaceSubrange(0..<slot.count, with: slot)
            try AtomicFile.replace(path, with: file)
            return
        }
        defer { close(fd) }
        var existing = [UInt8](repeating: 0, count: 2 * slotBytes)
        let count = existing.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, $0.count, 0) }
        guard count >= 0 else { throw AtomicFile.failure("read", path) }
        let current = newest(in: Array(existing.prefix(count)))
        let slot = encode(record, sequence: (current?.sequence ?? 0) + 1)
        let offset = current.map { (1 - $0.slot) * slotBytes } ?? 0
        let written = slot.withUnsafeBytes { pwrite(fd, $0.baseAddress!, $0.count, off_t(offset)) }
        guard written == slot.count else { throw AtomicFile.failure("write", path) }
        guard fdatasync(fd) == 0 else { throw AtomicFile.failure("fsync", path) }
    }

    static func encode(_ record: [UInt8], sequence: UInt64) -> [UInt8] {
        var slot = magic
        slot.reserveCapacity(overhead + record.count)
        withUnsafeBytes(of: sequence.littleEndian) { slot.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt16(record.count).littleEndian) { slot.append(contentsOf: $0) }
        slot.append(contentsOf: record)
        withUnsafeBytes(of: CRC32.checksum(slot).littleEndian) { slot.append(contentsOf: $0) }
        return slot
    }

    /// The slot (0 or 1) holding the whole record with the highest sequence in `file`.
    static func newest(in file: [UInt8]) -> (slot: Int, sequence: UInt64, record: [UInt8])? {
        var best: (slot: Int, sequence: UInt64, record: [UInt8])?
        for slot in 0..<2 where file.count >= slot * slotBytes + overhead {
            let bytes = file[(slot * slotBytes)...]
            let start = bytes.startIndex
            guard bytes.starts(with: magic) else { continue }
            let sequence = integer(UInt64.self, bytes, at: start + 4)
            let length = Int(integer(UInt16.self, bytes, at: start + 12))
            let end = start + 14 + length
            guard length <= capacity, end + 4 <= bytes.endIndex,
                integer(UInt32.self, bytes, at: end) == CRC32.checksum(bytes[start..<end])
            else { continue }
            if sequence > best?.sequence ?? 0 { best = (slot, sequence, Array(bytes[(start + 14)..<end])) }
        }
        return best
    }

    private static func integer<T: FixedWidthInteger>(_: T.Type, _ bytes: ArraySlice<UInt8>, at index: Int) -> T {
        bytes[index..<(index + MemoryLayout<T>.size)].reversed().reduce(T.zero) { $0 << 8 | T($1) }
    }
}
