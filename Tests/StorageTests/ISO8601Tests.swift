import Foundation
import OrchardCore
import XCTest

final class ISO8601Tests: XCTestCase {
    func testFormatsUTCWithMilliseconds() {
        XCTAssertEqual(ISO8601.string(from: Date(timeIntervalSince1970: 0)), "1970-01-01T00:00:00.000Z")
        XCTAssertEqual(ISO8601.string(from: Date(timeIntervalSince1970: 1_795_270_000.25)), "2026-11-21T14:06:40.250Z")
        XCTAssertEqual(ISO8601.string(from: Date(timeIntervalSince1970: 1_795_270_000.9996)), "2026-11-21T14:06:41.000Z")
    }

    func testParsesWhatDevicesDatabasesAndWeWrite() throws {
        let t = 1_795_270_000.25
        for text in ["2026-11-21T14:06:40.250Z", "2026-11-21T14:06:40.25Z", "2026-11-21 14:06:40.25+00",
                     "2026-11-21T15:06:40.250+01:00", "2026-11-21T09:06:40.250-0500", "2026-11-21t14:06:40.250z"] {
            XCTAssertEqual(try XCTUnwrap(ISO8601.date(from: text), text).timeIntervalSince1970, t, accuracy: 0.0005, text)
        }
        XCTAssertEqual(ISO8601.date(from: "2026-11-21T14:06:40Z")?.timeIntervalSince1970, 1_795_270_000)
        for _ in 0..<100 {
            let d = Date(timeIntervalSince1970: (Double.random(in: 0..<4_000_000_000) * 1000).rounded() / 1000)
            XCTAssertEqual(try XCTUnwrap(ISO8601.date(from: ISO8601.string(from: d))).timeIntervalSince1970,
                           d.timeIntervalSince1970, accuracy: 0.0005)
        }
    }

    func testRejectsMalformedText() {
        for text in ["", "2026-11-21", "2026-13-01T00:00:00Z", "2026-11-21T25:00:00Z", "2026-11-21T14:06:40Zjunk",
                     "2026-11-21T14:06:40+1", "abcd-ef-ghTij:kl:mnZ", "2026-11-21X11:26:40Z"] {
            XCTAssertNil(ISO8601.date(from: text), text)
        }
    }
}

/// The small OrchardCore helpers on hot paths: ids and header JSON.
final class CoreHelperTests: XCTestCase {
    func testRandomUUIDsAreVersion4AndDistinct() {
        var seen = Set<String>()
        for _ in 0..<10_000 {
            let id = RandomUUID.lowercased()
            XCTAssertEqual(UUID(uuidString: id)?.uuidString.lowercased(), id, "not a UUID: \(id)")
            XCTAssertEqual(Array(id)[14], "4")
            XCTAssertTrue("89ab".contains(Array(id)[19]), id)
            seen.insert(id)
        }
        XCTAssertEqual(seen.count, 10_000)
        let upper = RandomUUID.uppercased()
        XCTAssertEqual(upper, upper.uppercased())
    }

    func testHeaderJSONReadsBackWithJSONDecoder() throws {
        let maps: [[String: String]] = [[:], ["type": "orchard.device-event", "version": "1"],
                                        ["odd": "quote \" backslash \\ newline \n tab \t bell \u{07} nul \u{0} é 🍎 </script>"]]
        // Random strings over the escaped bytes, ASCII, multi-byte scalars and emoji, in every mix.
        let alphabet: [Character] = ["\"", "\\", "\n", "\r", "\t", "\u{0}", "\u{1f}", "\u{7f}", "a", "Z", " ", "/", "é", "😀", "中"]
        var generator = SystemRandomNumberGenerator()
        let random = (0..<300).map { _ in
            [String(String((0..<Int.random(in: 0...12, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })):
                String((0..<Int.random(in: 0...40, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })]
        }
        for map in maps + random {
            let text = JSONText.object(map)
            XCTAssertEqual(try JSONDecoder().decode([String: String].self, from: Data(text.utf8)), map, text)
        }
    }
}
