import AppleProtocol
import Foundation
import Logging
import OrchardCore
import OrchardMessaging
import OrchardSchemas
import OrchardServiceKit
import OrchardStorage
import ServiceLifecycle

/// Moves app installs along, on every gateway replica (rows are claimed with `SKIP LOCKED`, so replicas share the work):
/// 1. licences: installs due for one, grouped by app and content token, 1,000 serial numbers a request to abm-sync
///    (Apple's limit); each install licensed or failed with Apple's reason;
/// 2. installs: one InstallApplication per app and role for all the devices due, queued in the transaction that marks
///    them installing; the devices are pushed;
/// 3. checks again, for installs a device still reported on their way (`AppInstallObserver` asks first).
/// A watch's install for a paired or dependent app is due only once its iPhone's is installed.
struct AppRollout: Service {
    let database: Database
    let outbox: OutboxPublisher
    let requests: RequestClient
    let pusher: APNsPusher
    let declarations: DeclarationService
    let logger: Logger
    var interval: Duration = .seconds(1)
    var requestTimeout: Duration = .seconds(60)
    /// How long a licence claim holds its installs (another replica takes them after).
    var lease: Duration = .seconds(120)
    /// How long an iPhone given the app's declaration has to report it managed (app.managed.list) before its install,
    /// and its watch's, fail.
    var declarationDeadline: Duration = .seconds(24 * 3600)

