import Foundation
import Logging
import NIOConcurrencyHelpers
import OrchardMessaging

/// Kafka settings for tests: the local broker from Deploy/test.sh, tuned for it.
public func testKafkaSettings(_ client: String) throws -> KafkaSettings {
    var s = KafkaSettings(bootstrapServers: try TestEnvironment.require("KAFKA_BOOTSTRAP_SERVERS"), clientID: client)
    s.sessionTimeoutMs = 3000
    s.fetchWaitMaxMs = Int(ProcessInfo.processInfo.environment["ORCHARD_KAFKA_FETCH_WAIT_MAX_MS"] ?? "") ?? 1
    return s
}

public let quietLogger: Logger = {
    var l = Logger(label: "tests")
    l.logLevel = .warning
    return l
}()

/// Reads a topic from the beginning through a fresh consumer group until `done` holds (or the timeout).
public func collect(topic: String, settings: KafkaSettings, timeout: Duration = .seconds(30),
                    until done: @escaping @Sendable ([ConsumedMessage]) -> Bool) async throws -> [ConsumedMessage] {
    let seen = NIOLockedValueBox<[ConsumedMessage]>([])
    let producer = try KafkaProducer(settings: settings)
    let consumerBox = NIOLockedValueBox<KafkaConsumer?>(nil)
    let consumer = KafkaConsumer(settings: settings, groupID: "test-collect-\(UUID().uuidString)", topics: [topic],
                                 deadLetters: producer, logger: quietLogger) { message in
        let all = seen.withLockedValue { $0.append(message); return $0 }
        if done(all) { consumerBox.withLockedValue { $0?.stop() } }
    }
    consumerBox.withLockedValue { $0 = consumer }
    let run = Task { try await consumer.run() }
    let watchdog = Task {
        try await Task.sleep(for: timeout)
        consumer.stop()
    }
    try await run.value
    watchdog.cancel()
    return seen.withLockedValue { $0 }
}
