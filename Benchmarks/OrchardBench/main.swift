import Foundation
import Logging
import OrchardSchemas
import OrchardMessaging
import OrchardStorage
import OrchardTestSupport

// orchard-bench: drives the messaging layer from outside the services.
//   respond                 answer BenchEcho requests (run it as a separate process)
//   request [-c N] [-n M]   send M requests at concurrency N, print p50/p99 and rate
//   produce [-n M]          produce M messages, print messages per second
//   emit --stream S -n M    produce M BenchEvents
//   apply --stream S        apply BenchEvents idempotently to PostgreSQL (schema bench)
//   all                     request at 1, 16 and 64 concurrent, then produce
//   checkin --devices N -c C  check-in and command-loop throughput against ORCHARD_URL_CHECKIN_GATEWAY
//   messages --devices N -c C [--rounds R]  server CPU per request by message type (Authenticate, TokenUpdate, Idle, …)
//   ade-sign-in-attack --prefix P [--devices N] [-c C] [--attackers A] [--seconds S]  Idle latency of N enrolled devices,
//                           quiet and while A clients post ADE sign-ins with unknown accounts (hardening issue 18)
//   bearer-checkins [--devices N] [-c C] [--platform macOS]  check-ins of N account-driven enrollments (bearer validated)
//                                         against N plain; on macOS: the Macs' user channel (bearer) against their device channel
//                           ones (ORCHARD_CONFIG: the stack's orchardctl.json with the trial's stand-ins)
//   (each flow's enrollments: `orchard-sim load`, Deploy/bench-enrollment.sh link|mac|watch|ade|byod|adde)
//   faults --seconds S --label L --out FILE [--devices W] [--phones P]  steady enrollments and watch pairings for
//                           Deploy/fault-suite.sh, which injects a fault meanwhile and reads FILE
//   abm-events --token ID   counts one ABM server token's device events on Kafka (Deploy/fault-abm-sync.sh)
//   crypto                  microseconds per cryptographic operation on the enrollment paths (no broker needed)
// Reads KAFKA_BOOTSTRAP_SERVERS, ORCHARD_KAFKA_FETCH_WAIT_MAX_MS and (apply) ORCHARD_DATABASE_URL.

let environment = ProcessInfo.processInfo.environment
let (mode, options) = parseArguments(Array(CommandLine.arguments.dropFirst()))

func parseArguments(_ arguments: [String]) -> (String, [String: String]) {
    var args = arguments
    var options: [String: String] = [:]
    let mode = args.isEmpty ? "all" : args.removeFirst()
    while !args.isEmpty {
        let name = args.removeFirst()
        options[name] = args.isEmpty ? "" : args.removeFirst()
    }
    return (mode, options)
}

func option(_ short: String, _ long: String, _ fallback: Int) -> Int {
    Int(options[short] ?? options[long] ?? "") ?? fallback
}

LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = .warning
    return handler
}
let logger = Logger(label: "orchard-bench")
if mode == "crypto" {
    try CryptoBenchmark.run()
    exit(0)
}
guard let bootstrap = environment["KAFKA_BOOTSTRAP_SERVERS"] else {
    FileHandle.standardError.write(Data("KAFKA_BOOTSTRAP_SERVERS is required\n".utf8))
    exit(2)
}
let instance = "bench-\(mode)-\(getpid())"
var settings = KafkaSettings(bootstrapServers: bootstrap, clientID: instance)
settings.fetchWaitMaxMs = Int(environment["ORCHARD_KAFKA_FETCH_WAIT_MAX_MS"] ?? "") ?? 1
settings.sessionTimeoutMs = Int(environment["ORCHARD_KAFKA_SESSION_TIMEOUT_MS"] ?? "") ?? 10_000
let producer = try KafkaProducer(settings: settings)

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)]
}

