/// A source's or route's `attributes`: CloudEvent attributes set from templates
/// (`{"subject": "{json:/data/object/id}"}`). `type` replaces the event's type; any other
/// name (`subject`, `dataschema`, an extension) is added to the attributes every sink writes.
/// A template that renders empty sets nothing: CloudEvents attributes are never empty.
public struct EventAttributes: Sendable, Equatable {
    public let templates: [(name: String, template: Template)]

    public static func == (lhs: EventAttributes, rhs: EventAttributes) -> Bool {
        lhs.templates.map(\.name) == rhs.templates.map(\.name) && lhs.templates.map(\.template) == rhs.templates.map(\.template)
    }

    /// Attributes the bridge sets itself (or that hold the body): never from a template.
    public static let reserved: Set<String> = [
        "specversion", "id", "source", "time", "datacontenttype", "data", "data_base64", "webhookscheme", "webhookkey",
        "traceparent", "tracestate", "webhookheaders", "deadlettersink", "deadletterreason",
    ]

    /// Sets the attributes on `event`, each template rendered on the event as it is then.
    public func apply(to event: inout WebhookEvent) {
        for (name, template) in templates {
            let value = template.render(event, sanitizer: .verbatim)
            guard !value.isEmpty else { continue }
            if name == "type" {
                event.type = value
            } else {
                event.setExtensionAttribute(name, value)
            }
        }
    }

    /// The request headers the templates read.
    public var headerNames: [String] { templates.flatMap(\.template.headerNames) }
    /// True when a template reads the body.
    public var usesBodyJSON: Bool { templates.contains { $0.template.usesBodyJSON } }

    /// Reads `attributes` at `path`: names as CloudEvents allows them (lowercase letters and
    /// digits), none the bridge sets itself.
    public static func read(_ reader: ConfigReader) -> EventAttributes? {
        guard let object = reader.object("attributes") else { return nil }
        var templates: [(name: String, template: Template)] = []
        for (name, _) in object.members {
            let valid =
                !name.isEmpty && name.utf8.count <= 20
                && name.utf8.allSatisfy { (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) }
            guard valid else {
                object.problem(at: name, "is not a CloudEvents attribute name: 1 to 20 lowercase letters or digits")
                continue
            }
            guard !reserved.contains(name) else {
                object.problem(
                    at: name, "is set by the bridge itself; attributes may set type, subject, dataschema or an extension")
                continue
            }
            if let template = object.template(name, required: true) { templates.append((name, template)) }
        }
        return EventAttributes(templates: templates)
    }
}
