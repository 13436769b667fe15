import AppleProtocol
import Foundation
import NIOConcurrencyHelpers
import OrchardCrypto
import OrchardMessaging
import OrchardSchemas
import OrchardTestSupport

/// A steady stream of device enrollments (through single-use links) and Apple Watch pairings, for
/// `seconds`, each device behaving as a real one does: a 503 with Retry-After, or no answer at all, is
/// retried (after the Retry-After, at most 2 s) until the enrollment's deadline; any other refusal ends
/// that enrollment. Deploy/fault-suite.sh injects a fault while it runs and reads what it writes to `out`:
///   device UDID | watch UDID PHONE | event KIND ENROLLMENT MESSAGE-ID | answer STEP STATUS COUNT |
///   failure REASON COUNT | bare5xx N | unanswered N
/// Device events are read from Kafka by a consumer group of its own, to count lost and doubled ones.
struct FaultLoad {
    let gateway: String
    let adminKey: String
    let pki: String
    let seconds: Int
    let deviceWorkers: Int
    let phones: Int
    let label: String
    let out: String
    let apnsPort: Int
    let kafka: KafkaSettings
    let producer: KafkaProducer

    /// How long one enrollment may take, retries included, before it counts as one that cannot complete.
    static let enrollmentDeadline: TimeInterval = 120

    struct Tally {
        var answers: [String: Int] = [:]
        var failures: [String: Int] = [:]
        var bare5xx = 0
        var unanswered = 0
        var devices: [String] = []
        var watches: [(String, String)] = []
        var events: [String] = []
    }

    struct Refused: Error { let reason: String }

