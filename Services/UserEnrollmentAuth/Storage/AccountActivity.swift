import OrchardMessaging
import OrchardSchemas
import OrchardStorage

/// This service's activity entries (discovery, sign-in, tokens), each in its own transaction through the outbox.
struct AccountActivity: Sendable {
    let database: Database
    let outbox: OutboxPublisher
    let service: String

    func entry(_ action: String, actor: String, outcome: ActivityRecorded.Outcome, detail: String) -> ActivityRecorded {
        ActivityRecorded(actor: actor, action: action, deviceID: nil, relatedDeviceIDs: [], outcome: outcome, detail: detail, service: service)
    }

    func record(_ action: String, actor: String, outcome: ActivityRecorded.Outcome, detail: String, correlationID: String?) async throws {
        let entry = entry(action, actor: actor, outcome: outcome, detail: detail)
        try await database.transaction { c in try Outbox.append(entry, correlationID: correlationID, on: c) }
        outbox.notify()
    }
}
