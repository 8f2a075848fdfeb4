import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization
import WebhookCore

/// A Redis client on SwiftNIO: one pipelined connection per event loop of `group` (hiredis
/// only parses the replies).
///
/// A command sent from an event loop's thread (a request's task runs on the loop that read
/// it) goes out on that loop's connection and its reply wakes the task there: no thread hop
/// either way. Many commands are in flight on a connection at once; see
/// ``RedisChannelHandler`` for the pipelining and the per-command timeout, and
/// ``RedisConnection`` for reconnection.
public final class RedisClient: Service {
    /// Why a command got no reply (the connection failed, timed out, or was never made):
    /// always worth retrying, unlike an error reply.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    private let connections: [RedisConnection]
    private let next = Atomic<Int>(0)
    private let timeout: TimeAmount

    /// Throws ``Failure`` when the `rediss://` files can't be loaded (the message names
    /// the option and the file).
    public init(
        endpoint: RedisEndpoint, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        timeoutMilliseconds: Int, logger: Logger
    ) throws(Failure) {
        var setup: [ByteBuffer] = []
        if let password = endpoint.password {
            setup.append(RedisCommand(endpoint.username.map { ["AUTH", $0, password] } ?? ["AUTH", password]).encoded())
        }
        if endpoint.database != 0 { setup.append(RedisCommand(["SELECT", String(endpoint.database)]).encoded()) }
        var serverHostname: String?
        if case .tcp(let host, _) = endpoint.address, (try? SocketAddress(ipAddress: host, port: 0)) == nil {
            serverHostname = host
        }
        let timeout = TimeAmount.milliseconds(Int64(timeoutMilliseconds))
        let settings = RedisConnection.Settings(
            endpoint: endpoint, tls: try endpoint.tls?.makeContext(), serverHostname: serverHostname, timeout: timeout,
            setup: setup, logger: logger)
        self.timeout = timeout
        self.connections = group.makeIterator().map { RedisConnection(eventLoop: $0, settings: settings) }
    }

    /// True unless the last attempt on every connection failed.
    public var isReachable: Bool { connections.contains { $0.reachable.load(ordering: .relaxed) } }

    /// Sends one command and returns its reply; Redis error replies are returned as `.error`,
    /// transport problems thrown as ``Failure``.
    public func execute(_ command: consuming RedisCommand) async throws -> RedisReply {
        let connection = connections.first { $0.eventLoop.inEventLoop }
            ?? connections[next.add(1, ordering: .relaxed).oldValue % connections.count]
        return try await execute(command, on: connection)
    }

    /// Convenience for arguments as bytes.
    public func execute(_ arguments: [[UInt8]]) async throws -> RedisReply {
        try await execute(RedisCommand(arguments))
    }

    /// Convenience for textual arguments.
    public func execute(_ arguments: String...) async throws -> RedisReply {
        try await execute(RedisCommand(arguments))
    }

    private func execute(_ command: consuming RedisCommand, on connection: RedisConnection) async throws -> RedisReply {
        let bytes = command.encoded()
        let deadline = NIODeadline.now() + timeout
        return try await withCheckedThrowingContinuation { continuation in
            let waiter = PendingCommand(continuation: continuation, deadline: deadline)
            if connection.eventLoop.inEventLoop {
                connection.send(bytes, waiter)
            } else {
                connection.eventLoop.execute { connection.send(bytes, waiter) }
            }
        }
    }

    /// Pings Redis on every connection every second while running, so readiness follows the
    /// server even when no webhook arrives (and a lost connection is re-opened by then); on
    /// shutdown lets the commands in flight finish and closes the connections.
    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                while !Task.isCancelled {
                    await withTaskGroup(of: Void.self) { pings in
                        for connection in self.connections {
                            pings.addTask { _ = try? await self.execute(RedisCommand("PING"), on: connection) }
                        }
                    }
                    try? await Task.sleep(for: .seconds(1))
                }
            }
            try? await gracefulShutdown()
            group.cancelAll()
        }
        for connection in connections { try? await connection.close().get() }
    }
}