func runRequests(concurrency: Int, total: Int, client: RequestClient) async throws -> String {
    let perWorker = max(1, total / concurrency)
    let started = Date()
    let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
        for worker in 0..<concurrency {
            group.addTask {
                var samples: [Double] = []
                for i in 0..<perWorker {
                    let t0 = DispatchTime.now()
                    let request = BenchEcho(id: "\(worker)-\(i)", payload: "ping")
                    let reply = try await client.request(request, timeout: .seconds(5), correlationID: request.id)
                    precondition(reply.id == request.id, "reply for the wrong request")
                    samples.append(Double(DispatchTime.now().uptimeNanoseconds - t0.uptimeNanoseconds) / 1e6)
                }
                return samples
            }
        }
        var all: [Double] = []
        for try await samples in group { all += samples }
        return all.sorted()
    }
    let elapsed = Date().timeIntervalSince(started)
    return String(format: "request/reply  concurrency=%-3d requests=%-6d p50=%.2f ms  p99=%.2f ms  max=%.2f ms  %.0f req/s",
                  concurrency, latencies.count, percentile(latencies, 0.5), percentile(latencies, 0.99),
                  latencies.last ?? 0, Double(latencies.count) / elapsed)
}

func runProduce(total: Int) async throws -> String {
    let started = Date()
    try await withThrowingTaskGroup(of: Void.self) { group in
        let workers = 64
        for w in 0..<workers {
            group.addTask {
                for i in stride(from: w, to: total, by: workers) {
                    try await producer.publish(BenchEvent(sequence: i, stream: "produce-bench"))
                }
            }
        }
        try await group.waitForAll()
    }
    let elapsed = Date().timeIntervalSince(started)
    return String(format: "producer       messages=%d  %.0f msg/s (each awaited to broker acknowledgement, 64 in flight)",
                  total, Double(total) / elapsed)
}

