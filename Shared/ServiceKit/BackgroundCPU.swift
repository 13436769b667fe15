import Foundation
import Hummingbird
import NIOConcurrencyHelpers
#if canImport(Glibc)
import Glibc
#endif

/// CPU-heavy work that must never take the CPU from request handling (a password hash costs ~136 ms of one core): it
/// runs on `threads` threads of its own in Linux's SCHED_IDLE class (on a busy machine it gets only what the rest
/// leaves), never on the async executor's few threads, with at most `maxWaiting` jobs queued. Past that the job
/// is refused at once (`Busy`: 503 with Retry-After), so a flood of requests cannot pile up work or memory.
public final class BackgroundCPU: @unchecked Sendable {
    /// The queue is full: the client should come back later.
    public struct Busy: Error, CustomStringConvertible {
        public var description: String { "busy: too many password checks waiting; retry shortly" }
    }

    /// SCHED_IDLE of <bits/sched.h>, which Glibc's module map does not export (it is a GNU extension).
    private static let schedIdle: Int32 = 5

    private let lock = NIOLock()
    private var jobs: [() -> Void] = []
    private let ready = DispatchSemaphore(value: 0)
    public let maxWaiting: Int

    public init(name: String, threads: Int = 1, maxWaiting: Int) {
        self.maxWaiting = maxWaiting
        for index in 0..<max(1, threads) {
            let thread = Thread { [self] in
                #if canImport(Glibc)
                // SCHED_IDLE (per thread on Linux; 0 names the calling one): any other task that wakes on this core
                // preempts it at once, whatever its process. A nice value would not do: with autogroups it only ranks
                // threads of this process, and the process as a whole would still take its full share from PostgreSQL
                // and the broker, which the check-ins wait on (measured: Idle p50 91 ms under the attack at nice 19).
                var parameters = sched_param(sched_priority: 0)
                _ = sched_setscheduler(0, Self.schedIdle, &parameters)
                #endif
                while true {
                    ready.wait()
                    let job = lock.withLock { jobs.removeFirst() }
                    job()
                }
            }
            thread.name = "\(name)-\(index)"
            thread.start()
        }
    }

    /// Jobs queued and not started yet.
    public var waiting: Int { lock.withLock { jobs.count } }

    /// Runs `work` on a background thread; throws `Busy` at once when `maxWaiting` jobs are already queued.
    public func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let accepted = lock.withLock { () -> Bool in
                guard jobs.count < maxWaiting else { return false }
                jobs.append { continuation.resume(returning: work()) }
                return true
            }
            if accepted { ready.signal() } else { continuation.resume(throwing: Busy()) }
        }
    }
}
