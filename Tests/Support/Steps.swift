import Foundation
import XCTest

/// One named step of an end-to-end test, as in the flow's sequence diagram. The name is printed when the
/// step starts, so the test log reads as the flow; an assertion that fails inside is reported with the
/// step's name after it, and an error thrown inside names the step it came from. (Linux XCTest has no
/// XCTContext.runActivity.)
public func step<T>(_ name: String, _ body: () async throws -> T) async throws -> T {
    _ = StepObserver.installOnce
    print("  ▸ \(name)")
    do {
        return try await StepObserver.$current.withValue(name) { try await body() }
    } catch let error as StepFailed {
        throw error
    } catch {
        throw StepFailed(step: name, error: error)
    }
}

public struct StepFailed: Error, CustomStringConvertible {
    public let step: String
    public let error: any Error
    public var description: String { "step \"\(step)\" failed: \(error)" }
}

private final class StepObserver: NSObject, XCTestObservation, @unchecked Sendable {
    @TaskLocal static var current: String?

    static let installOnce: Void = { XCTestObservationCenter.shared.addTestObserver(StepObserver()) }()

    func testCase(_ testCase: XCTestCase, didFailWithDescription description: String, inFile filePath: String?, atLine lineNumber: Int) {
        if let step = Self.current { print("    ✗ the failure above is in step \"\(step)\"") }
    }
}
