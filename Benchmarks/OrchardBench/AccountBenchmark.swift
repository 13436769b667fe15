import AppleProtocol
import Foundation
import NIOConcurrencyHelpers
import OrchardCore
import OrchardCrypto
import OrchardTestSupport

/// Complete account-driven User Enrollments per second, each step timed: discovery → first POST (401) → sign-in page →
/// sign-in against slapd (308 with the token) → second POST (profile) → Authenticate → TokenUpdate, with the bearer.
/// Half closed loop at `concurrency`, half paced at `rate`. Then check-in throughput of these enrollments (bearer
/// validated on every request) against as many plain enrollments, in the same run, alternated.
/// Deploy/bench-enrollment.sh byod starts slapd and sets ORCHARD_TEST_LDAP_URL and ORCHARD_URL_USER_ENROLLMENT_AUTH.
struct AccountBenchmark {
    let gateway: String
    let auth: String
    let ldapURL: String
    let adminKey: String
    let pki: String
    let devices: Int
    let concurrency: Int
    let rate: Double

    static let steps = ["discovery", "first POST (401)", "sign-in page", "sign-in (308)", "second POST (profile)", "Authenticate", "TokenUpdate"]
    /// Each enrollment signs in as its own user (Deploy/bench-enrollment.sh byod adds bench0000 … bench1999 to slapd).
    static func user(_ i: Int) -> String { String(format: "bench%04d@byod.example.com", i % 2000) }
    static let password = "bench-password"

    func run() async throws {
        let fleet = try await BenchFleet.prepare(gateway: gateway, adminKey: adminKey, pki: pki)
        _ = try await fleet.admin.expect(.PUT, "/account-domains/byod.example.com", json: [
            "mode": "mdm-byod", "ldap": ["url": ldapURL, "baseDN": "ou=people,dc=example,dc=com", "userFilter": "(mail={user})",
                                         "disabledFilter": "(employeeType=disabled)", "bindDN": "uid=orchard,ou=people,dc=example,dc=com",
                                         "bindPassword": "orchard-search-secret"]])
        // Each device's built-in identity and signed request are made before the clock starts.
        let key = try PrivateKey.generateP256()
        let signed: [[UInt8]] = try (0..<devices).map { i in
            let cert = try Certificate.issue(subject: "/CN=BYOD-\(i)", key: key, issuer: (fleet.appleCA.certificate, fleet.appleCA.key),
                                             usage: .clientIdentity, validity: Date().addingTimeInterval(-60)...Date().addingTimeInterval(86400))
            let info = Plist.xml(["PRODUCT": .string("iPhone17,2"), "VERSION": .string("22D63"), "OS_VERSION": .string("18.3"),
                                  "LANGUAGE": .string("en-US")])
            return try CMS.sign(info, identity: try SigningIdentity(certificate: cert, key: key))
        }
        let baseURL = "\(gateway)/mdm/account/enroll/byod.example.com"
        // Warm-up (connections, caches, profile-signer's consumer joining its group on a fresh broker), not counted: a
        // 503 here is the stack still starting, and a device would retry it, so the warm-up does too.
        for attempt in 1...20 {
            do {
                _ = try await enroll(baseURL, signed[0], user: Self.user(0), profileCA: fleet.profileCA)
                break
            } catch where attempt < 20 {
                try await Task.sleep(for: .seconds(1))
            }
        }
        let half = devices / 2
        let enrolled = NIOLockedValueBox<[SimulatedDevice]>([])
        let closed = NIOLockedValueBox<[[Double]]>([])
        let cpuBefore = ProcessCPU.snapshot()
        PostgresStatements.reset()
        print("closed loop of \(half - 1) enrollments starting")
        let elapsed = try await LoadPatterns.closedLoop(1..<half, concurrency: concurrency) { i in
            let (device, times) = try await enroll(baseURL, signed[i], user: Self.user(i), profileCA: fleet.profileCA)
            closed.withLockedValue { $0.append(times) }
            enrolled.withLockedValue { $0.append(device) }
        }
        let count = closed.withLockedValue { $0.count }
        print(String(format: "closed loop, %d at a time: %d complete BYOD enrollments (discovery → TokenUpdate, 7 requests each) in %.2f s = %.1f per second",
                     concurrency, count, elapsed, Double(count) / elapsed))
        report(closed.withLockedValue { $0 })
        print(ProcessCPU.snapshot().report(since: cpuBefore, per: count, unit: "enrollment"))
        if let statements = PostgresStatements.report(per: count, unit: "enrollment") { print(statements) }
        let paced = NIOLockedValueBox<[[Double]]>([])
        try await LoadPatterns.paced(half..<devices, rate: rate) { i in
            let (device, times) = try await enroll(baseURL, signed[i], user: Self.user(i), profileCA: fleet.profileCA)
            paced.withLockedValue { $0.append(times) }
            enrolled.withLockedValue { $0.append(device) }
        }
        print(String(format: "paced at %.0f enrollments/s: %d enrollments", rate, paced.withLockedValue { $0.count }))
        report(paced.withLockedValue { $0 })
        try await compareCheckins(enrolled.withLockedValue { $0 }, fleet: fleet)
    }

