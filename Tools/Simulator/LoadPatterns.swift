import Foundation
import NIOConcurrencyHelpers

/// The two ways the enrollment benchmarks load the services.
public enum LoadPatterns {
    /// Closed loop: `concurrency` workers, each taking the next index of `range` as soon as its last one answered.
    /// Returns the seconds it took.
    public static func closedLoop(_ range: Range<Int>, concurrency: Int,
                           _ body: @escaping @Sendable (Int) async throws -> Void) async throws -> Double {
        let next = NIOLockedValueBox(range.lowerBound)
        let started = DispatchTime.now()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    while true {
                        let i = next.withLockedValue { n -> Int in defer { n += 1 }; return n }
                        guard i < range.upperBound else { return }
                        try await body(i)
                    }
                }
            }
            try await group.waitForAll()
        }
        return Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
    }

    /// Paced: one index of `range` started every 1/`rate` s, whatever the answers take.
    public static func paced(_ range: Range<Int>, rate: Double, _ body: @escaping @Sendable (Int) async throws -> Void) async throws {
        let started = DispatchTime.now()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in range {
                let due = started.uptimeNanoseconds + UInt64(Double(i - range.lowerBound) / rate * 1e9)
                let now = DispatchTime.now().uptimeNanoseconds
                if due > now { try await Task.sleep(nanoseconds: due - now) }
                group.addTask { try await body(i) }
            }
            try await group.waitForAll()
        }
    }
}
