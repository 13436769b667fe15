import AppleProtocol
import Foundation
import NIOConcurrencyHelpers
import OrchardCrypto
import OrchardTestSupport

/// ADE enrollments (MachineInfo → signed profile) per second, and their latency paced at a fixed rate.
/// Deploy/bench-enrollment.sh ade prepares the devices: assigned in the ABM stand-in, synced, given a default
/// profile, and in the gateway's copy. Serials are `<prefix><7 digits>`.
struct ADEBenchmark {
    let gateway: String
    let adminKey: String
    let pki: String
    let prefix: String
    let devices: Int
    let concurrency: Int
    let rate: Double

    func run() async throws {
        let fleet = try await BenchFleet.prepare(gateway: gateway, adminKey: adminKey, pki: pki)
        let url = "\(gateway)/mdm/ade/enroll"
        // The devices' Apple identities and signed MachineInfo are made before the clock starts.
        let key = try PrivateKey.generateP256()
        let run = UUID().uuidString.prefix(6)
        let signed: [[UInt8]] = try (0..<devices).map { i in
            let udid = "ADEBENCH-\(run)-\(i)"
            let cert = try Certificate.issue(subject: "/CN=\(udid)", key: key, issuer: (fleet.appleCA.certificate, fleet.appleCA.key),
                                             usage: .clientIdentity, validity: Date().addingTimeInterval(-60)...Date().addingTimeInterval(86400))
            let info = MachineInfo(udid: udid, serial: String(format: "%@%07d", prefix, i), product: i % 2 == 0 ? "iPhone17,1" : "Mac14,2",
                                   version: "22B83", osVersion: i % 2 == 0 ? "18.2" : "15.2")
            return try CMS.sign(info.plist, identity: try SigningIdentity(certificate: cert, key: key))
        }
        let half = devices / 2
        // Closed loop: `concurrency` devices at a time, each asking as soon as the last answered.
        let closed = NIOLockedValueBox<[Double]>([])
        let elapsed = try await LoadPatterns.closedLoop(0..<half, concurrency: concurrency) { i in
            let t = try await enroll(url, signed[i])
            closed.withLockedValue { $0.append(t) }
        }
        print(String(format: "closed loop, %d at a time: %d ADE enrollments (MachineInfo → signed profile) in %.2f s = %.1f per second",
                     concurrency, half, elapsed, Double(half) / elapsed))
        report("closed loop", closed.withLockedValue { $0 })
        // Paced: one device every 1/rate s, whatever the answers take.
        let paced = NIOLockedValueBox<[Double]>([])
        try await LoadPatterns.paced(half..<devices, rate: rate) { i in
            let t = try await enroll(url, signed[i])
            paced.withLockedValue { $0.append(t) }
        }
        report(String(format: "paced at %.0f/s", rate), paced.withLockedValue { $0 })
    }

    private func enroll(_ url: String, _ body: [UInt8]) async throws -> Double {
        let t0 = DispatchTime.now()
        let answer = try await http(.POST, url, headers: [("Content-Type", "application/pkcs7-signature")], body: body)
        guard answer.status == 200 else { throw PlistError("ADE enrollment → \(answer.status) \(answer.text)") }
        return Double(DispatchTime.now().uptimeNanoseconds - t0.uptimeNanoseconds) / 1e6
    }

    private func report(_ label: String, _ samples: [Double]) {
        let sorted = samples.sorted()
        guard !sorted.isEmpty else { return }
        func p(_ q: Double) -> Double { sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))] }
        print(String(format: "  %@: %d requests, p50 %.2f ms, p99 %.2f ms, max %.2f ms", label, sorted.count, p(0.5), p(0.99), sorted.last!))
    }
}