    /// One complete enrollment; the device and each step's milliseconds.
    private func enroll(_ baseURL: String, _ body: [UInt8], user: String, profileCA: Certificate) async throws -> (SimulatedDevice, [Double]) {
        var times: [Double] = []
        func step<T>(_ work: () async throws -> T) async throws -> T {
            let t0 = DispatchTime.now()
            let value = try await work()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0.uptimeNanoseconds) / 1e6)
            return value
        }
        func expect(_ r: HTTPResult, _ status: Int, _ what: String) throws {
            guard r.status == status else { throw PlistError("\(what) → \(r.status) \(r.text.prefix(200))") }
        }
        let post = [("Content-Type", "application/pkcs7-signature"), ("User-Agent", "DeviceManagementClient/1.0")]
        try expect(try await step { try await http(.GET, "\(auth)/.well-known/com.apple.remotemanagement?user-identifier=\(user)&model-family=iPhone") }, 200, "discovery")
        try expect(try await step { try await http(.POST, baseURL, headers: post, body: body) }, 401, "first POST")
        let page = try await step { try await http(.GET, "\(auth)/account/sign-in?user-identifier=\(user)") }
        try expect(page, 200, "sign-in page")
        let csrf = page.text.range(of: #"name="csrf" value="([^"]+)""#, options: .regularExpression).map {
            String(page.text[$0].dropFirst(#"name="csrf" value=""#.count).dropLast())
        } ?? ""
        let cookie = page.headers["set-cookie"]?.split(separator: ";").first.map(String.init) ?? ""
        let signedIn = try await step {
            try await http(.POST, "\(auth)/account/sign-in", headers: [("Content-Type", "application/x-www-form-urlencoded"), ("Cookie", cookie)],
                           body: Array(FormEncoding.encode([("csrf", csrf), ("user", user), ("password", Self.password)]).utf8))
        }
        try expect(signedIn, 308, "sign-in")
        let token = URLComponents(string: signedIn.headers["location"] ?? "")?.queryItems?.first { $0.name == "access-token" }?.value ?? ""
        let profile = try await step { try await http(.POST, baseURL, headers: post + [("Authorization", "Bearer \(token)")], body: body) }
        try expect(profile, 200, "second POST")
        let device = try SimulatedDevice.installing(profile.body, roots: [profileCA], udid: "00000000-0000000000000000", serial: "").0
        device.enrollmentID = "\(UUID().uuidString)-BENCH"
        device.bearer = token
        try expect(try await step { try await device.authenticate() }, 200, "Authenticate")
        try expect(try await step { try await device.tokenUpdate() }, 200, "TokenUpdate")
        return (device, times)
    }

    private func report(_ samples: [[Double]]) {
        guard !samples.isEmpty else { return }
        func p(_ values: [Double], _ q: Double) -> Double { let s = values.sorted(); return s[min(s.count - 1, Int(Double(s.count) * q))] }
        for (i, name) in Self.steps.enumerated() {
            let values = samples.map { $0[i] }
            print("  " + name.padding(toLength: 22, withPad: " ", startingAt: 0)
                  + String(format: " p50 %6.2f ms  p99 %6.2f ms  max %6.2f ms", p(values, 0.5), p(values, 0.99), values.max() ?? 0))
        }
        let totals = samples.map { $0.reduce(0, +) }
        print("  " + "whole enrollment".padding(toLength: 22, withPad: " ", startingAt: 0)
              + String(format: " p50 %6.2f ms  p99 %6.2f ms", p(totals, 0.5), p(totals, 0.99)))
    }

    /// TokenUpdate check-ins, pre-signed: the account-driven enrollments (each with its bearer, validated by the gateway
    /// through its cache) against as many plain enrollments (test-CA identities, no bearer), alternated twice.
    private func compareCheckins(_ accounts: [SimulatedDevice], fleet: BenchFleet) async throws {
        let plain = try accounts.indices.map { i -> SimulatedDevice in
            let udid = "PLAIN\(UUID().uuidString.prefix(6))-\(String(format: "%08d", i))"
            let key = try PrivateKey.generateP256()
            let cert = try Certificate.issue(subject: "/CN=\(udid)", key: key, issuer: (fleet.ca.certificate, fleet.ca.key), usage: .clientIdentity,
                                             validity: Date().addingTimeInterval(-60)...Date().addingTimeInterval(86400))
            return try SimulatedDevice(udid: udid, serial: "P\(i)", identity: try SigningIdentity(certificate: cert, key: key),
                                       topic: accounts[0].topic, checkInURL: "\(gateway)/mdm/checkin", serverURL: "\(gateway)/mdm/server")
        }
        for device in plain {
            _ = try await device.authenticate()
            _ = try await device.tokenUpdate()
        }
        let rounds = 5
        func signedUpdates(_ fleet: [SimulatedDevice]) throws -> [(SimulatedDevice, SimulatedDevice.Presigned)] {
            try fleet.map { ($0, try $0.presign($0.tokenUpdateMessage)) }
        }
        let accountSigned = try signedUpdates(accounts), plainSigned = try signedUpdates(plain)
        func measure(_ items: [(SimulatedDevice, SimulatedDevice.Presigned)]) async throws -> Double {
            let next = NIOLockedValueBox(0)
            let total = items.count * rounds
            let t0 = DispatchTime.now()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<concurrency {
                    group.addTask {
                        while true {
                            let i = next.withLockedValue { n -> Int in defer { n += 1 }; return n }
                            guard i < total else { return }
                            let (device, message) = items[i % items.count]
                            let r = try await device.send(message, to: device.checkInURL, contentType: CheckinMessage.contentType)
                            guard r.status == 200 else { throw PlistError("check-in → \(r.status) \(r.text.prefix(200))") }
                        }
                    }
                }
                try await group.waitForAll()
            }
            return Double(total) / (Double(DispatchTime.now().uptimeNanoseconds - t0.uptimeNanoseconds) / 1e9)
        }
        print("check-in throughput, TokenUpdate, \(accounts.count) enrollments each, \(rounds) per enrollment, \(concurrency) at a time:")
        var account: [Double] = [], plainRates: [Double] = []
        for _ in 0..<2 {
            account.append(try await measure(accountSigned))
            plainRates.append(try await measure(plainSigned))
        }
        let a = account.reduce(0, +) / 2, p = plainRates.reduce(0, +) / 2
        print(String(format: "  account-driven (bearer validated): %@ check-ins/s; plain: %@ check-ins/s; account-driven/plain = %.1f%%",
                     account.map { String(format: "%.0f", $0) }.joined(separator: ", "),
                     plainRates.map { String(format: "%.0f", $0) }.joined(separator: ", "), a / p * 100))
    }
}
