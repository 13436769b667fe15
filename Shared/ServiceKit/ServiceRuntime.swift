import Foundation
#if canImport(Glibc)
import Glibc
#endif
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import HTTPTypes
import Hummingbird
import Logging
import OrchardMessaging
import OrchardObservability
import OrchardStorage
import ServiceLifecycle

/// What makes one Orchard service: its name, default port, database schema and migrations.
public struct ServiceDefinition: Sendable {
    public let name: String
    public let defaultPort: Int
    public let schema: String
    public let migrations: [Migration]

    public init(name: String, defaultPort: Int, schema: String, migrations: [Migration]) {
        self.name = name
        self.defaultPort = defaultPort
        self.schema = schema
        self.migrations = migrations
    }
}

/// The wiring every service shares: configuration, logging, PostgreSQL (migrated), Kafka producer,
/// the outbox publisher, optional request/reply client, health routes and graceful shutdown.
public final class ServiceRuntime: Sendable {
    public let definition: ServiceDefinition
    public let configuration: ServiceConfiguration
    public let logger: Logger
    public let database: Database
    public let producer: KafkaProducer
    public let outbox: OutboxPublisher
    public let requests: RequestClient?
    /// The consumers that serve requests (not background ones): the service is ready when each has partitions.
    private let servingConsumers = NIOLockedValueBox<[KafkaConsumer]>([])

    private init(definition: ServiceDefinition, configuration: ServiceConfiguration, logger: Logger,
                 database: Database, producer: KafkaProducer, outbox: OutboxPublisher, requests: RequestClient?) {
        self.definition = definition
        self.configuration = configuration
        self.logger = logger
        self.database = database
        self.producer = producer
        self.outbox = outbox
        self.requests = requests
    }

    /// Reads configuration, sets up logging, connects and migrates. Exits the process with a clear
    /// message when configuration is invalid.
    public static func bootstrap(_ definition: ServiceDefinition, needsRequests: Bool = false) async -> ServiceRuntime {
        limitMallocArenas()
        let configuration: ServiceConfiguration
        do {
            configuration = try ServiceConfiguration(service: definition.name, defaultPort: definition.defaultPort)
        } catch {
            writeToStandardError(Data("\(definition.name): configuration error: \(error)\n".utf8))
            exit(2)
        }
        JSONLogHandler.bootstrap(service: definition.name, level: configuration.logLevel)
        var logger = Logger(label: definition.name)
        logger[metadataKey: "instance"] = .string(configuration.instanceID)
        KafkaSettings.routeLibraryLogs(to: logger)
        do {
            let database = try Database(conninfo: configuration.databaseURL, schema: definition.schema,
                                        maxConnections: configuration.databasePoolSize)
            let applied = try await retrying("migrate \(definition.schema)", logger: logger) {
                try await database.migrate(definition.migrations + [MessagingTables.migration(version: 1_000_000)])
            }
            if !applied.isEmpty { logger.info("migrations applied", metadata: ["versions": "\(applied)"]) }
            let producer = try KafkaProducer(settings: configuration.kafka)
            let requests: RequestClient? = needsRequests
                ? try await retrying("open reply channel", logger: logger) {
                    try RequestClient(settings: configuration.kafka, producer: producer,
                                      instanceID: configuration.instanceID, logger: logger)
                }
                : nil
            let outbox = OutboxPublisher(database: database, producer: producer, logger: logger, origin: definition.name)
            return ServiceRuntime(definition: definition, configuration: configuration, logger: logger,
                                  database: database, producer: producer, outbox: outbox, requests: requests)
        } catch {
            logger.critical("start-up failed: \(error)")
            exit(1)
        }
    }

    /// Runs a service's own start-up step; a failure (bad configuration, unreadable key) is logged and ends
    /// the process, as it does for the common settings.
    public func startUp<T>(_ step: () async throws -> T) async -> T {
        do {
            return try await step()
        } catch {
            logger.critical("start-up failed: \(error)")
            exit(2)
        }
    }

    /// The key-encryption key; a configuration error naming `purpose` when it is missing.
    public func requireKeyEncryptionKey(_ purpose: String) throws -> [UInt8] {
        guard let kek = configuration.keyEncryptionKey else {
            throw ConfigurationError("ORCHARD_KEK is required: \(definition.name) \(purpose)")
        }
        return kek
    }

    /// A router with the health routes and the correlation-id middleware installed.
    public func makeRouter<Context: RequestContext>(_ context: Context.Type = BasicRequestContext.self) -> Router<Context>
    where Context.Source == ApplicationRequestContextSource {
        let router = Router(context: Context.self)
        router.add(middleware: ObservabilityMiddleware())
        let serving = servingConsumers
        HealthRoutes.add(to: router, database: database, producer: producer,
                         consumersAssigned: { serving.withLockedValue { $0.allSatisfy(\.hasAssignment) } })
        return router
    }

