import Foundation
import OrchardCore
@testable import OrchardSchemas
@testable import OrchardMessaging
import XCTest

final class MessageCodecTests: XCTestCase {
    func message(_ body: String, type: String = IssueSecurityToken.type, version: String = "1") -> ConsumedMessage {
        ConsumedMessage(topic: IssueSecurityToken.topic, partition: 0, offset: 0, key: "k", value: Array(body.utf8),
                        headers: [Header.type: type, Header.version: version])
    }

    func testUnknownFieldsAreIgnored() throws {
        let decoded = try MessageCodec.decode(IssueSecurityToken.self,
                                              from: message(#"{"watchUDID":"W1","addedLater":{"x":1}}"#))
        XCTAssertEqual(decoded, IssueSecurityToken(watchUDID: "W1"))
    }

    func testWrongTypeVersionOrBodyIsRejectedNotRetried() {
        XCTAssertThrowsError(try MessageCodec.decode(IssueSecurityToken.self, from: message("{}", type: "other"))) {
            XCTAssertTrue($0 is MessageRejected)
        }
        XCTAssertThrowsError(try MessageCodec.decode(IssueSecurityToken.self, from: message(#"{"watchUDID":"W"}"#, version: "2"))) {
            XCTAssertTrue($0 is MessageRejected)
        }
        XCTAssertThrowsError(try MessageCodec.decode(IssueSecurityToken.self, from: message("not json"))) {
            XCTAssertTrue($0 is MessageRejected)
        }
        XCTAssertThrowsError(try MessageCodec.decode(IssueSecurityToken.self, from: message(#"{"watchUDID":7}"#))) {
            XCTAssertTrue($0 is MessageRejected)
        }
    }

    func testOutgoingCarriesTopicKeyAndHeaders() throws {
        let event = ActivityRecorded(actor: "admin:ci", action: "test.done", deviceID: "D1", outcome: .succeeded,
                                     service: "tests", occurredAt: Date(timeIntervalSince1970: 1_795_000_000.5))
        let outgoing = try MessageCodec.outgoing(event, correlationID: "corr-1")
        XCTAssertEqual(outgoing.topic, "orchard.activity.v1")
        XCTAssertEqual(outgoing.key, "D1")
        XCTAssertEqual(outgoing.headers[Header.type], "activity.recorded")
        XCTAssertEqual(outgoing.headers[Header.version], "1")
        XCTAssertEqual(outgoing.headers[Header.correlationID], "corr-1")
        XCTAssertNotNil(outgoing.headers[Header.messageID])
        let back = try MessageCodec.decode(ActivityRecorded.self, from: outgoing.value)
        XCTAssertEqual(back, event)
        XCTAssertTrue(String(decoding: outgoing.value, as: UTF8.self).contains("2026-11-18T"), "ISO 8601 dates on the wire")
    }

    func testReplyToParsing() {
        XCTAssertEqual(parseReplyTo("orchard.replies.v1:3")?.partition, 3)
        XCTAssertNil(parseReplyTo("orchard.replies.v1"))
        XCTAssertNil(parseReplyTo("orchard.replies.v1:-1"))
        XCTAssertNil(parseReplyTo("orchard.device-events.v1:0"), "replies may only go to reply topics")
        XCTAssertNil(parseReplyTo("orchard.replies.v1:x"))
    }

    func testReplyPartitionChoiceIsStable() {
        XCTAssertEqual(stableHash("checkin-gateway-a"), stableHash("checkin-gateway-a"))
        XCTAssertEqual(stableHash(""), 2_166_136_261)
        XCTAssertEqual(stableHash("a"), 0xE40C_292C, "FNV-1a reference value")
    }

    func testDeviceIdentifierValidation() {
        XCTAssertTrue(DeviceIdentifier.isValid("00008030-001A2B3C4D5E6F70"))
        XCTAssertFalse(DeviceIdentifier.isValid(""))
        XCTAssertFalse(DeviceIdentifier.isValid("a b"))
        XCTAssertFalse(DeviceIdentifier.isValid("x'; DROP TABLE"))
        XCTAssertFalse(DeviceIdentifier.isValid(String(repeating: "A", count: 65)))
    }

    func testEveryTopicIsDeclaredOnceWithPartitions() {
        let names = Topics.all.map(\.name)
        XCTAssertEqual(Set(names).count, names.count)
        XCTAssertTrue(names.contains(RequestClient.replyTopic))
        XCTAssertTrue(names.contains(KafkaConsumer.deadLetterTopic))
        XCTAssertTrue(Topics.all.allSatisfy { $0.partitions > 0 && $0.name.hasSuffix(".v1") })
    }
}

/// Messages that write their own JSON must read back as the same value, and match what JSONEncoder writes.
final class DirectJSONTests: XCTestCase {
    func testActivityAndDeviceEventsReadBackUnchanged() throws {
        let awkward = "quote \" backslash \\ slash / newline \n bell \u{07} é 🍎"
        let activities = [
            // Dates travel with millisecond precision: the samples have no finer part.
            ActivityRecorded(actor: "device:X", action: "device.enrolled", deviceID: "X", outcome: .succeeded, service: "checkin-gateway",
                             occurredAt: Date(timeIntervalSince1970: 1_763_000_000)),
            ActivityRecorded(actor: awkward, action: "watch.paired", deviceID: nil, relatedDeviceIDs: ["A", awkward],
                             outcome: .refused, detail: awkward, service: "token-service",
                             occurredAt: Date(timeIntervalSince1970: 1_763_000_000.123)),
        ]
        for a in activities {
            let direct = try MessageCodec.encode(a)
            XCTAssertEqual(try MessageCodec.decode(ActivityRecorded.self, from: direct), a)
            XCTAssertEqual(try JSONSerialization.jsonObject(with: Data(direct)) as? NSDictionary,
                           try JSONSerialization.jsonObject(with: JSONEncoder.orchard.encode(a)) as? NSDictionary)
        }
        let events = [DeviceEvent(kind: .enrolled, enrollmentID: "X", occurredAt: Date(timeIntervalSince1970: 1_763_000_001)),
                      DeviceEvent(kind: .commandCompleted, enrollmentID: awkward, details: ["status": "Acknowledged", awkward: awkward],
                                  occurredAt: Date(timeIntervalSince1970: 1_763_000_000.5))]
        for e in events {
            let direct = try MessageCodec.encode(e)
            XCTAssertEqual(try MessageCodec.decode(DeviceEvent.self, from: direct), e)
            XCTAssertEqual(try JSONSerialization.jsonObject(with: Data(direct)) as? NSDictionary,
                           try JSONSerialization.jsonObject(with: JSONEncoder.orchard.encode(e)) as? NSDictionary)
        }
    }
}

private extension JSONEncoder {
    /// What MessageCodec wrote before these types wrote their own JSON.
    static var orchard: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(ISO8601.string(from: date))
        }
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }
}
