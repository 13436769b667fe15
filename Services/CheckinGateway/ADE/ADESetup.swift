import AppleProtocol
import Foundation
import Logging
import OrchardMessaging
import OrchardSchemas
import OrchardStorage
import ServiceLifecycle

/// An ADE device from its first TokenUpdate to its release from Setup Assistant: its ADE profile's setup
/// items (commands, and declarations with the DeclarativeManagement command that delivers them) are queued
/// then, and followed; when every one has finished — or `deadline` passed, so that a `NotNow` cannot hold a
/// device in Setup Assistant for ever — `DeviceConfigured` is sent if the profile says `await_device_configured`
/// and the device said `AwaitingConfiguration`. States: `profile pushed` → `enrolled` → `setting up` →
/// `released` (or `failed`, with the reason), each an activity entry and an `ade-state` device event.
struct ADESetup: EnrollmentObserver, CommandResultObserver {
    let declarations: DeclarationService
    let deadline: Duration
    let service: String

    var actor: String { "service:\(service)" }

    func enrolled(_ m: TokenUpdate, enrollment e: AuthorizedEnrollment, in c: Connection, journal: inout Journal) throws -> [String] {
        // Most enrollments are not ADE: the state read with the enrollment spares them the statement.
        if let record = e.record, record.adeState != .profilePushed { return [] }
        guard let start = try ADEStore.setupStart(c, udid: e.id), start.enrollment.state == .profilePushed else { return [] }
        let ade = start.enrollment, profile = start.profile
        let awaiting = (profile?.awaitDeviceConfigured ?? false) && m.awaitingConfiguration
        state(c, e.id, .enrolled, serial: ade.serial, detail: "serial \(ade.serial)", journal: &journal)
        var commands: [MDMCommand] = []
        var skipped: [String] = []
        if let profile {
            let items = start.items
            let inputs = (try? JSONDecoder().decode([CommandInput].self, from: Data(items.commands.utf8))) ?? []
            for input in inputs {
                // The enrollment itself asked for DeviceInformation with the standard queries (TokenUpdateHandler): a setup
                // item asking no more than those would send the device the same command twice.
                if input.type == "DeviceInformation", Set(input.queries ?? MDMCommand.standardQueries).isSubset(of: MDMCommand.standardQueries) {
                    continue
                }
                // Validated when saved; one that no longer builds is reported, not fatal to the others.
                do { commands.append(try input.command()) } catch { skipped.append(input.type) }
            }
            if let sync = try declarations.assignForSetup(c, items.declarations, to: e.id) { commands.append(sync) }
        }
        // The device's own TokenUpdate, its enrollment authorized in this transaction: the commands and their tracking rows
        // travel with the next statement instead of a round trip each.
        for command in commands {
            try CommandQueue.enqueueForRequestingDevice(c, command, enrollmentID: e.id, requestedBy: actor, journal: &journal)
            try ADEStore.trackSetupCommand(c, udid: e.id, uuid: command.commandUUID, requestType: command.requestType)
        }
        try ADEStore.setState(c, udid: e.id, .settingUp, awaitConfigured: awaiting, deadline: Date().addingTimeInterval(seconds))
        state(c, e.id, .settingUp, serial: ade.serial, detail: """
            \(commands.count) setup items\(skipped.isEmpty ? "" : " (\(skipped.joined(separator: ", ")) could not be built)")\
            \(awaiting ? "; DeviceConfigured follows them" : "; the device does not await configuration")
            """, journal: &journal)
        if commands.isEmpty { try release(c, e.id, serial: ade.serial, awaiting: awaiting, why: "no setup items", journal: &journal) }
        return [e.id]
    }

