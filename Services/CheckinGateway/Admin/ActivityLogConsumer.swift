import OrchardMessages
import OrchardMessaging
import OrchardStorage

/// Keeps the activity log the admin API serves: every service's `orchard.activity.v1` entries,
/// stored once each (the entry id is the key, so redelivery changes nothing).
enum ActivityLogConsumer {
    static func handler(database: Database) -> KafkaConsumer.Handler {
        { message in
            let entry = try MessageCodec.decode(ActivityRecorded.self, from: message)
            try await database.query("""
                INSERT INTO activity_log (id, occurred_at, actor, action, device_id, related_device_ids, outcome, detail,
                                          service, correlation_id)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING
                """, [.text(entry.id), .timestamp(entry.occurredAt), .text(entry.actor), .text(entry.action),
                      .optionalText(entry.deviceID), .text(entry.relatedDeviceIDs.joined(separator: ",")),
                      .text(entry.outcome.rawValue), .optionalText(entry.detail), .text(entry.service),
                      .optionalText(message.correlationID)])
        }
    }
}
