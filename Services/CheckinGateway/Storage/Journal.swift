import Foundation
import OrchardSchemas
import OrchardMessaging
import OrchardStorage

/// What a gateway transaction announces: events for Kafka (outbox) and activity entries, which the
/// gateway also writes straight into its own activity log. Collected while the transaction runs and
/// written at its end in two statements, so a check-in costs few round trips to PostgreSQL.
struct Journal {
    let correlationID: String?
    private(set) var messages: [any MessageSchema] = []
    private var activities: [ActivityRecorded] = []

    init(correlationID: String?) { self.correlationID = correlationID }

    mutating func event(_ event: DeviceEvent) { messages.append(event) }

    mutating func activity(_ entry: ActivityRecorded) {
        messages.append(entry)
        activities.append(entry)
    }

    mutating func activity(actor: String, _ action: String, device: String?, outcome: ActivityRecorded.Outcome = .succeeded,
                           detail: String? = nil, related: [String] = []) {
        activity(ActivityRecorded(actor: actor, action: action, deviceID: device, relatedDeviceIDs: related, outcome: outcome,
                                  detail: detail, service: ActivityLog.service))
    }

    /// For a journal that is the whole change (an activity entry on its own): its own transaction, and the outbox told
    /// at once. The one way the gateway records an entry outside a device's or an admin's transaction.
    func commit(to database: Database, outbox: OutboxPublisher) async throws {
        try await database.transaction { c in try self.write(c) }
        outbox.notify()
    }

    /// Rows per INSERT: PostgreSQL takes at most 65,535 parameters a statement (10 a row here).
    static let rowsPerStatement = 1000

    /// Sent with the COMMIT; events and activity entries together are one statement (a large journal,
    /// such as a command queued for 10,000 devices, in statements of `rowsPerStatement` rows).
    func write(_ c: Connection) throws {
        if messages.count > Self.rowsPerStatement || activities.count > Self.rowsPerStatement {
            for start in stride(from: 0, to: messages.count, by: Self.rowsPerStatement) {
                try Outbox.append(Array(messages[start..<min(start + Self.rowsPerStatement, messages.count)]),
                                  correlationID: correlationID, on: c)
            }
            for start in stride(from: 0, to: activities.count, by: Self.rowsPerStatement) {
                try ActivityLog.insert(Array(activities[start..<min(start + Self.rowsPerStatement, activities.count)]),
                                       correlationID: correlationID, on: c)
            }
            return
        }
        guard !activities.isEmpty else { return try Outbox.append(messages, correlationID: correlationID, on: c) }
        var parameters: [SQLValue] = []
        let outbox = try Outbox.insertStatement(messages, correlationID: correlationID, parameters: &parameters)
        let activity = ActivityLog.insertStatement(activities, correlationID: correlationID, parameters: &parameters)
        try c.queryAtCommit("WITH outbox_rows AS (\(outbox)) \(activity)", parameters)
    }
}

/// The activity log the admin API serves.
enum ActivityLog {
    static let service = "checkin-gateway"

    static func insert(_ entries: [ActivityRecorded], correlationID: String?, on c: Connection) throws {
        guard !entries.isEmpty else { return }
        var parameters: [SQLValue] = []
        try c.queryAtCommit(insertStatement(entries, correlationID: correlationID, parameters: &parameters), parameters)
    }

    /// The INSERT for `entries`, numbering its parameters after those already in `parameters`.
    static func insertStatement(_ entries: [ActivityRecorded], correlationID: String?, parameters: inout [SQLValue]) -> String {
        var rows: [String] = []
        for e in entries {
            let n = parameters.count
            rows.append("(" + (1...10).map { $0 == 6 ? "$\(n + $0)::text[]" : "$\(n + $0)" }.joined(separator: ", ") + ")")
            parameters += [.text(e.id), .timestamp(e.occurredAt), .text(e.actor), .text(e.action), .optionalText(e.deviceID),
                           .text(postgresArray(e.relatedDeviceIDs)), .text(e.outcome.rawValue), .optionalText(e.detail),
                           .text(e.service), .optionalText(correlationID)]
        }
        return """
            INSERT INTO activity_log (id, occurred_at, actor, action, device_id, related_device_ids, outcome, detail,
                                      service, correlation_id)
            VALUES \(rows.joined(separator: ", ")) ON CONFLICT (id) DO NOTHING
            """
    }
}
