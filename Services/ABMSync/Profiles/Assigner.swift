import Foundation
import OrchardCore
import OrchardMessaging
import OrchardSchemas
import OrchardStorage

/// Assigns ADE profiles to the mirror's devices (REFERENCE §4.3, §4.7): a device is due when it wants a profile
/// (chosen for it, or its token's default) and ABM does not show that profile on it — never assigned, another
/// `profile_uuid`, or `profile_status` `removed` (a device re-assigned to this server arrives so) — and its cooldown
/// is over. ABM's `POST /profile/devices` takes at most 1,000 serials; its per-serial answer is recorded on the
/// device: `SUCCESS` marks it assigned at once (and tells the gateway), `FAILED`, `NOT_ACCESSIBLE` and `THROTTLED`
/// wait `retry_after_seconds` when ABM gives it, otherwise 24 hours (1 hour for `THROTTLED`). A device migrating here from
/// another MDM server (`mdm_migration_deadline`) enrolls while in use and must wait for `DeviceConfigured`: it is given
/// only a profile with `await_device_configured`; otherwise its outcome is `MIGRATION_NEEDS_AWAIT_DEVICE_CONFIGURED` and
/// ABM is not asked (retried in an hour, or as soon as an admin assigns such a profile).
struct Assigner: Sendable {
    let tokens: ServerTokens
    let database: Database
    let outbox: OutboxPublisher

    static let batch = 1000
    static let failedCooldown = 86400
    static let throttledCooldown = 3600

    /// Assigns what is due for the token (only `serials`, when given). Returns every serial's outcome.
    func assignDue(tokenID id: String, session given: ABMSession? = nil, serials: [String]? = nil, actor: String,
                   correlationID: String?) async throws -> AssignADEProfile.Reply {
        let candidates = try await ADEProfileStore.assignmentCandidates(database, tokenID: id, serials: serials)
        var reply = AssignADEProfile.Reply(outcomes: [:], batches: 0)
        func needsAwait(_ row: Row) -> Bool { row.bool("migrating") == true && row.bool("awaits") != true }
        let blocked = candidates.filter(needsAwait), due = candidates.filter { !needsAwait($0) }
        if !blocked.isEmpty {
            let serials = blocked.compactMap { $0.string("serial_number") }
            try await refuseMigrating(id, serials: serials, actor: actor, correlationID: correlationID)
            for serial in serials { reply.outcomes[serial] = Self.migrationNeedsAwait }
        }
        guard !due.isEmpty else { return reply }
        let session: ABMSession
        if let given { session = given } else { session = try await tokens.session(id: id) }
        var byProfile: [(uuid: String, name: String, serials: [String])] = []
        for row in due {
            let uuid = row.string("profile_uuid") ?? "", serial = row.string("serial_number") ?? ""
            if byProfile.last?.uuid == uuid { byProfile[byProfile.count - 1].serials.append(serial) } else {
                byProfile.append((uuid, row.string("name") ?? uuid, [serial]))
            }
        }
        for group in byProfile {
            for start in stride(from: 0, to: group.serials.count, by: Self.batch) {
                let chunk = Array(group.serials[start..<min(start + Self.batch, group.serials.count)])
                let outcomes = try await assign(id, profileUUID: group.uuid, profileName: group.name, serials: chunk, session: session,
                                                actor: actor, correlationID: correlationID)
                reply.outcomes.merge(outcomes) { $1 }
                reply.batches += 1
            }
        }
        return reply
    }

    static let migrationNeedsAwait = "MIGRATION_NEEDS_AWAIT_DEVICE_CONFIGURED"

