import AppleProtocol
import Foundation
import OrchardCrypto
import OrchardTestSupport

/// Instructions the gateway executes per request, by request kind, counted by valgrind's callgrind (a number that does
/// not move with the machine's load, unlike a rate): the gateway runs under `valgrind --tool=callgrind`
/// (Deploy/bench-instructions.sh); before each phase its counters are zeroed (`callgrind_control -z`), after it they are
/// dumped (`callgrind_control -d`) and the phase's total is divided by its requests. Requests go one at a time, pre-signed,
/// so the count is the gateway's work for that request alone (its share of background threads included).
struct InstructionsBenchmark {
    let gateway: String
    let pki: String
    let devices: Int
    /// The gateway's pid (the valgrind process).
    let pid: Int32
    /// Where callgrind writes its dumps (`--callgrind-out-file` of the gateway, with `%p` expanded).
    let outFile: String

    func run() async throws {
        let caKey = try PrivateKey(pem: Array(try Data(contentsOf: URL(fileURLWithPath: "\(pki)/ca.key"))))
        let ca = try Certificate.parsePEM(Array(try Data(contentsOf: URL(fileURLWithPath: "\(pki)/ca.pem"))))[0]
        let run = UUID().uuidString.prefix(6)
        let fleet = try (0..<devices).map { i -> SimulatedDevice in
            let udid = "INSTR\(run)-\(String(format: "%08d", i))"
            let key = try PrivateKey.generateP256()
            let cert = try Certificate.issue(subject: "/CN=\(udid)", key: key, issuer: (ca, caKey), usage: .clientIdentity,
                                             validity: Date().addingTimeInterval(-60)...Date().addingTimeInterval(86400))
            return try SimulatedDevice(udid: udid, serial: "S\(i)", identity: try SigningIdentity(certificate: cert, key: key),
                                       topic: "com.apple.mgmt.External.bench", checkInURL: "\(gateway)/mdm/checkin",
                                       serverURL: "\(gateway)/mdm/server")
        }
        let signed = try fleet.map { (try $0.presign($0.authenticateMessage), try $0.presign($0.tokenUpdateMessage),
                                      try $0.presign($0.identifiers.merging(["Status": .string("Idle")]) { $1 })) }
        print("gateway instructions per request (valgrind callgrind, \(devices) devices, one request at a time):")
        try await phase("Authenticate (new enrollment)") {
            for (i, d) in fleet.enumerated() { try await expect200(d.send(signed[i].0, to: d.checkInURL, contentType: CheckinMessage.contentType)) }
            return fleet.count
        }
        try await phase("TokenUpdate (enrolls; queues DeviceInformation)") {
            for (i, d) in fleet.enumerated() { try await expect200(d.send(signed[i].1, to: d.checkInURL, contentType: CheckinMessage.contentType)) }
            return fleet.count
        }
        var commands: [MDMCommand?] = Array(repeating: nil, count: fleet.count)
        try await phase("Idle that takes a command") {
            for (i, d) in fleet.enumerated() { commands[i] = try await d.idle() }
            return fleet.count
        }
        try await phase("Acknowledged (DeviceInformation answers; nothing next)") {
            for (i, d) in fleet.enumerated() {
                guard let command = commands[i] else { throw PlistError("no command for \(d.udid)") }
                _ = try await d.respond(to: command, status: "Acknowledged", extra: d.informationAnswers(supervised: true))
            }
            return fleet.count
        }
        try await phase("Idle with no command") {
            for (i, d) in fleet.enumerated() { try await expect200(d.send(signed[i].2, to: d.serverURL, contentType: "application/x-apple-aspen-mdm")) }
            return fleet.count
        }
        try await phase("TokenUpdate (already enrolled)") {
            for (i, d) in fleet.enumerated() { try await expect200(d.send(signed[i].1, to: d.checkInURL, contentType: CheckinMessage.contentType)) }
            return fleet.count
        }
    }

    private func expect200(_ result: HTTPResult) throws {
        guard result.status == 200 else { throw PlistError("\(result.status) \(result.text.prefix(200))") }
    }

    /// Zeroes the counters, runs `body`, dumps them and prints the total per request.
    private func phase(_ name: String, _ body: () async throws -> Int) async throws {
        try control("-z")
        let requests = try await body()
        // Let the gateway finish what the last request left (its push, the outbox) before the dump.
        try await Task.sleep(for: .milliseconds(1500))
        let before = Set(try dumps())
        try control("-d")
        var total: Int?
        for _ in 0..<200 {
            if let file = try dumps().first(where: { !before.contains($0) }), let ir = try instructions(file) { total = ir; break }
            try await Task.sleep(for: .milliseconds(100))
        }
        guard let total else { throw PlistError("callgrind wrote no dump for \(name)") }
        print(String(format: "  %-56@ %10.0f instructions per request (%d requests)", name as NSString, Double(total) / Double(requests), requests))
    }

    private func control(_ flag: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/callgrind_control")
        process.arguments = [flag, String(pid)]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw PlistError("callgrind_control \(flag) \(pid) failed") }
    }

    private func dumps() throws -> [String] {
        let url = URL(fileURLWithPath: outFile)
        let dir = url.deletingLastPathComponent().path, prefix = url.lastPathComponent
        return try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix(prefix + ".") }.map { "\(dir)/\($0)" }
    }

    /// The `summary:` (or `totals:`) line of a dump: its first event is Ir.
    private func instructions(_ file: String) throws -> Int? {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n").reversed() where line.hasPrefix("summary:") || line.hasPrefix("totals:") {
            return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
        }
        return nil
    }
}
