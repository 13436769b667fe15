import AppleProtocol
import COrchardCrypto
import Crypto
import Foundation
import OrchardCrypto
import X509

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

    /// The same primitives through OpenSSL (Orchard's C shim) and through swift-crypto / swift-certificates,
    /// side by side in one process: the numbers behind docs/decisions.md's choice of library per primitive.
    static func compareWithSwiftCrypto(certificateDER: [UInt8]) throws {
        print("  -- OpenSSL shim vs swift-crypto / swift-certificates --")
        let small = [UInt8](repeating: 3, count: 32), page = [UInt8](repeating: 4, count: 6000)
        // SHA-256 moved to swift-crypto (OpenSSL's EVP_Digest measured 0.4 and 3.7 µs here, swift-crypto 0.3 and 3.6).
        measure("SHA-256 32 B, swift-crypto (Digest.sha256)") { _ = OrchardCrypto.Digest.sha256(small) }
        measure("SHA-256 6 kB, swift-crypto (Digest.sha256)") { _ = OrchardCrypto.Digest.sha256(page) }
        let macKey = [UInt8](repeating: 9, count: 32)
        measure("HMAC-SHA256 32 B, OpenSSL") { _ = OrchardCrypto.Digest.hmacSHA256(key: macKey, data: small) }
        let symmetric = SymmetricKey(data: macKey)
        measure("HMAC-SHA256 32 B, swift-crypto") {
            _ = Array(HMAC<SHA256>.authenticationCode(for: small, using: symmetric))
        }
        measure("random 32 B, OpenSSL") { _ = try SecureRandom.bytes(32) }
        measure("random 32 B, swift-crypto") { _ = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) } }
        let box = try SecretBox(key: macKey)
        let aad = Array("unlock/x".utf8)
        measure("AES-256-GCM seal 32 B, OpenSSL") { _ = try box.seal(small, context: "unlock/x") }
        measure("AES-256-GCM seal 32 B, swift-crypto") {
            _ = Array(try AES.GCM.seal(small, using: symmetric, authenticating: aad).combined!)
        }
        let sealed = try box.seal(small, context: "unlock/x")
        measure("AES-256-GCM open 32 B, OpenSSL") { _ = try box.open(sealed, context: "unlock/x") }
        measure("AES-256-GCM open 32 B, swift-crypto") {
            _ = Array(try AES.GCM.open(AES.GCM.SealedBox(combined: sealed), using: symmetric, authenticating: aad))
        }
        measure("X.509 parse + fields, OpenSSL") { _ = try OrchardCrypto.Certificate(der: certificateDER) }
        measure("X.509 DER to OpenSSL object only (d2i)") {
            certificateDER.withUnsafeBufferPointer { orc_x509_free(orc_x509_from_der($0.baseAddress, $0.count)) }
        }
        measure("X.509 parse + fields, swift-certificates") {
            let parsed = try X509.Certificate(derEncoded: certificateDER)
            _ = (parsed.subject.description, parsed.issuer.description, parsed.serialNumber.description,
                 parsed.notValidBefore, parsed.notValidAfter, try parsed.extensions.basicConstraints)
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
