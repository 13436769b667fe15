import OrchardMessaging
import OrchardSchemas
import OrchardStorage

/// Keeps the gateway's copy of abm-sync's device mirror and ADE profiles from `orchard.abm-device-events.v1`
/// and `orchard.abm-profiles.v1`, so that ADE devices enroll while abm-sync is down. Each event is an upsert
/// of the latest state (events of one serial or profile arrive in order): a redelivery changes nothing.
enum ABMEventConsumer {
    static func handler(database: Database) -> KafkaConsumer.Handler {
        var routes = MessageRouter()
        routes.on(ABMDeviceEvent.type) { message in
            let event = try MessageCodec.decode(ABMDeviceEvent.self, from: message)
            try await database.transaction { c in try ADEStore.apply(c, event) }
        }
        routes.on(ADEProfileEvent.type) { message in
            let event = try MessageCodec.decode(ADEProfileEvent.self, from: message)
            try await database.transaction { c in try ADEStore.apply(c, event) }
        }
        return routes.handler
    }

    /// Messages that gathered while the previous ones were written: one transaction for all (the 100,000-device
    /// initial fetch published 100,000 events, each its own commit and fsync while abm-sync was committing pages).
    static func batchHandler(database: Database) -> KafkaConsumer.BatchHandler {
        { messages in
            // In order: runs of device events (one multi-row statement per run), profile events between them.
            enum Step { case devices([ABMDeviceEvent]), profile(ADEProfileEvent) }
            var steps: [Step] = [], run: [ABMDeviceEvent] = []
            for message in messages {
                switch message.type {
                case ABMDeviceEvent.type:
                    run.append(try MessageCodec.decode(ABMDeviceEvent.self, from: message))
                case ADEProfileEvent.type:
                    if !run.isEmpty { steps.append(.devices(run)); run = [] }
                    steps.append(.profile(try MessageCodec.decode(ADEProfileEvent.self, from: message)))
                default:
                    throw MessageRejected("no handler for message type \(message.type ?? "none")")
                }
            }
            if !run.isEmpty { steps.append(.devices(run)) }
            let toApply = steps
            try await database.transaction { c in
                for step in toApply {
                    switch step {
                    case .devices(let events): try ADEStore.apply(c, devices: events)
                    case .profile(let event): try ADEStore.apply(c, event)
                    }
                }
            }
        }
    }
}
