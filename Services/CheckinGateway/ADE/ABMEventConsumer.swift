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
            var devices: [ABMDeviceEvent] = [], profiles: [ADEProfileEvent] = [], order: [Bool] = []
            for message in messages {
                switch message.type {
                case ABMDeviceEvent.type: devices.append(try MessageCodec.decode(ABMDeviceEvent.self, from: message)); order.append(true)
                case ADEProfileEvent.type: profiles.append(try MessageCodec.decode(ADEProfileEvent.self, from: message)); order.append(false)
                default: throw MessageRejected("no handler for message type \(message.type ?? "none")")
                }
            }
            let (devicesToApply, profilesToApply, applyOrder) = (devices, profiles, order)
            try await database.transaction { c in
                // Runs of device events in multi-row statements; a profile event between them keeps its place.
                var (d, p, run) = (0, 0, 0)
                for isDevice in applyOrder {
                    if isDevice { run += 1; continue }
                    try ADEStore.apply(c, devices: Array(devicesToApply[d..<d + run])); d += run; run = 0
                    try ADEStore.apply(c, profilesToApply[p]); p += 1
                }
                try ADEStore.apply(c, devices: Array(devicesToApply[d..<d + run]))
            }
        }
    }
}
