import DurableFile
import Logging
import NIOCore
import ServiceLifecycle
import WebhookCore

/// Appends events as structured CloudEvents JSON lines (SPEC section 7) and answers only once
/// the line is fsynced (``DurableAppender``, with group commit).
public final class FileSink: EventSink {
    public let name: String
    private let pathTemplate: Template
    private let appender: DurableAppender

    /// Opens the sink. A path without placeholders is created (with its directory) right
    /// away, so an unwritable path fails at startup rather than on the first webhook.
    public init(name: String, path: Template, logger: Logger) throws {
        self.name = name
        self.pathTemplate = path
        self.appender = DurableAppender(name: name, logger: logger)
        if !path.description.contains("{") {
            do {
                try appender.prepare(path.description)
            } catch let error as FileError {
                throw Self.sinkError(error, name)
            }
        }
    }

    public var isReady: Bool { appender.isHealthy }

    public func deliver(_ event: WebhookEvent) async throws -> DeliveryReceipt {
        var line = ByteBufferAllocator().buffer(capacity: event.data.readableBytes + 384)
        CloudEventJSON.appendLine(event, to: &line)
        let path = pathTemplate.render(event, sanitizer: .pathComponent)
        do {
            let offset = try await appender.append(line, to: path)
            return DeliveryReceipt(sink: name, place: path, offset: .byte(Int64(offset)))
        } catch let error as FileError {
            throw Self.sinkError(error, name)
        }
    }

    /// A path that can never be written (name too long, a directory in the way) fails the
    /// event for good; anything else is worth a retry from the spool.
    private static func sinkError(_ error: FileError, _ sink: String) -> SinkError {
        error.isPermanent ? .rejected(sink: sink, reason: error.reason) : .unavailable(sink: sink, reason: error.reason)
    }

    /// Waits for shutdown, then lets the running flush finish and closes the files.
    public func run() async throws {
        try? await gracefulShutdown()
        await appender.shutdown()
    }
}

/// A `file` sink's settings: `path`, a template.
public struct FileSinkSettings: SinkSettings {
    public var path: Template

    public var templates: [Template] { [path] }
    public var restartDescription: String { "path=\(path)" }
    public var exclusiveValues: [ExclusiveValue] {
        [ExclusiveValue(key: "path", value: path.description, reason: "two sinks can't append to one file")]
    }
}

/// Makes `file` sinks (`path`).
public struct FileSinkFactory: EventSinkFactory {
    public init() {}

    public var type: String { "file" }
    public var keys: [String] { ["path"] }

    public func read(_ reader: ConfigReader) -> FileSinkSettings? {
        reader.template("path", required: true).map(FileSinkSettings.init)
    }

    public func make(name: String, settings: FileSinkSettings, context: SinkContext) throws(ConfigProblem) -> any EventSink {
        do {
            return try FileSink(name: name, path: settings.path, logger: context.logger)
        } catch let error as SinkError {
            throw ConfigProblem(path: "path", message: error.reason)
        } catch {
            throw ConfigProblem(path: "path", message: "\(error)")
        }
    }
}
