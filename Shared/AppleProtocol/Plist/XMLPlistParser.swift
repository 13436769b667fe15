import Foundation
import OrchardCore

/// An XML property list read straight into `PlistValue`, never through Foundation's objects: Foundation's
/// parser and the bridging of its `NSDictionary` were ~6% of the gateway's CPU per check-in (perf), more than
/// the request's SQL. A hostile client writes every byte, so the reader only moves forward, never looks behind
/// the buffer's end, and charges every value to the same `PlistLimits` budget as the binary reader.
///
/// What it reads (Apple's PropertyList-1.0 DTD, as CoreFoundation's CFPropertyList.c reads it): an optional
/// byte-order mark, XML declaration, DOCTYPE (to its first `>`), comments and processing instructions; `<plist>`
/// around one value (or the value alone); `dict` (`key` then value; a repeated key keeps the last), `array`, `string`
/// and `key` (the five predefined entities, `&#…;` and `&#x…;` character references, CDATA sections), `integer`
/// (decimal or `0x` hex, optional sign, within 64 bits signed), `real`, `true`/`false`, `data` (base64 in padded
/// groups of four; white space anywhere), `date` (`YYYY-MM-DDTHH:MM:SSZ`). Attributes are skipped to the tag's
/// first `>`. Text must be UTF-8.
/// Refused where Foundation reads something else or something wrong (docs/decisions.md): other encodings, junk in
/// base64 or an unpadded last group, integers beyond Int64, dates in another layout or not in the calendar, text or a
/// second value after the root, and a `CF$UID` dictionary (a keyed archive's reference, which the Foundation path
/// refused too).
struct XMLPlistParser {
    private let bytes: UnsafeBufferPointer<UInt8>
    private var at = 0
    private let limits: PlistLimits
    private var nodes = 0, valueBytes = 0

    static func parse(_ input: [UInt8], limits: PlistLimits) throws -> PlistValue {
        try input.withUnsafeBufferPointer { buffer in
            var parser = XMLPlistParser(bytes: buffer, limits: limits)
            return try parser.document()
        }
    }

    private init(bytes: UnsafeBufferPointer<UInt8>, limits: PlistLimits) {
        self.bytes = bytes
        self.limits = limits
    }

    // MARK: Document and markup

    private mutating func document() throws -> PlistValue {
        if starts(with: [0xEF, 0xBB, 0xBF]) { at += 3 }
        try skipMisc(prolog: true)
        var tag = try openTag()
        let value: PlistValue
        if tag.name == "plist" {
            guard !tag.empty else { throw PlistError("empty plist element") }
            try skipMisc(prolog: false)
            tag = try openTag()
            value = try element(tag, depth: 0)
            try skipMisc(prolog: false)
            try closeTag("plist")
        } else {
            value = try element(tag, depth: 0)
        }
        try skipMisc(prolog: false)
        guard at == bytes.count else { throw PlistError("unexpected content after the property list") }
        return value
    }

    private func starts(with prefix: [UInt8]) -> Bool {
        guard bytes.count - at >= prefix.count else { return false }
        for (i, byte) in prefix.enumerated() where bytes[at + i] != byte { return false }
        return true
    }

