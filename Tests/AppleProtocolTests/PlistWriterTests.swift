@testable import AppleProtocol
import Foundation
import XCTest

/// The direct XML plist writer must write what Foundation writes, and read back to the same values.
final class PlistWriterTests: XCTestCase {
    func testSameBytesAsFoundationAndRoundTrips() throws {
        let date = Date(timeIntervalSince1970: 1_763_000_000)
        let samples: [[String: PlistValue]] = [
            [:],
            ["MessageType": .string("Authenticate"), "UDID": .string("0000-AAAA"), "Topic": .string("com.apple.mgmt.External.x")],
            ["Escapes": .string("a & b < c > d \"quoted\" 'single' ünïcødé 🍎 \t tab\nline"), "Empty": .string("")],
            ["Numbers": .array([.integer(0), .integer(-42), .integer(Int.max), .real(1.5), .real(-0.25), .real(3)]),
             "Flags": .array([.bool(true), .bool(false)])],
            ["Data": .data([]), "Short": .data([1, 2, 3]), "Long": .data(Array((0..<300).map { UInt8($0 % 256) }))],
            ["When": .date(date), "Nested": .dictionary(["Empty": .dictionary([:]), "List": .array([]),
                                                         "Deep": .array([.dictionary(["K": .data(Array(repeating: 9, count: 100))])])])],
        ]
        // Data at line boundaries and at every depth up to past Foundation's indentation cap.
        var deep: PlistValue = .data(Array(repeating: 0xAB, count: 200))
        var boundaries: [String: PlistValue] = [:]
        for length in [1, 2, 3, 50, 51, 52, 102, 103, 153] { boundaries["L\(length)"] = .data(Array(repeating: 0x5A, count: length)) }
        for _ in 0..<10 { deep = .array([deep]) }
        for sample in samples + [boundaries, ["Deep": deep]] {
            let ours = Plist.xml(sample)
            XCTAssertEqual(String(decoding: ours, as: UTF8.self), String(decoding: try Plist.foundationXML(sample), as: UTF8.self))
            XCTAssertEqual(try Plist.parseDictionary(ours), sample)
        }
    }

    func testHostileStringsStayInsideTheirElement() throws {
        let hostile = "</string><key>Injected</key><true/><string>"
        let xml = Plist.xml(["DeviceName": .string(hostile)])
        let parsed = try Plist.parseDictionary(xml)
        XCTAssertEqual(parsed, ["DeviceName": .string(hostile)])
    }
}
