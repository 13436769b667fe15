import COrchardCrypto

/// PKCS#12 bundles: how identities travel inside enrollment profiles and how admins upload push certificates.
public enum PKCS12 {
    /// Bundles an identity, protected by `password`.
    public static func create(identity: SigningIdentity, password: String, friendlyName: String) throws -> [UInt8] {
        try withPointers(identity.chain) { chain in
            try produceBuffer("creating PKCS#12") {
                orc_pkcs12_create(identity.certificate.pointer, identity.key.pointer, chain.baseAddress,
                                  Int32(chain.count), password, friendlyName, $0, $1)
            }
        }
    }

    /// Opens a PKCS#12 bundle into an identity.
    public static func parse(_ data: [UInt8], password: String) throws -> SigningIdentity {
        var cert: OpaquePointer?, key: OpaquePointer?
        var chain = [OpaquePointer?](repeating: nil, count: 16)
        var count: Int32 = 0
        let ok = data.withUnsafeBufferPointer { d in
            chain.withUnsafeMutableBufferPointer {
                orc_pkcs12_parse(d.baseAddress, d.count, password, &cert, &key, $0.baseAddress, 16, &count)
            }
        }
        guard ok == 1, let cert, let key else { throw CryptoError.openssl("reading PKCS#12") }
        let privateKey = PrivateKey(taking: key)
        let certificate = try Certificate(taking: cert)
        let extra = try chain.prefix(Int(count)).map { try Certificate(taking: $0!) }
        return try SigningIdentity(certificate: certificate, key: privateKey, chain: extra)
    }
}