    /// Migrating devices whose wanted profile does not await DeviceConfigured: recorded, ABM not asked.
    private func refuseMigrating(_ id: String, serials: [String], actor: String, correlationID: String?) async throws {
        try await database.transaction { c in
            try ADEProfileStore.refuseAssignment(c, tokenID: id, serials: serials, outcome: Self.migrationNeedsAwait)
            try Outbox.append(tokens.activity(actor, "ade-profile.assigned", outcome: .failed, detail: """
                server token \(id): \(serials.count) migrating device(s) not assigned: their profile does not set await_device_configured, \
                which a migration needs (the device is in use and waits for DeviceConfigured): \(serials.prefix(50).joined(separator: ", "))
                """), correlationID: correlationID, on: c)
        }
        outbox.notify()
    }

    private struct Answer: Decodable {
        let devices: [String: String]?
        let retryAfterSeconds: Int?
        enum CodingKeys: String, CodingKey { case devices, retryAfterSeconds = "retry_after_seconds" }
    }

    /// One call of at most 1,000 serials, its outcomes recorded with their events in one transaction.
    private func assign(_ id: String, profileUUID: String, profileName: String, serials: [String], session: ABMSession, actor: String,
                        correlationID: String?) async throws -> [String: String] {
        let body = try JSONSerialization.data(withJSONObject: ["profile_uuid": profileUUID, "devices": serials])
        let answer = try await session.call(.POST, "/profile/devices", json: Array(body))
        guard let decoded = try? JSONDecoder().decode(Answer.self, from: Data(answer.body)) else {
            throw ABMSession.Refused(status: answer.status, body: "unreadable assignment answer")
        }
        var outcomes: [String: String] = [:]
        var rows: [(serial: String, outcome: String, wait: Int)] = []
        for serial in serials {
            // A serial ABM left out of its answer was not assigned: it is retried like a failure.
            let outcome = decoded.devices?[serial] ?? "FAILED"
            outcomes[serial] = outcome
            let wait = outcome == "SUCCESS" ? 0 : decoded.retryAfterSeconds.map { min(max($0, 1), 7 * 86400) }
                ?? (outcome == "THROTTLED" ? Self.throttledCooldown : Self.failedCooldown)
            rows.append((serial, outcome, wait))
        }
        let recorded = rows
        let counts = Dictionary(grouping: outcomes.values, by: { $0 }).mapValues(\.count)
        let notAssigned = outcomes.filter { $0.value != "SUCCESS" }.keys.sorted()
        let listed = notAssigned.prefix(50).map { "\($0) \(outcomes[$0]!)" }.joined(separator: ", ")
        try await database.transaction { c in
            let done = try ADEProfileStore.recordAssignment(c, tokenID: id, profileUUID: profileUUID, outcomes: recorded)
            // The gateway learns of an assignment now, not at the next sync.
            let events = done.filter { $0.string("outcome") == "SUCCESS" }.map {
                ABMDeviceEvent(tokenID: id, serialNumber: $0.string("serial_number") ?? "", change: .modified, model: $0.string("model"),
                               os: $0.string("os"), deviceFamily: $0.string("device_family"), profileStatus: "assigned",
                               profileUUID: profileUUID, opDate: nil, migrationDeadline: $0.date("mdm_migration_deadline"))
            }
            try Outbox.append(events.map { $0 as any MessageSchema }, correlationID: correlationID, on: c)
            let summary = counts.sorted { $0.key < $1.key }.map { "\($1) \($0)" }.joined(separator: ", ")
            try Outbox.append(tokens.activity(actor, "ade-profile.assigned", outcome: notAssigned.isEmpty ? .succeeded : .failed,
                                              detail: """
                                                server token \(id): profile \(profileName) (\(profileUUID)) to \(serials.count) devices: \(summary)\
                                                \(notAssigned.isEmpty ? "" : "; not assigned: \(listed)\(notAssigned.count > 50 ? " …" : "")")\
                                                \(decoded.retryAfterSeconds.map { "; ABM asks to retry after \($0) s" } ?? "")
                                                """),
                              correlationID: correlationID, on: c)
        }
        outbox.notify()
        return outcomes
    }
}
