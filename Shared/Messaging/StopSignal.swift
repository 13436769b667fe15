import NIOConcurrencyHelpers

/// A one-shot signal: `wait` returns once `fire` has been called, whichever comes first.
final class StopSignal: Sendable {
    private let state = NIOLockedValueBox<(fired: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func fire() {
        let waiters = state.withLockedValue { s -> [CheckedContinuation<Void, Never>] in
            guard !s.fired else { return [] }
            s.fired = true
            defer { s.waiters = [] }
            return s.waiters
        }
        waiters.forEach { $0.resume() }
    }

    var isFired: Bool { state.withLockedValue { $0.fired } }

    func wait() async {
        await withCheckedContinuation { continuation in
            let resumeNow = state.withLockedValue { s -> Bool in
                if s.fired { return true }
                s.waiters.append(continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }
}