    func run() async throws {
        let apns = APNsStandIn()
        try apns.start(port: apnsPort, certificatePEM: "\(pki)/apns-server.pem", keyPEM: "\(pki)/apns-server.key", clientCAPEM: "\(pki)/ca.pem")
        defer { apns.stop() }
        let fleet = try await BenchFleet.prepare(gateway: gateway, adminKey: adminKey, pki: pki)
        let phoneDevices = try await fleet.enrollPhones(phones, prefix: "FAULT-\(label)")
        let tally = NIOLockedValueBox(Tally())

        let events = KafkaConsumer(settings: kafka, groupID: "orchard-fault-suite-\(label)-\(getpid())", topics: [DeviceEvent.topic],
                                   deadLetters: producer, logger: logger) { message in
            let event = try MessageCodec.decode(DeviceEvent.self, from: message)
            tally.withLockedValue {
                $0.events.append("event \(event.kind.rawValue) \(event.enrollmentID) \(message.headers[Header.messageID] ?? "-")")
            }
        }
        let eventTask = Task { try await events.run() }
        // The group starts at the beginning of the topic (earliest, as after a broker restart): let it catch up
        // with what earlier runs left there before the load starts, so that a fault meets a reader that keeps up.
        var seen = -1, quietSince = Date()
        let catchUpEnd = Date().addingTimeInterval(120)
        while Date() < catchUpEnd {
            let count = tally.withLockedValue { $0.events.count }
            if count != seen || !events.hasAssignment { seen = count; quietSince = Date() }
            if Date().timeIntervalSince(quietSince) > 2 { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        tally.withLockedValue { $0.events.removeAll() }
        // Written straight to the file descriptor (print is buffered when stdout is a file): the suite waits for it.
        FileHandle.standardOutput.write(Data(
            "fault load \(label): \(deviceWorkers) enrolling devices and \(phones) iPhones pairing watches for \(seconds) s\n".utf8))

        let end = Date().addingTimeInterval(TimeInterval(seconds))
        /// One worker: enrollments one after another until `end`, each recorded as done or as why it could not.
        @Sendable func worker(_ prefix: String, _ enroll: @escaping @Sendable (String) async throws -> Void,
                              done: @escaping @Sendable (inout Tally, String) -> Void) async {
            var n = 0
            while Date() < end {
                n += 1
                let udid = "\(prefix)-\(n)"
                do {
                    try await enroll(udid)
                    tally.withLockedValue { done(&$0, udid) }
                } catch {
                    tally.withLockedValue { $0.failures[failureReason(error), default: 0] += 1 }
                }
            }
        }
        await withTaskGroup(of: Void.self) { group in
            for w in 0..<deviceWorkers {
                group.addTask {
                    await worker("FAULT-\(label)-D\(w)", { try await enrollDevice(udid: $0, fleet: fleet, tally: tally) },
                                 done: { $0.devices.append($1) })
                }
            }
            for (p, phone) in phoneDevices.enumerated() {
                group.addTask {
                    await worker("FAULTW-\(label)-\(p)", { try await pairWatch(udid: $0, phone: phone, fleet: fleet, tally: tally) },
                                 done: { $0.watches.append(($1, phone.udid)) })
                }
            }
        }
        // Events of the last enrollments are still leaving outboxes: read until none arrived for 5 s (at most 60 s).
        var lastCount = -1
        quietSince = Date()
        let drainEnd = Date().addingTimeInterval(60)
        while Date() < drainEnd {
            let count = tally.withLockedValue { $0.events.count }
            if count != lastCount { lastCount = count; quietSince = Date() }
            if Date().timeIntervalSince(quietSince) > 5 { break }
            try await Task.sleep(for: .milliseconds(500))
        }
        events.stop()
        _ = await eventTask.result

        let t = tally.withLockedValue { $0 }
        var lines = t.devices.map { "device \($0)" } + t.watches.map { "watch \($0.0) \($0.1)" } + t.events
        lines += t.answers.sorted { $0.key < $1.key }.map { "answer \($0.key) \($0.value)" }
        lines += t.failures.sorted { $0.key < $1.key }.map { "failure \($0.key.replacingOccurrences(of: " ", with: "_")) \($0.value)" }
        lines += ["bare5xx \(t.bare5xx)", "unanswered \(t.unanswered)"]
        try (lines.joined(separator: "\n") + "\n").write(toFile: out, atomically: true, encoding: .utf8)
        print("fault load \(label): \(t.devices.count) devices and \(t.watches.count) watches enrolled, "
              + "\(t.failures.values.reduce(0, +)) could not, \(t.bare5xx) bare 5xx")
    }

    private func enrollDevice(udid: String, fleet: BenchFleet, tally: NIOLockedValueBox<Tally>) async throws {
        let deadline = Date().addingTimeInterval(Self.enrollmentDeadline)
        let link = try await attempt("link", deadline, tally) {
            try await fleet.admin.call(.POST, "/enrollment-links", json: ["name": udid, "maxUses": 1])
        }
        guard link.status == 200 || link.status == 201, let url = try link.json()["url"] as? String else {
            throw Refused(reason: "link \(link.status)")
        }
        let profile = try await attempt("profile", deadline, tally) { try await http(.GET, url) }
        guard profile.status == 200 else { throw Refused(reason: "profile \(profile.status)") }
        let (device, _) = try SimulatedDevice.installing(profile.body, roots: [fleet.profileCA], udid: udid, serial: "F\(udid.suffix(8))")
        let auth = try await attempt("authenticate", deadline, tally) { try await device.authenticate() }
        guard auth.status == 200 else { throw Refused(reason: "authenticate \(auth.status)") }
        let update = try await attempt("token-update", deadline, tally) { try await device.tokenUpdate() }
        guard update.status == 200 else { throw Refused(reason: "token-update \(update.status)") }
    }

    private func pairWatch(udid: String, phone: SimulatedDevice, fleet: BenchFleet, tally: NIOLockedValueBox<Tally>) async throws {
        let deadline = Date().addingTimeInterval(Self.enrollmentDeadline)
        let url = "\(gateway)/mdm/watch/enroll"
        let watch = try SimulatedWatch(udid: udid, serial: "W\(udid.suffix(8))", appleCA: fleet.appleCA)
        let firstBody = try watch.signedMachineInfo()
        let first = try await attempt("watch-first", deadline, tally) {
            try await http(.POST, url, headers: [("Content-Type", "application/pkcs7-signature")], body: firstBody)
        }
        guard first.status == 403, let security = try plistValue(json: first.body)["details"]?["security-token"]?.string else {
            throw Refused(reason: "watch-first \(first.status)")
        }
        let token = try await attempt("get-token", deadline, tally) {
            try await phone.getToken(serviceType: "com.apple.watch.pairing",
                                     parameters: ["SecurityToken": security, "PhoneUDID": phone.udid, "WatchUDID": udid])
        }
        guard token.status == 200, let data = try Plist.parseDictionary(token.body)["TokenData"]?.data else {
            throw Refused(reason: "get-token \(token.status)")
        }
        let profile = try await attempt("watch-profile", deadline, tally) { try await watch.requestProfile(url, pairingToken: data) }
        guard profile.status == 200 else { throw Refused(reason: "watch-profile \(profile.status)") }
        let (device, _) = try SimulatedDevice.installing(profile.body, roots: [fleet.profileCA], udid: udid, serial: watch.serial,
                                                         platform: "watchOS")
        let auth = try await attempt("watch-authenticate", deadline, tally) { try await device.authenticate() }
        guard auth.status == 200 else { throw Refused(reason: "watch-authenticate \(auth.status)") }
        let update = try await attempt("watch-token-update", deadline, tally) { try await device.tokenUpdate() }
        guard update.status == 200 else { throw Refused(reason: "watch-token-update \(update.status)") }
    }

    /// One step as a device takes it: retried after a 503 with Retry-After (at most 2 s), after no answer
    /// (1 s), and after a bare 5xx (counted; a device retries those too), until the deadline.
    private func attempt(_ step: String, _ deadline: Date, _ tally: NIOLockedValueBox<Tally>,
                         _ body: () async throws -> HTTPResult) async throws -> HTTPResult {
        while true {
            guard Date() < deadline else { throw Refused(reason: "\(step) deadline") }
            let result: HTTPResult
            do { result = try await body() } catch {
                tally.withLockedValue { $0.unanswered += 1; $0.answers["\(step) none", default: 0] += 1 }
                try await Task.sleep(for: .seconds(1))
                continue
            }
            let retryAfter = result.headers["retry-after"].flatMap(Double.init)
            tally.withLockedValue { t in
                t.answers["\(step) \(result.status)\(retryAfter != nil ? "+Retry-After" : "")", default: 0] += 1
                if result.status >= 500 && !(result.status == 503 && retryAfter != nil) { t.bare5xx += 1 }
            }
            guard result.status >= 500 else { return result }
            try await Task.sleep(for: .milliseconds(Int(min(retryAfter ?? 1, 2) * 1000)))
        }
    }

    private func failureReason(_ error: any Error) -> String {
        (error as? Refused)?.reason ?? "error: \(error)".prefix(80).description
    }
}
