// swift-tools-version:6.1
import PackageDescription

/// The data flow is the layout: HTTP ingress (WebhookBridge) -> verify (WebhookProviders) ->
/// idempotency, route (WebhookCore) -> sinks (FileSink, and the Kafka/Redis sinks on the C
/// libraries below), which see WebhookCore alone.
let package = Package(
    name: "webhook-bridge",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "webhook-bridge", targets: ["webhook-bridge"]),
        .library(name: "WebhookCore", targets: ["WebhookCore"]),
        .plugin(name: "CheckWebhookConfig", targets: ["CheckWebhookConfig"]),
    ],
    // Tracing exports spans over OTLP/HTTP with the bridge's own exporter (Sources/WebhookBridge/
    // Tracing: spans written straight into OTLP protobuf or JSON, batched, posted over the
    // bridge's HTTP/1.1 client): no package of its own. OTLPGRPC adds export over OTLP/gRPC
    // (`"protocol": "grpc"`, or an endpoint on port 4317) with swift-otel; off by default:
    // gRPC's packages (grpc-swift 2, its NIO transport, its protobuf glue, swift-certificates)
    // and swift-otel are most of a first build. `swift build --traits OTLPGRPC`
    // (or `make ... SWIFT_BUILD_FLAGS='--traits OTLPGRPC'`).
    traits: [
        .trait(name: "OTLPGRPC", description: "Tracing can export over OTLP/gRPC (swift-otel) as well as OTLP/HTTP")
    ],
    // Exact versions: an application builds what it was tested with. These are the versions
    // the test suite passed with; docs/testing.md lists the whole resolved graph, and a
    // test checks that list against what SwiftPM resolved.
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", exact: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", exact: "2.37.6"),
        .package(url: "https://github.com/apple/swift-log.git", exact: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", exact: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", exact: "2.4.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", exact: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", exact: "2.13.0"),
        // Traces (config `tracing`): the swift-distributed-tracing API's span kinds and, for
        // OTLP/gRPC only (trait OTLPGRPC), swift-otel's exporter, the ecosystem's own. OTLP/HTTP
        // is the bridge's own exporter: swift-otel recorded a span through two AsyncStreams
        // and a task on another thread, 4x the CPU of an untraced request (docs/performance.md).
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", exact: "1.7.3"),
        .package(
            url: "https://github.com/swift-otel/swift-otel.git", exact: "1.6.0",
            traits: [.trait(name: "OTLPGRPC", condition: .when(traits: ["OTLPGRPC"]))]
        ),
        // swift-otel's own `traceparent` parser, to pass a valid one on when no spans are recorded.
        .package(url: "https://github.com/swift-otel/swift-w3c-trace-context.git", exact: "1.0.0"),
    ],
    targets: [
        // MARK: C libraries, touched only by the sink wrapper folders
        .systemLibrary(
            name: "CRdKafka",
            pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"]), .brew(["librdkafka"])]
        ),
        // No pkgConfig here: Debian's hiredis.pc adds -D_FILE_OFFSET_BITS=64, which SwiftPM
        // refuses with a warning on every build. The headers are in the system include path
        // (libhiredis-dev, installed by scripts/install-deps.sh) and the modulemap links it.
        .systemLibrary(name: "CHiredis"),

        // The system libcrypto (OpenSSL 3, libssl-dev), touched only by WebhookCrypto.
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"]), .brew(["openssl@3"])]
        ),
        // Digests, HMAC, constant-time comparison and the Ed25519, P-256 and RSA signature
        // checks, over libcrypto. Not swift-crypto: on Linux that compiles its own BoringSSL,
        // 159 s of a first build here (a third of it), while libcrypto is installed already
        // (librdkafka links it) and is the one the distribution patches.
        .target(name: "WebhookCrypto", dependencies: ["COpenSSL"]),

        // JSON (parser, scanner, writer), Base64, Hex and text trimming: what the providers,
        // the event and the config all read and write, with no dependency of its own.
        .target(name: "WebhookEncoding", dependencies: [.product(name: "NIOCore", package: "swift-nio")]),

        // MARK: The pipeline
        // What every layer shares, and all a sink sees: the event, the sink and idempotency
        // store protocols, routes and templates, the limits. No HTTP types and no provider:
        // a sink does not rebuild when a provider changes.
        .target(
            name: "WebhookCore",
            dependencies: [
                "WebhookCrypto",
                "WebhookEncoding",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // How each provider signs (the catalog: schemes, recipes, the registry), the signer
        // that `sign` and the tests use, and handshake rehearsal. Only the bridge imports it.
        .target(
            name: "WebhookProviders",
            dependencies: [
                "WebhookCore",
                "WebhookCrypto",
                "WebhookEncoding",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // The fsynced append (group commit) and the atomic replace under the file sink and the
        // spool, with errno classification (permanent or transient); nothing of the pipeline.
        .target(
            name: "DurableFile",
            dependencies: [
                "WebhookEncoding",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "FileSink",
            dependencies: [
                "WebhookCore",
                "DurableFile",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "KafkaSink",
            dependencies: [
                "WebhookCore",
                "CRdKafka",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "RedisSink",
            dependencies: [
                "WebhookEncoding", "WebhookCore",
                "CHiredis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                // rediss://
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Delivery onward to an HTTP receiver: its own pooled HTTP/1.1 client on swift-nio, with
        // its own codec (no AsyncHTTPClient, only in the graph with the OTLPGRPC trait; NIO's HTTP
        // codec alone made the sink 1.5x the Kafka sink's CPU), Standard Webhooks signing, the breaker.
        .target(
            name: "HTTPSink",
            dependencies: [
                "WebhookEncoding", "WebhookCore", "WebhookCrypto",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The local durable queue, its forwarders and its room: the whole spool in one folder.
        .target(
            name: "Spool",
            dependencies: [
                "WebhookEncoding", "WebhookCore",
                "DurableFile",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "WebhookBridge",
            dependencies: [
                "WebhookEncoding", "WebhookCore", "WebhookProviders", "WebhookCrypto",
                "FileSink",
                "KafkaSink",
                "RedisSink",
                "HTTPSink",
                "Spool",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "OTel", package: "swift-otel", condition: .when(traits: ["OTLPGRPC"])),
                .product(name: "W3CTraceContext", package: "swift-w3c-trace-context"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The per-layer figure of shaping's CPU (`make bench`); only the libraries it measures.
        .executableTarget(
            name: "shaping-bench",
            dependencies: ["WebhookCore", "WebhookEncoding", .product(name: "NIOCore", package: "swift-nio")],
            path: "bench/shaping-bench"
        ),
        // The memory idempotency store's longest stall while it grows to a million keys.
        .executableTarget(
            name: "store-bench",
            dependencies: ["WebhookCore"],
            path: "bench/store-bench"
        ),
        // What the inspector adds to a request, in a loop (`make bench`).
        .executableTarget(
            name: "inspector-bench",
            dependencies: ["WebhookBridge"],
            path: "bench/inspector-bench"
        ),
        .executableTarget(
            name: "webhook-bridge",
            dependencies: [
                "WebhookEncoding", "WebhookBridge",
                "WebhookCore", "WebhookProviders",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .plugin(
            name: "CheckWebhookConfig",
            capability: .command(
                intent: .custom(
                    verb: "check-webhook-config",
                    description: "Validates the package's webhook-bridge config files with `webhook-bridge check-config`"
                )
            )
            // No dependencies: it builds the webhook-bridge product through the package
            // manager (see the plugin), so `--build-tests` builds no host-tool copy of the graph.
        ),

        // MARK: Tests
        .target(
            name: "BridgeTestSupport",
            dependencies: [
                "WebhookEncoding", "WebhookBridge", "WebhookCore", "WebhookProviders", "WebhookCrypto", "CRdKafka",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Tests/Support"
        ),
        // The sink libraries and the bridge: configs are read with `Bridge.sinkTypes`.
        .testTarget(
            name: "WebhookCoreTests",
            dependencies: [
                "WebhookEncoding", "WebhookCore", "WebhookProviders", "WebhookCrypto", "WebhookBridge",
                "FileSink", "KafkaSink", "RedisSink", "BridgeTestSupport",
            ]
        ),
        .testTarget(
            name: "FileSinkTests",
            dependencies: ["WebhookEncoding", "FileSink", "DurableFile", "WebhookCore", "BridgeTestSupport"]),
        .testTarget(
            name: "SpoolTests",
            dependencies: [
                "WebhookEncoding", "Spool", "DurableFile", "FileSink", "WebhookCore", "BridgeTestSupport",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "RedisSinkTests",
            dependencies: [
                "WebhookEncoding", "RedisSink", "WebhookCore", "WebhookProviders", "WebhookBridge", "BridgeTestSupport",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "KafkaSinkTests",
            dependencies: [
                "WebhookEncoding", "KafkaSink", "WebhookCore", "WebhookBridge", "CRdKafka", "BridgeTestSupport",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "WebhookBridgeTests",
            dependencies: [
                "WebhookEncoding", "WebhookBridge", "WebhookCore", "WebhookProviders", "FileSink", "Spool", "CRdKafka",
                "CHiredis",
                "BridgeTestSupport",
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                "WebhookCrypto",
                .product(name: "NIOPosix", package: "swift-nio"),
                // EmbeddedChannel: the connection handler's tests move time instead of sleeping.
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)

// An async function runs on its caller's executor instead of hopping to the generic one at
// every call and return (SE-0461). The bridge has no actors: a request's functions all run on
// its event loop's task executor anyway, and each hop cost a `swift_task_switch` that looks
// the task's executor preference up under the task's status lock, 14 times per request.
for target in package.targets where target.type == .regular || target.type == .executable {
    target.swiftSettings = (target.swiftSettings ?? []) + [.enableUpcomingFeature("NonisolatedNonsendingByDefault")]
}
