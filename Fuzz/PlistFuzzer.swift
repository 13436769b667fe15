import Foundation

// libFuzzer entry point for the device-facing property-list parsers: every check-in message, command
// result and MachineInfo goes through these before anything else reads it. Built by Deploy/fuzz.sh with
// `swiftc -sanitize=fuzzer` together with Shared/AppleProtocol and Shared/Core (one module), so the
// package build does not change. Anything but a value or a PlistError (a crash, a hang, a sanitizer
// report) is a finding, and so is an XML document Orchard's reader and Foundation's both read but differently.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPlist(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    // Orchard's XML reader against Foundation's: where both read a document, the same value (compared written
    // out, so that a NaN equals itself).
    if !bytes.starts(with: Array("bplist".utf8)), let mine = try? XMLPlistParser.parse(bytes, limits: .device),
       let theirs = try? Plist.foundationParseXML(bytes), Plist.xml(["v": mine]) != Plist.xml(["v": theirs]) {
        fatalError("XML readers disagree: Orchard \(mine), Foundation \(theirs)")
    }
    if let values = try? Plist.parseDictionary(bytes) {
        // What the gateway does with a parsed check-in's values: write them out again.
        _ = Plist.xml(values)
    }
    _ = try? CheckinMessage.parse(bytes)
    if let result = try? CommandResult.parse(bytes) {
        // What the gateway stores of a result is bounded by what it received (hardening issue 18, item 4).
        let stored = result.stored
        if stored.count > PlistLimits.device.maxWrittenBytes(inputBytes: bytes.count) {
            fatalError("stored \(stored.count) bytes for a \(bytes.count)-byte result")
        }
    }
    _ = try? MachineInfo.parse(bytes)
    return 0
}
