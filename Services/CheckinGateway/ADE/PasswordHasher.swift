import Foundation
import OrchardCrypto
import OrchardServiceKit

/// The ADE sign-in page's password hashes (PBKDF2-SHA256, 310,000 iterations: ~136 ms of one core each). They run on
/// one background thread at the lowest priority, never on the threads that serve check-ins, and at most `maxWaiting`
/// wait: past that a sign-in is answered 503 with Retry-After at once (hardening issue 18, item 3).
struct PasswordHasher: Sendable {
    static let iterations = 310_000
    let worker: BackgroundCPU

    init(maxWaiting: Int = 16) {
        worker = BackgroundCPU(name: "password-hash", threads: 1, maxWaiting: maxWaiting)
    }

    /// A new salt and the password's hash.
    func hash(_ password: String) async throws -> (salt: [UInt8], hash: [UInt8]) {
        let salt = try SecureRandom.bytes(16)
        return (salt, try await worker.run { Digest.pbkdf2SHA256(password: password, salt: salt, iterations: Self.iterations) })
    }

    /// Whether `password` hashes to `hash`; the same work when there is no account (`hash` nil), so that the time taken
    /// does not tell which accounts exist.
    func verify(_ password: String, salt: [UInt8]?, hash: [UInt8]?, iterations: Int?) async throws -> Bool {
        let salt = salt ?? Array(repeating: 0, count: 16), rounds = iterations ?? Self.iterations
        let computed = try await worker.run { Digest.pbkdf2SHA256(password: password, salt: salt, iterations: rounds) }
        guard let hash else { return false }
        return Digest.constantTimeEquals(computed, hash)
    }
}
