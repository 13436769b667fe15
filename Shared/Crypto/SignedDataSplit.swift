/// A CMS SignedData (DER) taken apart: the certificates it carries, and the same SignedData without them, so that a
/// verifier can parse each certificate through a cache (a device sends the same chain with every request) and give
/// OpenSSL only the signature to check. Definite-length DER only; anything else is nil (the caller parses it whole).
struct SignedDataSplit {
    /// The SignedData without its `certificates` field.
    let stripped: [UInt8]
    /// Each carried certificate's range in the input.
    let certificates: [Range<Int>]

    static let signedDataOID: [UInt8] = [0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02]

    /// One TLV header at `at`: its tag, where its content starts and its length; nil for a multi-byte tag, an indefinite
    /// or non-minimal length, or a length past `end`.
    static func header(_ d: [UInt8], at: Int, end: Int) -> (tag: UInt8, content: Int, length: Int)? {
        guard end - at >= 2 else { return nil }
        let tag = d[at]
        guard tag & 0x1f != 0x1f else { return nil }
        if d[at + 1] < 0x80 {
            let length = Int(d[at + 1])
            return length <= end - at - 2 ? (tag, at + 2, length) : nil
        }
        let n = Int(d[at + 1] & 0x7f)
        guard n > 0, n <= 4, end - at >= 2 + n else { return nil }
        var length = 0
        for i in 0..<n { length = length << 8 | Int(d[at + 2 + i]) }
        guard length >= 0x80, length <= end - at - 2 - n else { return nil }
        return (tag, at + 2 + n, length)
    }

    static func putHeader(_ tag: UInt8, _ length: Int) -> [UInt8] {
        if length < 0x80 { return [tag, UInt8(length)] }
        let n = length > 0xffffff ? 4 : length > 0xffff ? 3 : length > 0xff ? 2 : 1
        return [tag, 0x80 | UInt8(n)] + (0..<n).map { UInt8(truncatingIfNeeded: length >> (8 * (n - 1 - $0))) }
    }

    /// nil unless `der` is exactly ContentInfo { signedData, [0] SignedData } carrying 1 to `maxCertificates` certificates.
    init?(_ der: [UInt8], maxCertificates: Int = 8) {
        let end = der.count
        // ContentInfo SEQUENCE { OID signedData, [0] EXPLICIT SignedData } spanning the whole input.
        guard let info = Self.header(der, at: 0, end: end), info.tag == 0x30, info.content + info.length == end else { return nil }
        var p = info.content
        guard end - p >= Self.signedDataOID.count, der[p..<(p + Self.signedDataOID.count)].elementsEqual(Self.signedDataOID) else { return nil }
        p += Self.signedDataOID.count
        guard let explicit = Self.header(der, at: p, end: end), explicit.tag == 0xa0, explicit.content + explicit.length == end,
              let signedData = Self.header(der, at: explicit.content, end: end), signedData.tag == 0x30,
              signedData.content + signedData.length == end else { return nil }
        // version, digestAlgorithms, encapContentInfo
        let fields = signedData.content
        p = fields
        for expected: UInt8 in [0x02, 0x31, 0x30] {
            guard let field = Self.header(der, at: p, end: end), field.tag == expected else { return nil }
            p = field.content + field.length
        }
        let head = der[fields..<p]
        guard let certs = Self.header(der, at: p, end: end), certs.tag == 0xa0 else { return nil }  // no certificates
        let certsEnd = certs.content + certs.length
        var ranges: [Range<Int>] = []
        var c = certs.content
        while c < certsEnd {
            guard ranges.count < maxCertificates, let cert = Self.header(der, at: c, end: certsEnd), cert.tag == 0x30 else { return nil }
            ranges.append(c..<(cert.content + cert.length))
            c = cert.content + cert.length
        }
        guard !ranges.isEmpty else { return nil }
        let rest = der[certsEnd..<end]
        // ContentInfo { oid, [0] { SEQUENCE { head, rest } } }
        let signedLength = head.count + rest.count
        let signedHeader = Self.putHeader(0x30, signedLength)
        let explicitHeader = Self.putHeader(0xa0, signedHeader.count + signedLength)
        let infoHeader = Self.putHeader(0x30, Self.signedDataOID.count + explicitHeader.count + signedHeader.count + signedLength)
        var out: [UInt8] = []
        out.reserveCapacity(infoHeader.count + Self.signedDataOID.count + explicitHeader.count + signedHeader.count + signedLength)
        out += infoHeader
        out += Self.signedDataOID
        out += explicitHeader
        out += signedHeader
        out += head
        out += rest
        stripped = out
        certificates = ranges
    }
}
