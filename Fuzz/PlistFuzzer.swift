import Foundation

// libFuzzer entry point for the device-facing property-list parsers: every check-in message, command
// result and MachineInfo goes through these before anything else reads it. Built by Deploy/fuzz.sh with
// `swiftc -sanitize=fuzzer` together with Shared/AppleProtocol and Shared/Core (one module), so the
// package build does not change. Anything but a value or a PlistError (a crash, a hang, a sanitizer
// report) is a finding.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPlist(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let values = try? Plist.parseDictionary(bytes) {
        // What the gateway does with a parsed result: store it re-serialised.
        _ = Plist.xml(values)
    }
    _ = try? CheckinMessage.parse(bytes)
    _ = try? CommandResult.parse(bytes)
    _ = try? MachineInfo.parse(bytes)
    return 0
}
