// swift-tools-version:6.0
import PackageDescription

let serviceDependencies: [Target.Dependency] = [
    "OrchardServiceKit", "OrchardMessaging", "OrchardStorage", "OrchardSchemas", "OrchardCore",
]

let package = Package(
    name: "orchard",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "checkin-gateway", targets: ["CheckinGateway"]),
        .executable(name: "token-service", targets: ["TokenService"]),
        .executable(name: "profile-signer", targets: ["ProfileSigner"]),
        .executable(name: "abm-sync", targets: ["ABMSync"]),
        .executable(name: "user-enrollment-auth", targets: ["UserEnrollmentAuth"]),
        .executable(name: "orchard-local-broker", targets: ["LocalBroker"]),
        .executable(name: "orchard-bench", targets: ["OrchardBench"]),
        .executable(name: "orchardctl", targets: ["OrchardCtl"]),
        .executable(name: "orchard-sim", targets: ["OrchardSim"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "5.0.1"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    ],
    targets: [
        // C libraries, reached through thin module maps and one C shim for OpenSSL's macros.
        .systemLibrary(name: "CRdKafka", path: "Shared/CRdKafka", pkgConfig: "rdkafka",
                       providers: [.apt(["librdkafka-dev"])]),
        .systemLibrary(name: "CLibPQ", path: "Shared/CLibPQ", pkgConfig: "libpq",
                       providers: [.apt(["libpq-dev"])]),
        .target(name: "COrchardLDAP", path: "Shared/COrchardLDAP",
                linkerSettings: [.linkedLibrary("ldap"), .linkedLibrary("lber")]),
        .target(name: "COrchardCrypto", path: "Shared/COrchardCrypto",
                linkerSettings: [.linkedLibrary("crypto")]),

        // Shared modules.
        .target(name: "OrchardCore", path: "Shared/Core"),
        .target(name: "OrchardCrypto", dependencies: [
            "COrchardCrypto",
        ], path: "Shared/Crypto"),
        .target(name: "OrchardStorage", dependencies: [
            "CLibPQ", "OrchardCore",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        ], path: "Shared/Storage"),
        .target(name: "OrchardObservability", dependencies: [
            "OrchardCore",
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        ], path: "Shared/Observability"),
        .target(name: "OrchardMessaging", dependencies: [
            "CRdKafka", "OrchardStorage", "OrchardObservability", "OrchardCore",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ], path: "Shared/Messaging"),
        .target(name: "OrchardSchemas", dependencies: ["OrchardMessaging", "OrchardCore"], path: "Shared/Schemas"),
        .target(name: "AppleProtocol", dependencies: ["OrchardCore"], path: "Shared/AppleProtocol"),
        .target(name: "OrchardServiceKit", dependencies: [
            "OrchardMessaging", "OrchardStorage", "OrchardObservability", "OrchardCore",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        ], path: "Shared/ServiceKit"),

        // The five services.
        .executableTarget(name: "CheckinGateway", dependencies: serviceDependencies + [
            "OrchardCrypto", "AppleProtocol",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
        ],
                          path: "Services/CheckinGateway"),
        .executableTarget(name: "TokenService", dependencies: serviceDependencies + ["OrchardCrypto"],
                          path: "Services/TokenService"),
        .executableTarget(name: "ProfileSigner", dependencies: serviceDependencies + ["OrchardCrypto", "AppleProtocol"],
                          path: "Services/ProfileSigner"),
        .executableTarget(name: "ABMSync", dependencies: serviceDependencies + [
            "OrchardCrypto",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ], path: "Services/ABMSync"),
        .executableTarget(name: "UserEnrollmentAuth", dependencies: serviceDependencies + [
            "COrchardLDAP", "OrchardCrypto", "AppleProtocol",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
        ],
                          path: "Services/UserEnrollmentAuth"),

        // Local stack and benchmarks.
        .target(name: "LocalBrokerPorts", path: "Deploy/LocalBrokerPorts", linkerSettings: [.linkedLibrary("dl")]),
        .executableTarget(name: "LocalBroker", dependencies: ["CRdKafka", "OrchardSchemas", "LocalBrokerPorts"],
                          path: "Deploy/LocalBroker"),
        .executableTarget(name: "OrchardBench", dependencies: [
            "OrchardMessaging", "OrchardSchemas", "OrchardStorage", "OrchardTestSupport", "AppleProtocol", "OrchardCrypto",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
        ], path: "Benchmarks/OrchardBench"),

        // Operator tools: orchardctl (the admin API) and orchard-sim (simulated devices for every flow).
        .target(name: "OrchardSimulator", dependencies: [
            "AppleProtocol", "OrchardCrypto",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdHTTP2", package: "hummingbird"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        ], path: "Tools/Simulator"),
        .executableTarget(name: "OrchardSim", dependencies: [
            "OrchardSimulator", "AppleProtocol", "OrchardCrypto",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        ], path: "Tools/OrchardSim"),
        .executableTarget(name: "OrchardCtl", dependencies: [
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ], path: "Tools/OrchardCtl"),

        // Tests.
        .testTarget(name: "CryptoTests", dependencies: ["OrchardCrypto"], path: "Tests/CryptoTests"),
        .testTarget(name: "ABMSyncTests", dependencies: ["ABMSync", "OrchardCrypto"], path: "Tests/ABMSyncTests"),
        .testTarget(name: "TokenServiceTests", dependencies: ["TokenService", "OrchardMessaging", "OrchardCrypto"], path: "Tests/TokenServiceTests"),
        .testTarget(name: "ProfileSignerTests", dependencies: ["ProfileSigner", "OrchardSchemas", "OrchardMessaging"], path: "Tests/ProfileSignerTests"),
        .testTarget(name: "CheckinGatewayTests", dependencies: ["CheckinGateway", "OrchardServiceKit", "OrchardStorage", "OrchardCrypto", "OrchardSchemas"],
                    path: "Tests/CheckinGatewayTests"),
        .testTarget(name: "UserEnrollmentAuthTests", dependencies: ["UserEnrollmentAuth", "OrchardSchemas"],
                    path: "Tests/UserEnrollmentAuthTests"),
        .testTarget(name: "StorageTests", dependencies: ["OrchardStorage", "OrchardCore"], path: "Tests/StorageTests"),
        .testTarget(name: "MessagingTests", dependencies: [
            "OrchardMessaging", "OrchardSchemas", "OrchardStorage", "OrchardCrypto", "OrchardTestSupport", "OrchardCore",
        ], path: "Tests/MessagingTests"),
        .testTarget(name: "ServiceKitTests", dependencies: [
            "OrchardServiceKit", "OrchardCore", "OrchardTestSupport", "OrchardStorage", "OrchardMessaging",
            .product(name: "HummingbirdTesting", package: "hummingbird"),
        ], path: "Tests/ServiceKitTests"),
        .target(name: "OrchardTestSupport", dependencies: [
            "AppleProtocol", "OrchardCrypto", "OrchardMessaging", "OrchardSimulator",
            .product(name: "Yams", package: "Yams"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdHTTP2", package: "hummingbird"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
        ], path: "Tests/Support"),
        .testTarget(name: "AppleProtocolTests", dependencies: ["AppleProtocol", "OrchardTestSupport", .product(name: "Yams", package: "Yams")],
                    path: "Tests/AppleProtocolTests"),
        .testTarget(name: "EndToEndTests", dependencies: [
            "AppleProtocol", "OrchardTestSupport", "OrchardCore", "OrchardCrypto", "OrchardMessaging", "OrchardSchemas", "OrchardStorage",
        ], path: "Tests/EndToEndTests"),
        .testTarget(name: "DeployTests", dependencies: ["OrchardSchemas", .product(name: "Yams", package: "Yams")],
                    path: "Tests/DeployTests"),
    ]
)
