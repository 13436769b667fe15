import Foundation

/// Instructions executed by the processes that run under callgrind (`./Deploy/bench-enrollment.sh instructions`
/// starts them so): issue 20's regression guard. Unlike CPU time, a count does not move with how busy this
/// machine is, so a change that makes a request costlier shows up as a number.
///
/// ORCHARD_BENCH_CALLGRIND names the processes ("name=pid ..."). A phase zeroes their counters before it and
/// dumps them after (`callgrind_control`, through valgrind's gdbserver); the dump's `totals:` line is the phase's
/// count. What the processes do when no request comes (timers, the Kafka clients' fetch loop) is counted first, per
/// second, and taken off each phase for its length: under callgrind a phase lasts minutes, and that idle work would
/// otherwise be most of the broker's count.
struct Instructions: Sendable {
    private let targets: [(name: String, pid: String)]
    private var idlePerSecond: [String: Double] = [:]
    /// CPU ticks (1/100 s) per second the counted processes use when no request comes: what `settle` waits down to.
    private var idleTicksPerSecond: Double?
    private var started = Date()

    init?(environment: [String: String]) {
        guard let spec = environment["ORCHARD_BENCH_CALLGRIND"], !spec.isEmpty else { return nil }
        targets = spec.split(separator: " ").compactMap { item in
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            return parts.count == 2 ? (parts[0], parts[1]) : nil
        }
    }

    /// Counts the processes with no request for `seconds`: the rate taken off every phase.
    mutating func measureIdle(seconds: Double) async throws {
        // What the set-up left to do (events of the enrolled fleet) ends first.
        try await Task.sleep(nanoseconds: 15_000_000_000)
        try start()
        let ticksBefore = ticks()
        try await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
        idleTicksPerSecond = (ticks() - ticksBefore) / Date().timeIntervalSince(started)
        let counted = try stop(subtractingIdle: false)
        idlePerSecond = counted.mapValues { $0 / seconds }
    }

    var idleRates: [String: Double] { idlePerSecond }

    /// Zeroes every counted process's counters (and turns instrumentation on, off until the first phase).
    mutating func start() throws {
        for (_, pid) in targets {
            _ = try control(["--instr=on", pid])
            _ = try control(["--zero", pid])
        }
        started = Date()
    }

    /// Instructions each process executed since `start`, less its idle rate for that time.
    /// `phase`: with ORCHARD_BENCH_CALLGRIND_KEEP=<folder>, each process's dump is kept there as `<phase>.<name>.out`
    /// (for `callgrind_annotate`: where a request's instructions go).
    func stop(subtractingIdle: Bool = true, phase: String? = nil) throws -> [String: Double] {
        var counts: [String: Double] = [:]
        let seconds = Date().timeIntervalSince(started)
        for (name, pid) in targets {
            let output = try control(["--dump", pid])
            let keep = ProcessInfo.processInfo.environment["ORCHARD_BENCH_CALLGRIND_KEEP"].flatMap { folder in
                phase.map { "\(folder)/\($0.filter { $0.isLetter || $0.isNumber }).\(name).out" }
            }
            guard let total = try lastDumpTotal(pid: pid, keepAs: keep) else {
                throw InstructionsError("no callgrind dump of \(name) (pid \(pid)): \(output)")
            }
            counts[name, default: 0] += max(0, total - (subtractingIdle ? (idlePerSecond[name] ?? 0) * seconds : 0))
        }
        return counts
    }

    /// Waits until the counted processes are back to their idle CPU (a second at most a third above it, 60 s at most):
    /// what a phase set off is then finished before its count is read, and nothing of it spills into the next.
    func settle() async throws {
        let idle = idleTicksPerSecond ?? 0
        let deadline = Date().addingTimeInterval(60)
        var last = ticks()
        while Date() < deadline {
            try await Task.sleep(nanoseconds: 1_000_000_000)
            let now = ticks()
            if now - last <= idle * 1.33 + 3 { return }
            last = now
        }
    }

    /// CPU ticks (user and system) the counted processes used so far.
    private func ticks() -> Double {
        targets.reduce(0) { total, process in
            guard let stat = try? String(contentsOfFile: "/proc/\(process.pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return total }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 12 else { return total }
            return total + (Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0)
        }
    }

    private func control(_ arguments: [String]) throws -> String {
        try runTool(["callgrind_control"] + arguments, errorsToo: true)
    }

    /// The `totals:` (or `summary:`) of the newest dump a process wrote: its files are `<dir>/<name>.<pid>.out.<n>`
    /// (ORCHARD_CALLGRIND_DIR, set by the script). Each is read once and removed, so a dump that failed next time
    /// cannot pass for this one.
    private func lastDumpTotal(pid: String, keepAs keep: String?) throws -> Double? {
        let directory = ProcessInfo.processInfo.environment["ORCHARD_CALLGRIND_DIR"] ?? "."
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.contains(".\(pid).out.") }
        func dumpNumber(_ file: String) -> Int { Int(file.split(separator: ".").last ?? "") ?? 0 }
        guard let newest = files.max(by: { dumpNumber($0) < dumpNumber($1) }) else { return nil }
        let text = try String(contentsOfFile: "\(directory)/\(newest)", encoding: .utf8)
        if let keep {
            try? FileManager.default.removeItem(atPath: keep)
            try FileManager.default.moveItem(atPath: "\(directory)/\(newest)", toPath: keep)
        } else {
            try FileManager.default.removeItem(atPath: "\(directory)/\(newest)")
        }
        for line in text.split(separator: "\n") where line.hasPrefix("totals:") || line.hasPrefix("summary:") {
            if let value = line.split(separator: " ").dropFirst().first.flatMap({ Double($0) }) { return value }
        }
        throw InstructionsError("no totals in \(newest)")
    }
}

struct InstructionsError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs a command found on PATH and returns what it printed (standard error too with `errorsToo`).
func runTool(_ command: [String], errorsToo: Bool = false) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = command
    let pipe = Pipe()
    process.standardOutput = pipe
    if errorsToo { process.standardError = pipe }
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}
