import Foundation
import OrchardMessaging
import OrchardSchemas
import OrchardServiceKit
import OrchardStorage

/// The consumer of `orchard.account-token-events.v1`: each event (issued, refreshed, revoked) is written to the gateway's
/// copy (`AccountTokenCopyStore`).
enum AccountTokenCopy {
    static func handler(database: Database) -> KafkaConsumer.Handler {
        var routes = MessageRouter()
        routes.on(AccountTokenEvent.type) { message in
            let event = try MessageCodec.decode(AccountTokenEvent.self, from: message)
            try await AccountTokenCopyStore.copy(event, in: database)
        }
        return routes.handler
    }

    /// The events that gathered meanwhile, in one transaction.
    static func batchHandler(database: Database) -> KafkaConsumer.BatchHandler {
        { messages in
            let events = try messages.map { message in
                guard message.type == AccountTokenEvent.type else { throw MessageRejected("no handler for message type \(message.type ?? "none")") }
                return try MessageCodec.decode(AccountTokenEvent.self, from: message)
            }
            try await database.transaction { c in for event in events { try AccountTokenCopyStore.copy(event, on: c) } }
        }
    }
}
