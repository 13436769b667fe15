import AppleProtocol
import Foundation
import NIOConcurrencyHelpers
import OrchardCrypto
import OrchardTestSupport

/// Complete Apple Watch enrollments per second, with `pairings` iPhones pairing watches at once, and
/// the latency of each device-facing step.
struct WatchBenchmark {
    let gateway: String
    let adminKey: String
    let pki: String
    let pairings: Int
    let watchesPerPhone: Int
    /// Enrollments per second to pace at; 0 runs closed loop.
    let rate: Double
    let apnsPort: Int

    static let steps = ["1 watch: MachineInfo → 403 + security token", "2 iPhone: GetToken → pairing token",
                        "3 watch: MachineInfo + PAIRING_TOKEN → signed profile", "4 watch: Authenticate", "5 watch: TokenUpdate"]

    func run() async throws {
        let apns = APNsStandIn()
        try apns.start(port: apnsPort, certificatePEM: "\(pki)/apns-server.pem", keyPEM: "\(pki)/apns-server.key", clientCAPEM: "\(pki)/ca.pem")
        defer { apns.stop() }

        // Setup (not measured): a push certificate, then supervised iPhones enrolled through links.
        let fleet = try await BenchFleet.prepare(gateway: gateway, adminKey: adminKey, pki: pki)
        let (appleCA, profileCA) = (fleet.appleCA, fleet.profileCA)
        let pushID = UUID().uuidString.lowercased()
        let phones = try await fleet.enrollPhones(pairings, prefix: "BENCH-\(pushID.prefix(6))")
        let url = "\(gateway)/mdm/watch/enroll"
        // The watches exist before they pair: their Apple identities and first MachineInfo are made here.
        let watches = try phones.indices.map { p in
            try (0..<watchesPerPhone).map { w in
                let watch = try SimulatedWatch(udid: "BENCHWATCH-\(pushID.prefix(6))-\(p)-\(w)", serial: "BW\(p)-\(w)", appleCA: appleCA)
                return (watch, try watch.signedMachineInfo())
            }
        }
        // Paced (rate > 0): all iPhones pair at once, each starting a watch every pairings/rate seconds
        // (staggered), and a pairing's five steps spread over that slot, as the devices hand tokens to
        // each other and install the profile in between; a step that is due while the previous one is
        // still running starts late (reported). Closed loop (rate 0): every step as soon as the last answered.
        let slot = rate > 0 ? Double(pairings) / rate : 0
        if rate > 0 {
            print(String(format: "pairings at once=%d watches per iPhone=%d, paced: %.0f enrollments/s (each iPhone starts a watch every %.2f s, a step every %.0f ms)",
                         pairings, watchesPerPhone, rate, slot, slot / 5 * 1000))
        } else {
            print("pairings at once=\(pairings) watches per iPhone=\(watchesPerPhone), closed loop (each step as soon as the previous answered)")
        }

        let samples = NIOLockedValueBox<[String: [Double]]>([:])
        let lateness = NIOLockedValueBox<[Double]>([])
        let serverBefore = try await ServerLatency.snapshot(gateway)
        let cpuBefore = ProcessCPU.snapshot()
        let started = DispatchTime.now()
        func waitUntil(_ seconds: Double) async throws {
            let due = started.uptimeNanoseconds + UInt64(seconds * 1e9)
            let now = DispatchTime.now().uptimeNanoseconds
            if due > now { try await Task.sleep(nanoseconds: due - now) } else { lateness.withLockedValue { $0.append(Double(now - due) / 1e6) } }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (p, phone) in phones.enumerated() {
                group.addTask {
                    for w in 0..<watchesPerPhone {
                        let (watch, firstMachineInfo) = watches[p][w]
                        let slotStart = Double(w * pairings + p) / max(rate, 1) * (rate > 0 ? 1 : 0)
                        func step(_ i: Int) async throws { if rate > 0 { try await waitUntil(slotStart + Double(i) * slot / 5) } }
                        var times: [Double] = []
                        try await step(0)
                        let first = try await timed(&times) {
                            try await http(.POST, url, headers: [("Content-Type", "application/pkcs7-signature")], body: firstMachineInfo)
                        }
                        guard first.status == 403, let security = try plistValue(json: first.body)["details"]?["security-token"]?.string else {
                            throw PlistError("first request → \(first.status) \(first.text)")
                        }
                        try await step(1)
                        let token = try await timed(&times) {
                            try await phone.getToken(serviceType: "com.apple.watch.pairing",
                                                     parameters: ["SecurityToken": security, "PhoneUDID": phone.udid, "WatchUDID": watch.udid])
                        }
                        guard token.status == 200, let data = try Plist.parseDictionary(token.body)["TokenData"]?.data else {
                            throw PlistError("GetToken → \(token.status) \(token.text)")
                        }
                        try await step(2)
                        let profile = try await timed(&times) { try await watch.requestProfile(url, pairingToken: data) }
                        guard profile.status == 200 else { throw PlistError("second request → \(profile.status) \(profile.text)") }
                        let (device, _) = try SimulatedDevice.installing(profile.body, roots: [profileCA], udid: watch.udid,
                                                                         serial: watch.serial, platform: "watchOS")
                        try await step(3)
                        let auth = try await timed(&times) { try await device.authenticate() }
                        try await step(4)
                        let update = try await timed(&times) { try await device.tokenUpdate() }
                        guard auth.status == 200, update.status == 200 else { throw PlistError("watch check-in failed") }
                        samples.withLockedValue { s in for (i, t) in times.enumerated() { s[Self.steps[i], default: []].append(t) } }
                    }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
        let cpu = ProcessCPU.snapshot().report(since: cpuBefore, per: pairings * watchesPerPhone, unit: "enrollment")
        let server = try await ServerLatency.snapshot(gateway).report(since: serverBefore)
        let total = pairings * watchesPerPhone
        if rate > 0 {
            // The schedule itself ends one slot's last step after the last start.
            let scheduled = Double(total - 1) / rate + slot * 4 / 5
            print(String(format: "complete watch enrollments: %d, paced at %.0f per second: all done %.2f s after the first started (the schedule alone takes %.2f s)",
                         total, rate, elapsed, scheduled))
        } else {
            print(String(format: "complete watch enrollments: %d in %.2f s = %.1f per second", total, elapsed, Double(total) / elapsed))
        }
        if rate > 0 {
            let late = lateness.withLockedValue { $0 }.sorted()
            print(String(format: "  steps that started late (previous step of the pairing still running): %d of %d, max %.1f ms",
                         late.count, total * 5, late.last ?? 0))
        }
        print(cpu)
        for step in Self.steps {
            let sorted = (samples.withLockedValue { $0[step] } ?? []).sorted()
            guard !sorted.isEmpty else { continue }
            func p(_ q: Double) -> Double { sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))] }
            print(String(format: "  %-55@ p50 %6.2f ms  p99 %6.2f ms  max %6.2f ms", step as NSString, p(0.5), p(0.99), sorted.last!))
        }
        print(server)
    }
}

private func timed(_ times: inout [Double], _ body: () async throws -> HTTPResult) async throws -> HTTPResult {
    let t0 = DispatchTime.now()
    let result = try await body()
    times.append(Double(DispatchTime.now().uptimeNanoseconds - t0.uptimeNanoseconds) / 1e6)
    return result
}
