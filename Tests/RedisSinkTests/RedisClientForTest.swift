import Logging
import RedisSink
import ServiceLifecycle

/// Reads a stream's `id` fields with a client of its own.
struct RedisClientForTest {
    let url: String

    func streamIDs(_ stream: String) async throws -> [String] {
        try await withClient(url) { client in
            guard case .array(let entries) = try await client.execute("XRANGE", stream, "-", "+") else { return [] }
            return entries.compactMap { entry -> String? in
                guard case .array(let parts) = entry, case .array(let fields) = parts[1] else { return nil }
                var index = 0
                while index + 1 < fields.count {
                    if fields[index].text == "id" { return fields[index + 1].text }
                    index += 2
                }
                return nil
            }
        }
    }
}
