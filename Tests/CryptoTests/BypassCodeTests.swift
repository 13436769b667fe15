import OrchardCrypto
import XCTest

final class BypassCodeTests: XCTestCase {
    func testACodeReadsBackAndHasApplesShape() throws {
        for _ in 0..<50 {
            let code = try BypassCode.generate()
            XCTAssertEqual(code.string.count, 31)
            XCTAssertEqual(code.string.split(separator: "-").map(\.count), [5, 5, 4, 4, 4, 4])
            XCTAssertEqual(BypassCode(string: code.string), code)
            XCTAssertEqual(BypassCode(string: code.string.lowercased().replacingOccurrences(of: "-", with: "")), code)
            XCTAssertEqual(code.escrowKey.count, 64)
        }
        let zero = try BypassCode(bytes: [UInt8](repeating: 0, count: 16))
        XCTAssertEqual(zero.string, "00000-00000-0000-0000-0000-0000")
        XCTAssertNil(BypassCode(string: "0000-0000"), "too short")
        XCTAssertNil(BypassCode(string: "00000-00000-0000-0000-0000-000B"), "the alphabet has no B")
        XCTAssertNil(BypassCode(string: "00000-00000-0000-0000-0000-0001"), "the last character's padding bits must be zero")
    }
}
