import AppleProtocol
import Foundation
import OrchardSchemas
import OrchardMessaging
import OrchardTestSupport
import XCTest

/// Other services queue MDM commands through `orchard.mdm-commands.v1`; a redelivered request queues nothing twice.
final class KafkaCommandTests: XCTestCase {
    func testEnqueueCommandFromKafkaReachesTheDeviceOnce() async throws {
        let stack = try await Fixture.shared.prepare()
        let device = try await Fixture.shared.enrollWithExternalIdentity()
        let producer = try KafkaProducer(settings: try testKafkaSettings("e2e-enqueue"))
        let command = MDMCommand.deviceConfigured()
        let request = EnqueueCommand(commandUUID: command.commandUUID, enrollmentIDs: [device.udid, "NO-SUCH-DEVICE"],
                                     commandPlist: Data(command.plist), requestedBy: "service:abm-sync")
        try await producer.publish(request, correlationID: "e2e-enqueue")
        try await producer.publish(request, correlationID: "e2e-enqueue")   // at-least-once delivery: a duplicate
        let queued = await eventually {
            let items = (try? await stack.admin.expect(.GET, "/devices/\(device.udid)/commands"))?["items"] as? [[String: Any]] ?? []
            return items.contains { $0["commandUUID"] as? String == command.commandUUID }
        }
        XCTAssertTrue(queued)
        let received = try unwrap(try await device.idle())
        XCTAssertEqual(received.commandUUID, command.commandUUID)
        XCTAssertEqual(received.requestType, "DeviceConfigured")
        let next = try await device.respond(to: received, status: "Acknowledged")
        XCTAssertNil(next, "the duplicate request queued nothing")
        let items = try await stack.admin.expect(.GET, "/devices/\(device.udid)/commands")["items"] as? [[String: Any]] ?? []
        XCTAssertEqual(items.filter { $0["commandUUID"] as? String == command.commandUUID }.count, 1)
        XCTAssertEqual(items.first { $0["commandUUID"] as? String == command.commandUUID }?["requestedBy"] as? String, "service:abm-sync")

        // A malformed request is dead-lettered, not retried forever.
        try await producer.send(OutgoingMessage(topic: EnqueueCommand.topic, key: "x", value: Array("{}".utf8),
                                                headers: [Header.type: EnqueueCommand.type, Header.version: "1"]))
        let letters = try await collect(topic: KafkaConsumer.deadLetterTopic, settings: try testKafkaSettings("e2e-dlq")) { seen in
            seen.contains { $0.headers["original-topic"] == EnqueueCommand.topic }
        }
        XCTAssertTrue(letters.contains { $0.headers["original-topic"] == EnqueueCommand.topic })
    }
}
