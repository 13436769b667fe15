@testable import AppleProtocol
import Foundation
import XCTest

/// Orchard's XML property-list reader against Foundation's, which it replaced on the device path: what both read
/// must read the same, and what Orchard refuses must be refused with a PlistError.
final class XMLPlistParserTests: XCTestCase {
    private func ours(_ text: String) throws -> PlistValue { try XMLPlistParser.parse(Array(text.utf8), limits: .device) }
    private func foundation(_ text: String) throws -> PlistValue { try Plist.foundationParseXML(Array(text.utf8)) }

    private static let head = """
        <?xml version="1.0" encoding="UTF-8"?>
        <!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
        <plist version="1.0">
        """

    /// Random trees written by Orchard's writer and by Foundation's read back the same by both readers.
    func testRandomTreesReadTheSameAsFoundation() throws {
        var generator = SystemRandomNumberGenerator()
        for round in 0..<400 {
            let tree = PlistValue.dictionary(Self.randomDictionary(depth: 0, using: &generator))
            guard case .dictionary(let dictionary) = tree else { return }
            for document in [Plist.xml(dictionary), try Plist.foundationXML(dictionary)] {
                let mine = try XMLPlistParser.parse(document, limits: .device)
                XCTAssertEqual(mine, tree, "round \(round)")
                XCTAssertEqual(mine, try Plist.foundationParseXML(document), "round \(round)")
            }
        }
    }

    /// What a hand-written or another library's document may carry, each read the same as Foundation reads it.
    func testMarkupFoundationAcceptsReadsTheSame() throws {
        let documents = [
            // No declaration, no DOCTYPE, the root without <plist>, attributes, comments and instructions anywhere.
            "<plist><dict><key>A</key><string>b</string></dict></plist>",
            "<dict><key>A</key><integer>1</integer></dict>",
            "\u{FEFF}<?xml version='1.0' encoding='utf-8'?><plist version='1.0' ><dict ></dict ></plist >",
            "<!-- lead --><plist>\n\t<!-- c --><dict>\r\n<!-- c --><key>K</key><!-- c --><true/><?pi x?></dict><!-- c --></plist>\n<!-- end -->",
            "<!DOCTYPE plist><plist><dict><key>K</key><false/><key>L</key><true/></dict></plist>",
            // Text: entities, character references, CDATA, white space kept, UTF-8.
            "<plist><dict><key>a&amp;b</key><string>&lt;tag&gt; &quot;q&quot; &apos;s&apos; &#65;&#x42;&#x1F34E; é 🍎</string></dict></plist>",
            "<plist><dict><key>C</key><string>x<![CDATA[<not-a-tag> & ]]>y</string><key>Space</key><string>  two\n lines\t</string></dict></plist>",
            "<plist><dict><key/><string/><key>E</key><string></string><key>D</key><data></data><key>A</key><array/></dict></plist>",
            // Numbers, data and dates.
            "<plist><dict><key>I</key><array><integer>0</integer><integer>-42</integer><integer>+3</integer><integer>9223372036854775807</integer><integer>-9223372036854775808</integer><integer>0x1F</integer></array></dict></plist>",
            "<plist><dict><key>R</key><array><real>1.5</real><real>-0.25</real><real>1e3</real><real>3</real><real>0</real></array></dict></plist>",
            "<plist><dict><key>D</key><data>\n\tAAEC\n\tAwQF Bg==\n</data><key>E</key><data>QQ==</data><key>F</key><data>QUI=</data></dict></plist>",
            "<plist><dict><key>T</key><date>2026-12-07T20:40:25Z</date><key>L</key><date>2024-02-29T00:00:00Z</date><key>O</key><date>1970-01-01T00:00:00Z</date></dict></plist>",
            // A repeated key keeps the last value, as Foundation does.
            "<plist><dict><key>K</key><string>first</string><key>K</key><string>last</string></dict></plist>",
            // Nesting.
            "<plist><dict><key>N</key><array><dict><key>M</key><array><array/><dict/></array></dict></array></dict></plist>",
        ]
        for text in documents {
            guard let expected = XCTAssertNoThrowValue(try foundation(text), "Foundation: \(text)") else { continue }
            XCTAssertEqual(try ours(text), expected, text)
        }
        XCTAssertEqual(try ours("<?xml version=\"1.0\" encoding = 'utf8' standalone=\"yes\"?><plist><dict/></plist>"), .dictionary([:]))
        // Where Foundation refuses harmless layout, Orchard reads it (a device's own writer never produces these).
        XCTAssertEqual(try ours("<plist><dict><key>A</key><data/><key>B</key><integer> 7 </integer><key>C</key><real> 1.5 </real></dict></plist>"),
                       .dictionary(["A": .data([]), "B": .integer(7), "C": .real(1.5)]))
        XCTAssertEqual(try ours("<plist><dict><key>K</key><true></true></dict></plist>"), .dictionary(["K": .bool(true)]))
        XCTAssertEqual(try ours(documents[5])["a&b"], .string("<tag> \"q\" 's' AB🍎 é 🍎"))
        XCTAssertEqual(try ours(documents[11])["T"], .date(Date(timeIntervalSince1970: 1_796_676_025)))
    }

