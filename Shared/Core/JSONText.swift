/// JSON text for a flat string map (message headers), written directly: `JSONEncoder` costs several
/// microseconds for what is a few string copies.
public enum JSONText {
    /// A JSON object with the keys sorted; strings escaped per RFC 8259.
    public static func object(_ map: [String: String]) -> String {
        var out = "{"
        for (i, key) in map.keys.sorted().enumerated() {
            if i > 0 { out += "," }
            string(key, into: &out)
            out += ":"
            string(map[key]!, into: &out)
        }
        return out + "}"
    }

    /// `value` as a JSON string: `"`, `\` and the control characters escaped, everything else as it is.
    /// Works on UTF-8 bytes: the bytes that need escaping are all ASCII, and no byte of a multi-byte
    /// sequence is below 0x80, so a string without them (nearly every one) is appended in one copy
    /// (escaping scalar by scalar was ~3% of the gateway's CPU per check-in, perf).
    public static func string(_ value: String, into out: inout String) {
        let utf8 = value.utf8
        guard utf8.contains(where: needsEscape) else {
            out += "\""
            out += value
            out += "\""
            return
        }
        var bytes: [UInt8] = [0x22]
        bytes.reserveCapacity(utf8.count + 16)
        for byte in utf8 {
            guard needsEscape(byte) else { bytes.append(byte); continue }
            switch byte {
            case 0x22: bytes += [0x5C, 0x22]
            case 0x5C: bytes += [0x5C, 0x5C]
            case 0x0A: bytes += [0x5C, 0x6E]
            case 0x0D: bytes += [0x5C, 0x72]
            case 0x09: bytes += [0x5C, 0x74]
            default: bytes += [0x5C, 0x75, 0x30, 0x30, hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0x0F)]]
            }
        }
        bytes.append(0x22)
        out += String(decoding: bytes, as: UTF8.self)
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    @inline(__always)
    private static func needsEscape(_ byte: UInt8) -> Bool { byte < 0x20 || byte == 0x22 || byte == 0x5C }
}
