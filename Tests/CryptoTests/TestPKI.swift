import Foundation
import OrchardCrypto

/// A small PKI for tests: a root CA, an intermediate, and leaf identities under it.
struct TestPKI {
    let root: Certificate
    let rootKey: PrivateKey
    let intermediate: Certificate
    let intermediateKey: PrivateKey

    static let validity = Date().addingTimeInterval(-3600)...Date().addingTimeInterval(86400 * 30)

    init(name: String = "Orchard Test") throws {
        rootKey = try PrivateKey.generateP256()
        root = try Certificate.issue(subject: "/CN=\(name) Root CA/O=Orchard Tests", key: rootKey, issuer: nil,
                                     usage: .certificateAuthority, validity: Self.validity)
        intermediateKey = try PrivateKey.generateP256()
        intermediate = try Certificate.issue(subject: "/CN=\(name) Intermediate/O=Orchard Tests", key: intermediateKey,
                                             issuer: (root, rootKey), usage: .certificateAuthority, validity: Self.validity)
    }

    /// A leaf identity signed by the intermediate, with the intermediate as its chain.
    func identity(_ commonName: String, rsa: Bool = false) throws -> SigningIdentity {
        let key = rsa ? try PrivateKey.generateRSA(bits: 2048) : try PrivateKey.generateP256()
        let cert = try Certificate.issue(subject: "/CN=\(commonName)/O=Orchard Tests", key: key,
                                         issuer: (intermediate, intermediateKey), usage: .clientIdentity,
                                         validity: Self.validity)
        return try SigningIdentity(certificate: cert, key: key, chain: [intermediate])
    }
}
