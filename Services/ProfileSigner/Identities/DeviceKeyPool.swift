import Foundation
import OrchardCrypto

/// Device identity keys made ahead of time. An RSA-2048 key costs about 170 ms of one core on these
/// machines; generating it while a device waits would cap enrollment at a few per second per core.
/// A background thread keeps `target` keys ready; when the pool is empty a key is made on that same
/// thread, never on Swift's cooperative pool.
actor DeviceKeyPool {
    enum KeyType: String, Sendable { case rsa2048, p256 }

    private let type: KeyType
    private let target: Int
    private var ready: [PrivateKey] = []
    private var refilling = false
    private var stopped = false
    private let queue = DispatchQueue(label: "orchard.device-key-pool", qos: .utility)

    init(type: KeyType, target: Int) {
        self.type = type
        self.target = target
    }

    var available: Int { ready.count }

    func take() async throws -> PrivateKey {
        defer { startRefill() }
        if let key = ready.popLast() { return key }
        return try await generate()
    }

    func startRefill() {
        guard !refilling, !stopped, ready.count < target else { return }
        refilling = true
        Task {
            while await self.needsMore() {
                if let key = try? await self.generate() { await self.add(key) } else { break }
            }
            await self.doneRefilling()
        }
    }

    private func needsMore() -> Bool { !stopped && ready.count < target }

    /// Stops refilling and returns once the key being made (if any) is done. Called before the process exits:
    /// exiting while OpenSSL generates a key on the pool's thread races OpenSSL's exit-time cleanup, which frees
    /// the locks that generation is using (a segfault or an abort on SIGTERM: 16 of 30 runs of
    /// Deploy/fault-signer-sigterm.sh before this).
    func stop() async {
        stopped = true
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in queue.async { done.resume() } }
    }
    private func add(_ key: PrivateKey) { ready.append(key) }
    private func doneRefilling() { refilling = false }

    private func generate() async throws -> PrivateKey {
        let type = self.type
        return try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result {
                    type == .rsa2048 ? try PrivateKey.generateRSA(bits: 2048) : try PrivateKey.generateP256()
                })
            }
        }
    }
}
