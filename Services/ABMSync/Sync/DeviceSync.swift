import Foundation
import OrchardCore
import OrchardCrypto
import OrchardMessaging
import OrchardSchemas
import OrchardStorage

/// Keeps the mirror of the devices ABM assigns to a server token (REFERENCE §4.3, §4.7): a fetch
/// (`POST /server/devices`) first, then deltas (`POST /devices/sync`). Each page's device changes, their
/// `orchard.abm-device-events.v1` events (outbox) and the cursor that follows the page are committed in one
/// transaction: a crash anywhere resumes at the first page not recorded, loses no device and publishes no
/// change twice. One replica syncs a token at a time (a lease on the token's row, renewed with every page,
/// taken over once it lapses).
struct DeviceSync: Sendable {
    let tokens: ServerTokens
    let database: Database
    let outbox: OutboxPublisher
    let service: String
    let instance: String
    let assigner: Assigner
    /// How long a replica holds a token's sync without renewing it (each page renews it); another replica takes
    /// over once it lapses (`ORCHARD_ABM_SYNC_LEASE_SECONDS`, 45 by default).
    var lease: Duration = .seconds(45)

    static let pageLimit = 1000
    /// A cycle ends after this many pages even if ABM keeps saying more_to_follow (the next cycle goes on).
    static let maximumPages = 2000

    struct Page: Decodable {
        let cursor: String
        let moreToFollow: Bool
        let devices: [Device]?
        enum CodingKeys: String, CodingKey { case cursor, devices, moreToFollow = "more_to_follow" }
    }

    struct Device: Decodable, Sendable {
        let serialNumber: String
        let model: String?, description: String?, color: String?, assetTag: String?, os: String?, deviceFamily: String?
        let profileStatus: String?, profileUUID: String?, profileAssignTime: String?, deviceAssignedDate: String?
        let deviceAssignedBy: String?, opType: String?, opDate: String?
        /// Migration from another MDM server (iOS/iPadOS/macOS 26, protocol version 8 and later): the deadline ABM set.
        let mdmMigrationDeadline: String?
        enum CodingKeys: String, CodingKey {
            case serialNumber = "serial_number", model, description, color, assetTag = "asset_tag", os
            case deviceFamily = "device_family", profileStatus = "profile_status", profileUUID = "profile_uuid"
            case profileAssignTime = "profile_assign_time", deviceAssignedDate = "device_assigned_date"
            case deviceAssignedBy = "device_assigned_by", opType = "op_type", opDate = "op_date"
            case mdmMigrationDeadline = "mdm_migration_deadline"
        }
        var opDateValue: Date? { opDate.flatMap(ISO8601.date(from:)) }
        /// What the mirror keeps of the device, hashed: a page that repeats a device unchanged changes nothing.
        var fieldsHash: [UInt8] {
            Digest.sha256(Array([model, description, color, assetTag, os, deviceFamily, profileStatus, profileUUID,
                                 profileAssignTime, deviceAssignedDate, deviceAssignedBy, mdmMigrationDeadline].map { $0 ?? "\u{0}" }
                .joined(separator: "\u{1}").utf8))
        }
        var mirror: ABMMirrorDevice {
            ABMMirrorDevice(serialNumber: serialNumber, model: model, description: description, color: color, assetTag: assetTag, os: os,
                            deviceFamily: deviceFamily, profileStatus: profileStatus, profileUUID: profileUUID,
                            profileAssignTime: profileAssignTime, deviceAssignedDate: deviceAssignedDate, deviceAssignedBy: deviceAssignedBy,
                            opType: opType, opDate: opDateValue, fieldsHash: fieldsHash,
                            migrationDeadline: mdmMigrationDeadline.flatMap(ISO8601.date(from:)))
        }
    }

    struct Busy: Error {}