    /// Malformed, hostile or out-of-bounds documents: a PlistError each, nothing else.
    func testMalformedDocumentsAreRefused() throws {
        let refused = [
            "", "<", "<plist>", "<plist/>", "<plist><dict></plist>", "<plist><dict><key>A</key></dict></plist>",
            "<plist><dict><string>A</string><true/></dict></plist>", "<plist><dict><key>A</key><key>B</key></dict></plist>",
            "<plist><dict>text<key>A</key><true/></dict></plist>", "<plist><array><key>A</key></array></plist>",
            "<plist><dict/><dict/></plist>", "<plist><dict/></plist><dict/>", "<plist><dict/></plist>junk",
            "<plist><plist><dict/></plist></plist>", "<plist><set/></plist>", "<plist><dict><key>A</key><string>x</strin></dict></plist>",
            "<plist><dict><key>A</key><string>&bogus;</string></dict></plist>", "<plist><dict><key>A</key><string>&#0;</string></dict></plist>",
            "<plist><dict><key>A</key><string>&#xD800;</string></dict></plist>", "<plist><dict><key>A</key><string>&#99999999999;</string></dict></plist>",
            "<plist><dict><key>A</key><string>&amp</string></dict></plist>", "<plist><dict><key>A</key><string><![CDATA[x</string></dict></plist>",
            "<plist><dict><key>A</key><string><b/></string></dict></plist>", "<plist><dict><key>A</key><integer/></dict></plist>",
            "<plist><dict><key>A</key><integer>1.5</integer></dict></plist>", "<plist><dict><key>A</key><integer>9223372036854775808</integer></dict></plist>",
            "<plist><dict><key>A</key><integer>-</integer></dict></plist>", "<plist><dict><key>A</key><integer>0x</integer></dict></plist>",
            "<plist><dict><key>A</key><real>one</real></dict></plist>", "<plist><dict><key>A</key><data>AA*A</data></dict></plist>",
            "<plist><dict><key>A</key><data>A</data></dict></plist>", "<plist><dict><key>A</key><data>QQ==QQ==</data></dict></plist>",
            "<plist><dict><key>A</key><data>QUFB QQ</data></dict></plist>", "<plist><dict><key>A</key><data>QQ=</data></dict></plist>",
            "<plist><dict><key>A</key><date>2026-13-01T00:00:00Z</date></dict></plist>", "<plist><dict><key>A</key><date>2026-02-30T00:00:00Z</date></dict></plist>",
            "<plist><dict><key>A</key><date>yesterday</date></dict></plist>", "<plist><dict><key>A</key><true>x</true></dict></plist>",
            "<plist><dict><key>CF$UID</key><integer>1</integer></dict></plist>", "<!-- unterminated <plist><dict/></plist>",
            "<plist><dict><key>A</key><string>x", "<plist x=\"unterminated", "<plist x=\"a<dict/></plist>",
            // Foundation reads these, differently or wrongly: Latin-1 converted, 2^63 wrapped to a negative Int by the
            // old bridging, junk in base64 skipped, February 30 moved to March, text after the root ignored.
            "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><plist><dict/></plist>", "<?xml version='1.0' encoding=utf-8?><plist><dict/></plist>",
            "<?xml version=\"1.0\" encoding = \"UTF-16\"?><plist><dict/></plist>", "<?XML version=\"1.0\" Encoding='latin1'?><plist><dict/></plist>",
            "<plist><dict><key>A</key><integer>18446744073709551615</integer></dict></plist>",
            "<plist><dict><key>A</key><data>AA*A</data></dict></plist>", "<plist><dict/></plist><dict/>",
            // Markup is skipped to its first `>`, quotes or not, as CoreFoundation does (a fuzzer-found document whose
            // DOCTYPE held a `>` in quotes read as two different documents before).
            "<plist x=\"a>b\"><dict/></plist>", "<!DOCTYPE plist [ <!ENTITY x \"y>\"> ]><plist><dict/></plist>",
        ]
        for text in refused {
            XCTAssertThrowsError(try ours(text), text.debugDescription) { XCTAssertTrue($0 is PlistError, "\(text): \($0)") }
        }
        // Not UTF-8: refused whole, not repaired.
        XCTAssertThrowsError(try XMLPlistParser.parse(Array("<plist><dict><key>A</key><string>".utf8) + [0xC3, 0x28] + Array("</string></dict></plist>".utf8), limits: .device))
        // Within the device limits: nesting, values, and bytes of text.
        let deep = String(repeating: "<array>", count: 40) + String(repeating: "</array>", count: 40)
        XCTAssertThrowsError(try ours("<plist><dict><key>D</key>\(deep)</dict></plist>")) { XCTAssertTrue("\($0)".contains("nested")) }
        let shallow = String(repeating: "<array>", count: 30) + String(repeating: "</array>", count: 30)
        XCTAssertNoThrow(try ours("<plist><dict><key>D</key>\(shallow)</dict></plist>"))
        var limits = PlistLimits()
        limits.maxNodes = 100
        let many = "<plist><array>" + String(repeating: "<true/>", count: 100) + "</array></plist>"
        XCTAssertThrowsError(try XMLPlistParser.parse(Array(many.utf8), limits: limits)) { XCTAssertTrue("\($0)".contains("more than 100 values")) }
        limits = PlistLimits()
        limits.maxValueBytes = 1000
        let long = "<plist><array><string>\(String(repeating: "x", count: 600))</string><data>\(Data(repeating: 1, count: 600).base64EncodedString())</data></array></plist>"
        XCTAssertThrowsError(try XMLPlistParser.parse(Array(long.utf8), limits: limits)) { XCTAssertTrue("\($0)".contains("bytes of strings and data")) }
    }

