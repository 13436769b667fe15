import AppleProtocol
import COrchardCrypto
import Foundation
import OrchardCrypto

/// Microseconds per call of the cryptographic (and plist) operations on the enrollment paths, in this process:
/// tells which one to look at when a flow's CPU per request moves.
enum CryptoBenchmark {
    static func run() throws {
        let caKey = try PrivateKey.generateP256()
        let ca = try Certificate.issue(subject: "/CN=bench CA", key: caKey, issuer: nil, usage: .certificateAuthority,
                                       validity: Date().addingTimeInterval(-60)...Date().addingTimeInterval(86400))
        let body = Plist.xml(["MessageType": .string("TokenUpdate"), "UDID": .string("BENCH-0001"),
                              "Topic": .string("com.apple.mgmt.External.bench"), "Token": .data(Array(repeating: 7, count: 32)),
                              "PushMagic": .string(UUID().uuidString)])
        for (name, key) in [("P-256", try PrivateKey.generateP256()), ("RSA-2048", try PrivateKey.generateRSA())] {
            let cert = try Certificate.issue(subject: "/CN=BENCH-0001", key: key, issuer: (ca, caKey), usage: .clientIdentity,
                                             validity: Date().addingTimeInterval(-60)...Date().addingTimeInterval(86400))
            let identity = try SigningIdentity(certificate: cert, key: key)
            let signature = try CMS.sign(body, identity: identity, detached: true)
            measure("\(name) device: CMS detached sign (Mdm-Signature)") { _ = try CMS.sign(body, identity: identity, detached: true) }
            measure("\(name) device: CMS detached verify, no chain") {
                _ = try CMS.verify(signature, detachedContent: body, roots: [])
            }
            let cache = CertificateCache()
            measure("\(name) device: same, signer certificate cached") {
                _ = try CMS.verifySignature(signature, detachedContent: body, cache: cache)
            }
            measure("\(name) device: certificate chain verify") { try cert.verify(roots: [ca]) }
        }
        let der = ca.der
        measure("certificate parse (DER) + fields") { _ = try Certificate(der: der) }
        measure("SHA-256 fingerprint") { _ = ca.sha256Fingerprint }
        measure("P-256 key generation") { _ = try PrivateKey.generateP256() }
        let watchKey = try PrivateKey.generateP256()
        measure("certificate issue (P-256 CA)") {
            _ = try Certificate.issue(subject: "/CN=W/O=Orchard", key: watchKey, issuer: (ca, caKey), usage: .clientIdentity,
                                      validity: Date().addingTimeInterval(-60)...Date().addingTimeInterval(86400))
        }
        let watchCert = try Certificate.issue(subject: "/CN=W/O=Orchard", key: watchKey, issuer: (ca, caKey), usage: .clientIdentity,
                                              validity: Date().addingTimeInterval(-60)...Date().addingTimeInterval(86400))
        let identity = try SigningIdentity(certificate: watchCert, key: watchKey, chain: [ca])
        let p12 = try PKCS12.create(identity: identity, password: "secret", friendlyName: "bench")
        measure("PKCS#12 create") { _ = try PKCS12.create(identity: identity, password: "secret", friendlyName: "bench") }
        measure("PKCS#12 parse") { _ = try PKCS12.parse(p12, password: "secret") }
        let profile = [UInt8](repeating: 0x41, count: 6000)
        let signer = try SigningIdentity(certificate: ca, key: caKey)
        let signed = try CMS.sign(profile, identity: signer)
        measure("CMS attached sign, 6 kB profile (P-256)") { _ = try CMS.sign(profile, identity: signer) }
        measure("CMS attached verify with chain, 6 kB") { _ = try CMS.verify(signed, roots: [ca]) }
        measure("plist: DeviceInformation command built and written") { _ = MDMCommand.deviceInformation().plist }
        let values = try Plist.parseDictionary(body)
        measure("plist: check-in parsed") { _ = try Plist.parseDictionary(body) }
        measure("plist: check-in written") { _ = Plist.xml(values) }
        // Memory a cached device certificate takes (resident set growth over 5,000 distinct ones).
        let fleetCache = CertificateCache(capacity: 10_000)
        let ders = try (0..<5000).map { i in
            try Certificate.issue(subject: "/CN=DEVICE-\(i)", key: watchKey, issuer: (ca, caKey), usage: .clientIdentity,
                                  validity: Date().addingTimeInterval(-60)...Date().addingTimeInterval(86400)).der
        }
        let before = residentKilobytes()
        for der in ders { _ = try fleetCache.certificate(der: der[...]) }
        print(String(format: "  %-48@ %9.1f kB", "certificate cache: memory per entry" as NSString,
                     Double(residentKilobytes() - before) / Double(ders.count)))
        let box = try SecretBox(key: Array(repeating: 1, count: 32))
        measure("AES-GCM seal 32 bytes") { _ = try box.seal(Array(repeating: 2, count: 32), context: "unlock/x") }
        try compareWithSwiftCrypto(certificateDER: watchCert.der)
    }

