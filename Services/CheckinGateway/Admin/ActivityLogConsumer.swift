import OrchardSchemas
import OrchardMessaging
import OrchardStorage

/// Keeps the activity log the admin API serves with the other services' `orchard.activity.v1`
/// entries, stored once each (the entry id is the key, so redelivery changes nothing). The gateway's
/// own entries are already in the log: it writes them in the transaction that makes the change.
enum ActivityLogConsumer {
    static func handler(database: Database) -> KafkaConsumer.Handler {
        { message in
            // The gateway's own entries are already in the log: skip them without decoding.
            guard message.headers[Header.origin] != ActivityLog.service else { return }
            let entry = try MessageCodec.decode(ActivityRecorded.self, from: message)
            guard entry.service != ActivityLog.service else { return }
            try await database.transaction { c in
                try ActivityLog.insert([entry], correlationID: message.correlationID, on: c)
            }
        }
    }

    /// The entries that gathered meanwhile, in one transaction.
    static func batchHandler(database: Database) -> KafkaConsumer.BatchHandler {
        { messages in
            var entries: [(ActivityRecorded, String?)] = []
            for message in messages where message.headers[Header.origin] != ActivityLog.service {
                let entry = try MessageCodec.decode(ActivityRecorded.self, from: message)
                if entry.service != ActivityLog.service { entries.append((entry, message.correlationID)) }
            }
            guard !entries.isEmpty else { return }
            let toInsert = entries
            try await database.transaction { c in
                for (entry, correlationID) in toInsert { try ActivityLog.insert([entry], correlationID: correlationID, on: c) }
            }
        }
    }
}
