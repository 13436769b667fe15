import Foundation
import Logging
import NIOConcurrencyHelpers
import OrchardMessaging
import OrchardSchemas

/// Reads every `orchard.abm-device-events.v1` message of one server token (a group of its own, from the
/// beginning) until none arrived for 5 s, and prints what a fault script compares: messages, distinct message
/// ids, changes by kind, and changes of one device published twice under different ids (a doubled event).
enum ABMEventCount {
    static func run(tokenID: String, settings: KafkaSettings, producer: KafkaProducer, logger: Logger) async throws {
        let seen = NIOLockedValueBox<[(messageID: String, serial: String, change: String)]>([])
        let consumer = KafkaConsumer(settings: settings, groupID: "orchard-abm-event-count-\(getpid())", topics: [ABMDeviceEvent.topic],
                                     deadLetters: producer, logger: logger) { message in
            guard let event = try? MessageCodec.decode(ABMDeviceEvent.self, from: message), event.tokenID == tokenID else { return }
            seen.withLockedValue { $0.append((message.headers[Header.messageID] ?? "", event.serialNumber, event.change.rawValue)) }
        }
        let task = Task { try await consumer.run() }
        var count = -1, quietSince = Date()
        while Date().timeIntervalSince(quietSince) < 5 {
            let now = seen.withLockedValue { $0.count }
            if now != count || !consumer.hasAssignment { count = now; quietSince = Date() }
            try await Task.sleep(for: .milliseconds(200))
        }
        consumer.stop()
        _ = await task.result
        let all = seen.withLockedValue { $0 }
        var byID: [String: (String, String)] = [:]
        for item in all { byID[item.messageID] = (item.serial, item.change) }
        var perChange: [String: Int] = [:], perDevice: [String: Int] = [:]
        for (serial, change) in byID.values {
            perChange[change, default: 0] += 1
            perDevice["\(serial) \(change)", default: 0] += 1
        }
        print("abm events of token \(tokenID): \(all.count) messages, \(byID.count) distinct message ids; "
              + "added \(perChange["added"] ?? 0), modified \(perChange["modified"] ?? 0), deleted \(perChange["deleted"] ?? 0); "
              + "doubled (one device's change under two ids): \(perDevice.values.filter { $0 > 1 }.count)")
    }
}