    static let batch = 1000

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    var busy = true
                    // Work while there is work; then wait for the next tick.
                    while busy && !Task.isCancelled { busy = try await step() }
                } catch {
                    logger.warning("app rollout: \(error)")
                }
                try? await Task.sleep(for: interval)
            }
        }
    }

    /// One pass; whether it found anything to do.
    func step() async throws -> Bool {
        let licensed = try await licences()
        let queued = try await queueInstalls()
        let rechecked = try await recheck()
        let overdue = try await expireDeclared()
        return licensed || queued || rechecked || overdue
    }

    // MARK: Licences

    private func licences() async throws -> Bool {
        let claimed = try await database.transaction { c in try AppInstallStore.claimForLicence(c, limit: Self.batch, lease: lease) }
        guard !claimed.isEmpty else { return false }
        let groups = Dictionary(grouping: claimed) { "\($0.app.contentToken ?? "")|\($0.app.adamID)|\($0.app.pricingParam ?? "")" }
        for (_, installs) in groups.sorted(by: { $0.key < $1.key }) {
            let app = installs[0].app
            let noSerial = installs.filter { ($0.serialNumber ?? "").isEmpty }
            let withSerial = installs.filter { !($0.serialNumber ?? "").isEmpty }
            var bySerial: [String: [AppInstallStore.Install]] = [:]
            for i in withSerial { bySerial[i.serialNumber!, default: []].append(i) }
            var licensed: [Int] = [], failed: [(Int, String)] = noSerial.map {
                ($0.id, "no serial number is known for \($0.enrollmentID): an Apps and Books licence is assigned by serial number (send DeviceInformation)")
            }
            var retry: [Int] = [], why = ""
            if !bySerial.isEmpty {
                do {
                    let reply = try await requests.request(
                        AssociateAppLicences(tokenID: app.contentToken ?? "", adamID: app.adamID, pricingParam: app.pricingParam,
                                             serialNumbers: bySerial.keys.sorted(), actor: "orchard:app-rollout"),
                        timeout: requestTimeout, correlationID: RandomUUID.lowercased())
                    for serial in reply.licensed { licensed += bySerial[serial]?.map(\.id) ?? [] }
                    for f in reply.failed { failed += (bySerial[f.serialNumber] ?? []).map { ($0.id, "licence: \(f.reason)") } }
                } catch let refused as RequestRefused where refused.httpStatus < 500 {
                    // The token or the app is refused for all of them (unknown, expired, not the location's).
                    failed += withSerial.map { ($0.id, "licence: \(refused.message)") }
                } catch {
                    retry = withSerial.map(\.id)
                    why = "licence request failed, tried again in 30 s: \(error)"
                }
            }
            let (ok, bad, later, reason) = (licensed, failed, retry, why)
            try await database.transaction { c in
                try AppInstallStore.setLicensed(c, ids: ok)
                try AppInstallStore.fail(c, ids: bad.map(\.0), reasons: bad.map(\.1))
                try AppInstallStore.retryLater(c, ids: later, after: .seconds(30), detail: reason)
                var journal = Journal(correlationID: nil)
                for (id, r) in bad.prefix(50) {
                    let device = installs.first { $0.id == id }?.enrollmentID
                    journal.activity(actor: "orchard:app-rollout", "app.install.failed", device: device, outcome: .failed,
                                     detail: "app \(app.label) (\(app.bundleID)): \(r)")
                }
                try journal.write(c)
            }
            if !bad.isEmpty { outbox.notify() }
        }
        return true
    }

    // MARK: Installs

    private func queueInstalls() async throws -> Bool {
        let pushed = try await database.transaction { c -> [String]? in
            let due = try AppInstallStore.lockForInstall(c, limit: Self.batch)
            guard !due.isEmpty else { return nil }
            var journal = Journal(correlationID: nil)
            var push: [String] = []
            let inactive = due.filter { !$0.enrollmentActive }
            try AppInstallStore.fail(c, ids: inactive.map(\.id), reasons: inactive.map { "\($0.enrollmentID) is no longer enrolled" })
            let groups = Dictionary(grouping: due.filter(\.enrollmentActive)) { "\($0.assignmentID)|\($0.role)|\(Self.needsPrecheck($0))" }
            /// Queues `command` for these installs' devices, `mark`s those it reached; the others fail.
            func send(_ command: MDMCommand, _ installs: [AppInstallStore.Install], mark: ([Int]) throws -> Void) throws {
                let queued = Set(try CommandQueue.enqueue(c, command, enrollmentIDs: installs.map(\.enrollmentID),
                                                          requestedBy: "orchard:app-rollout", journal: &journal))
                try mark(installs.filter { queued.contains($0.enrollmentID) }.map(\.id))
                let missed = installs.filter { !queued.contains($0.enrollmentID) }
                try AppInstallStore.fail(c, ids: missed.map(\.id), reasons: missed.map { "\($0.enrollmentID) does not take commands" })
                push += queued.sorted()
            }
            for (_, installs) in groups.sorted(by: { $0.key < $1.key }) {
                let first = installs[0]
                if first.role == "iphone" && first.app.iphoneInstall == "declaration" {
                    push += try declare(c, installs, journal: &journal)
                    continue
                }
                if Self.needsPrecheck(first) {
                    // Apps are shared between an iPhone and its watch: the system may have put the watch app there already.
                    let check = MDMCommand.installedApplicationList(identifiers: [AppInstallObserver.identifier(of: first)], managedOnly: false)
                    try send(check, installs) { try AppInstallStore.setPrechecking(c, ids: $0, checkUUID: check.commandUUID) }
                    continue
                }
                let command: MDMCommand
                if first.app.isInHouse {
                    command = .installApplication(manifestURL: (first.role == "watch" ? first.app.watchManifestURL : first.app.manifestURL) ?? "")
                } else {
                    let identifier = first.role == "watch" ? (first.app.watchBundleID ?? first.app.bundleID) : nil
                    command = .installApplication(storeID: Int(first.app.adamID) ?? 0, identifier: identifier, licensed: first.app.contentToken != nil)
                }
                try send(command, installs) { try AppInstallStore.setInstalling(c, ids: $0, commandUUID: command.commandUUID) }
            }
            try journal.write(c)
            return push
        }
        guard let pushed else { return false }
        outbox.notify()
        await pusher.push(pushed)
        return true
    }

    /// A watch's install of an app its iPhone has too: the watch is asked first whether the app is there already.
    static func needsPrecheck(_ i: AppInstallStore.Install) -> Bool {
        i.role == "watch" && i.app.watchDeployment != "standalone" && !i.prechecked
    }

    /// The status item a managed-app declaration's progress is read from, and the subscription that asks for it.
    static let appStatusItem = "app.managed.list"
    static let appStatusSubscription = "orchard.status.app-managed-list"

    /// iPhones that get the app through Apple's managed-app declaration (com.apple.configuration.app.managed): the
    /// assignment's declaration, a subscription to app.managed.list and the activation that names both are assigned to
    /// each, and each is told to synchronise; the installs wait for the device's status (`AppInstallObserver.statusReported`).
    private func declare(_ c: Connection, _ installs: [AppInstallStore.Install], journal: inout Journal) throws -> [String] {
        let first = installs[0]
        let declarationID = AppInstallStore.App.declarationID(assignment: first.assignmentID)
        var behavior: [String: Any] = ["Install": "Required"]
        var payload: [String: Any] = [:]
        if first.app.isInHouse {
            payload["ManifestURL"] = first.app.manifestURL ?? ""
        } else {
            // Apple: License.Assignment must be present for App Store apps; the licence Orchard assigns is the device's.
            behavior["License"] = ["Assignment": "Device"]
            payload["AppStoreID"] = first.app.adamID
        }
        payload["InstallBehavior"] = behavior
        let app = try JSONSerialization.data(withJSONObject: payload, options: [.sortedKeys])
        let subscription = try JSONSerialization.data(withJSONObject: ["StatusItems": [["Name": Self.appStatusItem]]], options: [.sortedKeys])
        try declarations.save(c, identifier: declarationID, type: "com.apple.configuration.app.managed", payload: Array(app))
        try declarations.save(c, identifier: Self.appStatusSubscription, type: "com.apple.configuration.management.status-subscriptions",
                              payload: Array(subscription))
        // A configuration applies only when an activation names it.
        let activationID = declarationID + ".activation"
        let activation = try JSONSerialization.data(withJSONObject: ["StandardConfigurations": [declarationID, Self.appStatusSubscription]],
                                                    options: [.sortedKeys])
        try declarations.save(c, identifier: activationID, type: "com.apple.activation.simple", payload: Array(activation))
        var queued: [String] = []
        for install in installs {
            queued += try declarations.change(c, add: [declarationID, Self.appStatusSubscription, activationID], remove: [], for: install.enrollmentID,
                                              actor: "orchard:app-rollout", journal: &journal)
        }
        let reached = Set(queued)
        try AppInstallStore.setDeclared(c, ids: installs.filter { reached.contains($0.enrollmentID) }.map(\.id), declarationID: declarationID,
                                        deadline: declarationDeadline)
        let missed = installs.filter { !reached.contains($0.enrollmentID) }
        try AppInstallStore.fail(c, ids: missed.map(\.id), reasons: missed.map { "\($0.enrollmentID) does not take commands" })
        return reached.sorted()
    }

    /// Declared installs no status report finished by their deadline: failed (the watches' waiting on them too).
    private func expireDeclared() async throws -> Bool {
        try await database.transaction { c -> Bool in
            let overdue = try AppInstallStore.lockOverdueDeclared(c, limit: Self.batch)
            guard !overdue.isEmpty else { return false }
            let hours = Int(declarationDeadline.components.seconds) / 3600, seconds = Int(declarationDeadline.components.seconds)
            let reason = "the iPhone did not report the app managed (app.managed.list) within \(hours > 0 ? "\(hours) h" : "\(seconds) s") of its declaration"
            try AppInstallStore.fail(c, ids: overdue.map(\.id), reasons: overdue.map { i in
                i.detail.flatMap { $0.hasPrefix("device: ") ? "\(reason); it last said \($0.dropFirst(8))" : nil } ?? reason
            })
            var journal = Journal(correlationID: nil)
            for i in overdue.prefix(50) {
                journal.activity(actor: "orchard:app-rollout", "app.install.failed", device: i.enrollmentID, outcome: .failed,
                                 detail: "app \(i.app.label) (\(i.app.bundleID)) on the iphone: \(reason)")
            }
            try journal.write(c)
            return true
        }
    }

    // MARK: Checks

    private func recheck() async throws -> Bool {
        let pushed = try await database.transaction { c -> [String]? in
            let due = try AppInstallStore.lockForRecheck(c, limit: Self.batch)
            guard !due.isEmpty else { return nil }
            var journal = Journal(correlationID: nil)
            for (device, installs) in Dictionary(grouping: due, by: \.enrollmentID) {
                try AppInstallObserver.queueCheck(c, device: device, installs: installs, detail: nil, journal: &journal)
            }
            try journal.write(c)
            return Array(Set(due.map(\.enrollmentID))).sorted()
        }
        guard let pushed else { return false }
        outbox.notify()
        await pusher.push(pushed)
        return true
    }
}

