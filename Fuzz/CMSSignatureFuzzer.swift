import Foundation

// libFuzzer entry point for what the gateway does with an `Mdm-Signature` before any trust decision, and with a
// MachineInfo's attached signature: `SignedDataSplit` (Orchard's own DER walk, which splits the certificates out of
// the SignedData), the parse of each certificate and the signature check against them (`CMS.verifySignature`, through
// a certificate cache as the gateway uses it), and `CMS.verify` without roots. Built by Deploy/fuzz.sh cms with
// `swiftc -sanitize=fuzzer,address` over Shared/Crypto (one module) and the C shim compiled with the same sanitizers.
// Anything but a value or an error (a crash, a hang, a sanitizer report, a certificate range outside the input, a
// split that disagrees with itself) is a finding.
private let cache = CertificateCache(capacity: 64)
private let body = Array("<?xml version=\"1.0\"?><plist><dict/></plist>".utf8)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCMS(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let split = SignedDataSplit(bytes) {
        for range in split.certificates where range.lowerBound < 0 || range.upperBound > bytes.count || range.isEmpty {
            fatalError("a certificate range \(range) outside a \(bytes.count)-byte input")
        }
        // What is left carries no certificates: splitting it again finds none.
        if SignedDataSplit(split.stripped) != nil { fatalError("the stripped SignedData still carries certificates") }
    }
    _ = try? CMS.verifySignature(bytes, detachedContent: body, cache: cache)
    _ = try? CMS.verify(bytes, roots: [], checkValidityPeriods: false)
    return 0
}
