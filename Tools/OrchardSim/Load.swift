import ArgumentParser
import Foundation
import NIOConcurrencyHelpers
import OrchardSimulator

struct Load: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Complete enrollments of one flow as fast as they are answered, or paced: enrollments/s, p50/p99 per step, CPU per process.",
        discussion: """
            --closed C: C devices at a time, each starting as soon as the last finished (default 16).
            --rate R: one device every 1/R s, whatever the answers take.
            CPU per enrollment is read from /proc for the processes in ORCHARD_BENCH_PIDS ("pid pid …"; the benchmark
            scripts set it) and PostgreSQL's. Examples:
              orchard-sim load --flow ade --devices 1000 --closed 16
              orchard-sim load --flow byod --devices 600 --rate 20
            """)
    @OptionGroup var connection: Connection
    @Option(help: "link, ipad, mac, watch, ade, byod or adde.") var flow: Flow
    @Option(help: "How many enrollments.") var devices = 200
    @Option(help: "Devices at a time (closed loop).") var closed: Int?
    @Option(help: "Enrollments started per second (paced).") var rate: Double?

    func run() async throws {
        guard devices > 0 else { throw SimulatorError("--devices must be at least 1") }
        // A rate of 0 crashed the simulator (one device every 1/0 s); a closed loop is --closed.
        if let rate, !(rate > 0 && rate.isFinite) { throw SimulatorError("--rate must be a positive number of enrollments per second (for a closed loop, give --closed)") }
        if let closed, closed < 1 { throw SimulatorError("--closed must be at least 1") }
        let flows = try await EnrollmentFlows(environment: try connection.environment(), narrator: .silent)
        // Set-up, not measured: a first enrollment (it defines the ADE profile or turns watch enrollment on), the iPhones
        // watches pair with, and ADE devices assigned in ABM all at once.
        let concurrency = max(1, closed ?? 16)
        var phones: [SimulatedDevice] = []
        var prepared: [SimulatedADEDevice] = []
        switch flow {
        case .watch:
            for _ in 0..<min(concurrency, 16) { phones.append(try await flows.enrollThroughLink(platform: "iOS")) }
            _ = try await flows.enrollWatch(phone: phones[0])
        case .ade:
            prepared = try await flows.prepareADE(count: devices)
        default:
            _ = try await flow.run(flows)
        }
        flows.timings.reset()
        let phonesForWatches = phones, adeDevices = prepared
        let failures = NIOLockedValueBox<[String]>([])
        let body: @Sendable (Int) async throws -> Void = { i in
            do {
                switch flow {
                case .watch: _ = try await flows.enrollWatch(phone: phonesForWatches[i % phonesForWatches.count])
                case .ade: _ = try await flows.enrollPrepared(adeDevices[i])
                default: _ = try await flow.run(flows)
                }
            } catch {
                failures.withLockedValue { $0.append("\(error)") }
            }
        }
        let cpu = ProcessCPU.snapshot()
        let started = DispatchTime.now()
        if let rate {
            try await LoadPatterns.paced(0..<devices, rate: rate, body)
        } else {
            _ = try await LoadPatterns.closedLoop(0..<devices, concurrency: concurrency, body)
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
        let failed = failures.withLockedValue { $0 }
        let done = devices - failed.count
        let pattern = rate.map { String(format: "paced at %.0f/s", $0) } ?? "closed loop, \(concurrency) at a time"
        print(String(format: "%@ (%@): %d enrollments in %.2f s = %.1f per second; %d failed", flow.title, pattern, done, seconds,
                     Double(done) / seconds, failed.count))
        for line in flows.timings.report() { print(line) }
        print(ProcessCPU.snapshot().report(since: cpu, per: max(1, done), unit: "enrollment"))
        for failure in failed.prefix(5) { print("  failure: \(failure)") }
        if !failed.isEmpty { throw SimulatorError("\(failed.count) of \(devices) enrollments failed") }
    }
}