/// Reads a device's answers to the rollout's commands, in the transaction that records them: an InstallApplication
/// acknowledged is followed at once by an InstalledApplicationList for the app (the device gets it as its next command);
/// an error (or a `State` of Failed or a rejection) fails the install, and the watches' installs waiting on it; the
/// list's answer marks it installed, or asks again later (2 s, doubling to 5 min; after 30 checks it fails).
struct AppInstallObserver: CommandResultObserver, DeclarationStatusObserver {
    static let failedStates: Set<String> = ["Failed", "UserRejected", "ManagementRejected", "UpdateRejected"]
    static let maxChecks = 30

    func commandFinished(_ result: CommandResult, requestType: String, enrollment: AuthorizedEnrollment, in c: Connection,
                         journal: inout Journal) throws -> [String] {
        guard requestType == "InstallApplication" || requestType == "InstalledApplicationList", let uuid = result.commandUUID else { return [] }
        let installs = try AppInstallStore.installs(c, enrollmentID: enrollment.id, commandUUID: uuid)
        guard !installs.isEmpty else { return [] }
        let device = enrollment.id
        func failed(_ reason: String) throws {
            try AppInstallStore.fail(c, ids: installs.map(\.id), reasons: installs.map { _ in reason })
            for i in installs {
                journal.activity(actor: "device:\(device)", "app.install.failed", device: device, outcome: .failed,
                                 detail: "app \(i.app.label) (\(i.app.bundleID)) on the \(i.role): \(reason)")
            }
        }
        if requestType == "InstallApplication" {
            guard result.status == .acknowledged else {
                try failed("InstallApplication: \(result.status.rawValue)\(result.errorSummary)")
                return []
            }
            let state = result.values["State"]?.string
            if let state, Self.failedStates.contains(state) {
                let reason = result.values["RejectionReason"]?.string
                try failed("InstallApplication: the device says \(state)\(reason.map { " (\($0))" } ?? "")")
                return []
            }
            try Self.queueCheck(c, device: device, installs: installs, detail: state.map { "device: \($0)" }, journal: &journal)
            return []
        }
        // The check's answer: a watch's precheck (nothing sent yet), or whether what was sent is installed.
        let prechecks = installs.filter { $0.commandUUID == nil }
        try precheckAnswered(c, prechecks, result: result, journal: &journal)
        let sent = installs.filter { $0.commandUUID != nil }
        guard !sent.isEmpty else { return [] }
        guard result.status == .acknowledged else {
            try later(c, sent, detail: "InstalledApplicationList: \(result.status.rawValue)\(result.errorSummary)", journal: &journal)
            return []
        }
        let items = (result.values["InstalledApplicationList"]?.array ?? []).prefix(1000).compactMap(\.dictionary)
        var installed: [Int] = [], pending: [AppInstallStore.Install] = [], broken: [(Int, String)] = []
        for i in sent {
            let identifier = Self.identifier(of: i)
            guard let item = items.first(where: { $0["Identifier"]?.string == identifier }) else { pending.append(i); continue }
            if item["DownloadFailed"]?.bool == true || item["DownloadCancelled"]?.bool == true {
                broken.append((i.id, "the device reports the download of \(identifier) \(item["DownloadFailed"]?.bool == true ? "failed" : "cancelled")"))
            } else if item["Installing"]?.bool == true || item["DownloadWaiting"]?.bool == true || item["DownloadPaused"]?.bool == true {
                pending.append(i)
            } else {
                installed.append(i.id)
            }
        }
        try AppInstallStore.setInstalled(c, ids: installed)
        for id in installed {
            let i = sent.first { $0.id == id }!
            journal.activity(actor: "device:\(device)", "app.installed", device: device,
                             detail: "app \(i.app.label) (\(Self.identifier(of: i))) on the \(i.role)")
        }
        try AppInstallStore.fail(c, ids: broken.map(\.0), reasons: broken.map(\.1))
        try later(c, pending, detail: "not installed yet", journal: &journal)
        return []
    }