    func sync(_ r: SyncABMToken, correlationID: String?) async throws -> SyncABMToken.Reply {
        let id = try ServerTokens.canonicalID(r.id)
        let session = try await tokens.session(id: id)
        guard try await takeLease(id) else {
            throw RequestRefused(code: "abm-sync.busy", message: "another abm-sync replica is syncing server token \(id) now",
                                 httpStatus: 409)
        }
        do {
            var reply = try await cycle(id: id, session: session, fullFetch: r.fullFetch, actor: r.actor, correlationID: correlationID)
            // New devices get the token's default profile; released-and-returned or changed ones get theirs again.
            do {
                let assigned = try await assigner.assignDue(tokenID: id, session: session, actor: r.actor, correlationID: correlationID)
                reply.assigned = assigned.outcomes.values.filter { $0 == "SUCCESS" }.count
            } catch let terms as ABMSession.TermsNotSigned {
                throw terms
            } catch {
                reply.assignmentError = "\(error)"
            }
            try await finish(id, error: reply.assignmentError.map { "assignment failed: \($0)" })
            // A server whose discovery URL ABM does not have yet (or has an old one of) gets it now; failures are recorded.
            try? await tokens.registerDiscovery(id: id, correlationID: correlationID)
            return reply
        } catch {
            try? await finish(id, error: error is ABMSession.TermsNotSigned ? "\(error)" : "sync failed: \(error)",
                              termsNotSigned: error is ABMSession.TermsNotSigned)
            throw error
        }
    }

    private func cycle(id: String, session: ABMSession, fullFetch: Bool, actor: String, correlationID: String?) async throws
        -> SyncABMToken.Reply {
        if fullFetch { try await ABMDeviceStore.restartFetch(database, id: id) }
        guard let state = try await ABMDeviceStore.cursor(database, id: id) else {
            throw RequestRefused(code: "abm-token.unknown", message: "no server token \(id)", httpStatus: 404)
        }
        var cursor = state.cursor
        var fetching = state.kind != "sync"
        let generation = state.generation
        var reply = SyncABMToken.Reply(mode: fetching ? "fetch" : "sync", pages: 0, added: 0, modified: 0, deleted: 0,
                                       cursorEchoed: false, devices: 0)
        try await activity(id, actor, "abm-sync.started", "\(fetching ? "fetch" : "sync") from \(cursor == nil ? "the start" : "the stored cursor")",
                           correlationID: correlationID)
        while reply.pages < Self.maximumPages {
            var body: [String: Any] = ["limit": Self.pageLimit]
            if let cursor { body["cursor"] = cursor }
            let answer: ABMSession.Answer
            do {
                answer = try await session.call(.POST, fetching ? "/server/devices" : "/devices/sync",
                                                json: Array(try JSONSerialization.data(withJSONObject: body)))
            } catch let refused as ABMSession.Refused where refused.status == 400 {
                if refused.body.contains("EXHAUSTED_CURSOR") && fetching {
                    // The fetch had returned everything: its cursor goes on as a sync cursor.
                    fetching = false
                    try await saveCursor(id, cursor, kind: "sync")
                    continue
                }
                if ["EXPIRED_CURSOR", "INVALID_CURSOR", "CURSOR_REQUIRED"].contains(where: refused.body.contains) && cursor != nil {
                    // Older than 7 days or not understood: start again with a full fetch.
                    cursor = nil
                    fetching = true
                    try await ABMDeviceStore.restartFetch(database, id: id)
                    continue
                }
                throw refused
            }
            let page: Page
            do { page = try JSONDecoder().decode(Page.self, from: Data(answer.body)) } catch {
                throw ABMSession.Refused(status: answer.status, body: "unreadable device page: \(error)")
            }
            reply.pages += 1
            let echoed = page.moreToFollow && page.cursor == cursor
            let done = !page.moreToFollow || echoed
            // A fetch that ends hands its last cursor to the sync that follows it.
            let kind = fetching && done && !echoed ? "sync" : (fetching ? "fetch" : "sync")
            let counts = try await record(id, page: page, generation: generation, cursor: page.cursor, kind: kind,
                                          fetching: fetching, finishing: fetching && done, correlationID: correlationID)
            reply.added += counts.added
            reply.modified += counts.modified
            reply.deleted += counts.deleted
            if echoed { reply.cursorEchoed = true }
            if done { break }
            cursor = page.cursor
            fetching = kind == "fetch"
        }
        reply.devices = try await ABMDeviceStore.activeCount(database, id: id)
        try await activity(id, actor, "abm-sync.finished", """
            \(reply.pages) pages: \(reply.added) added, \(reply.modified) modified, \(reply.deleted) deleted, \(reply.devices) devices\
            \(reply.cursorEchoed ? " (ABM echoed the cursor: cycle ended)" : "")
            """, correlationID: correlationID)
        return reply
    }

