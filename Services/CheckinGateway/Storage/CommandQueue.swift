import AppleProtocol
import Foundation
import Hummingbird
import OrchardSchemas
import OrchardMessaging
import OrchardServiceKit
import OrchardStorage

/// The durable per-enrollment command queue. A command is finished only by Acknowledged, Error or
/// CommandFormatError; NotNow keeps it queued and skips it until the device's next Idle.
enum CommandQueue {
    /// Queues `command` for the enrollments that exist; returns those it was queued for. Idempotent on
    /// the command UUID, so a redelivered request queues nothing twice. One statement.
    @discardableResult
    static func enqueue(_ c: Connection, _ command: MDMCommand, enrollmentIDs: [String], requestedBy: String,
                        journal: inout Journal) throws -> [String] {
        // One enrollment (a device's own step: most calls) is `id = $5`, which stays prepared; `= ANY($5)` is planned
        // on every call (Connection: a cached generic plan for it scanned the whole table).
        let insert = enrollmentIDs.count == 1 ? insertForOneReturning : insertStatement("id = ANY($5::text[])") + " RETURNING enrollment_id"
        let queued = try c.query(insert, [
            .text(command.commandUUID), .text(command.requestType), .bytes(command.plist), .text(requestedBy),
            .text(enrollmentIDs.count == 1 ? enrollmentIDs[0] : postgresArray(enrollmentIDs)),
        ]).compactMap { $0.string("enrollment_id") }
        for id in queued {
            journal.activity(actor: requestedBy, "command.queued", device: id, detail: "\(command.requestType) \(command.commandUUID)")
        }
        return queued
    }

    /// Queues a command for the device whose own request this transaction serves (its enrollment authorized and active
    /// in it): the statement travels with the transaction's next one (`Connection.execute`), not a round trip of its own.
    /// Its activity entry is written without reading the inserted row back: the INSERT keeps its condition on the
    /// enrollment's status, and only an unenrollment committed between the authorization and this statement would leave
    /// the entry naming a command that was not queued (the request's own events already accept that window).
    static func enqueueForRequestingDevice(_ c: Connection, _ command: MDMCommand, enrollmentID: String, requestedBy: String,
                                           journal: inout Journal) throws {
        try c.execute(insertForOne, [.text(command.commandUUID), .text(command.requestType), .bytes(command.plist),
                                     .text(requestedBy), .text(enrollmentID)])
        journal.activity(actor: requestedBy, "command.queued", device: enrollmentID, detail: "\(command.requestType) \(command.commandUUID)")
    }

    /// The texts for one enrollment, built once (every enrolling TokenUpdate queues with one of them).
    private static let insertForOne = insertStatement("id = $5")
    private static let insertForOneReturning = insertForOne + " RETURNING enrollment_id"

    private static func insertStatement(_ which: String) -> String {
        """
        WITH command AS (
            INSERT INTO commands (uuid, request_type, plist, requested_by) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING)
        INSERT INTO command_queue (enrollment_id, command_uuid, status)
        SELECT id, $1, 'queued' FROM enrollments WHERE \(which)
          AND status IN ('\(EnrollmentStatus.pending.rawValue)', '\(EnrollmentStatus.enrolled.rawValue)')
        ON CONFLICT DO NOTHING
        """
    }

    /// The statement that records a result for a command the device was sent; `finished` reads from its rows the
    /// command's request type when this result finished it now. A repeated result for a finished command, or one for a
    /// command never sent to this device (still queued, or not its own), changes nothing and finishes nothing.
    /// The statement is sent with the enrollment's read (`DeviceMessageHandler.leadingStatement`), before the
    /// authorization is decided: it repeats the binding (the enrollment's identity is the request's), so another
    /// identity's request changes no row, and a refusal rolls it back. nil for an Idle (nothing to record).
    static func recordStatement(enrollmentID: String, fingerprint: String, result: CommandResult) -> (String, [SQLValue])? {
        guard let uuid = result.commandUUID, let (status, finished) = stored(result.status) else { return nil }
        return ("""
            UPDATE command_queue q SET status = $3, result = $4, completed_at = CASE WHEN $5 THEN now() END
            FROM commands c
            WHERE q.enrollment_id = $1 AND q.command_uuid = $2 AND q.completed_at IS NULL AND q.status IN ('sent', 'not-now')
              AND c.uuid = q.command_uuid
              AND EXISTS (SELECT 1 FROM enrollments e WHERE e.id = $1 AND e.identity_fingerprint = $6)
            RETURNING c.request_type
            """, [.text(enrollmentID), .text(uuid), .text(status), .bytes(result.stored), .bool(finished), .text(fingerprint)])
    }

    /// The request type of the command the result finished, from the rows of `recordStatement`.
    static func finished(_ rows: [Row]?, result: CommandResult) -> String? {
        guard let (_, finished) = stored(result.status), finished else { return nil }
        return rows?.first?.string("request_type")
    }

    private static func stored(_ status: CommandResult.Status) -> (status: String, finished: Bool)? {
        switch status {
        case .acknowledged: return ("acknowledged", true)
        case .error: return ("error", true)
        case .commandFormatError: return ("format-error", true)
        case .notNow: return ("not-now", false)
        case .idle: return nil
        }
    }

    /// A command's plist, by UUID.
    static func plist(_ c: Connection, uuid: String) throws -> [UInt8]? {
        try c.query("SELECT plist FROM commands WHERE uuid = $1", [.text(uuid)]).first?.bytes("plist")
    }

    /// The next command to send, marked as sent. Sent with the COMMIT (the device's answer is built after it):
    /// `PendingRows` holds its `plist` row then, or none when the queue is empty.
    static func next(_ c: Connection, enrollmentID: String, newSession: Bool) throws -> PendingRows {
        if newSession {
            try c.queryAtCommit("UPDATE command_queue SET status = 'queued' WHERE enrollment_id = $1 AND completed_at IS NULL AND status = 'not-now'",
                                [.text(enrollmentID)])
        }
        return try c.queryWithCommit("""
            UPDATE command_queue q SET status = 'sent', sent_at = now() FROM commands c
            WHERE q.id = (SELECT id FROM command_queue WHERE enrollment_id = $1 AND completed_at IS NULL
                          AND status IN ('queued', 'sent') ORDER BY id LIMIT 1 FOR UPDATE)
              AND c.uuid = q.command_uuid
            RETURNING c.plist
            """, [.text(enrollmentID)])
    }
}

extension CommandQueue {
    /// Finished commands older than the retention period go (hourly, in batches: `RetentionPruner`),
    /// then command bodies no queue row refers to any more.
    static func pruning(retentionDays days: Int) -> [RetentionPruner.Rule] {
        [
            .init(name: "finished commands", deleteBatch: """
                DELETE FROM command_queue WHERE id IN (
                    SELECT id FROM command_queue WHERE completed_at < now() - make_interval(days => \(days)) LIMIT 5000)
                RETURNING 1
                """),
            .init(name: "unreferenced command bodies", deleteBatch: """
                DELETE FROM commands WHERE uuid IN (
                    SELECT c.uuid FROM commands c WHERE c.created_at < now() - make_interval(days => \(days))
                    AND NOT EXISTS (SELECT 1 FROM command_queue q WHERE q.command_uuid = c.uuid) LIMIT 5000)
                RETURNING 1
                """),
        ]
    }
}