    /// A declarative status report, in the transaction that stores it: Apple's `app.managed.list` items for Orchard's
    /// app declarations move their installs (`managed` → installed; `failed` → failed with the device's reasons; any
    /// other state is shown as it stands), and a declaration the device reports invalid fails its install with the
    /// reasons. Items for other apps, and reports without them, change nothing.
    func statusReported(_ c: Connection, enrollmentID: String, report: [UInt8], journal: inout Journal) throws {
        // Every device's reports pass here; only one that names an app declaration of Orchard's is parsed again.
        guard report.firstRange(of: Array("orchard.app.".utf8)) != nil, let object = (try? JSONSerialization.jsonObject(with: Data(report))) as? [String: Any],
              let statusItems = object["StatusItems"] as? [String: Any] else { return }
        let appItems = (((statusItems["app"] as? [String: Any])?["managed"] as? [String: Any])?["list"] as? [Any] ?? []).prefix(1000)
            .compactMap { $0 as? [String: Any] }
        let configurations = ((((statusItems["management"] as? [String: Any])?["declarations"] as? [String: Any])?["configurations"] as? [Any]) ?? [])
            .prefix(1000).compactMap { $0 as? [String: Any] }
        func reasons(_ value: Any?) -> String {
            let list = (value as? [Any] ?? []).prefix(5).compactMap { $0 as? [String: Any] }.map { r in
                [r["code"] as? String, r["description"] as? String].compactMap { $0 }.joined(separator: ": ")
            }
            return list.isEmpty ? "" : " (" + list.joined(separator: "; ").prefix(500) + ")"
        }
        var mentioned = Set(appItems.compactMap { $0["declaration-identifier"] as? String })
        mentioned.formUnion(configurations.compactMap { $0["identifier"] as? String })
        let ours = mentioned.filter { $0.hasPrefix("orchard.app.") }
        let installs = try AppInstallStore.installs(c, enrollmentID: enrollmentID, declarationIDs: ours.sorted())
        guard !installs.isEmpty else { return }
        var installed: [AppInstallStore.Install] = [], failed: [(AppInstallStore.Install, String)] = []
        for i in installs {
            if let invalid = configurations.first(where: { $0["identifier"] as? String == i.declarationID && $0["valid"] as? String == "invalid" }) {
                failed.append((i, "the device reports the declaration invalid\(reasons(invalid["reasons"]))"))
                continue
            }
            guard let item = appItems.first(where: { $0["declaration-identifier"] as? String == i.declarationID }),
                  item["_removed"] as? Bool != true else { continue }
            let state = (item["state"] as? String).map { String($0.prefix(64)) } ?? "unknown"
            switch state {
            case "managed": installed.append(i)
            case "failed": failed.append((i, "the device reports app.managed.list state failed\(reasons(item["reasons"]))"))
            default: try AppInstallStore.note(c, ids: [i.id], detail: "device: \(state)")
            }
        }
        try AppInstallStore.setInstalled(c, ids: installed.map(\.id))
        for i in installed {
            journal.activity(actor: "device:\(enrollmentID)", "app.installed", device: enrollmentID,
                             detail: "app \(i.app.label) (\(i.app.bundleID)) on the iphone, through declaration \(i.declarationID ?? "?")")
        }
        try AppInstallStore.fail(c, ids: failed.map(\.0.id), reasons: failed.map(\.1))
        for (i, reason) in failed {
            journal.activity(actor: "device:\(enrollmentID)", "app.install.failed", device: enrollmentID, outcome: .failed,
                             detail: "app \(i.app.label) (\(i.app.bundleID)) on the iphone: \(reason)")
        }
    }

