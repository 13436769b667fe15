import Foundation
@_exported import OrchardSimulator
import XCTest

/// Settings the test scripts export (Deploy/test.sh).
public enum TestEnvironment {
    /// The variable's value; fails the test with how to run it when the variable is missing.
    public static func require(_ name: String) throws -> String {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else {
            XCTFail("\(name) is not set: run the tests with ./Deploy/test.sh")
            throw XCTSkip("no test stack")
        }
        return value
    }
}

/// XCTUnwrap without an autoclosure, so its argument may `await`.
public func unwrap<T>(_ value: T?, _ message: String = "", file: StaticString = #filePath, line: UInt = #line) throws -> T {
    guard let value else {
        throw NSError(domain: "test", code: 3, userInfo: [NSLocalizedDescriptionKey: "unexpected nil \(message) at \(file):\(line)"])
    }
    return value
}
