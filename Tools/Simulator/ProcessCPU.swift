import Foundation

/// CPU time (user + system) of the processes named in ORCHARD_BENCH_PIDS ("pid pid ..."; the script
/// that started the stack sets it), read from /proc: lets a benchmark say where its timed phase spent CPU.
public struct ProcessCPU: Sendable {
    let ticks: [String: Double]
    /// Context switches (voluntary and not) of all of each process's threads: every sleep and wake-up a request
    /// causes, such as a database round trip or a hand-over between threads. Less noisy than CPU time here.
    let switches: [String: Double]

    public static func snapshot() -> ProcessCPU {
        var ticks: [String: Double] = [:], switches: [String: Double] = [:]
        var pids = (ProcessInfo.processInfo.environment["ORCHARD_BENCH_PIDS"] ?? "").split(separator: " ").map(String.init)
        // PostgreSQL starts a backend per connection: take whichever run now.
        let all = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        pids += all.filter { pid in
            pid.allSatisfy(\.isNumber) && !pids.contains(pid)
                && ((try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8))?.hasPrefix("postgres") ?? false)
        }
        for pid in Set(pids + ["self"]) {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            // After the command: state is field 3, utime 14 and stime 15 (1-based) of the whole line.
            guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { continue }
            let cmdline = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? pid
            let arguments = cmdline.split(separator: "\0").map { $0.split(separator: "/").last.map(String.init) ?? "" }
            var name = arguments.first ?? pid
            // Under callgrind (bench-enrollment.sh instructions): the program valgrind runs, its first argument not an option.
            if name.hasPrefix("valgrind"),
               let program = cmdline.split(separator: "\0").dropFirst().first(where: { !$0.hasPrefix("-") }) {
                name = program.split(separator: "/").last.map(String.init) ?? name
            }
            // A stand-in: python3 abm_standin.py, orchard-sim apns.
            if ["python3", "orchard-sim"].contains(name), arguments.count > 1 { name += " " + arguments[1] }
            if pid == "self" { name = clientName }
            if name.hasPrefix("postgres") { name = "postgres" }
            ticks[name, default: 0] += (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
            switches[name, default: 0] += contextSwitches(pid)
        }
        return ProcessCPU(ticks: ticks, switches: switches)
    }

    /// The context switches of every thread of `pid` so far (/proc/pid/task/*/status).
    static func contextSwitches(_ pid: String) -> Double {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        var total = 0.0
        for task in tasks {
            guard let status = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/status", encoding: .utf8) else { continue }
            for line in status.split(separator: "\n") where line.contains("ctxt_switches:") {
                total += Double(line.split(separator: "\t").last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "") ?? 0
            }
        }
        return total
    }

    /// Context switches of each process since `earlier`.
    public func switches(since earlier: ProcessCPU) -> [String: Double] {
        Dictionary(uniqueKeysWithValues: switches.map { ($0.key, $0.value - (earlier.switches[$0.key] ?? 0)) })
    }

    /// The name this process's own CPU is reported under.
    public static var clientName: String {
        "\(CommandLine.arguments.first?.split(separator: "/").last.map(String.init) ?? "client") (client)"
    }

    /// Core-seconds each process used since `earlier`.
    public func used(since earlier: ProcessCPU) -> [String: Double] {
        Dictionary(uniqueKeysWithValues: ticks.map { ($0.key, $0.value - (earlier.ticks[$0.key] ?? 0)) })
    }

    /// "name seconds" lines of CPU used since `earlier`, largest first, and per unit of work.
    public func report(since earlier: ProcessCPU, per count: Int, unit: String) -> String {
        let used = used(since: earlier).sorted { $0.value > $1.value }.map { ($0.key, $0.value) }
        let total = used.reduce(0) { $0 + $1.1 }
        var lines = [String(format: "CPU in the timed phase: %.2f core-seconds, %.2f ms per %@", total, total * 1000 / Double(count), unit)]
        for (name, seconds) in used where seconds >= 0.005 {
            let padded = name.padding(toLength: max(24, name.count), withPad: " ", startingAt: 0)
            lines.append("  " + padded + String(format: " %6.2f s  %6.2f ms per %@", seconds, seconds * 1000 / Double(count), unit))
        }
        return lines.joined(separator: "\n")
    }
}
