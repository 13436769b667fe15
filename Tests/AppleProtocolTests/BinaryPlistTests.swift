import AppleProtocol
import Foundation
import OrchardTestSupport
import XCTest

/// Device-facing plist parsing under hostile input: binary plists are read by Orchard's own bounded
/// parser, never by Foundation (issue: a set crashed the gateway; shared references expanded to GBs).
final class BinaryPlistTests: XCTestCase {
    static let setRoot = HostilePlists.setRoot

    func testFoundationBinaryPlistsReadEqualToTheirXML() throws {
        let samples: [[String: Any]] = [
            ["MessageType": "Authenticate", "UDID": "00008030-001A2B3C4D5E6F70", "Topic": "com.apple.mgmt.External.x"],
            ["Status": "Acknowledged", "CommandUUID": "A", "QueryResponses": [
                "OSVersion": "18.1", "IsSupervised": true, "BatteryLevel": 0.5, "DeviceCapacity": 119.2,
                "Negative": -42, "Big": Int64.max, "Small": 7, "Unicode": "Grüße, 世界 🍏",
                "Token": Data([0, 1, 2, 255]), "Nested": [[1, 2, [3]], ["k": ["v"]]], "Empty": [String](),
                "EmptyDict": [String: Any](), "Long": String(repeating: "x", count: 70_000),
            ] as [String: Any]],
            ["When": Date(timeIntervalSinceReferenceDate: 756_000_123 /* XML keeps whole seconds */), "False": false, "Many": Array(0..<300)],
        ]
        for sample in samples {
            let binary = Array(try PropertyListSerialization.data(fromPropertyList: sample, format: .binary, options: 0))
            let xml = Array(try PropertyListSerialization.data(fromPropertyList: sample, format: .xml, options: 0))
            XCTAssertTrue(binary.starts(with: Array("bplist00".utf8)))
            XCTAssertEqual(try Plist.parseDictionary(binary), try Plist.parseDictionary(xml))
        }
    }

    func testASetIsRefusedNotCrashed() throws {
        XCTAssertThrowsError(try Plist.parseDictionary(Self.setRoot)) { error in
            XCTAssertTrue("\(error)".contains("sets are not accepted"), "\(error)")
        }
        // A set nested in a dictionary value, too.
        var b = BinaryPlistBuilder()
        let key = b.add(ascii: "Status"), element = b.add(ascii: "x")
        let set = b.add(marker: 0xC1, refs: [element])
        let root = b.add(marker: 0xD1, refs: [key, set])
        XCTAssertThrowsError(try Plist.parseDictionary(b.document(top: root))) { error in
            XCTAssertTrue("\(error)".contains("sets"), "\(error)")
        }
    }

