import AppleProtocol
import Foundation
import OrchardCrypto

/// Runs `openssl cms -verify` on a signed profile against `ca`; returns the verified plist, or nil when
/// openssl rejects the signature.
public func opensslVerifiedProfile(_ signed: [UInt8], ca: Certificate) throws -> [String: PlistValue]? {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("orchard-openssl-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    try Data(signed).write(to: dir.appendingPathComponent("profile.der"))
    try Data(try ca.pemRepresentation()).write(to: dir.appendingPathComponent("ca.pem"))
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
    process.arguments = ["cms", "-verify", "-inform", "DER", "-in", "profile.der", "-CAfile", "ca.pem", "-purpose", "any",
                         "-out", "profile.plist"]
    process.currentDirectoryURL = dir
    process.standardError = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { return nil }
    return try Plist.parseDictionary(Array(try Data(contentsOf: dir.appendingPathComponent("profile.plist"))))
}
