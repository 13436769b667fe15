import COrchardCrypto
import Foundation

/// A signing identity: a certificate, its private key and the chain to include with signatures.
public struct SigningIdentity: Sendable {
    public let certificate: Certificate
    public let key: PrivateKey
    public let chain: [Certificate]

    public init(certificate: Certificate, key: PrivateKey, chain: [Certificate] = []) throws {
        guard key.matches(certificate) else {
            throw CryptoError(operation: "building signing identity", detail: "key does not match \(certificate.subject)")
        }
        self.certificate = certificate
        self.key = key
        self.chain = chain
    }
}

/// The result of verifying a CMS SignedData: the signed content and who signed it.
public struct VerifiedContent: Sendable {
    public let content: [UInt8]
    public let signer: Certificate
}

/// CMS (PKCS#7) SignedData and EnvelopedData.
public enum CMS {
    /// SignedData with SHA-256, the signer certificate and chain included; attached unless `detached`.
    public static func sign(_ data: [UInt8], identity: SigningIdentity, detached: Bool = false) throws -> [UInt8] {
        try withPointers(identity.chain) { chain in
            try data.withUnsafeBufferPointer { d in
                try produceBuffer("CMS signing") {
                    orc_cms_sign(identity.certificate.pointer, identity.key.pointer, chain.baseAddress,
                                 Int32(chain.count), d.baseAddress, d.count, detached ? 1 : 0, $0, $1)
                }
            }
        }
    }

    /// Verifies a DER SignedData. Pass `detachedContent` for a detached signature (`Mdm-Signature`).
    /// With empty `roots` only the signature is checked, not who issued the signer's certificate:
    /// use that only where the caller then matches the signer against an identity it already knows.
    /// `checkValidityPeriods: false` accepts certificates outside their validity window (Apple's device
    /// identity leaves in MachineInfo may be expired); the chain and signature are still checked.
    public static func verify(
        _ signedData: [UInt8], detachedContent: [UInt8]? = nil, roots: [Certificate], at date: Date? = nil,
        checkValidityPeriods: Bool = true
    ) throws -> VerifiedContent {
        var content: UnsafeMutablePointer<UInt8>?
        var length = 0
        var signer: OpaquePointer?
        let ok = withPointers(roots) { rootPointers in
            signedData.withUnsafeBufferPointer { cms in
                withOptionalBuffer(detachedContent) { detached in
                    orc_cms_verify(cms.baseAddress, cms.count, detached?.baseAddress, detached?.count ?? 0,
                                   rootPointers.baseAddress, Int32(rootPointers.count),
                                   checkValidityPeriods ? Int64(date?.timeIntervalSince1970 ?? 0) : -1,
                                   &content, &length, &signer)
                }
            }
        }
        guard ok == 1, let signer else { throw CryptoError.openssl("CMS verification") }
        let bytes = takeBuffer(content, length)
        return VerifiedContent(content: bytes, signer: try Certificate(taking: signer))
    }

    /// EnvelopedData for one recipient (AES-256-CBC), as Apple uses for encrypted payloads.
    public static func encrypt(_ data: [UInt8], for recipient: Certificate) throws -> [UInt8] {
        try data.withUnsafeBufferPointer { d in
            try produceBuffer("CMS encryption") { orc_cms_encrypt(recipient.pointer, d.baseAddress, d.count, $0, $1) }
        }
    }

    /// Why `decrypt` failed: the bytes are no CMS message, or one that `certificate`'s key cannot open.
    public enum DecryptionFailure: Error, Sendable { case notCMS, notForThisKey(CryptoError) }

    /// Decrypts EnvelopedData addressed to `certificate` (for example an ABM server token).
    public static func decrypt(_ envelope: [UInt8], certificate: Certificate, key: PrivateKey) throws -> [UInt8] {
        var out: UnsafeMutablePointer<UInt8>?
        var length = 0
        let result = envelope.withUnsafeBufferPointer { e in
            orc_cms_decrypt(e.baseAddress, e.count, certificate.pointer, key.pointer, &out, &length)
        }
        switch result {
        case 1: return takeBuffer(out, length)
        case -1:
            _ = CryptoError.openssl("CMS parsing")  // clears OpenSSL's error queue
            throw DecryptionFailure.notCMS
        default: throw DecryptionFailure.notForThisKey(CryptoError.openssl("CMS decryption"))
        }
    }
}

private func withOptionalBuffer<T>(_ bytes: [UInt8]?, _ body: (UnsafeBufferPointer<UInt8>?) -> T) -> T {
    guard let bytes else { return body(nil) }
    // An empty array has no base address; a one-byte dummy keeps "detached, empty body" distinct from "attached".
    if bytes.isEmpty { return [UInt8(0)].withUnsafeBufferPointer { body(UnsafeBufferPointer(rebasing: $0[0..<0])) } }
    return bytes.withUnsafeBufferPointer { body($0) }
}