switch mode {
case "checkin":
    let benchmark = CheckinBenchmark(gateway: environment["ORCHARD_URL_CHECKIN_GATEWAY"] ?? "http://127.0.0.1:8080",
                                     adminKey: environment["ORCHARD_ADMIN_API_KEY"] ?? "",
                                     pki: environment["ORCHARD_TEST_PKI"] ?? ".",
                                     devices: option("-n", "--devices", 1000), concurrency: option("-c", "--concurrency", 16))
    try await benchmark.run()

case "messages":
    let benchmark = MessageCostBenchmark(gateway: environment["ORCHARD_URL_CHECKIN_GATEWAY"] ?? "http://127.0.0.1:8080",
                                         pki: environment["ORCHARD_TEST_PKI"] ?? ".", devices: option("-n", "--devices", 2000),
                                         concurrency: option("-c", "--concurrency", 16), rounds: option("-r", "--rounds", 1))
    try await benchmark.run()

case "ade-sign-in-attack":
    let benchmark = SignInAttackBenchmark(gateway: environment["ORCHARD_URL_CHECKIN_GATEWAY"] ?? "http://127.0.0.1:8080",
                                          adminKey: environment["ORCHARD_ADMIN_API_KEY"] ?? "", pki: environment["ORCHARD_TEST_PKI"] ?? ".",
                                          prefix: options["--prefix"] ?? "ADE", devices: option("-n", "--devices", 200),
                                          concurrency: option("-c", "--concurrency", 8), attackers: option("-a", "--attackers", 8),
                                          seconds: Double(option("-s", "--seconds", 20)))
    try await benchmark.run()

case "bearer-checkins":
    var simulator = try SimulatorEnvironment.fromConfigFile(environment["ORCHARD_CONFIG"] ?? ".orchard/local/orchardctl.json")
    simulator.byodUser = ("bench{n}@byod.example.com", "bench-password")
    simulator.accounts = 2000
    try await BearerCheckinBenchmark(environment: simulator, devices: option("-n", "--devices", 1000),
                                     concurrency: option("-c", "--concurrency", 16), mac: options["--platform"] == "macOS").run()

case "faults":
    let load = FaultLoad(gateway: environment["ORCHARD_URL_CHECKIN_GATEWAY"] ?? "http://127.0.0.1:8080",
                         adminKey: environment["ORCHARD_ADMIN_API_KEY"] ?? "", pki: environment["ORCHARD_TEST_PKI"] ?? ".",
                         seconds: option("-s", "--seconds", 40), deviceWorkers: option("-d", "--devices", 4),
                         phones: option("-p", "--phones", 4), label: options["--label"] ?? "run",
                         out: options["--out"] ?? "/tmp/orchard-fault-load.txt",
                         apnsPort: Int(environment["ORCHARD_TEST_APNS_PORT"] ?? "") ?? 28443, kafka: settings, producer: producer)
    try await load.run()

case "abm-events":
    try await ABMEventCount.run(tokenID: options["--token"] ?? "", settings: settings, producer: producer, logger: logger)

case "respond":
    var router = MessageRouter()
    router.respond(RequestResponder(BenchEcho.self, producer: producer, logger: logger) { request, _ in
        // "sleep:N" answers after N ms: lets tests provoke a late reply.
        if request.payload.hasPrefix("sleep:"), let ms = Int(request.payload.dropFirst(6)) {
            try await Task.sleep(for: .milliseconds(min(ms, 10_000)))
        }
        if request.payload == "refuse" {
            throw RequestRefused(code: "bench.refused", message: "refused on request", httpStatus: 403)
        }
        return BenchEcho.Reply(id: request.id, payload: request.payload, responder: instance)
    })
    let consumer = KafkaConsumer(settings: settings, groupID: "orchard.bench-responder", topics: [BenchEcho.topic],
                                 deadLetters: producer, logger: logger, handler: router.handler)
    print("responding as \(instance)")
    try await consumer.run()

case "request", "all":
    let client = try RequestClient(settings: settings, producer: producer, instanceID: instance, logger: logger)
    // Warm-up: the responder's group join takes a few seconds on a fresh broker.
    var warm = false
    for _ in 0..<60 where !warm {
        warm = (try? await client.request(BenchEcho(id: "warm", payload: ""), timeout: .seconds(1), correlationID: "warm")) != nil
    }
    guard warm else { print("no responder answered; start `orchard-bench respond` first"); exit(1) }
    if mode == "request" {
        print(try await runRequests(concurrency: option("-c", "--concurrency", 16), total: option("-n", "--requests", 2000),
                                    client: client))
    } else {
        print("fetch.wait.max.ms=\(settings.fetchWaitMaxMs) linger.ms=\(settings.lingerMs)")
        for c in [1, 16, 64] {
            _ = try await runRequests(concurrency: c, total: c * 20, client: client)  // warm the path
            print(try await runRequests(concurrency: c, total: max(2000, c * 100), client: client))
        }
        print(try await runProduce(total: option("-n", "--messages", 20000)))
    }

case "produce":
    print(try await runProduce(total: option("-n", "--messages", 20000)))

case "emit":
    let stream = options["--stream"] ?? "default"
    let count = option("-n", "--count", 1000)
    try await withThrowingTaskGroup(of: Void.self) { group in
        for w in 0..<16 {
            group.addTask {
                for i in stride(from: w, to: count, by: 16) { try await producer.publish(BenchEvent(sequence: i, stream: stream)) }
            }
        }
        try await group.waitForAll()
    }
    print("emitted \(count)")

case "apply":
    // Applies each event once: the inbox row and the effect commit in one transaction. The effect
    // table has no unique constraint on purpose, so a double apply would show as a duplicate row.
    guard let url = environment["ORCHARD_DATABASE_URL"] else { print("ORCHARD_DATABASE_URL is required"); exit(2) }
    let stream = options["--stream"] ?? "default"
    let delay = option("-d", "--delay-ms", 0)
    let database = try Database(conninfo: url, schema: "bench", maxConnections: 4)
    try await database.migrate([
        MessagingTables.migration(version: 1),
        Migration(2, "applied events", "CREATE TABLE applied_events (stream text NOT NULL, sequence integer NOT NULL, pid integer NOT NULL)"),
    ])
    let consumer = KafkaConsumer(settings: settings, groupID: "orchard.bench-apply.\(stream)", topics: [BenchEvent.topic],
                                 deadLetters: producer, logger: logger) { message in
        let event = try MessageCodec.decode(BenchEvent.self, from: message)
        guard event.stream == stream else { return }
        if delay > 0 { try await Task.sleep(for: .milliseconds(delay)) }
        let pid = Int(getpid())
        try await database.transaction { c in
            guard try Inbox.firstDelivery(of: message, on: c) else { return }
            try c.query("INSERT INTO applied_events (stream, sequence, pid) VALUES ($1, $2, $3)",
                        [.text(event.stream), .int(event.sequence), .int(pid)])
        }
    }
    signal(SIGTERM, SIG_IGN)
    let term = DispatchSource.makeSignalSource(signal: SIGTERM, queue: .global())
    term.setEventHandler { consumer.stop() }
    term.resume()
    print("applying stream \(stream)")
    try await consumer.run()
    print("apply stopped")

default:
    print("unknown mode \(mode)")
    exit(2)
}
