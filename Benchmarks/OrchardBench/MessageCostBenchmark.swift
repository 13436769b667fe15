import AppleProtocol
import Foundation
import OrchardCrypto
import OrchardTestSupport

/// Server CPU per request, by message type: each phase sends one kind of request for every device (pre-signed,
/// so the client's signing stays out) and reads every process's CPU before and after (`ProcessCPU`).
/// The regression guard of issue 20: a change that makes one kind of request costlier shows up as µs here, and,
/// with the processes under callgrind (`./Deploy/bench-enrollment.sh instructions`), as instructions per request,
/// which do not move with this machine's noise.
struct MessageCostBenchmark {
    let gateway: String
    let pki: String
    let devices: Int
    let concurrency: Int
    let rounds: Int

    func run() async throws {
        let fleet = try CheckinBenchmark.makeFleet(devices: devices, gateway: gateway, pki: pki)
        let checkin = CheckinMessage.contentType, server = "application/x-apple-aspen-mdm"
        func presign(_ build: (SimulatedDevice) -> [String: PlistValue]) throws -> [String: SimulatedDevice.Presigned] {
            try Dictionary(uniqueKeysWithValues: fleet.map { ($0.udid, try $0.presign(build($0))) })
        }
        let authenticate = try presign { $0.authenticateMessage }
        let tokenUpdate = try presign { $0.tokenUpdateMessage }
        let idle = try presign { $0.identifiers.merging(["Status": .string("Idle")]) { $1 } }
        print("devices=\(devices) concurrency=\(concurrency) rounds=\(rounds); server CPU per request (all processes but the client), µs")
        var rows: [(String, [String: Double])] = []
        var switchRows: [(String, [String: Double])] = []
        var instructionRows: [(String, [String: Double])] = []
        var instructions = Instructions(environment: ProcessInfo.processInfo.environment)
        try await instructions?.measureIdle(seconds: 20)
        if let idle = instructions?.idleRates {
            print("idle instructions per second, taken off each phase for its length (callgrind; thousands): "
                  + idle.sorted { $0.key < $1.key }.map { "\($0.key) \(Int($0.value / 1000))" }.joined(separator: ", "))
        }
        func phase(_ name: String, _ requests: [String: SimulatedDevice.Presigned], commandChannel: Bool, expectCommand: Bool? = nil) async throws -> [String: [UInt8]] {
            if instructions != nil {
                try await instructions?.settle()
                try instructions?.start()
            }
            let before = ProcessCPU.snapshot()
            let started = Date()
            let bodies = try await forEach(fleet) { device in
                let result = try await device.send(requests[device.udid]!, to: commandChannel ? device.serverURL : device.checkInURL,
                                                   contentType: commandChannel ? server : checkin)
                guard result.status == 200 else { throw PlistError("\(name): HTTP \(result.status) \(result.text)") }
                if let expectCommand, expectCommand == result.body.isEmpty {
                    throw PlistError("\(name): \(expectCommand ? "no command" : "an unexpected command") for \(device.udid)")
                }
                return result.body
            }
            let seconds = Date().timeIntervalSince(started)
            let after = ProcessCPU.snapshot()
            let used = after.used(since: before)
            rows.append((name, used.mapValues { $0 * 1e6 / Double(fleet.count) }))
            switchRows.append((name, after.switches(since: before).mapValues { $0 / Double(fleet.count) }))
            print(String(format: "  %-34@ %6.0f req/s", name as NSString, Double(fleet.count) / seconds))
            if let instructions {
                // What the phase set off after its last answer (events published, the activity log written) is its cost too.
                try await instructions.settle()
                instructionRows.append((name, try instructions.stop(phase: name).mapValues { $0 / Double(fleet.count) }))
            }
            return bodies
        }
        _ = try await phase("Authenticate (new device)", authenticate, commandChannel: false)
        _ = try await phase("TokenUpdate (enrollment completes)", tokenUpdate, commandChannel: false)
        for round in 1...max(1, rounds) {
            let suffix = rounds > 1 ? " #\(round)" : ""
            if round > 1 {
                // The next command for every device (outside the timed phases).
                let admin = AdminClient(baseURL: gateway, key: ProcessInfo.processInfo.environment["ORCHARD_ADMIN_API_KEY"] ?? "")
                for chunk in stride(from: 0, to: fleet.count, by: 1000) {
                    _ = try await admin.expect(.POST, "/commands", json: ["enrollmentIDs": fleet[chunk..<min(chunk + 1000, fleet.count)].map(\.udid),
                                                                          "command": ["type": "DeviceInformation"]])
                }
            }
            let commands = try await phase("Idle, takes a command" + suffix, idle, commandChannel: true, expectCommand: true)
            let acknowledged = try presign { device in
                let uuid = (try? MDMCommand(plist: commands[device.udid]!))?.commandUUID ?? ""
                return device.identifiers.merging(["Status": .string("Acknowledged"), "CommandUUID": .string(uuid)]) { $1 }
                    .merging(device.informationAnswers(supervised: true)) { $1 }
            }
            _ = try await phase("Acknowledged (DeviceInformation)" + suffix, acknowledged, commandChannel: true,
                                expectCommand: false)
            _ = try await phase("Idle, no command" + suffix, idle, commandChannel: true, expectCommand: false)
            _ = try await phase("TokenUpdate (enrolled device)" + suffix, tokenUpdate, commandChannel: false)
            _ = try await phase("Authenticate (enrolled device)" + suffix, authenticate, commandChannel: false)
            // Authenticate again leaves the enrollment pending until its TokenUpdate.
            _ = try await phase("TokenUpdate (after re-Authenticate)" + suffix, tokenUpdate, commandChannel: false)
        }
        let client = ProcessCPU.clientName
        let processes = Set(rows.flatMap(\.1.keys)).subtracting([client])
            .sorted { a, b in rows.reduce(0) { $0 + ($1.1[a] ?? 0) } > rows.reduce(0) { $0 + ($1.1[b] ?? 0) } }
            .filter { name in rows.contains { ($0.1[name] ?? 0) >= 5 } }
        let columns = ["server"] + processes.map { $0.replacingOccurrences(of: "orchard-local-broker", with: "broker") } + ["(client)"]
        print(("request" as NSString).padding(toLength: 38, withPad: " ", startingAt: 0)
              + columns.map { ($0 as NSString).padding(toLength: max(9, $0.count + 1), withPad: " ", startingAt: 0) }.joined())
        for (name, used) in rows {
            let server = used.filter { $0.key != client }.values.reduce(0, +)
            let values = [server] + processes.map { used[$0] ?? 0 } + [used[client] ?? 0]
            print((name as NSString).padding(toLength: 38, withPad: " ", startingAt: 0)
                  + zip(columns, values).map { column, value in
                      (String(format: "%.0f", value) as NSString).padding(toLength: max(9, column.count + 1), withPad: " ", startingAt: 0)
                  }.joined())
        }
        // Every sleep and wake-up per request (a database round trip, a hand-over between threads): a count that moves
        // with the code, not with how busy the machine is.
        print("context switches per request")
        let switchColumns = ["checkin-gateway", "postgres", "orchard-local-broker"]
        print(("request" as NSString).padding(toLength: 38, withPad: " ", startingAt: 0)
              + switchColumns.map { ($0.replacingOccurrences(of: "orchard-local-broker", with: "broker") as NSString)
                  .padding(toLength: 17, withPad: " ", startingAt: 0) }.joined())
        for (name, counted) in switchRows {
            print((name as NSString).padding(toLength: 38, withPad: " ", startingAt: 0)
                  + switchColumns.map { (String(format: "%.1f", counted[$0] ?? 0) as NSString).padding(toLength: 17, withPad: " ", startingAt: 0) }.joined())
        }
        if !instructionRows.isEmpty {
            let names = Set(instructionRows.flatMap(\.1.keys)).sorted()
            print("instructions per request (callgrind; thousands)")
            print(("request" as NSString).padding(toLength: 38, withPad: " ", startingAt: 0)
                  + (["server"] + names).map { ($0 as NSString).padding(toLength: 17, withPad: " ", startingAt: 0) }.joined())
            for (name, counted) in instructionRows {
                let values = [counted.values.reduce(0, +)] + names.map { counted[$0] ?? 0 }
                print((name as NSString).padding(toLength: 38, withPad: " ", startingAt: 0)
                      + values.map { (String(format: "%.0f", $0 / 1000) as NSString).padding(toLength: 17, withPad: " ", startingAt: 0) }.joined())
            }
        }
    }

    /// Runs body once per device, `concurrency` at a time; returns each device's result by UDID.
    private func forEach(_ fleet: [SimulatedDevice],
                         _ body: @escaping @Sendable (SimulatedDevice) async throws -> [UInt8]) async throws -> [String: [UInt8]] {
        var results: [String: [UInt8]] = [:]
        try await withThrowingTaskGroup(of: (String, [UInt8]).self) { group in
            var next = 0
            func start() {
                let device = fleet[next]; next += 1
                group.addTask { (device.udid, try await body(device)) }
            }
            for _ in 0..<min(concurrency, fleet.count) { start() }
            while let (udid, result) = try await group.next() {
                results[udid] = result
                if next < fleet.count { start() }
            }
        }
        return results
    }
}