    func commandFinished(_ result: CommandResult, requestType: String, enrollment e: AuthorizedEnrollment, in c: Connection,
                         journal: inout Journal) throws -> [String] {
        // Every device's command results pass here: only an ADE device in setup (known from the enrollment's own
        // row, read by the authorization anyway) costs a statement.
        guard e.record?.adeSettingUp == true, result.status != .notNow, result.status != .idle, let uuid = result.commandUUID,
              let ade = try ADEStore.enrollment(c, udid: e.id, lock: true), ade.state == .settingUp else { return [] }
        if uuid == ade.releaseCommand {
            if result.status == .acknowledged {
                try ADEStore.setState(c, udid: e.id, .released)
                state(c, e.id, .released, serial: ade.serial, detail: "DeviceConfigured acknowledged: Setup Assistant goes on",
                      journal: &journal)
            } else {
                let reason = "DeviceConfigured answered \(result.status.rawValue)\(result.errorSummary)"
                try ADEStore.setState(c, udid: e.id, .failed, reason: reason)
                state(c, e.id, .failed, serial: ade.serial, detail: reason, outcome: .failed, journal: &journal)
            }
            return []
        }
        guard let open = try ADEStore.setupCommandFinished(c, udid: e.id, uuid: uuid, status: result.status.rawValue) else { return [] }
        journal.activity(actor: actor, "ade.setup-item.done", device: e.id, outcome: result.status == .acknowledged ? .succeeded : .failed,
                         detail: "\(requestType) \(uuid): \(result.status.rawValue)\(result.errorSummary); \(open) open")
        guard open == 0, ade.releaseCommand == nil else { return [] }
        try release(c, e.id, serial: ade.serial, awaiting: ade.awaitConfigured, why: "every setup item finished", journal: &journal)
        return []
    }

    /// Releases the devices whose deadline passed (called every few seconds by `ReleaseDeadline`).
    func releaseOverdue(_ c: Connection, journal: inout Journal) throws -> [String] {
        var released: [String] = []
        for udid in try ADEStore.overdue(c) {
            guard let ade = try ADEStore.enrollment(c, udid: udid) else { continue }
            let summary = try ADEStore.setupSummary(c, udid: udid)
            try release(c, udid, serial: ade.serial, awaiting: ade.awaitConfigured,
                        why: "the setup deadline passed with \(summary.open) of \(summary.open + summary.done + summary.failed) items open",
                        journal: &journal)
            released.append(udid)
        }
        return released
    }

    private func release(_ c: Connection, _ udid: String, serial: String, awaiting: Bool, why: String, journal: inout Journal) throws {
        let summary = try ADEStore.setupSummary(c, udid: udid)
        let counts = "\(summary.done) done, \(summary.failed) failed, \(summary.open) open"
        guard awaiting else {
            try ADEStore.setState(c, udid: udid, .released)
            state(c, udid, .released, serial: serial, detail: "\(why) (\(counts)); no DeviceConfigured needed", journal: &journal)
            return
        }
        let configured = MDMCommand.deviceConfigured()
        _ = try CommandQueue.enqueue(c, configured, enrollmentIDs: [udid], requestedBy: actor, journal: &journal)
        try ADEStore.setState(c, udid: udid, .settingUp, releaseCommand: configured.commandUUID)
        journal.activity(actor: actor, "ade.release.requested", device: udid, detail: "\(why) (\(counts)): DeviceConfigured \(configured.commandUUID)")
    }

    private func state(_ c: Connection, _ udid: String, _ state: ADESetupState, serial: String, detail: String,
                       outcome: ActivityRecorded.Outcome = .succeeded, journal: inout Journal) {
        journal.event(DeviceEvent(kind: .adeState, enrollmentID: udid, details: ["state": state.rawValue, "serialNumber": serial]))
        journal.activity(actor: actor, "ade.\(state.rawValue.replacingOccurrences(of: " ", with: "-"))", device: udid, outcome: outcome, detail: detail)
    }

    private var seconds: TimeInterval { TimeInterval(deadline.components.seconds) }
}

/// Something that reacts when a device's first TokenUpdate enrolls it, in that transaction.
protocol EnrollmentObserver: Sendable {
    /// Returns the enrollments to push once the transaction committed.
    func enrolled(_ m: TokenUpdate, enrollment e: AuthorizedEnrollment, in c: Connection, journal: inout Journal) throws -> [String]
}

/// Every few seconds, releases ADE devices whose setup deadline passed, and pushes them.
struct ReleaseDeadline: Service {
    let setup: ADESetup
    let database: Database
    let outbox: OutboxPublisher
    let pusher: APNsPusher
    let logger: Logger
    var interval: Duration = .seconds(5)

    func run() async throws {
        // Stops at once on SIGTERM (a plain sleep held the gateway's shutdown for up to `interval`).
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    let released = try await database.transaction { c -> [String] in
                        var journal = Journal(correlationID: nil)
                        let released = try setup.releaseOverdue(c, journal: &journal)
                        try journal.write(c)
                        return released
                    }
                    if !released.isEmpty {
                        outbox.notify()
                        await pusher.push(released)
                    }
                } catch {
                    logger.warning("ADE release deadline sweep failed: \(error)")
                }
                try? await Task.sleep(for: interval)
            }
        }
    }
}
