import COrchardCrypto
import Foundation

/// A public key (RSA or EC) held by OpenSSL: what a JWT's signature is checked with.
public final class PublicKey: @unchecked Sendable {
    let pointer: OpaquePointer

    init(taking pointer: OpaquePointer) { self.pointer = pointer }
    deinit { orc_key_free(pointer) }

    /// From its DER SubjectPublicKeyInfo.
    public convenience init(spki der: [UInt8]) throws {
        guard let key = der.withUnsafeBufferPointer({ orc_public_key_from_der($0.baseAddress, $0.count) }) else {
            throw CryptoError.openssl("reading a public key")
        }
        self.init(taking: key)
    }

    /// An RSA key from a JWK's `n` and `e` (big-endian bytes).
    public convenience init(rsaModulus n: [UInt8], exponent e: [UInt8]) throws {
        guard (128...1024).contains(n.count), (1...8).contains(e.count) else { throw CryptoError.openssl("RSA key size") }
        let rsaPublicKey = DER.sequence(DER.integer(n) + DER.integer(e))
        let algorithm = DER.sequence(DER.oid([0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01]) + [0x05, 0x00])
        try self.init(spki: DER.sequence(algorithm + DER.bitString(rsaPublicKey)))
    }

    /// A P-256 key from a JWK's `x` and `y` (32 bytes each).
    public convenience init(p256X x: [UInt8], y: [UInt8]) throws {
        guard x.count == 32, y.count == 32 else { throw CryptoError.openssl("P-256 coordinates") }
        let algorithm = DER.sequence(DER.oid([0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01])            // id-ecPublicKey
                                     + DER.oid([0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07])) // prime256v1
        try self.init(spki: DER.sequence(algorithm + DER.bitString([0x04] + x + y)))
    }

    /// Whether `signature` is this key's SHA-256 signature of `data`: RS256 (PKCS#1 v1.5), or ES256 with the signature as
    /// JWS's r||s (64 bytes).
    public func isValidJWSSignature(_ signature: [UInt8], for data: [UInt8], ecdsa: Bool) -> Bool {
        var der = signature
        if ecdsa {
            guard signature.count == 64, let converted = try? produceBuffer("ECDSA signature", { orc_ecdsa_raw_to_der(signature, 32, $0, $1) })
            else { return false }
            der = converted
        }
        return orc_verify_sha256(pointer, data, data.count, der, der.count) == 1
    }
}

extension PrivateKey {
    /// Whether this is an EC key on P-256 (ES256's curve; the only one with 256 bits among OpenSSL's EC keys Orchard reads).
    public var isP256: Bool {
        var bits: Int32 = 0
        return orc_key_kind(pointer, &bits) == 408 /* EVP_PKEY_EC */ && bits == 256
    }

    /// The public half, as DER SubjectPublicKeyInfo.
    public func publicKeyDER() throws -> [UInt8] {
        try produceBuffer("writing a public key") { orc_public_key_to_der(pointer, $0, $1) }
    }

    public var isRSA: Bool {
        var bits: Int32 = 0
        return orc_key_kind(pointer, &bits) == 6 /* EVP_PKEY_RSA */
    }

    /// The SHA-256 signature of `data` as a JWS carries it: RS256 for an RSA key, ES256 (r||s, 64 bytes) for a P-256 key.
    public func jwsSignature(_ data: [UInt8], ecdsa: Bool) throws -> [UInt8] {
        let signature = try produceBuffer("signing") { orc_sign_sha256(pointer, data, data.count, $0, $1) }
        guard ecdsa else { return signature }
        var raw = [UInt8](repeating: 0, count: 64)
        guard orc_ecdsa_der_to_raw(signature, signature.count, &raw, 32) == 1 else { throw CryptoError.openssl("ECDSA signature") }
        return raw
    }
}

/// The few DER encodings a SubjectPublicKeyInfo needs.
enum DER {
    static func length(_ n: Int) -> [UInt8] {
        if n < 0x80 { return [UInt8(n)] }
        var bytes: [UInt8] = []
        var v = n
        while v > 0 { bytes.insert(UInt8(v & 0xFF), at: 0); v >>= 8 }
        return [0x80 | UInt8(bytes.count)] + bytes
    }
    static func tlv(_ tag: UInt8, _ content: [UInt8]) -> [UInt8] { [tag] + length(content.count) + content }
    static func sequence(_ content: [UInt8]) -> [UInt8] { tlv(0x30, content) }
    static func oid(_ encoded: [UInt8]) -> [UInt8] { tlv(0x06, encoded) }
    static func bitString(_ content: [UInt8]) -> [UInt8] { tlv(0x03, [0x00] + content) }
    /// An unsigned INTEGER: leading zeros dropped, a zero added when the top bit is set.
    static func integer(_ bytes: [UInt8]) -> [UInt8] {
        var v = Array(bytes.drop(while: { $0 == 0 }))
        if v.isEmpty { v = [0] }
        if v[0] & 0x80 != 0 { v.insert(0, at: 0) }
        return tlv(0x02, v)
    }
}