    /// The watch's answer to "is the app there already?": there and done → installed, not sent again (the system put it
    /// there from the iPhone); there and still coming → asked again later (after the checks run out, sent after all);
    /// not there, or no answer → licensed and sent as usual.
    private func precheckAnswered(_ c: Connection, _ installs: [AppInstallStore.Install], result: CommandResult, journal: inout Journal) throws {
        guard !installs.isEmpty else { return }
        guard result.status == .acknowledged else {
            try AppInstallStore.precheckMissed(c, ids: installs.map(\.id), detail: nil)
            return
        }
        let items = (result.values["InstalledApplicationList"]?.array ?? []).prefix(1000).compactMap(\.dictionary)
        var there: [AppInstallStore.Install] = [], coming: [AppInstallStore.Install] = [], missing: [Int] = []
        for i in installs {
            guard let item = items.first(where: { $0["Identifier"]?.string == Self.identifier(of: i) }),
                  item["DownloadFailed"]?.bool != true, item["DownloadCancelled"]?.bool != true else { missing.append(i.id); continue }
            if item["Installing"]?.bool == true || item["DownloadWaiting"]?.bool == true || item["DownloadPaused"]?.bool == true {
                coming.append(i)
            } else {
                there.append(i)
            }
        }
        try AppInstallStore.setInstalled(c, ids: there.map(\.id), detail: "on the watch already (the system put it there from its iPhone): not sent again")
        for i in there {
            journal.activity(actor: "device:\(i.enrollmentID)", "app.installed", device: i.enrollmentID,
                             detail: "app \(i.app.label) (\(Self.identifier(of: i))) on the watch, from its iPhone: not sent again")
        }
        try AppInstallStore.precheckMissed(c, ids: missing, detail: nil)
        let exhausted = coming.filter { $0.checks + 1 >= Self.maxChecks }
        try AppInstallStore.precheckMissed(c, ids: exhausted.map(\.id), detail: "still coming from its iPhone after \(Self.maxChecks) checks: sent")
        try later(c, coming.filter { $0.checks + 1 < Self.maxChecks }, detail: "the watch is getting the app from its iPhone", journal: &journal)
    }

