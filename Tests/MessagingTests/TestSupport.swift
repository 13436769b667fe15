import Foundation
import Logging
import NIOConcurrencyHelpers
import OrchardMessaging
import XCTest

/// The stack started by Deploy/test.sh.
enum TestStack {
    static func require(_ name: String) throws -> String {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else {
            XCTFail("\(name) is not set: run the tests with ./Deploy/test.sh")
            throw XCTSkip("no test stack")
        }
        return value
    }

    static func settings(_ client: String) throws -> KafkaSettings {
        var s = KafkaSettings(bootstrapServers: try require("KAFKA_BOOTSTRAP_SERVERS"), clientID: client)
        s.sessionTimeoutMs = 3000
        s.fetchWaitMaxMs = Int(ProcessInfo.processInfo.environment["ORCHARD_KAFKA_FETCH_WAIT_MAX_MS"] ?? "") ?? 1
        return s
    }

    static let logger: Logger = {
        var l = Logger(label: "tests")
        l.logLevel = .warning
        return l
    }()
}

/// A child process (an Orchard executable) that the test can stop gently or kill.
final class ChildProcess {
    let process = Process()
    let output: URL

    init(_ executable: String, _ arguments: [String], environment extra: [String: String] = [:]) throws {
        let bin = try TestStack.require("ORCHARD_BIN_DIR")
        process.executableURL = URL(fileURLWithPath: "\(bin)/\(executable)")
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(extra) { $1 }
        output = FileManager.default.temporaryDirectory.appendingPathComponent("orchard-child-\(UUID().uuidString).log")
        FileManager.default.createFile(atPath: output.path, contents: nil)
        let handle = try FileHandle(forWritingTo: output)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    deinit { try? FileManager.default.removeItem(at: output) }

    var log: String { (try? String(contentsOf: output, encoding: .utf8)) ?? "" }

    func terminate() { process.terminate() }
    func kill() { Foundation.kill(process.processIdentifier, SIGKILL) }

    func waitForExit(timeout: TimeInterval = 30) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        return !process.isRunning
    }
}

/// Collects messages of a topic through a fresh consumer group until a condition holds.
func collect(topic: String, settings: KafkaSettings, timeout: Duration = .seconds(30),
             until done: @escaping @Sendable ([ConsumedMessage]) -> Bool) async throws -> [ConsumedMessage] {
    let seen = NIOLockedValueBox<[ConsumedMessage]>([])
    let producer = try KafkaProducer(settings: settings)
    let consumerBox = NIOLockedValueBox<KafkaConsumer?>(nil)
    let consumer = KafkaConsumer(settings: settings, groupID: "test-collect-\(UUID().uuidString)", topics: [topic],
                                 deadLetters: producer, logger: TestStack.logger) { message in
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

/// Polls until the condition holds or the timeout passes.
func eventually(timeout: TimeInterval = 60, _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(200))
    }
    return false
}
