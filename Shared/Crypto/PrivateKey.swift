import COrchardCrypto

/// A private key (RSA or EC) held by OpenSSL.
public final class PrivateKey: @unchecked Sendable {
    // Immutable after init; OpenSSL keys are safe to use from several threads for signing.
    let pointer: OpaquePointer

    init(taking pointer: OpaquePointer) { self.pointer = pointer }
    deinit { orc_key_free(pointer) }

    /// A new RSA key; 2048 bits costs about 170 ms on these machines, so keep it off request paths.
    public static func generateRSA(bits: Int = 2048) throws -> PrivateKey {
        guard let key = orc_key_generate_rsa(Int32(bits)) else { throw CryptoError.openssl("RSA key generation") }
        return PrivateKey(taking: key)
    }

    /// A new EC P-256 key.
    public static func generateP256() throws -> PrivateKey {
        guard let key = orc_key_generate_ec_p256() else { throw CryptoError.openssl("EC key generation") }
        return PrivateKey(taking: key)
    }

    /// Loads a PEM private key (PKCS#8, PKCS#1 or SEC1).
    public convenience init(pem: [UInt8]) throws {
        guard let key = pem.withUnsafeBufferPointer({ orc_key_from_pem($0.baseAddress, $0.count) }) else {
            throw CryptoError.openssl("reading PEM private key")
        }
        self.init(taking: key)
    }

    /// Loads a DER private key.
    public convenience init(der: [UInt8]) throws {
        guard let key = der.withUnsafeBufferPointer({ orc_key_from_der($0.baseAddress, $0.count) }) else {
            throw CryptoError.openssl("reading DER private key")
        }
        self.init(taking: key)
    }

    /// The key as unencrypted PKCS#8 PEM (encrypt it with `SecretBox` before storing it).
    public func pemRepresentation() throws -> [UInt8] {
        try produceBuffer("writing PEM private key") { orc_key_to_pem(pointer, $0, $1) }
    }

    /// The key as DER.
    public func derRepresentation() throws -> [UInt8] {
        try produceBuffer("writing DER private key") { orc_key_to_der(pointer, $0, $1) }
    }

    /// Whether this key is the private half of the certificate's public key.
    public func matches(_ certificate: Certificate) -> Bool {
        orc_key_matches_cert(pointer, certificate.pointer) == 1
    }
}