    /// Every XML document of the fuzzing corpus: where both readers read it, the same value.
    func testCorpusReadsTheSameAsFoundation() throws {
        let corpus = FuzzCorpusTests.corpus
        var both = 0
        for file in try FileManager.default.contentsOfDirectory(at: corpus, includingPropertiesForKeys: nil) {
            let bytes = Array(try Data(contentsOf: file))
            guard !bytes.starts(with: Array("bplist".utf8)),
                  let mine = try? XMLPlistParser.parse(bytes, limits: .device),
                  let theirs = try? Plist.foundationParseXML(bytes) else { continue }
            XCTAssertEqual(mine, theirs, file.lastPathComponent)
            both += 1
        }
        XCTAssertGreaterThan(both, 7, "the corpus's XML seeds")
    }

    private func XCTAssertNoThrowValue<T>(_ body: @autoclosure () throws -> T, _ message: String) -> T? {
        do { return try body() } catch { XCTFail("\(message): \(error)"); return nil }
    }

    private static func randomDictionary(depth: Int, using generator: inout SystemRandomNumberGenerator) -> [String: PlistValue] {
        var out: [String: PlistValue] = [:]
        for _ in 0..<Int.random(in: 0...(depth == 0 ? 8 : 4), using: &generator) {
            out[randomString(using: &generator)] = randomValue(depth: depth + 1, using: &generator)
        }
        return out
    }

    private static func randomString(using generator: inout SystemRandomNumberGenerator) -> String {
        let pieces = ["a", "Z", " ", "&", "<", ">", "\"", "'", "]]>", "\n", "\t", "é", "🍎", "中", "&amp;", "<![CDATA[", "0"]
        return (0..<Int.random(in: 0...10, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined()
    }

    private static func randomValue(depth: Int, using generator: inout SystemRandomNumberGenerator) -> PlistValue {
        let kinds = depth > 5 ? 6 : 8
        switch Int.random(in: 0..<kinds, using: &generator) {
        case 0: return .string(randomString(using: &generator))
        case 1: return .integer([0, 1, -1, Int.max, Int.min, Int.random(in: -1_000_000...1_000_000, using: &generator)].randomElement(using: &generator)!)
        case 2: return .real([0.5, -2.25, 1e300, 3, Double(Int.random(in: -1000...1000, using: &generator)) / 8].randomElement(using: &generator)!)
        case 3: return .bool(Bool.random(using: &generator))
        case 4: return .data((0..<Int.random(in: 0...120, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) })
        case 5: return .date(Date(timeIntervalSinceReferenceDate: Double(Int.random(in: -3_000_000_000...3_000_000_000, using: &generator))))
        case 6: return .array((0..<Int.random(in: 0...4, using: &generator)).map { _ in randomValue(depth: depth + 1, using: &generator) })
        default: return .dictionary(randomDictionary(depth: depth, using: &generator))
        }
    }
}