    static func identifier(of i: AppInstallStore.Install) -> String {
        i.role == "watch" ? (i.app.watchBundleID ?? i.app.bundleID) : i.app.bundleID
    }

    /// One InstalledApplicationList for these installs of one device (any app for a watch's precheck, managed apps
    /// for what Orchard sent).
    static func queueCheck(_ c: Connection, device: String, installs: [AppInstallStore.Install], detail: String?, journal: inout Journal) throws {
        let prechecks = installs.filter { $0.commandUUID == nil }, sent = installs.filter { $0.commandUUID != nil }
        if !prechecks.isEmpty && !sent.isEmpty {
            try queueCheck(c, device: device, installs: prechecks, detail: detail, journal: &journal)
            try queueCheck(c, device: device, installs: sent, detail: detail, journal: &journal)
            return
        }
        let command = MDMCommand.installedApplicationList(identifiers: Array(Set(installs.map(identifier(of:)))).sorted(), managedOnly: prechecks.isEmpty)
        let queued = try CommandQueue.enqueue(c, command, enrollmentIDs: [device], requestedBy: "orchard:app-rollout", journal: &journal)
        if queued.isEmpty {
            try AppInstallStore.fail(c, ids: installs.map(\.id), reasons: installs.map { _ in "\(device) does not take commands" })
        } else {
            try AppInstallStore.setChecking(c, ids: installs.map(\.id), checkUUID: command.commandUUID, detail: detail)
        }
    }

    private func later(_ c: Connection, _ installs: [AppInstallStore.Install], detail: String, journal: inout Journal) throws {
        let exhausted = installs.filter { $0.checks + 1 >= Self.maxChecks }
        try AppInstallStore.fail(c, ids: exhausted.map(\.id), reasons: exhausted.map { _ in "still not installed after \(Self.maxChecks) checks" })
        for (checks, group) in Dictionary(grouping: installs.filter { $0.checks + 1 < Self.maxChecks }, by: \.checks) {
            let wait = Duration.seconds(min(2 << min(checks, 8), 300))
            try AppInstallStore.checkLater(c, ids: group.map(\.id), after: wait, detail: detail)
        }
    }
}
