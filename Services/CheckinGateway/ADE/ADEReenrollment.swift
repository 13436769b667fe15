import AppleProtocol
import Foundation
import Hummingbird
import OrchardCore
import OrchardMessaging
import OrchardSchemas
import OrchardServiceKit
import OrchardStorage

/// Whether an ADE device that is enrolled already may have a second identity (hardening issue 18, item 2). MachineInfo
/// carries no nonce: a captured one (a POST body, or the GET header a proxy logged) sent again is as valid as the
/// device's own, and a wiped device legitimately re-enrolls with the same. What tells them apart is Apple: it pushes the
/// ADE profile to a device that really runs Setup Assistant, so ABM's `profile_push_time` for the serial is later than
/// the current identity's first Authenticate; a replay moves nothing there. So a second identity is issued only when
/// ABM shows such a push (asked through abm-sync, `ConfirmADEProfilePush`), or once when an administrator allowed it
/// for the serial. ABM unreachable → 503 with Retry-After (Setup Assistant retries), never a silent pass.
/// docs/decisions.md, "ADE re-enrollment", records the trade-off.
struct ADEReenrollment: Sendable {
    let database: Database
    let outbox: OutboxPublisher
    let requests: RequestClient
    /// How long the device waits on ABM's answer (it is in Setup Assistant; past this it gets 503 and retries).
    let timeout: Duration

    /// How long an administrator's allowance lasts.
    static let allowanceLifetime: TimeInterval = 86400
    /// ABM's answer for a serial, kept 10 s: a replay sent again and again does not become as many calls to ABM (Apple
    /// throttles the server token, and every sync and assignment of the organisation would wait). A device wiped just
    /// then is refused for those seconds at most; Setup Assistant's retry finds ABM's new answer.
    let answers = ExpiringCache<ConfirmADEProfilePush.Reply>(capacity: 4096)
    static let answerLifetime: TimeInterval = 10

    enum Decision: Sendable {
        /// The serial has no enrolled identity: nothing to replace.
        case firstEnrollment
        /// ABM shows a profile push after the current identity was bound.
        case confirmedByABM(replacing: String, pushedAt: Date)
        /// An administrator allowed one re-enrollment of the serial (spent when the profile is recorded).
        case allowedByAdministrator(replacing: String, by: String)
        case refused(String)
    }

    func decide(_ info: MachineInfo, correlationID: String) async throws -> Decision {
        guard let current = try await ADEStore.enrolledIdentity(database, udid: info.udid, serial: info.serial) else {
            return .firstEnrollment
        }
        if let actor = try await ADEStore.reenrollmentAllowance(database, serial: info.serial) {
            return .allowedByAdministrator(replacing: current.id, by: actor)
        }
        let push: ConfirmADEProfilePush.Reply
        if let known = answers.get(info.serial) {
            push = known
        } else {
            do {
                push = try await requests.request(ConfirmADEProfilePush(serialNumber: info.serial), timeout: timeout, correlationID: correlationID)
            } catch let refused as RequestRefused where refused.httpStatus == 404 {
                return .refused("ABM no longer assigns serial \(info.serial) to this MDM server")
            }
            answers.set(info.serial, push, for: Self.answerLifetime)
        }
        let enrolled = ISO8601.string(from: current.boundAt)
        guard let pushedAt = push.profilePushTime else {
            return .refused("no new profile push: ABM shows none for serial \(info.serial); the device enrolled at \(enrolled)")
        }
        guard pushedAt > current.boundAt else {
            return .refused("no new profile push: ABM last pushed the profile at \(ISO8601.string(from: pushedAt)), before the device enrolled at \(enrolled)")
        }
        return .confirmedByABM(replacing: current.id, pushedAt: pushedAt)
    }

    /// Records an accepted re-enrollment in the transaction that records the new identity (an allowance is spent there:
    /// a second request racing for it is refused and records nothing).
    func accept(_ decision: Decision, _ info: MachineInfo, in c: Connection, journal: inout Journal) throws {
        let how: String, replaced: String
        switch decision {
        case .firstEnrollment, .refused: return
        case .confirmedByABM(let id, let pushedAt):
            (how, replaced) = ("ABM pushed the profile at \(ISO8601.string(from: pushedAt))", id)
        case .allowedByAdministrator(let id, let actor):
            guard try ADEStore.spendReenrollmentAllowance(c, serial: info.serial) else {
                throw refuse(.forbidden, "the re-enrollment allowance for serial \(info.serial) was already used")
            }
            (how, replaced) = ("allowed once by \(actor)", id)
        }
        journal.activity(actor: "device:\(info.udid)", "ade.reenrolled", device: info.udid,
                         detail: "serial \(info.serial) re-enrolled with a new identity (\(how)); enrollment \(replaced)'s identity is replaced at its Authenticate")
        journal.event(DeviceEvent(kind: .adeState, enrollmentID: info.udid,
                                  details: ["state": "re-enrolled", "serial": info.serial, "reason": how]))
    }

    /// The answer to a refused re-enrollment: an activity entry and a device event (within the address's budget), and
    /// 403 with a JSON reason.
    func refusal(_ info: MachineInfo, reason: String, correlationID: String, recorded: Bool) async throws -> Response {
        if recorded {
            var journal = Journal(correlationID: correlationID)
            journal.activity(actor: "device:\(info.udid)", "ade.reenrollment.refused", device: info.udid, outcome: .refused,
                             detail: "serial \(info.serial): re-enrollment refused: \(reason)")
            journal.event(DeviceEvent(kind: .adeState, enrollmentID: info.udid,
                                      details: ["state": "re-enrollment refused", "serial": info.serial, "reason": reason]))
            try await journal.commit(to: database, outbox: outbox)
        }
        var document = ErrorDocument(code: "orchard.ade.reenrollment-refused", description: "re-enrollment refused: \(reason)", details: [:])
        document.message = "This device is already enrolled with your organisation. Contact your IT department to enroll it again."
        return bytesResponse(document.json, contentType: "application/json", status: .forbidden)
    }
}
