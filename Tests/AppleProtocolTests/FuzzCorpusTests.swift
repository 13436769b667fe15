import AppleProtocol
import Foundation
import XCTest

/// Replays the fuzzing corpus (Fuzz/corpus/plist, grown by Deploy/fuzz.sh) through every device-facing
/// parser: each input must give a value or a PlistError, as it did when the fuzzer kept it.
final class FuzzCorpusTests: XCTestCase {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../Fuzz/corpus/plist").standardizedFileURL

    func testEveryCorpusInputParsesOrIsRefused() throws {
        let files = try FileManager.default.contentsOfDirectory(at: Self.corpus, includingPropertiesForKeys: nil)
        XCTAssertGreaterThanOrEqual(files.count, 17, "the seed corpus is committed")
        for file in files {
            let bytes = Array(try Data(contentsOf: file))
            let name = file.lastPathComponent
            expectValueOrPlistError(name) { _ = Plist.xml(try Plist.parseDictionary(bytes)) }
            expectValueOrPlistError(name) { _ = try CheckinMessage.parse(bytes) }
            expectValueOrPlistError(name) { _ = try CommandResult.parse(bytes) }
            expectValueOrPlistError(name) { _ = try MachineInfo.parse(bytes) }
        }
    }

    /// The seeds were written by Python's plistlib, independently of Orchard: both encodings read the same.
    func testSeedsFromAnotherWriterReadTheSameInBothEncodings() throws {
        for name in ["authenticate", "tokenupdate", "gettoken", "declarative", "result", "error", "machineinfo"] {
            let xml = Array(try Data(contentsOf: Self.corpus.appendingPathComponent("\(name).xml")))
            let binary = Array(try Data(contentsOf: Self.corpus.appendingPathComponent("\(name).bplist")))
            XCTAssertEqual(try Plist.parseDictionary(binary), try Plist.parseDictionary(xml), name)
        }
        let tokenUpdate = try CheckinMessage.parse(Array(try Data(contentsOf: Self.corpus.appendingPathComponent("tokenupdate.bplist"))))
        guard case .tokenUpdate(let m) = tokenUpdate else { return XCTFail("\(tokenUpdate)") }
        XCTAssertEqual(m.token, [UInt8](repeating: 1, count: 32))
        XCTAssertThrowsError(try Plist.parseDictionary(Array(try Data(contentsOf: Self.corpus.appendingPathComponent("set-root.bplist")))))
        XCTAssertThrowsError(try Plist.parseDictionary(Array(try Data(contentsOf: Self.corpus.appendingPathComponent("cycle.bplist")))))
    }

    private func expectValueOrPlistError(_ name: String, _ body: () throws -> Void) {
        do { try body() } catch is PlistError {} catch { XCTFail("\(name): \(error)") }
    }
}
