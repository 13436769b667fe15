import COrchardCrypto
import Foundation
import Synchronization

/// Parsed certificates by the SHA-256 of their DER bytes. OpenSSL 3.0 spends about 90 µs decoding a
/// certificate's public key; a device sends the same certificate in every `Mdm-Signature`, so the
/// gateway parses it once. Identical bytes always parse to the same certificate, so a hit is safe.
public final class CertificateCache: Sendable {
    private let entries = Mutex<[[UInt8]: Certificate]>([:])
    private let capacity: Int

    /// A parsed certificate with its OpenSSL structures takes about 6 kB (`orchard-bench crypto`): the
    /// default holds about 60 MB at most. A device's requests come in bursts (a command session),
    /// which is what the cache serves; a fleet larger than the capacity still hits within each burst.
    public init(capacity: Int = 10_000) { self.capacity = max(1, capacity) }

    public func certificate(der: ArraySlice<UInt8>) throws -> Certificate {
        let key = Digest.sha256(Array(der))
        if let hit = entries.withLock({ $0[key] }) { return hit }
        let parsed = try Certificate(der: Array(der))
        entries.withLock { cache in
            // At the limit a tenth goes, in the dictionary's (hash, so arbitrary) order.
            if cache.count >= capacity {
                for _ in 0..<max(1, capacity / 10) { cache.remove(at: cache.startIndex) }
            }
            cache[key] = parsed
        }
        return parsed
    }

    public var count: Int { entries.withLock { $0.count } }
}

extension CMS {
    /// Verifies a detached signature (such as `Mdm-Signature`) over `content` and returns the signer's
    /// certificate, parsing the certificates the signature carries through `cache`. Only the signature
    /// is checked: the caller decides whether it trusts the signer. Input that is not plain DER falls
    /// back to a full parse.
    public static func verifySignature(_ signedData: [UInt8], detachedContent content: [UInt8],
                                       cache: CertificateCache) throws -> Certificate {
        guard let split = SignedDataSplit(signedData) else { return try verify(signedData, detachedContent: content, roots: []).signer }
        let bytes = split.stripped
        let candidates = try split.certificates.map { try cache.certificate(der: signedData[$0]) }
        var signer: OpaquePointer?
        let ok = withPointers(candidates) { pointers in
            bytes.withUnsafeBufferPointer { b in
                content.withUnsafeBufferPointer { c in
                    orc_cms_verify_with_signers(b.baseAddress, b.count, c.baseAddress, c.count, pointers.baseAddress,
                                                Int32(pointers.count), &signer)
                }
            }
        }
        guard ok == 1, let signer else { throw CryptoError.openssl("CMS verification") }
        defer { orc_x509_free(signer) }
        guard let match = candidates.first(where: { $0.pointer == signer }) else {
            throw CryptoError(operation: "CMS verification", detail: "signer is not among the carried certificates")
        }
        return match
    }
}
