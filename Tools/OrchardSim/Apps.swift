import ArgumentParser
import Foundation
import NIOConcurrencyHelpers
import OrchardSimulator

/// `orchard-sim apps`: a paired app rolled out to many iPhone+watch pairs, as an organisation does after buying it:
/// the pairs enroll (closed loop), a content token of the Apps and Books stand-in is uploaded, one assignment names every
/// iPhone, and the devices answer when pushed (the APNs stand-in's feed; every 30 s otherwise) until every install is
/// installed or failed. Prints the time to all installed and the steps' shares.
struct Apps: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Roll a paired app out to simulated iPhone+watch pairs and time it.",
        discussion: "Needs the local trial (./Deploy/run-local.sh): the Apple device CA, the push feed and the Apps and Books stand-in.")

    @OptionGroup var connection: Connection
    @Option(help: "How many iPhone+watch pairs.") var pairs = 100
    @Option(help: "Pairs enrolled at a time.") var closed = 16
    @Option(name: .customLong("apps-books"), help: "The Apps and Books stand-in's URL (default: the config file's).") var appsBooks: String?
    @Option(help: "Give up after this many seconds.") var timeout = 900

    func run() async throws {
        let environment = try connection.environment()
        guard let feed = environment.pushFeed else { throw SimulatorError("no push feed: the devices must hear the pushes (use the local trial)") }
        let trial = try Connection.configFile()["trial"] as? [String: Any]
        guard let standIn = appsBooks ?? trial?["appsBooksStandIn"] as? String, !standIn.isEmpty else {
            throw SimulatorError("no Apps and Books stand-in: give --apps-books (the local trial's is in its config file)")
        }
        let flows = try await EnrollmentFlows(environment: environment, narrator: .silent)
        let admin = environment.admin
        let started = Date()
        let enrolled = NIOLockedValueBox<[(phone: SimulatedDevice, watch: SimulatedDevice)]>([])
        _ = try await LoadPatterns.closedLoop(0..<pairs, concurrency: closed) { _ in
            let pair = try await flows.enrollWatch()
            let count = enrolled.withLockedValue { $0.append(pair); return $0.count }
            if count % 250 == 0 { print("  enrolled \(count) of \(pairs) pairs") }
        }
        let all = enrolled.withLockedValue { $0 }
        print(String(format: "apps: %d pairs enrolled in %.1f s", all.count, Date().timeIntervalSince(started)))

        // The app, its licences, the assignment.
        let tag = String(UUID().uuidString.prefix(6)).lowercased()
        let storeID = Int.random(in: 100_000_000...999_999_999)
        AppCatalog.shared.register(storeID: storeID, bundleID: "com.example.rollout\(tag)", watchBundleID: "com.example.rollout\(tag).watchkitapp")
        // The content token is the organisation's whose ABM server tokens Orchard has (abm-sync refuses another's).
        let abmTokens = try await admin.expect(.GET, "/abm/tokens")["items"] as? [[String: Any]] ?? []
        let organization = abmTokens.compactMap { $0["organization"] as? String }.first ?? "Orchard trial"
        let location = try await http(.POST, "\(standIn)/_control/tokens", headers: [("Content-Type", "application/json")],
                                      body: Array(try JSONSerialization.data(withJSONObject: [
                                        "orgName": organization, "locationName": "rollout-\(tag)",
                                        "assets": [["adamId": "\(storeID)", "count": pairs * 2]]])))
        guard location.status == 200, let sToken = (try location.json())["sToken"] as? String else {
            throw SimulatorError("the Apps and Books stand-in made no token: \(location.status) \(location.text.prefix(200))")
        }
        _ = try await admin.expect(.PUT, "/apps/content-tokens/rollout-\(tag)", json: ["sToken": sToken])
        let byToken = Dictionary(all.flatMap { [$0.phone, $0.watch] }.map { ($0.pushToken.map { String(format: "%02x", $0) }.joined(), $0) }) { a, _ in a }
        let wake = WakeBox()
        let rolloutStart = Date()
        let created = try await admin.expect(.POST, "/apps/assignments", json: [
            "name": "Rollout \(tag)", "adamId": "\(storeID)", "bundleId": "com.example.rollout\(tag)",
            "watchBundleId": "com.example.rollout\(tag).watchkitapp", "watchDeployment": "paired", "contentToken": "rollout-\(tag)",
            "target": ["devices": all.map(\.phone.udid)]])
        guard let id = created["id"] as? String else { throw SimulatorError("no assignment: \(created)") }
        let assigned = Date().timeIntervalSince(rolloutStart)
        let deadline = Date().addingTimeInterval(TimeInterval(timeout))
        let done = NIOLockedValueBox(false)
        var states: [String: Int] = [:]
        var firstWatchInstalled: Double?, phonesDone: Double?, finished: Double?
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await Fleet.followPushes(feed, byToken: byToken, wake: wake, until: deadline) }
            for device in byToken.values {
                group.addTask {
                    let responder = DeviceResponder(supervised: true)
                    while !done.withLockedValue({ $0 }) && Date() < deadline {
                        _ = try? await responder.drain(device)
                        await wake.wait(for: device.udid, until: min(Date().addingTimeInterval(30), deadline))
                    }
                }
            }
            while Date() < deadline {
                try await Task.sleep(for: .milliseconds(500))
                // A gateway that is away (a fault run kills it) is asked again at the next tick.
                guard let view = try? await admin.expect(.GET, "/apps/assignments/\(id)") else { continue }
                states = view["states"] as? [String: Int] ?? [:]
                let installs = view["installs"] as? [[String: Any]] ?? []
                let phones = installs.filter { $0["role"] as? String == "iphone" }
                if phonesDone == nil, phones.allSatisfy({ ["installed", "failed"].contains($0["state"] as? String ?? "") }) {
                    phonesDone = Date().timeIntervalSince(rolloutStart)
                }
                if firstWatchInstalled == nil, installs.contains(where: { $0["role"] as? String == "watch" && $0["state"] as? String == "installed" }) {
                    firstWatchInstalled = Date().timeIntervalSince(rolloutStart)
                }
                if (states["installed"] ?? 0) + (states["failed"] ?? 0) == all.count * 2 { break }
            }
            finished = Date().timeIntervalSince(rolloutStart)
            done.withLockedValue { $0 = true }
            for device in byToken.values { await wake.wake(device.udid) }
            group.cancelAll()
        }
        let total = finished ?? Date().timeIntervalSince(rolloutStart)
        print(String(format: "apps: assignment of %d installs answered in %.2f s", all.count * 2, assigned))
        print(String(format: "apps: all iPhones installed at %.1f s, first watch installed at %.1f s", phonesDone ?? -1, firstWatchInstalled ?? -1))
        print(String(format: "apps: %d pairs: all %d installs done in %.1f s (%.0f installs/s); states %@", all.count, all.count * 2, total,
                     Double(all.count * 2) / total, states.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")))
        guard (states["installed"] ?? 0) == all.count * 2 else { throw SimulatorError("not every install finished: \(states)") }
    }
}