struct Fleet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Keep N enrolled devices polling, as devices woken by pushes and checking in on their own.",
        discussion: """
            Devices are enrolled through enrollment links (or taken from --state, where each one's identity and enrollment
            are kept, so a run can be resumed). Each sends Idle every --interval seconds (spread out) and answers its
            commands; a push to its token (the APNs stand-in's feed) wakes it at once. Progress every 10 s.
            Example:
              orchard-sim fleet --devices 10000 --interval 60 --duration 600
            """)
    @OptionGroup var connection: Connection
    @Option(help: "How many devices.") var devices = 100
    @Option(help: "Seconds between a device's check-ins.") var interval = 60
    @Option(help: "Stop after this many seconds (default: Ctrl-C).") var duration: Int?
    @Option(help: "Where the devices are kept.") var state = ".orchard/sim-fleet"
    @Option(help: "Enrollments at a time while the fleet is built.") var concurrency = 8

    func run() async throws {
        let environment = try connection.environment()
        let flows = try await EnrollmentFlows(environment: environment, narrator: .silent)
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        let stored = try FileManager.default.contentsOfDirectory(atPath: state).filter { $0.hasSuffix(".json") }.sorted()
        var fleet: [SimulatedDevice] = try stored.prefix(devices).map {
            try SimulatedDevice(saved: try JSONDecoder().decode(SimulatedDevice.Saved.self,
                                                               from: Data(contentsOf: URL(fileURLWithPath: "\(state)/\($0)"))))
        }
        print("fleet: \(fleet.count) devices kept in \(state); enrolling \(max(0, devices - fleet.count)) more")
        let enrolled = NIOLockedValueBox<[SimulatedDevice]>([])
        let missing = max(0, devices - fleet.count)
        let stateDirectory = state
        _ = try await LoadPatterns.closedLoop(0..<missing, concurrency: concurrency) { _ in
            let device = try await flows.enrollThroughLink(platform: "iOS")
            try JSONEncoder().encode(try device.saved).write(to: URL(fileURLWithPath: "\(stateDirectory)/\(device.udid).json"))
            let count = enrolled.withLockedValue { $0.append(device); return $0.count }
            if count % 500 == 0 { print("  enrolled \(count) of \(missing)") }
        }
        fleet += enrolled.withLockedValue { $0 }
        let stats = FleetStats()
        let byToken = Dictionary(fleet.map { ($0.pushToken.map { String(format: "%02x", $0) }.joined(), $0) }) { a, _ in a }
        let wake = WakeBox()
        let until = duration.map { Date().addingTimeInterval(TimeInterval($0)) }
        let devicesToRun = fleet, every = Double(interval)
        print("fleet: \(fleet.count) devices checking in every \(interval) s\(until.map { " until \($0)" } ?? " (Ctrl-C stops)")")
        try await withThrowingTaskGroup(of: Void.self) { group in
            if let feed = environment.pushFeed {
                group.addTask { await Self.followPushes(feed, byToken: byToken, wake: wake, until: until) }
            }
            group.addTask { await Self.report(stats, until: until) }
            for (i, device) in devicesToRun.enumerated() {
                group.addTask {
                    // Spread the first check-ins over the interval, as devices that started at different times would.
                    var next = Date().addingTimeInterval(every * Double(i) / Double(devicesToRun.count))
                    let responder = DeviceResponder(supervised: true)
                    while until.map({ Date() < $0 }) ?? true {
                        await wake.wait(for: device.udid, until: until.map { min(next, $0) } ?? next)
                        if let until, Date() >= until { break }
                        let start = DispatchTime.now()
                        do {
                            let (answered, outcome) = try await responder.drain(device)
                            stats.record(ms: Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6,
                                         requests: answered.count + 1)
                            if outcome != .active { stats.ended(); return }
                        } catch {
                            stats.failed("\(error)")
                        }
                        next = Date().addingTimeInterval(every * Double.random(in: 0.9...1.1))
                    }
                }
            }
            try await group.waitForAll()
        }
        let summary = stats.snapshot()
        print("fleet done: \(summary.requests) requests, \(summary.failures) failures")
        if summary.failures > 0 { throw SimulatorError("\(summary.failures) failures; first: \(summary.firstFailure ?? "")") }
    }

    static func followPushes(_ feed: String, byToken: [String: SimulatedDevice], wake: WakeBox, until: Date?) async {
        // Only pushes from now on: the ones already sent (each enrollment's) were answered then, and replaying them
        // would wake the whole fleet at once.
        var after = 0
        if let answer = try? await http(.GET, "\(feed)/pushes?after=\(Int.max)"), answer.status == 200,
           let count = (try? answer.json())?["count"] as? Int {
            after = count
        }
        while !Task.isCancelled, until.map({ Date() < $0 }) ?? true {
            if let answer = try? await http(.GET, "\(feed)/pushes?after=\(after)"), answer.status == 200,
               let object = try? answer.json(), let count = object["count"] as? Int {
                for push in object["pushes"] as? [[String: Any]] ?? [] {
                    if let token = push["token"] as? String, let device = byToken[token.lowercased()] { await wake.wake(device.udid) }
                }
                after = count
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    static func report(_ stats: FleetStats, until: Date?) async {
        var last = stats.snapshot()
        while until.map({ Date() < $0 }) ?? true {
            try? await Task.sleep(for: .seconds(10))
            let now = stats.snapshot()
            print(String(format: "  %@  %.0f requests/s, drain p50 %.1f ms p99 %.1f ms, %d failures, %d devices ended",
                         ISO8601DateFormatter().string(from: Date()), Double(now.requests - last.requests) / 10, now.p50, now.p99,
                         now.failures, now.ended))
            last = now
            stats.resetLatencies()
        }
    }
}

/// Counters of a running fleet.
final class FleetStats: Sendable {
    private let box = NIOLockedValueBox<(requests: Int, failures: Int, ended: Int, latencies: [Double], firstFailure: String?)>((0, 0, 0, [], nil))

    func record(ms: Double, requests: Int) { box.withLockedValue { $0.requests += requests; $0.latencies.append(ms) } }
    func failed(_ why: String) { box.withLockedValue { $0.failures += 1; if $0.firstFailure == nil { $0.firstFailure = why } } }
    func ended() { box.withLockedValue { $0.ended += 1 } }
    func resetLatencies() { box.withLockedValue { $0.latencies.removeAll(keepingCapacity: true) } }

    func snapshot() -> (requests: Int, failures: Int, ended: Int, p50: Double, p99: Double, firstFailure: String?) {
        box.withLockedValue { b in
            let sorted = b.latencies.sorted()
            func p(_ q: Double) -> Double { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))] }
            return (b.requests, b.failures, b.ended, p(0.5), p(0.99), b.firstFailure)
        }
    }
}

/// A device's next check-in, brought forward by a push.
actor WakeBox {
    private var woken: Set<String> = []
    private var waiters: [String: CheckedContinuation<Void, Never>] = [:]

    func wake(_ id: String) {
        if let waiter = waiters.removeValue(forKey: id) { waiter.resume() } else { woken.insert(id) }
    }

    /// Returns at `date`, or earlier when `id` is woken.
    func wait(for id: String, until date: Date) async {
        if woken.remove(id) != nil { return }
        let delay = date.timeIntervalSinceNow
        guard delay > 0 else { return }
        await withCheckedContinuation { continuation in
            waiters[id] = continuation
            Task { [weak self] in
                try? await Task.sleep(for: .seconds(delay))
                await self?.timeout(id)
            }
        }
    }

    private func timeout(_ id: String) { waiters.removeValue(forKey: id)?.resume() }
}
