import AppleProtocol
import OrchardSchemas
import OrchardMessaging
import OrchardStorage

/// Queues commands other services ask for on `orchard.mdm-commands.v1` (for example abm-sync's
/// DeviceConfigured), then pushes the devices.
enum EnqueueConsumer {
    static func handler(database: Database, outbox: OutboxPublisher, pusher: APNsPusher) -> KafkaConsumer.Handler {
        { message in
            let request = try MessageCodec.decode(EnqueueCommand.self, from: message)
            let command: MDMCommand
            do { command = try MDMCommand(plist: Array(request.commandPlist)) } catch {
                throw MessageRejected("EnqueueCommand \(request.commandUUID): \(error)")
            }
            guard command.commandUUID == request.commandUUID else {
                throw MessageRejected("EnqueueCommand \(request.commandUUID): plist has CommandUUID \(command.commandUUID)")
            }
            let queued = try await database.transaction { c -> [String] in
                var journal = Journal(correlationID: message.correlationID)
                let queued = try CommandQueue.enqueue(c, command, enrollmentIDs: request.enrollmentIDs,
                                                      requestedBy: request.requestedBy, journal: &journal)
                try journal.write(c)
                return queued
            }
            outbox.notify()
            await pusher.push(queued)
        }
    }
}