    /// A consumer-group member of this service (group `orchard.<service>` unless named).
    /// A `background` consumer (nobody waits on its messages: the activity log, commands from Kafka)
    /// fetches with at least 100 ms `fetch.wait.max.ms`: a broker that holds idle fetches that long
    /// (the local mock broker does) is then asked 10 times a second instead of up to 1,000.
    public func consumer(topics: [String], group: String? = nil, background: Bool = false,
                         handler: @escaping KafkaConsumer.Handler, batchHandler: KafkaConsumer.BatchHandler? = nil) -> KafkaConsumer {
        var settings = configuration.kafka
        if background { settings.fetchWaitMaxMs = max(settings.fetchWaitMaxMs, 100) }
        let consumer = KafkaConsumer(settings: settings, groupID: group ?? "orchard.\(definition.name)", topics: topics,
                                     deadLetters: producer, logger: logger, handler: handler, batchHandler: batchHandler,
                                     maxBatch: settings.consumerMaxBatch)
        if !background { servingConsumers.withLockedValue { $0.append(consumer) } }
        return consumer
    }

    /// Serves HTTP and runs the given services until SIGTERM or SIGINT, then shuts down gracefully:
    /// in-flight requests finish, consumers commit their offsets, the producer flushes.
    public func run<Context: RequestContext>(router: Router<Context>, services: [any Service]) async
    where Context.Source == ApplicationRequestContextSource {
        var app = Application(
            router: router,
            configuration: .init(address: .hostname(configuration.httpHost, port: configuration.httpPort),
                                 serverName: definition.name),
            logger: logger)
        app.addServices(outbox)
        app.addServices(services)
        // A service that cannot serve says why and exits non-zero, before it joins any consumer group
        // (it used to stay up, consuming, deaf to SIGTERM, when its port was taken).
        if let reason = await Self.cannotListen(host: configuration.httpHost, port: configuration.httpPort) {
            logger.critical("cannot listen on \(configuration.httpHost):\(configuration.httpPort): \(reason)")
            producer.flush()
            await database.shutdown()
            exit(1)
        }
        logger.info("listening", metadata: ["port": "\(configuration.httpPort)"])
        var failed = false
        do {
            try await app.runService(gracefulShutdownSignals: [.sigterm, .sigint])
        } catch {
            logger.error("service stopped with error: \(error)")
            failed = true
        }
        producer.flush()
        await database.shutdown()
        logger.info("stopped")
        if failed { exit(1) }
    }

    /// Why the HTTP port cannot be bound (taken, not permitted, unknown host); nil when it can.
    static func cannotListen(host: String, port: Int) async -> String? {
        guard port != 0 else { return nil }
        do {
            let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
                .bind(host: host, port: port).get()
            try await channel.close()
            return nil
        } catch {
            return "\(error)"
        }
    }
}

/// Retries a start-up step while its dependency comes up (containers start in any order): about 60 s.
func retrying<T>(_ what: String, logger: Logger, attempts: Int = 30,
                 _ body: () async throws -> T) async throws -> T {
    var attempt = 1
    while true {
        do {
            return try await body()
        } catch {
            if attempt >= attempts { throw error }
            logger.warning("\(what) failed (attempt \(attempt)), retrying: \(error)")
            try await Task.sleep(for: .seconds(2))
            attempt += 1
        }
    }
}

extension ServiceRuntime {
    /// Answers requests of type `R` (arriving on `routes`' consumer) with this service's producer and logger.
    public func respond<R: RequestSchema>(_ type: R.Type, on routes: inout MessageRouter,
                                          _ handle: @escaping RequestResponder<R>.Handle) {
        routes.respond(RequestResponder(type, producer: producer, logger: logger, handle: handle))
    }
}

/// glibc gives each thread that meets contention an arena of its own (up to 8 per core); under steady load the
/// gateway's memory then crept by ~1 MB per 5,000 enrollments as the arenas fragmented, and levelled off with two
/// (Deploy/soak-memory.sh, docs/decisions.md). Two unless `MALLOC_ARENA_MAX` says otherwise; before any
/// thread of ours starts.
func limitMallocArenas() {
    #if canImport(Glibc)
    // mallopt is in <malloc.h>, which Swift's Glibc module leaves out: looked up by name. M_ARENA_MAX is -8.
    guard ProcessInfo.processInfo.environment["MALLOC_ARENA_MAX"] == nil,
          let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
    typealias MallOpt = @convention(c) (Int32, Int32) -> Int32
    _ = unsafeBitCast(symbol, to: MallOpt.self)(-8, 2)
    #endif
}
