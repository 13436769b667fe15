import COrchardCrypto
import Foundation

/// An X.509 certificate held by OpenSSL, with its commonly needed fields parsed once.
public final class Certificate: @unchecked Sendable {
    // Immutable after init; X509 objects are reference counted and safe to share read-only.
    let pointer: OpaquePointer
    public let subject: String
    public let issuer: String
    public let serialNumberHex: String
    public let notBefore: Date
    public let notAfter: Date
    public let isCA: Bool
    public let der: [UInt8]

    init(taking pointer: OpaquePointer) throws {
        self.pointer = pointer
        var subject: UnsafeMutablePointer<CChar>?, issuer: UnsafeMutablePointer<CChar>?
        var serial: UnsafeMutablePointer<CChar>?
        var notBefore: Int64 = 0, notAfter: Int64 = 0, isCA: Int32 = 0
        guard orc_x509_info(pointer, &subject, &issuer, &serial, &notBefore, &notAfter, &isCA) == 1,
              let s = takeString(subject), let i = takeString(issuer), let n = takeString(serial)
        else {
            orc_x509_free(pointer)
            throw CryptoError.openssl("reading certificate fields")
        }
        var out: UnsafeMutablePointer<UInt8>?
        var length = 0
        guard orc_x509_to_der(pointer, &out, &length) == 1 else {
            orc_x509_free(pointer)
            throw CryptoError.openssl("encoding certificate")
        }
        self.der = takeBuffer(out, length)
        self.subject = s
        self.issuer = i
        self.serialNumberHex = n
        self.notBefore = Date(timeIntervalSince1970: TimeInterval(notBefore))
        self.notAfter = Date(timeIntervalSince1970: TimeInterval(notAfter))
        self.isCA = isCA == 1
    }

    deinit { orc_x509_free(pointer) }

    /// Parses one DER certificate; trailing bytes are an error.
    public convenience init(der: [UInt8]) throws {
        guard let cert = der.withUnsafeBufferPointer({ orc_x509_from_der($0.baseAddress, $0.count) }) else {
            throw CryptoError.openssl("reading DER certificate")
        }
        try self.init(taking: cert)
    }

    /// Parses every certificate in a PEM bundle (at most 64).
    public static func parsePEM(_ pem: [UInt8]) throws -> [Certificate] {
        var slots = [OpaquePointer?](repeating: nil, count: 64)
        let count = pem.withUnsafeBufferPointer { buffer in
            slots.withUnsafeMutableBufferPointer { orc_x509_from_pem(buffer.baseAddress, buffer.count, $0.baseAddress, 64) }
        }
        guard count > 0 else { throw CryptoError(operation: "reading PEM certificates", detail: "no certificate found") }
        return try slots.prefix(Int(count)).map { try Certificate(taking: $0!) }
    }

    /// The certificate in PEM form.
    public func pemRepresentation() throws -> [UInt8] {
        try produceBuffer("writing PEM certificate") { orc_x509_to_pem(pointer, $0, $1) }
    }

    /// SHA-256 of the DER encoding, lower-case hex: a stable identifier for the certificate.
    public var sha256Fingerprint: String { Digest.sha256(der).hexString }

    /// The first value of a subject attribute, such as "CN".
    public func subjectValue(_ shortName: String) -> String? {
        takeString(orc_x509_subject_entry(pointer, shortName))
    }

    /// Checks this certificate's chain to one of `roots`, with `intermediates` as untrusted helpers.
    public func verify(roots: [Certificate], intermediates: [Certificate] = [], at date: Date? = nil) throws {
        let ok = withPointers(intermediates) { inter in
            withPointers(roots) { root in
                orc_x509_verify(pointer, inter.baseAddress, Int32(inter.count), root.baseAddress, Int32(root.count),
                                Int64(date?.timeIntervalSince1970 ?? 0))
            }
        }
        guard ok == 1 else { throw CryptoError.openssl("verifying certificate \(subject)") }
    }

    /// What a certificate is for.
    public enum Usage: Int32, Sendable {
        case clientIdentity = 0, certificateAuthority = 1, tlsServer = 2
    }

    /// Issues a certificate for `key`, signed by `issuer` (self-signed when nil).
    public static func issue(
        subject: String, key: PrivateKey, issuer: (certificate: Certificate, key: PrivateKey)?,
        usage: Usage, validity: ClosedRange<Date>, dnsName: String? = nil
    ) throws -> Certificate {
        var serial = try SecureRandom.bytes(16)
        serial[0] &= 0x7F
        let created = serial.withUnsafeBufferPointer { s in
            orc_x509_create(key.pointer, subject, issuer?.certificate.pointer, issuer?.key.pointer,
                            s.baseAddress, s.count,
                            Int64(validity.lowerBound.timeIntervalSince1970),
                            Int64(validity.upperBound.timeIntervalSince1970), usage.rawValue, dnsName)
        }
        guard let created else { throw CryptoError.openssl("issuing certificate \(subject)") }
        return try Certificate(taking: created)
    }
}

/// Runs body with a C array of the certificates' pointers (borrowed, not retained).
func withPointers<T>(_ certs: [Certificate], _ body: (UnsafeMutableBufferPointer<OpaquePointer?>) throws -> T) rethrows -> T {
    var pointers: [OpaquePointer?] = certs.map { $0.pointer }
    return try withExtendedLifetime(certs) { try pointers.withUnsafeMutableBufferPointer { try body($0) } }
}