    private static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D }

    private mutating func skipSpace() {
        while at < bytes.count, Self.isSpace(bytes[at]) { at += 1 }
    }

    /// Moves past the first `terminator` from here, or throws `what` when there is none.
    private mutating func skip(past terminator: [UInt8], _ what: String) throws {
        while at < bytes.count {
            if starts(with: terminator) { at += terminator.count; return }
            at += 1
        }
        throw PlistError("unterminated \(what)")
    }

    private static let commentOpen = Array("<!--".utf8), commentClose = Array("-->".utf8)
    private static let instructionOpen = Array("<?".utf8), instructionClose = Array("?>".utf8)
    private static let doctypeOpen = Array("<!DOCTYPE".utf8)
    private static let cdataOpen = Array("<![CDATA[".utf8), cdataClose = Array("]]>".utf8)

    /// White space, comments and processing instructions; in the prolog also the DOCTYPE (its internal subset
    /// in brackets skipped whole; it declares nothing this reader uses).
    private mutating func skipMisc(prolog: Bool) throws {
        while true {
            skipSpace()
            if starts(with: Self.commentOpen) {
                at += Self.commentOpen.count
                try skip(past: Self.commentClose, "comment")
            } else if starts(with: Self.instructionOpen) {
                at += Self.instructionOpen.count
                let start = at
                try skip(past: Self.instructionClose, "processing instruction")
                if prolog { try Self.checkEncoding(UnsafeBufferPointer(rebasing: bytes[start..<(at - 2)])) }
            } else if prolog, starts(with: Self.doctypeOpen) {
                // To the first `>`, as CoreFoundation skips it (not quote-aware: a `>` inside a quoted public
                // identifier ends it there too, so both readers see the same document after it).
                at += Self.doctypeOpen.count
                try skip(past: [0x3E], "DOCTYPE")
            } else {
                return
            }
        }
    }

    /// The XML declaration's `encoding`, when it names one, must be UTF-8: text is read as UTF-8, and a document
    /// declaring Latin-1 would read differently here than in Foundation (which converts it). On bytes: through
    /// `String`'s `lowercased` and Foundation's `range(of:)` this check alone was ~1% of the gateway's CPU.
    private static func checkEncoding(_ instruction: UnsafeBufferPointer<UInt8>) throws {
        func lower(_ byte: UInt8) -> UInt8 { (0x41...0x5A).contains(byte) ? byte | 0x20 : byte }
        let xml: [UInt8] = [0x78, 0x6D, 0x6C], name = Self.encodingName
        guard instruction.count >= 3, (0..<3).allSatisfy({ lower(instruction[$0]) == xml[$0] }) else { return }
        var i = 3
        while i + name.count <= instruction.count, !(0..<name.count).allSatisfy({ lower(instruction[i + $0]) == name[$0] }) { i += 1 }
        guard i + name.count <= instruction.count else { return }
        i += name.count
        while i < instruction.count, isSpace(instruction[i]) || instruction[i] == 0x3D { i += 1 }
        guard i < instruction.count, instruction[i] == 0x22 || instruction[i] == 0x27 else { throw PlistError("malformed XML declaration") }
        let quote = instruction[i]
        i += 1
        var value: [UInt8] = []
        while i < instruction.count, instruction[i] != quote, value.count < 32 { value.append(lower(instruction[i])); i += 1 }
        guard value == Self.utf8Dash || value == Self.utf8Plain else {
            throw PlistError("property list encoding \(String(decoding: value, as: UTF8.self)) is not UTF-8")
        }
    }

    private static let encodingName = Array("encoding".utf8), utf8Dash = Array("utf-8".utf8), utf8Plain = Array("utf8".utf8)

    /// `<name attributes>` or `<name attributes/>`: the name, and whether the element is empty.
    private mutating func openTag() throws -> (name: String, empty: Bool) {
        guard at < bytes.count, bytes[at] == 0x3C else {
            throw PlistError(at < bytes.count ? "unexpected text where an element belongs" : "property list ends early")
        }
        at += 1
        let start = at
        while at < bytes.count, !Self.isSpace(bytes[at]), bytes[at] != 0x2F, bytes[at] != 0x3E { at += 1 }
        guard at > start, at - start <= 16 else { throw PlistError("unknown element") }
        let name = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<at]), as: UTF8.self)
        // Attributes (plist's version): skipped to the first `>`, as CoreFoundation does (not quote-aware).
        while at < bytes.count, bytes[at] != 0x3C {
            if bytes[at] == 0x3E {
                let empty = bytes[at - 1] == 0x2F
                at += 1
                return (name, empty)
            }
            at += 1
        }
        throw PlistError("unterminated <\(name)> tag")
    }

    /// `</name>` with optional white space before the `>`.
    private mutating func closeTag(_ name: String) throws {
        guard starts(with: [0x3C, 0x2F]) else { throw PlistError("expected </\(name)>") }
        at += 2
        for byte in name.utf8 {
            guard at < bytes.count, bytes[at] == byte else { throw PlistError("expected </\(name)>") }
            at += 1
        }
        skipSpace()
        guard at < bytes.count, bytes[at] == 0x3E else { throw PlistError("expected </\(name)>") }
        at += 1
    }

    private var atCloseTag: Bool { starts(with: [0x3C, 0x2F]) }

    // MARK: Values

    private mutating func charge(nodes: Int = 1, valueBytes: Int = 0) throws {
        self.nodes += nodes
        self.valueBytes += valueBytes
        try limits.check(nodes: self.nodes, valueBytes: self.valueBytes, inputBytes: bytes.count)
    }

    private mutating func element(_ tag: (name: String, empty: Bool), depth: Int) throws -> PlistValue {
        guard depth < limits.maxDepth else { throw PlistError("property list nested too deeply") }
        try charge()
        switch tag.name {
        case "dict":
            var values: [String: PlistValue] = [:]
            if tag.empty { return .dictionary(values) }
            while true {
                try skipMisc(prolog: false)
                if atCloseTag { try closeTag("dict"); break }
                let keyTag = try openTag()
                guard keyTag.name == "key" else { throw PlistError("<\(keyTag.name)> in a dict where a key belongs") }
                let key = keyTag.empty ? "" : try text(closing: "key")
                try charge(valueBytes: key.utf8.count)
                try skipMisc(prolog: false)
                guard !atCloseTag else { throw PlistError("key \(key.prefix(64)) has no value") }
                let valueTag = try openTag()
                guard valueTag.name != "key" else { throw PlistError("key \(key.prefix(64)) has no value") }
                values[key] = try element(valueTag, depth: depth + 1)
            }
            if values.count == 1, values["CF$UID"] != nil { throw PlistError("unsupported property list value") }
            return .dictionary(values)
        case "array":
            var values: [PlistValue] = []
            if tag.empty { return .array(values) }
            while true {
                try skipMisc(prolog: false)
                if atCloseTag { try closeTag("array"); break }
                let next = try openTag()
                guard next.name != "key" else { throw PlistError("<key> outside a dict") }
                values.append(try element(next, depth: depth + 1))
            }
            return .array(values)
        case "string":
            let value = tag.empty ? "" : try text(closing: "string")
            try charge(nodes: 0, valueBytes: value.utf8.count)
            return .string(value)
        case "true", "false":
            if !tag.empty { try closeTag(tag.name) }
            return .bool(tag.name == "true")
        case "integer":
            guard !tag.empty else { throw PlistError("empty <integer>") }
            return .integer(try Self.integer(try raw(closing: "integer")))
        case "real":
            guard !tag.empty else { throw PlistError("empty <real>") }
            let text = Self.trimmed(try raw(closing: "real"))
            guard let value = Double(String(decoding: text, as: UTF8.self)) else { throw PlistError("<real> is not a number") }
            return .real(value)
        case "date":
            guard !tag.empty else { throw PlistError("empty <date>") }
            let seconds = try Self.date(Self.trimmed(try raw(closing: "date")))
            try PlistLimits.checkDate(seconds)
            return .date(Date(timeIntervalSinceReferenceDate: seconds))
        case "data":
            let value = tag.empty ? [] : try Self.base64(try raw(closing: "data"))
            try charge(nodes: 0, valueBytes: value.count)
            return .data(value)
        case "key": throw PlistError("<key> outside a dict")
        case "plist": throw PlistError("<plist> inside a property list")
        default: throw PlistError("unknown element <\(tag.name.prefix(16))>")
        }
    }

    /// The bytes up to `</name>`, with no markup or references in them (numbers, dates, base64).
    private mutating func raw(closing name: String) throws -> UnsafeBufferPointer<UInt8> {
        let start = at
        while at < bytes.count, bytes[at] != 0x3C { at += 1 }
        let content = UnsafeBufferPointer(rebasing: bytes[start..<at])
        try closeTag(name)
        return content
    }

    /// Character data up to `</name>`: entities and character references replaced, CDATA sections taken as they
    /// are, UTF-8 checked.
    private mutating func text(closing name: String) throws -> String {
        let start = at
        while at < bytes.count, bytes[at] != 0x3C, bytes[at] != 0x26 { at += 1 }
        if atCloseTag {
            // Nearly every string: no markup inside, one copy.
            let content = UnsafeBufferPointer(rebasing: bytes[start..<at])
            try closeTag(name)
            return try Self.utf8(content)
        }
        var out = Array(UnsafeBufferPointer(rebasing: bytes[start..<at]))
        while true {
            guard at < bytes.count else { throw PlistError("unterminated <\(name)>") }
            let byte = bytes[at]
            if byte == 0x26 {
                try reference(into: &out)
            } else if starts(with: Self.cdataOpen) {
                at += Self.cdataOpen.count
                let cdata = at
                try skip(past: Self.cdataClose, "CDATA section")
                out += UnsafeBufferPointer(rebasing: bytes[cdata..<(at - Self.cdataClose.count)])
            } else if byte == 0x3C {
                try closeTag(name)
                return try Self.utf8(out)
            } else {
                out.append(byte)
                at += 1
            }
        }
    }

    /// `&amp;` `&lt;` `&gt;` `&quot;` `&apos;` `&#N;` `&#xH;`, written as UTF-8 into `out`.
    private mutating func reference(into out: inout [UInt8]) throws {
        let start = at + 1
        var end = start
        while end < bytes.count, end - start <= 10, bytes[end] != 0x3B { end += 1 }
        guard end < bytes.count, bytes[end] == 0x3B else { throw PlistError("unterminated entity reference") }
        let name = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
        at = end + 1
        switch name {
        case "amp": out.append(0x26)
        case "lt": out.append(0x3C)
        case "gt": out.append(0x3E)
        case "quot": out.append(0x22)
        case "apos": out.append(0x27)
        default:
            var digits = Substring(name)
            guard digits.first == "#" else { throw PlistError("unknown entity &\(name.prefix(10));") }
            digits = digits.dropFirst()
            var radix = 10
            if digits.first == "x" || digits.first == "X" { radix = 16; digits = digits.dropFirst() }
            guard !digits.isEmpty, digits.allSatisfy({ $0.isHexDigit && (radix == 16 || $0.isNumber) }),
                  let code = UInt32(digits, radix: radix), code != 0, let scalar = Unicode.Scalar(code) else {
                throw PlistError("bad character reference &\(name.prefix(10));")
            }
            out += Array(String(Character(scalar)).utf8)
        }
    }

    private static func utf8<C: Collection<UInt8>>(_ content: C) throws -> String {
        guard let text = String(validating: content, as: UTF8.self) else { throw PlistError("text is not UTF-8") }
        return text
    }

    private static func trimmed(_ text: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8> {
        var start = 0, end = text.count
        while start < end, isSpace(text[start]) { start += 1 }
        while end > start, isSpace(text[end - 1]) { end -= 1 }
        return UnsafeBufferPointer(rebasing: text[start..<end])
    }

    /// Decimal or `0x` hexadecimal with an optional sign, within Int64.
    private static func integer(_ raw: UnsafeBufferPointer<UInt8>) throws -> Int {
        let text = trimmed(raw)
        var i = 0, negative = false
        if i < text.count, text[i] == 0x2D || text[i] == 0x2B { negative = text[i] == 0x2D; i += 1 }
        var radix: UInt64 = 10
        if text.count - i > 2, text[i] == 0x30, text[i + 1] | 0x20 == 0x78 { radix = 16; i += 2 }
        guard i < text.count else { throw PlistError("<integer> is not a number") }
        var magnitude: UInt64 = 0
        while i < text.count {
            let byte = text[i]
            let digit: UInt64
            switch byte {
            case 0x30...0x39: digit = UInt64(byte - 0x30)
            case 0x61...0x66 where radix == 16: digit = UInt64(byte - 0x61 + 10)
            case 0x41...0x46 where radix == 16: digit = UInt64(byte - 0x41 + 10)
            default: throw PlistError("<integer> is not a number")
            }
            let (times, o1) = magnitude.multipliedReportingOverflow(by: radix)
            let (sum, o2) = times.addingReportingOverflow(digit)
            guard !o1, !o2 else { throw PlistError("<integer> does not fit in 64 bits") }
            magnitude = sum
            i += 1
        }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { throw PlistError("<integer> does not fit in 64 bits") }
            return magnitude == UInt64(Int64.max) + 1 ? Int.min : -Int(magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { throw PlistError("<integer> does not fit in 64 bits") }
        return Int(magnitude)
    }

    /// `YYYY-MM-DDTHH:MM:SSZ` (UTC, as Apple writes dates) as seconds since 2001-01-01: exactly that layout and a day
    /// the month has, then converted by `ISO8601` (which would take more layouts and move February 30 to March).
    private static func date(_ text: UnsafeBufferPointer<UInt8>) throws -> Double {
        let layout = Array("0000-00-00T00:00:00Z".utf8)
        guard text.count == layout.count else { throw PlistError("<date> is not YYYY-MM-DDTHH:MM:SSZ") }
        for (byte, expected) in zip(text, layout) {
            let ok = expected == 0x30 ? (0x30...0x39).contains(byte) : byte == expected
            guard ok else { throw PlistError("<date> is not YYYY-MM-DDTHH:MM:SSZ") }
        }
        func number(_ from: Int, _ count: Int) -> Int { (from..<from + count).reduce(0) { $0 * 10 + Int(text[$1] - 0x30) } }
        let year = number(0, 4), month = number(5, 2), day = number(8, 2)
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let monthDays: [Int] = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard (1...12).contains(month), (1...monthDays[month - 1]).contains(day), number(17, 2) < 60,
              let date = ISO8601.date(from: String(decoding: text, as: UTF8.self)) else {
            throw PlistError("<date> is not a valid date")
        }
        return date.timeIntervalSinceReferenceDate
    }

    private static let base64Values: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() { table[Int(c)] = UInt8(i) }
        return table
    }()

    /// Base64 with white space anywhere, in groups of four: a short last group padded with `=` (Foundation drops an
    /// unpadded one, so it is refused rather than read as a byte more than Foundation read).
    private static func base64(_ text: UnsafeBufferPointer<UInt8>) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.count * 3 / 4)
        var accumulator: UInt32 = 0, bits = 0, padding = 0, characters = 0
        for byte in text {
            if isSpace(byte) { continue }
            if byte == 0x3D { padding += 1; continue }
            let value = base64Values[Int(byte)]
            guard value != 0xFF, padding == 0 else { throw PlistError("<data> is not base64") }
            characters += 1
            accumulator = accumulator << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        // What is left must be the zero bits of a short final group, with its padding if any.
        guard padding == (4 - characters % 4) % 4, accumulator & ((1 << UInt32(bits)) - 1) == 0 else {
            throw PlistError("<data> is not base64")
        }
        return out
    }
}
