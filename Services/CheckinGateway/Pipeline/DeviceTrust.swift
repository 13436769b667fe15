import Foundation
import NIOConcurrencyHelpers
import OrchardCrypto
import OrchardStorage

/// The device CAs Orchard trusts for device identities: the ones that issued identities in profiles this
/// gateway served (stored in `trusted_device_cas`), plus an external SCEP/ACME CA from the configuration.
/// Shared by every certificate-based authentication method.
final class DeviceTrust: Sendable {
    private let database: Database
    private let extraRoots: [Certificate]
    private let roots = NIOLockedValueBox<(certificates: [Certificate], loadedAt: Date)>(([], .distantPast))
    /// Certificates whose chain verified recently (fingerprint → until when), so that a device's every
    /// request costs one signature check instead of a chain build.
    /// Expired entries go once a minute: the cache holds the devices seen in the last five minutes, not every
    /// device since start (it grew by ~0.8 MB per 5,000 new devices up to its limit in the memory soak).
    private let verifiedChains = NIOLockedValueBox<(entries: [String: Date], prunedAt: Date)>(([:], Date()))
    static let verifiedChainLimit = 200_000

    init(database: Database, extraRoots: [Certificate]) {
        self.database = database
        self.extraRoots = extraRoots
    }

    /// Trusts a CA that issued identities handed out by this gateway.
    func trust(_ caDER: [UInt8]) async throws {
        // Every profile names the same CA: store it once, not on each enrollment.
        if roots.withLockedValue({ $0.certificates.contains { $0.der == caDER } }) { return }
        let ca = try Certificate(der: caDER)
        try await TrustedCAStore.add(database, fingerprint: ca.sha256Fingerprint, der: caDER)
        roots.withLockedValue { state in
            if !state.certificates.contains(where: { $0.der == ca.der }) { state.certificates.append(ca) }
        }
    }

    /// The certificate's SHA-256 fingerprint when it chains to a trusted device CA (and is valid now);
    /// 401 otherwise. The fingerprint is computed once here and becomes the request's credential.
    func trusted(_ cert: Certificate) async throws -> String {
        let fingerprint = cert.sha256Fingerprint
        let now = Date()
        if let until = verifiedChains.withLockedValue({ $0.entries[fingerprint] }), until > now { return fingerprint }
        _ = try await verified { roots in try cert.verify(roots: roots); return cert }
        verifiedChains.withLockedValue { cache in
            if cache.entries.count >= Self.verifiedChainLimit || now.timeIntervalSince(cache.prunedAt) > 60 {
                cache.entries = cache.entries.filter { $0.value > now }
                cache.prunedAt = now
            }
            if cache.entries.count >= Self.verifiedChainLimit { cache.entries.removeAll() }
            cache.entries[fingerprint] = min(now.addingTimeInterval(300), cert.notAfter)
        }
        return fingerprint
    }

    /// Runs the check against the cached roots; on failure reloads them (at most once a second, so
    /// forged requests cannot hammer the database) and tries once more.
    private func verified(_ check: ([Certificate]) throws -> Certificate) async throws -> Certificate {
        let (cached, loadedAt) = roots.withLockedValue { ($0.certificates, $0.loadedAt) }
        if let cert = try? check(cached + extraRoots) { return cert }
        if Date().timeIntervalSince(loadedAt) > 1 {
            let fresh = try await TrustedCAStore.all(database).compactMap { try? Certificate(der: $0) }
            roots.withLockedValue { $0 = (fresh, Date()) }
            if let cert = try? check(fresh + extraRoots) { return cert }
        }
        throw refuse(.unauthorized, "device identity does not verify")
    }
}
