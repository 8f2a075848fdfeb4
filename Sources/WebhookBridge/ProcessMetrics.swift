#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import WebhookCore

/// The `process_*` metrics Prometheus users expect of every process, and the build-info
/// gauge, read from `/proc/self` when `/metrics` is scraped (nothing is kept between scrapes).
enum ProcessMetrics {
    /// The bridge's version, for `webhook_bridge_build_info`.
    static let version = "0.3.0"

    /// Appends the metrics in the Prometheus text format.
    static func append(to bytes: inout [UInt8]) {
        var text = ""
        func gauge(_ name: String, _ help: String, _ value: Double?, type: String = "gauge") {
            guard let value else { return }
            text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(format(value))\n"
        }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let stat = statFields()
        if let stat, stat.count > 21, let user = Double(stat[11]), let system = Double(stat[12]) {
            gauge("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", (user + system) / ticks, type: "counter")
            if let started = Double(stat[19]), let boot = bootTime() {
                gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", boot + started / ticks)
            }
        }
        gauge("process_resident_memory_bytes", "Resident memory size in bytes.", residentBytes())
        gauge("process_open_fds", "Number of open file descriptors.", openDescriptors())
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            gauge("process_max_fds", "Maximum number of open file descriptors.", Double(limit.rlim_cur))
        }
        text += "# HELP webhook_bridge_build_info The running webhook-bridge's version.\n# TYPE webhook_bridge_build_info gauge\n"
        text += "webhook_bridge_build_info{version=\"\(version)\"} 1\n"
        bytes += Array(text.utf8)
    }

    private static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }

    /// `/proc/self/stat` after the command name (field 3 on, as index 0).
    private static func statFields() -> [Substring]? {
        guard let text = read("/proc/self/stat"), let close = text.lastIndex(of: ")") else { return nil }
        return text[text.index(after: close)...].split(separator: " ")
    }

    private static func bootTime() -> Double? {
        guard let text = read("/proc/stat") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst(6).trimmingSpaces)
        }
        return nil
    }

    private static func residentBytes() -> Double? {
        guard let text = read("/proc/self/statm") else { return nil }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Double(fields[1]) else { return nil }
        return pages * Double(sysconf(Int32(_SC_PAGESIZE)))
    }

    private static func openDescriptors() -> Double? {
        guard let directory = opendir("/proc/self/fd") else { return nil }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { $0.first }
            if name != UInt8(ascii: ".") { count += 1 }
        }
        return Double(max(0, count - 1))  // not the descriptor reading the directory
    }

    private static func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 8192)
        let count = buffer.withUnsafeMutableBytes { systemRead(fd, $0.baseAddress!, 8192) }
        return count > 0 ? String(decoding: buffer.prefix(count), as: UTF8.self) : nil
    }
}

#if canImport(Glibc)
    private let systemRead = Glibc.read
#elseif canImport(Darwin)
    private let systemRead = Darwin.read
#endif
