import AppleProtocol
import AsyncHTTPClient
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import OrchardCrypto
import OrchardTestSupport

/// Hardening issue 18, item 3: what a flood of ADE sign-ins with unknown accounts does to other devices' check-ins.
/// Enrolled devices send Idle in a closed loop, first alone ("quiet"), then while `attackers` clients post the sign-in
/// form of one assigned device (its signed MachineInfo, serial `<prefix>0000000`) with made-up accounts as fast as they
/// are answered, each from a new address (`X-Forwarded-For`, the worst case for per-address limits), then from one.
/// Prints Idle p50/p99 per phase, the attack's answers and the gateway's CPU.
struct SignInAttackBenchmark {
    let gateway: String
    let adminKey: String
    let pki: String
    let prefix: String
    let devices: Int
    let concurrency: Int
    let attackers: Int
    let seconds: Double

    func run() async throws {
        let fleet = try await BenchFleet.prepare(gateway: gateway, adminKey: adminKey, pki: pki)
        let run = UUID().uuidString.prefix(6)
        let topic = try await fleet.admin.expect(.GET, "/push-certificate")["topic"] as? String ?? ""
        var enrolled: [(SimulatedDevice, SimulatedDevice.Presigned)] = []
        for i in 0..<devices {
            let udid = "SIGNINBENCH\(run)-\(String(format: "%06d", i))"
            let key = try PrivateKey.generateP256()
            let cert = try Certificate.issue(subject: "/CN=\(udid)", key: key, issuer: (fleet.ca.certificate, fleet.ca.key), usage: .clientIdentity,
                                             validity: Date().addingTimeInterval(-60)...Date().addingTimeInterval(86400))
            let device = try SimulatedDevice(udid: udid, serial: "SB\(i)", identity: try SigningIdentity(certificate: cert, key: key),
                                             topic: topic, checkInURL: "\(gateway)/mdm/checkin", serverURL: "\(gateway)/mdm/server")
            _ = try await device.authenticate()
            _ = try await device.tokenUpdate()
            while let c = try await device.idle() { _ = try await device.respond(to: c, status: "Acknowledged", extra: device.informationAnswers(supervised: true)) }
            enrolled.append((device, try device.presign(device.identifiers.merging(["Status": .string("Idle")]) { $1 })))
        }
        let appleKey = try PrivateKey.generateP256()
        let appleCert = try Certificate.issue(subject: "/CN=SIGNINBENCH-ADE", key: appleKey, issuer: (fleet.appleCA.certificate, fleet.appleCA.key),
                                              usage: .clientIdentity, validity: Date().addingTimeInterval(-60)...Date().addingTimeInterval(86400))
        let info = MachineInfo(udid: "SIGNINBENCH-ADE-\(run)", serial: String(format: "%@%07d", prefix, 0), product: "iPhone17,1",
                               version: "22B83", osVersion: "18.2")
        let deviceInfo = Data(try CMS.sign(info.plist, identity: try SigningIdentity(certificate: appleCert, key: appleKey))).base64EncodedString()
        let idlers = enrolled
        // The attack has HTTP connections of its own, as an outside client does: sharing the Idle loop's pool (8
        // connections a host) would make Idles wait for connections the sign-ins hold, not for the server.
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: attackers * 2)
        let attackClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        defer { _ = attackClient.shutdown() }
        print("devices=\(devices) idle concurrency=\(concurrency) attackers=\(attackers) \(Int(seconds)) s per phase")

        for phase in ["quiet", "attack, a new address per request", "attack, one address"] {
            let attacking = phase != "quiet"
            let stop = NIOLockedValueBox(false)
            let statuses = NIOLockedValueBox<[Int: Int]>([:])
            let attack = Task {
                guard attacking else { return }
                await withTaskGroup(of: Void.self) { group in
                    for a in 0..<attackers {
                        group.addTask {
                            var n = 0
                            while !stop.withLockedValue({ $0 }) {
                                n += 1
                                let address = phase.contains("new address") ? "10.\(a).\(n / 250 % 250).\(n % 250)" : "10.255.255.1"
                                let form = "deviceinfo=\(encode(deviceInfo))&username=\(encode("nobody-\(a)-\(n)@acme.example"))&password=guess"
                                var request = HTTPClientRequest(url: "\(gateway)/mdm/ade/sign-in")
                                request.method = .POST
                                request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
                                request.headers.add(name: "X-Forwarded-For", value: address)
                                request.body = .bytes(ByteBuffer(bytes: Array(form.utf8)))
                                var status = 0
                                if let response = try? await attackClient.execute(request, timeout: .seconds(30)) {
                                    status = Int(response.status.code)
                                    _ = try? await response.body.collect(upTo: 1 << 20)
                                }
                                statuses.withLockedValue { $0[status, default: 0] += 1 }
                            }
                        }
                    }
                }
            }
            let cpu = ProcessCPU.snapshot()
            let latencies = NIOLockedValueBox<[Double]>([])
            let deadline = Date().addingTimeInterval(seconds)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<concurrency {
                    group.addTask {
                        var i = worker
                        while Date() < deadline {
                            let (device, idle) = idlers[i % idlers.count]
                            i += concurrency
                            let t0 = DispatchTime.now()
                            let answer = try await device.send(idle, to: device.serverURL, contentType: CommandResult.contentType)
                            guard answer.status == 200 else { throw PlistError("Idle → \(answer.status) \(answer.text)") }
                            latencies.withLockedValue { $0.append(Double(DispatchTime.now().uptimeNanoseconds - t0.uptimeNanoseconds) / 1e6) }
                        }
                    }
                }
                try await group.waitForAll()
            }
            stop.withLockedValue { $0 = true }
            await attack.value
            let sorted = latencies.withLockedValue { $0 }.sorted()
            func p(_ q: Double) -> Double { sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))] }
            print(String(format: "%@: Idle %.0f/s, p50 %.2f ms, p99 %.2f ms, max %.2f ms", phase, Double(sorted.count) / seconds,
                         p(0.5), p(0.99), sorted.last ?? 0))
            if attacking {
                let answered = statuses.withLockedValue { $0 }.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }.joined(separator: ", ")
                print("  sign-in answers: \(answered)")
            }
            print(ProcessCPU.snapshot().report(since: cpu, per: max(1, sorted.count), unit: "Idle"))
        }
    }
}

private func encode(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "" }
