import Foundation

/// Writes XML property lists straight from `PlistValue`, in the layout Foundation uses (tabs, sorted
/// keys), without going through Foundation objects and `PropertyListSerialization`: commands, results
/// and profiles are written on every device request, and the detour cost several times this.
enum PlistXMLWriter {
    static let header = Array("""
        <?xml version="1.0" encoding="UTF-8"?>
        <!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
        <plist version="1.0">

        """.utf8)

    static func document(_ root: PlistValue) -> [UInt8] {
        var out = header
        out.reserveCapacity(1024)
        write(root, depth: 0, into: &out)
        out += Array("</plist>\n".utf8)
        return out
    }

    private static func indent(_ depth: Int, _ out: inout [UInt8]) {
        for _ in 0..<depth { out.append(0x09) }
    }

    private static func element(_ name: String, _ text: String, escaping: Bool, _ out: inout [UInt8]) {
        out.append(0x3C); out += name.utf8; out.append(0x3E)
        if escaping { escape(text, &out) } else { out += text.utf8 }
        out += [0x3C, 0x2F]; out += name.utf8; out += [0x3E, 0x0A]
    }

    /// &, < and > as entities; everything else as UTF-8, as Foundation writes it.
    private static func escape(_ text: String, _ out: inout [UInt8]) {
        for byte in text.utf8 {
            switch byte {
            case 0x26: out += Array("&amp;".utf8)
            case 0x3C: out += Array("&lt;".utf8)
            case 0x3E: out += Array("&gt;".utf8)
            default: out.append(byte)
            }
        }
    }

    private static func write(_ value: PlistValue, depth: Int, into out: inout [UInt8]) {
        indent(depth, &out)
        switch value {
        case .string(let s): element("string", s, escaping: true, &out)
        case .integer(let i): element("integer", String(i), escaping: false, &out)
        case .real(let d): element("real", realText(d), escaping: false, &out)
        case .bool(let b): out += Array((b ? "<true/>\n" : "<false/>\n").utf8)
        case .date(let date): element("date", dateText(date), escaping: false, &out)
        case .data(let bytes):
            out += Array("<data>\n".utf8)
            // Foundation's layout: base64 at the element's indentation, in lines of 76 characters
            // less 8 per level of indentation (at most 8 levels, indented or counted).
            let encoded = Array(Data(bytes).base64EncodedString().utf8)
            let width = 76 - 8 * min(depth, 8)
            var start = 0
            while start < encoded.count {
                indent(min(depth, 8), &out)
                out += encoded[start..<min(start + width, encoded.count)]
                out.append(0x0A)
                start += width
            }
            indent(depth, &out)
            out += Array("</data>\n".utf8)
        case .array(let items):
            guard !items.isEmpty else { out += Array("<array/>\n".utf8); return }
            out += Array("<array>\n".utf8)
            for item in items { write(item, depth: depth + 1, into: &out) }
            indent(depth, &out)
            out += Array("</array>\n".utf8)
        case .dictionary(let entries):
            guard !entries.isEmpty else { out += Array("<dict/>\n".utf8); return }
            out += Array("<dict>\n".utf8)
            for key in entries.keys.sorted() {
                indent(depth + 1, &out)
                element("key", key, escaping: true, &out)
                write(entries[key]!, depth: depth + 1, into: &out)
            }
            indent(depth, &out)
            out += Array("</dict>\n".utf8)
        }
    }

    private static func realText(_ d: Double) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d < 0 ? "-infinity" : "+infinity" }
        if d == d.rounded(), abs(d) < 1e15 { return String(Int(d)) }
        return "\(d)"
    }

    /// ISO 8601 in UTC with whole seconds: the only date form property lists have.
    private static func dateText(_ date: Date) -> String {
        // Clamped: parsed dates are in years 1-9999 (PlistLimits.dates); a value built in code never traps here.
        let interval = date.timeIntervalSince1970.rounded(.down)
        var seconds = interval.isFinite ? time_t(max(-62_135_596_800, min(253_402_300_799, interval))) : 0
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }
}
