import Foundation
import HTTPTypes
import Hummingbird
import NIOConcurrencyHelpers
import OrchardCrypto
import OrchardStorage

/// Finds who sent a device request: the signer of `Mdm-Signature` (CMS detached over the exact body),
/// or the client certificate the TLS terminator forwarded, checked against the device CAs Orchard trusts.
/// Throws 401 when there is no identity or it does not verify.
final class DeviceIdentityVerifier: Sendable {
    private let database: Database
    private let extraRoots: [Certificate]
    private let clientCertificateHeader: HTTPField.Name?
    private let roots = NIOLockedValueBox<(certificates: [Certificate], loadedAt: Date)>(([], .distantPast))
    /// Certificates whose chain verified recently (fingerprint → until when), so that a device's every
    /// request costs one signature check instead of a chain build.
    private let verifiedChains = NIOLockedValueBox<[String: Date]>([:])
    /// The certificates devices send in `Mdm-Signature`, parsed once each.
    private let signerCertificates = CertificateCache()

    init(database: Database, extraRoots: [Certificate], clientCertificateHeader: String?) {
        self.database = database
        self.extraRoots = extraRoots
        self.clientCertificateHeader = clientCertificateHeader.flatMap { HTTPField.Name($0) }
    }

    /// Trusts a CA that issued identities handed out by this gateway.
    func trust(_ caDER: [UInt8]) async throws {
        // Every profile names the same CA: store it once, not on each enrollment.
        if roots.withLockedValue({ $0.certificates.contains { $0.der == caDER } }) { return }
        let ca = try Certificate(der: caDER)
        try await database.query("INSERT INTO trusted_device_cas (fingerprint, certificate) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                                 [.text(ca.sha256Fingerprint), .bytes(caDER)])
        roots.withLockedValue { state in
            if !state.certificates.contains(where: { $0.der == ca.der }) { state.certificates.append(ca) }
        }
    }

    func identify(_ request: Request, body: [UInt8]) async throws -> Certificate {
        if let signature = request.headers[.mdmSignature] {
            guard signature.utf8.count <= 32_768, let der = Data(base64Encoded: signature, options: .ignoreUnknownCharacters) else {
                throw refuse(.unauthorized, "Mdm-Signature is not base64")
            }
            // The signature over this exact body first (no trust decision yet), then who signed it.
            let signer: Certificate
            do { signer = try CMS.verifySignature(Array(der), detachedContent: body, cache: signerCertificates) } catch {
                throw refuse(.unauthorized, "Mdm-Signature does not verify over the body")
            }
            return try await trusted(signer)
        }
        if let name = clientCertificateHeader, let value = request.headers[name] {
            guard let pem = value.removingPercentEncoding, let cert = try? Certificate.parsePEM(Array(pem.utf8)).first else {
                throw refuse(.unauthorized, "client certificate header is not a PEM certificate")
            }
            return try await trusted(cert)
        }
        throw refuse(.unauthorized, "no device identity: Mdm-Signature header missing")
    }

    /// The certificate when it chains to a trusted device CA (and is valid now).
    private func trusted(_ cert: Certificate) async throws -> Certificate {
        let fingerprint = cert.sha256Fingerprint
        let now = Date()
        if let until = verifiedChains.withLockedValue({ $0[fingerprint] }), until > now { return cert }
        let result = try await verified { roots in try cert.verify(roots: roots); return cert }
        verifiedChains.withLockedValue { cache in
            if cache.count > 200_000 { cache.removeAll() }
            cache[fingerprint] = min(now.addingTimeInterval(300), cert.notAfter)
        }
        return result
    }

    /// Runs the check against the cached roots; on failure reloads them (at most once a second, so
    /// forged requests cannot hammer the database) and tries once more.
    private func verified(_ check: ([Certificate]) throws -> Certificate) async throws -> Certificate {
        let (cached, loadedAt) = roots.withLockedValue { ($0.certificates, $0.loadedAt) }
        if let cert = try? check(cached + extraRoots) { return cert }
        if Date().timeIntervalSince(loadedAt) > 1 {
            let rows = try await database.query("SELECT certificate FROM trusted_device_cas")
            let fresh = rows.compactMap { $0.bytes("certificate").flatMap { try? Certificate(der: $0) } }
            roots.withLockedValue { $0 = (fresh, Date()) }
            if let cert = try? check(fresh + extraRoots) { return cert }
        }
        throw refuse(.unauthorized, "device identity does not verify")
    }
}