    /// The primitives of the JWT, OAuth and token paths, all OpenSSL since swift-crypto left the build (docs/decisions.md:
    /// with both in one process, swift-crypto's SHA-256 measured 0.3 and 3.6 µs for 32 B and 6 kB, OpenSSL's 0.4 and 3.7).
    static func compareWithSwiftCrypto(certificateDER: [UInt8]) throws {
        print("  -- hashes, MACs and JWS signatures (OpenSSL) --")
        let small = [UInt8](repeating: 3, count: 32), page = [UInt8](repeating: 4, count: 6000)
        measure("SHA-256 32 B, OpenSSL (Digest.sha256)") { _ = OrchardCrypto.Digest.sha256(small) }
        measure("SHA-256 6 kB, OpenSSL (Digest.sha256)") { _ = OrchardCrypto.Digest.sha256(page) }
        let macKey = [UInt8](repeating: 9, count: 32)
        measure("HMAC-SHA256 32 B, OpenSSL") { _ = OrchardCrypto.Digest.hmacSHA256(key: macKey, data: small) }
        measure("HMAC-SHA1 200 B (OAuth 1.0a), OpenSSL") { _ = OrchardCrypto.Digest.hmacSHA1(key: macKey, data: page.prefix(200).map { $0 }) }
        measure("random 32 B, OpenSSL") { _ = try SecureRandom.bytes(32) }
        let input = Array("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0".utf8)
        let ec = try PrivateKey.generateP256(), rsa = try PrivateKey.generateRSA()
        let es256 = try ec.jwsSignature(input, ecdsa: true), rs256 = try rsa.jwsSignature(input, ecdsa: false)
        measure("ES256 sign (ABM API client assertion)") { _ = try ec.jwsSignature(input, ecdsa: true) }
        measure("RS256 sign (com.apple.maid token)") { _ = try rsa.jwsSignature(input, ecdsa: false) }
        let ecPublic = try PublicKey(spki: try ec.publicKeyDER()), rsaPublic = try PublicKey(spki: try rsa.publicKeyDER())
        measure("ES256 verify (OIDC id token)") { precondition(ecPublic.isValidJWSSignature(es256, for: input, ecdsa: true)) }
        measure("RS256 verify (OIDC id token)") { precondition(rsaPublic.isValidJWSSignature(rs256, for: input, ecdsa: false)) }
        measure("X.509 parse + fields, OpenSSL") { _ = try OrchardCrypto.Certificate(der: certificateDER) }
        measure("X.509 DER to OpenSSL object only (d2i)") {
            certificateDER.withUnsafeBufferPointer { orc_x509_free(orc_x509_from_der($0.baseAddress, $0.count)) }
        }
    }

    static func measure(_ name: String, _ body: () throws -> Void) {
        do {
            for _ in 0..<20 { try body() }
            var n = 0
            let started = DispatchTime.now()
            var elapsed = 0.0
            repeat {
                for _ in 0..<20 { try body() }
                n += 20
                elapsed = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e3
            } while elapsed < 300_000
            print(String(format: "  %-48@ %9.1f µs", name as NSString, elapsed / Double(n)))
        } catch {
            print("  \(name): failed: \(error)")
        }
    }
}

private func residentKilobytes() -> Int {
    let statm = (try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8)) ?? ""
    let pages = Int(statm.split(separator: " ").dropFirst().first ?? "0") ?? 0
    return pages * Int(sysconf(Int32(_SC_PAGESIZE))) / 1024
}