    /// One page, its events and the cursor after it, in one transaction (the lease renewed with it).
    private func record(_ id: String, page: Page, generation: Int, cursor: String, kind: String, fetching: Bool, finishing: Bool,
                        correlationID: String?) async throws -> (added: Int, modified: Int, deleted: Int) {
        // The same serial more than once in a page: the latest op_date wins (later in the page on a tie).
        var latest: [String: Device] = [:]
        var order: [String] = []
        for device in page.devices ?? [] where !device.serialNumber.isEmpty && device.serialNumber.count <= 64 {
            if let seen = latest[device.serialNumber] {
                if (device.opDateValue ?? .distantPast) >= (seen.opDateValue ?? .distantPast) { latest[device.serialNumber] = device }
            } else {
                latest[device.serialNumber] = device
                order.append(device.serialNumber)
            }
        }
        let instance = self.instance
        let devices = order.map { latest[$0]! }
        return try await database.transaction { c in
            var counts = (added: 0, modified: 0, deleted: 0)
            var events: [ABMDeviceEvent] = []
            var upserts: [Device] = []
            for device in devices {
                let serial = device.serialNumber
                if device.opType == "deleted" {
                    if try ABMDeviceStore.markDeleted(c, id: id, serial: serial, opDate: device.opDateValue) {
                        counts.deleted += 1
                        events.append(event(id, device, .deleted))
                    }
                    continue
                }
                upserts.append(device)
            }
            // Every other device of the page in one statement.
            if !upserts.isEmpty {
                let outcome = try ABMDeviceStore.upsert(c, id: id, generation: generation, upserts.map(\.mirror))
                for device in upserts {
                    guard let inserted = outcome[device.serialNumber] else { continue }
                    if inserted {
                        counts.added += 1
                        events.append(event(id, device, .added))
                    } else {
                        counts.modified += 1
                        events.append(event(id, device, .modified))
                    }
                }
            }
            if finishing {
                // The full fetch is over: a device it did not show is no longer assigned to this server.
                let gone = try ABMDeviceStore.removeUnseen(c, id: id, generation: generation)
                for row in gone {
                    counts.deleted += 1
                    events.append(ABMDeviceEvent(tokenID: id, serialNumber: row.string("serial_number") ?? "", change: .deleted,
                                                 model: row.string("model"), os: row.string("os"), deviceFamily: row.string("device_family"),
                                                 profileStatus: nil, profileUUID: nil, opDate: nil,
                                                 migrationDeadline: row.date("mdm_migration_deadline")))
                }
            }
            try ABMDeviceStore.savePageCursor(c, id: id, cursor: cursor, kind: kind, fetchFinished: finishing,
                                              leaseSeconds: Int(lease.components.seconds), holder: instance)
            try Outbox.append(events.map { $0 as any MessageSchema }, correlationID: correlationID, on: c)
            return counts
        }
    }

    private func event(_ id: String, _ device: Device, _ change: ABMDeviceEvent.Change) -> ABMDeviceEvent {
        ABMDeviceEvent(tokenID: id, serialNumber: device.serialNumber, change: change, model: device.model, os: device.os,
                       deviceFamily: device.deviceFamily, profileStatus: device.profileStatus, profileUUID: device.profileUUID,
                       opDate: device.opDateValue, migrationDeadline: device.mdmMigrationDeadline.flatMap(ISO8601.date(from:)))
    }

    private func saveCursor(_ id: String, _ cursor: String?, kind: String) async throws {
        try await ABMDeviceStore.saveCursor(database, id: id, cursor: cursor, kind: kind)
    }

    /// The token's sync lease: free, lapsed (its holder died), or already ours.
    private func takeLease(_ id: String) async throws -> Bool {
        try await ABMDeviceStore.takeLease(database, id: id, holder: instance, seconds: Int(lease.components.seconds))
    }

    private func finish(_ id: String, error: String?, termsNotSigned: Bool = false) async throws {
        try await ABMDeviceStore.finishSync(database, id: id, holder: instance, error: error.map { String($0.prefix(500)) },
                                            termsNotSigned: termsNotSigned)
        outbox.notify()
    }

    private func activity(_ id: String, _ actor: String, _ action: String, _ detail: String, correlationID: String?) async throws {
        try await database.transaction { c in
            try Outbox.append(tokens.activity(actor, action, detail: "server token \(id): \(detail)"), correlationID: correlationID, on: c)
        }
        outbox.notify()
    }
}
