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

    public static func string(_ value: String, into out: inout String) {
        out += "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}
