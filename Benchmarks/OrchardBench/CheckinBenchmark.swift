import AppleProtocol
import Foundation
import OrchardCrypto
import OrchardTestSupport

/// Check-in and command-loop throughput with many simulated devices against a running gateway.
/// Devices get identities from the CA in `pki` (the gateway must trust it: ORCHARD_DEVICE_IDENTITY_ROOTS).
struct CheckinBenchmark {
    let gateway: String
    let adminKey: String
    let pki: String
    let devices: Int
    let concurrency: Int

    func run() async throws {
        let fleet = try Self.makeFleet(devices: devices, gateway: gateway, pki: pki)
        // Authenticate and TokenUpdate never change for a device: built and signed before measuring.
        let signed = try Dictionary(uniqueKeysWithValues: fleet.map {
            ($0.udid, (try $0.presign($0.authenticateMessage), try $0.presign($0.tokenUpdateMessage)))
        })
        print("devices=\(devices) concurrency=\(concurrency) (check-ins pre-signed by the simulated devices before the timed phase)")

        let cpuBefore = ProcessCPU.snapshot()
        let checkins = try await measure(fleet, requestsPerDevice: 2) { device in
            let (authenticate, tokenUpdate) = signed[device.udid]!
            return try await timed { try await expect200(device.send(authenticate, to: device.checkInURL, contentType: CheckinMessage.contentType)) }
                + timed { try await expect200(device.send(tokenUpdate, to: device.checkInURL, contentType: CheckinMessage.contentType)) }
        }
        print(checkins.line("check-in (Authenticate + TokenUpdate)", unit: "check-ins/s"))
        print(ProcessCPU.snapshot().report(since: cpuBefore, per: fleet.count * 2, unit: "check-in"))

        // The gateway queued DeviceInformation for each: Idle → command → Acknowledged → empty.
        let first = try await measure(fleet, requestsPerDevice: 2) { device in try await commandCycle(device) }
        print(first.line("command loop, DeviceInformation (Idle → command → Acknowledged → empty)", unit: "requests/s"))

        let admin = AdminClient(baseURL: gateway, key: adminKey)
        let started = Date()
        for chunk in stride(from: 0, to: fleet.count, by: 1000) {
            let ids = fleet[chunk..<min(chunk + 1000, fleet.count)].map(\.udid)
            _ = try await admin.expect(.POST, "/commands", json: ["enrollmentIDs": ids, "command": ["type": "DeviceLock"]])
        }
        print(String(format: "enqueue DeviceLock for %d devices through the admin API: %.0f ms", fleet.count,
                     Date().timeIntervalSince(started) * 1000))
        let second = try await measure(fleet, requestsPerDevice: 2) { device in try await commandCycle(device) }
        print(second.line("command loop, DeviceLock", unit: "requests/s"))
    }

    /// `devices` simulated devices with P-256 identities issued by the CA in `pki`.
    static func makeFleet(devices: Int, gateway: String, pki: String) throws -> [SimulatedDevice] {
        let caKey = try PrivateKey(pem: Array(try Data(contentsOf: URL(fileURLWithPath: "\(pki)/ca.key"))))
        let ca = try Certificate.parsePEM(Array(try Data(contentsOf: URL(fileURLWithPath: "\(pki)/ca.pem"))))[0]
        let run = UUID().uuidString.prefix(6)
        return try (0..<devices).map { i -> SimulatedDevice in
            let udid = "BENCH\(run)-\(String(format: "%08d", i))"
            let key = try PrivateKey.generateP256()
            let cert = try Certificate.issue(subject: "/CN=\(udid)", key: key, issuer: (ca, caKey), usage: .clientIdentity,
                                             validity: Date().addingTimeInterval(-60)...Date().addingTimeInterval(86400))
            return try SimulatedDevice(udid: udid, serial: "S\(i)", identity: try SigningIdentity(certificate: cert, key: key),
                                       topic: "com.apple.mgmt.External.bench", checkInURL: "\(gateway)/mdm/checkin",
                                       serverURL: "\(gateway)/mdm/server")
        }
    }

    private func commandCycle(_ device: SimulatedDevice) async throws -> [Double] {
        var command: MDMCommand?
        let idle = try await timed { command = try await device.idle() }
        guard let command else { throw PlistError("no command for \(device.udid)") }
        let ack = try await timed {
            if try await device.respond(to: command, status: "Acknowledged", extra: device.informationAnswers(supervised: true)) != nil {
                throw PlistError("unexpected second command")
            }
        }
        return idle + ack
    }

    struct Result {
        let latencies: [Double]
        let seconds: Double
        let devices: Int

        func line(_ what: String, unit: String) -> String {
            let sorted = latencies.sorted()
            func p(_ q: Double) -> Double { sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))] }
            let rate = unit == "check-ins/s" ? Double(latencies.count) / seconds : Double(latencies.count) / seconds
            return String(format: "%@: %.0f %@, %d requests in %.2f s; per request p50 %.2f ms, p99 %.2f ms, max %.2f ms",
                          what, rate, unit, latencies.count, seconds, p(0.5), p(0.99), sorted.last ?? 0)
        }
    }

    /// Runs `body` once per device with `concurrency` devices at a time.
    private func measure(_ fleet: [SimulatedDevice], requestsPerDevice: Int,
                         _ body: @escaping @Sendable (SimulatedDevice) async throws -> [Double]) async throws -> Result {
        let started = Date()
        var latencies: [Double] = []
        try await withThrowingTaskGroup(of: [Double].self) { group in
            var next = 0
            for _ in 0..<min(concurrency, fleet.count) {
                let device = fleet[next]; next += 1
                group.addTask { try await body(device) }
            }
            while let done = try await group.next() {
                latencies += done
                if next < fleet.count {
                    let device = fleet[next]; next += 1
                    group.addTask { try await body(device) }
                }
            }
        }
        return Result(latencies: latencies, seconds: Date().timeIntervalSince(started), devices: fleet.count)
    }
}

private func timed(_ body: () async throws -> Void) async throws -> [Double] {
    let t0 = DispatchTime.now()
    try await body()
    return [Double(DispatchTime.now().uptimeNanoseconds - t0.uptimeNanoseconds) / 1e6]
}

private func expect200(_ result: HTTPResult) throws {
    guard result.status == 200 else { throw PlistError("HTTP \(result.status): \(result.text)") }
}