    /// A chain of arrays each referencing the next 15 times stands for 15^20 values in 600 bytes.
    func testSharedReferencesAreCountedWherePlacedAndBounded() throws {
        var b = BinaryPlistBuilder()
        var level = b.add(ascii: "leaf")
        for _ in 0..<20 { level = b.add(marker: 0xAF, refs: Array(repeating: level, count: 15)) }
        let key = b.add(ascii: "Bomb")
        let root = b.add(marker: 0xD1, refs: [key, level])
        let document = b.document(top: root)
        XCTAssertLessThan(document.count, 1024)
        let started = Date()
        XCTAssertThrowsError(try Plist.parseDictionary(document)) { error in
            XCTAssertTrue("\(error)".contains("more than"), "\(error)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 2, "refused without expanding the tree")

        // Shared references within the limits are read as the tree they stand for.
        var small = BinaryPlistBuilder()
        let leaf = small.add(ascii: "v")
        let inner = small.add(marker: 0xA3, refs: [leaf, leaf, leaf])
        let k = small.add(ascii: "K")
        let outer = small.add(marker: 0xA2, refs: [inner, inner])
        let top = small.add(marker: 0xD1, refs: [k, outer])
        XCTAssertEqual(try Plist.parseDictionary(small.document(top: top))["K"],
                       .array(Array(repeating: .array(Array(repeating: .string("v"), count: 3)), count: 2)))
    }

    /// The hardening issue's result: 798 bytes that stood for 28.7 MB of XML when written out and stored. Refused now,
    /// because written out it would be far more than 16 times its size; the same shape at a size the limit allows is read.
    func testASmallDocumentCannotStandForMegabytesWrittenOut() throws {
        let uuid = "8E3B1C52-9A4F-4C1E-8D6B-1F2A3B4C5D6E", udid = "00008030-001A2B3C4D5E6F70"
        let bomb = BinaryPlistBuilder.sharedReferenceResult(udid: udid, commandUUID: uuid)
        XCTAssertLessThan(bomb.count, 1024)
        XCTAssertThrowsError(try CommandResult.parse(bomb)) { error in
            XCTAssertTrue("\(error)".contains("written out"), "\(error)")
        }
        // 4 levels of 4 ways over 400 bytes: 256 copies, about 110 KB written out, within the 1 MiB floor.
        let modest = try CommandResult.parse(BinaryPlistBuilder.sharedReferenceResult(udid: udid, commandUUID: uuid, levels: 4))
        XCTAssertEqual(modest.status, .acknowledged)
        let stored = modest.stored
        XCTAssertGreaterThan(stored.count, 100_000)
        XCTAssertLessThanOrEqual(stored.count, PlistLimits.device.maxWrittenBytes(inputBytes: modest.body.count),
                                 "what is stored is within the bound the parse checked")
        XCTAssertEqual(try Plist.parseDictionary(stored), modest.values)

        // The estimate of the written-out size is not below what the writer writes.
        var limits = PlistLimits()
        limits.expansionFloor = 0
        limits.maxExpansion = stored.count / modest.body.count - 1
        XCTAssertThrowsError(try Plist.parseDictionary(modest.body, limits: limits))
    }

    /// A large real-shaped result written by Foundation's binary encoder (which shares equal strings) is well inside the
    /// limit: an InstalledApplicationList of 2,000 apps.
    func testALargeInstalledApplicationListIsAccepted() throws {
        let apps: [[String: Any]] = (0..<2000).map { i in
            ["Identifier": "com.example.app\(i)", "Name": "App \(i)", "ShortVersion": "1.\(i % 10)", "Version": "\(100 + i % 7)",
             "BundleSize": 1_000_000 + i, "DynamicSize": 2048, "IsValidated": true, "ExternalVersionIdentifier": 800_000_000 + i,
             "HasUpdateAvailable": false, "Installing": false, "IsAppClip": false, "IsUserEnrollmentAppClip": false]
        }
        let body = Array(try PropertyListSerialization.data(fromPropertyList: [
            "UDID": "00008030-001A2B3C4D5E6F70", "Status": "Acknowledged", "CommandUUID": "C1", "InstalledApplicationList": apps],
            format: .binary, options: 0))
        let result = try CommandResult.parse(body)
        let stored = result.stored
        print("InstalledApplicationList of 2,000 apps: \(body.count) bytes binary, \(stored.count) bytes stored as XML",
              "(\(String(format: "%.1f", Double(stored.count) / Double(body.count)))×; limit \(PlistLimits.device.maxWrittenBytes(inputBytes: body.count)))")
        XCTAssertLessThanOrEqual(stored.count, PlistLimits.device.maxWrittenBytes(inputBytes: body.count))
    }

    /// An XML result is stored as the device sent it (its size is what was received); a binary one as XML.
    func testResultsAreStoredInAFormBoundedByWhatWasReceived() throws {
        let values: [String: PlistValue] = ["UDID": .string("U1"), "Status": .string("Acknowledged"), "CommandUUID": .string("C1"),
                                            "QueryResponses": .dictionary(["OSVersion": .string("18.2")])]
        let xml = Array(#"<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>UDID</key><string>U1</string><key>Status</key><string>Acknowledged</string><key>CommandUUID</key><string>C1</string><key>QueryResponses</key><dict><key>OSVersion</key><string>18.2</string></dict></dict></plist>"#.utf8)
        XCTAssertEqual(try CommandResult.parse(xml).stored, xml)
        let binary = Array(try PropertyListSerialization.data(fromPropertyList: [
            "UDID": "U1", "Status": "Acknowledged", "CommandUUID": "C1", "QueryResponses": ["OSVersion": "18.2"]],
            format: .binary, options: 0))
        let fromBinary = try CommandResult.parse(binary)
        XCTAssertEqual(try Plist.parseDictionary(fromBinary.stored), values)
        XCTAssertTrue(fromBinary.stored.starts(with: Array("<?xml".utf8)))
    }

    func testCyclesDeepNestingAndBadOffsetsAreRefused() throws {
        // An array that contains itself.
        var cycle = BinaryPlistBuilder()
        let key = cycle.add(ascii: "K")
        let selfRef = cycle.objects.count + 1
        _ = cycle.add(marker: 0xD1, refs: [key, selfRef])
        _ = cycle.add(marker: 0xA1, refs: [selfRef])
        XCTAssertThrowsError(try Plist.parseDictionary(cycle.document(top: 1)))

        var deep = BinaryPlistBuilder()
        var inner = deep.add(ascii: "x")
        for _ in 0..<40 { inner = deep.add(marker: 0xA1, refs: [inner]) }
        let k = deep.add(ascii: "K")
        let deepRoot = deep.add(marker: 0xD1, refs: [k, inner])
        XCTAssertThrowsError(try Plist.parseDictionary(deep.document(top: deepRoot))) { error in
            XCTAssertTrue("\(error)".contains("nested too deeply"), "\(error)")
        }

        var truncated = Array(Self.setRoot)
        truncated.removeLast(5)
        XCTAssertThrowsError(try Plist.parseDictionary(truncated))
        XCTAssertThrowsError(try Plist.parseDictionary(Array("bplist00".utf8)))
    }

    func testOtherFormatsAreRefused() {
        XCTAssertThrowsError(try Plist.parseDictionary(Array("{ UDID = x; }".utf8)))
        XCTAssertThrowsError(try Plist.parseDictionary(Array(#"{"UDID":"x"}"#.utf8)))
        XCTAssertThrowsError(try Plist.parseDictionary([]))
    }

    func testXMLIsBoundedTheSameWay() throws {
        var limits = PlistLimits()
        limits.maxNodes = 100
        let many = Plist.xml(["A": .array(Array(repeating: .integer(1), count: 200))])
        XCTAssertThrowsError(try Plist.parseDictionary(many, limits: limits)) { error in
            XCTAssertTrue("\(error)".contains("more than 100 values"), "\(error)")
        }
        XCTAssertNoThrow(try Plist.parseDictionary(many))
    }

    /// Every mutation of valid documents parses to a value or a PlistError, never a crash or a hang.
    func testMutatedDocumentsNeverCrash() throws {
        let seeds: [[UInt8]] = [
            Array(try PropertyListSerialization.data(fromPropertyList: [
                "MessageType": "TokenUpdate", "UDID": "00008030-001A2B3C4D5E6F70", "Token": Data([1, 2, 3]),
                "Nested": [["a": [1, 2.5, true]], "Grüße"], "When": Date(timeIntervalSinceReferenceDate: 1),
            ] as [String: Any], format: .binary, options: 0)),
            Self.setRoot,
        ]
        var rng = SplitMix64(seed: 0x0C4A_4D)
        var parsed = 0, refused = 0
        for i in 0..<20_000 {
            var document = seeds[i % seeds.count]
            for _ in 0...(rng.next() % 4) {
                let at = Int(rng.next() % UInt64(document.count))
                document[at] = UInt8(truncatingIfNeeded: rng.next())
            }
            do { _ = try Plist.parseDictionary(document); parsed += 1 } catch is PlistError { refused += 1 }
        }
        XCTAssertEqual(parsed + refused, 20_000)
        XCTAssertGreaterThan(refused, 0)
    }
}
