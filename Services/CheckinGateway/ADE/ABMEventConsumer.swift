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
}
