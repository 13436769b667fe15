import Foundation

/// Limits every device-facing property list is parsed within, whatever its format.
public struct PlistLimits: Sendable {
    /// Containers inside containers.
    public var maxDepth = 32
    /// Values in the parsed tree, counting a value once for every place it stands in.
    public var maxNodes = 250_000
    /// Bytes of strings and data in the parsed tree, counted the same way.
    public var maxValueBytes = 32 << 20
    /// The tree written out (as XML: every value with its tags, a shared value once per place) may be at most this
    /// many times the bytes received, or `expansionFloor` for a small document: a binary plist of a few hundred bytes
    /// whose shared references stand for megabytes is refused, not stored as megabytes (docs/decisions.md).
    public var maxExpansion = 16
    public var expansionFloor = 1 << 20
    /// What a value costs written out besides its contents (tags, indentation), in that estimate.
    public static let bytesPerValue = 32

    public static let device = PlistLimits()
    public init() {}

    /// Dates a property list may carry: years 1 to 9999, as seconds since 2001-01-01 (a date beyond
    /// what `time_t` holds crashed the writer that stores command results; found by Deploy/fuzz.sh).
    public static let dates: ClosedRange<Double> = -63_113_904_000...252_423_993_600

    static func checkDate(_ seconds: Double) throws {
        guard seconds.isFinite, dates.contains(seconds) else { throw PlistError("date out of range") }
    }

    /// The most a document of `inputBytes` may stand for written out.
    public func maxWrittenBytes(inputBytes: Int) -> Int {
        let (scaled, overflow) = inputBytes.multipliedReportingOverflow(by: maxExpansion)
        return overflow ? Int.max : max(expansionFloor, scaled)
    }

    /// Refuses a (sub)tree of `nodes` values and `valueBytes` bytes of strings and data in a document of `inputBytes`.
    func check(nodes: Int, valueBytes: Int, inputBytes: Int) throws {
        guard nodes <= maxNodes else { throw PlistError("property list has more than \(maxNodes) values") }
        guard valueBytes <= maxValueBytes else {
            throw PlistError("property list holds more than \(maxValueBytes) bytes of strings and data")
        }
        let written = valueBytes + nodes * Self.bytesPerValue, limit = maxWrittenBytes(inputBytes: inputBytes)
        guard written <= limit else {
            throw PlistError("property list of \(inputBytes) bytes stands for more than \(limit) bytes written out (at most \(maxExpansion) times its size, or \(expansionFloor) bytes)")
        }
    }
}

/// A binary property list (`bplist00`) read straight into `PlistValue`, never through Foundation's
/// objects. A hostile client controls every offset and count, so each is checked against the buffer, and
/// the tree a document stands for is bounded: an object referenced from many places counts once per
/// place (Foundation expanded such documents into gigabytes), a reference cycle or a set, UID or null
/// value is refused (a set crashed Foundation's bridging).
/// Format: CoreFoundation's CFBinaryPList.c (header, objects, offset table, 32-byte trailer).
struct BinaryPlistParser {
    private let bytes: [UInt8]
    private let limits: PlistLimits
    private let offsetSize: Int
    private let referenceSize: Int
    private let objectCount: Int
    private let offsetTable: Int
    /// Objects already parsed, with the nodes and value bytes each stands for, so that a shared object
    /// costs its parse once and its size wherever it is used.
    private var parsed: [Int: (value: PlistValue, nodes: Int, valueBytes: Int)] = [:]
    private var inProgress = Set<Int>()

    static let magic: [UInt8] = Array("bplist00".utf8)

    static func parse(_ bytes: [UInt8], limits: PlistLimits) throws -> PlistValue {
        var parser = try BinaryPlistParser(bytes, limits: limits)
        let top = try parser.topObject()
        return try parser.object(top, depth: 0).value
    }

    private init(_ bytes: [UInt8], limits: PlistLimits) throws {
        guard bytes.count >= 8 + 32, Array(bytes.prefix(8)) == Self.magic else { throw PlistError("not a binary property list") }
        self.bytes = bytes
        self.limits = limits
        let trailer = bytes.count - 32
        offsetSize = Int(bytes[trailer + 6])
        referenceSize = Int(bytes[trailer + 7])
        guard [1, 2, 4, 8].contains(offsetSize), [1, 2, 4, 8].contains(referenceSize) else {
            throw PlistError("binary property list: bad trailer")
        }
        let count = Self.unsigned(bytes, at: trailer + 8, size: 8)
        let table = Self.unsigned(bytes, at: trailer + 24, size: 8)
        // Every object takes at least one byte before the table, and the table fits before the trailer.
        guard count > 0, table >= 8, table < UInt64(trailer), count <= UInt64(table - 8),
              count <= UInt64((trailer - Int(table)) / offsetSize) else {
            throw PlistError("binary property list: bad trailer")
        }
        objectCount = Int(count)
        offsetTable = Int(table)
    }

    private func topObject() throws -> Int {
        let top = Self.unsigned(bytes, at: bytes.count - 32 + 16, size: 8)
        guard top < UInt64(objectCount) else { throw PlistError("binary property list: bad top object") }
        return Int(top)
    }

    private static func unsigned(_ bytes: [UInt8], at index: Int, size: Int) -> UInt64 {
        var value: UInt64 = 0
        for i in 0..<size { value = value << 8 | UInt64(bytes[index + i]) }
        return value
    }

    private func offset(of object: Int) throws -> Int {
        let value = Self.unsigned(bytes, at: offsetTable + object * offsetSize, size: offsetSize)
        guard value >= 8, value < UInt64(offsetTable) else { throw PlistError("binary property list: object outside the document") }
        return Int(value)
    }

    /// `count` bytes starting at `start`, all before the offset table.
    private func check(_ start: Int, _ count: Int) throws {
        guard count >= 0, start <= offsetTable, count <= offsetTable - start else {
            throw PlistError("binary property list: object runs past its end")
        }
    }

    /// The element count after a marker whose low nibble is `nibble` (0xF: an integer object follows);
    /// returns the count and where the contents start.
    private func count(_ nibble: UInt8, after marker: Int) throws -> (Int, Int) {
        guard nibble == 0xF else { return (Int(nibble), marker + 1) }
        try check(marker + 1, 1)
        let intMarker = bytes[marker + 1]
        guard intMarker >> 4 == 0x1, intMarker & 0xF <= 3 else { throw PlistError("binary property list: bad length") }
        let size = 1 << Int(intMarker & 0xF)
        try check(marker + 2, size)
        let value = Self.unsigned(bytes, at: marker + 2, size: size)
        guard value <= UInt64(offsetTable) else { throw PlistError("binary property list: length past the document") }
        return (Int(value), marker + 2 + size)
    }

    private mutating func object(_ index: Int, depth: Int) throws -> (value: PlistValue, nodes: Int, valueBytes: Int) {
        if let done = parsed[index] { return done }
        guard depth < limits.maxDepth else { throw PlistError("property list nested too deeply") }
        guard inProgress.insert(index).inserted else { throw PlistError("binary property list: reference cycle") }
        defer { inProgress.remove(index) }
        let start = try offset(of: index)
        let marker = bytes[start]
        let nibble = marker & 0xF
        let result: (value: PlistValue, nodes: Int, valueBytes: Int)
        switch marker >> 4 {
        case 0x0:
            switch marker {
            case 0x08: result = (.bool(false), 1, 0)
            case 0x09: result = (.bool(true), 1, 0)
            default: throw PlistError("binary property list: unsupported value 0x\(String(marker, radix: 16))")
            }
        case 0x1:
            guard nibble <= 4 else { throw PlistError("binary property list: bad integer") }
            let size = 1 << Int(nibble)
            try check(start + 1, size)
            let value: Int
            switch size {
            case 8: value = Int(Int64(bitPattern: Self.unsigned(bytes, at: start + 1, size: 8)))
            case 16:
                // 128-bit: how Foundation writes an unsigned value above Int64.max; fits only when small.
                guard Self.unsigned(bytes, at: start + 1, size: 8) == 0,
                      let v = Int(exactly: Self.unsigned(bytes, at: start + 9, size: 8)) else {
                    throw PlistError("binary property list: integer out of range")
                }
                value = v
            default: value = Int(Self.unsigned(bytes, at: start + 1, size: size))
            }
            result = (.integer(value), 1, 0)
        case 0x2:
            guard nibble == 2 || nibble == 3 else { throw PlistError("binary property list: bad real") }
            let size = 1 << Int(nibble)
            try check(start + 1, size)
            let raw = Self.unsigned(bytes, at: start + 1, size: size)
            let value = size == 4 ? Double(Float(bitPattern: UInt32(raw))) : Double(bitPattern: raw)
            result = (.real(value), 1, 0)
        case 0x3:
            guard marker == 0x33 else { throw PlistError("binary property list: bad date") }
            try check(start + 1, 8)
            let seconds = Double(bitPattern: Self.unsigned(bytes, at: start + 1, size: 8))
            try PlistLimits.checkDate(seconds)
            result = (.date(Date(timeIntervalSinceReferenceDate: seconds)), 1, 0)
        case 0x4:
            let (length, contents) = try count(nibble, after: start)
            try check(contents, length)
            result = (.data(Array(bytes[contents..<contents + length])), 1, length)
        case 0x5:
            let (length, contents) = try count(nibble, after: start)
            try check(contents, length)
            let slice = bytes[contents..<contents + length]
            guard slice.allSatisfy({ $0 < 0x80 }) else { throw PlistError("binary property list: ASCII string is not ASCII") }
            result = (.string(String(decoding: slice, as: UTF8.self)), 1, length)
        case 0x6:
            let (units, contents) = try count(nibble, after: start)
            guard units <= offsetTable / 2 else { throw PlistError("binary property list: object runs past its end") }
            try check(contents, units * 2)
            var utf16: [UInt16] = []
            utf16.reserveCapacity(units)
            for i in 0..<units { utf16.append(UInt16(bytes[contents + 2 * i]) << 8 | UInt16(bytes[contents + 2 * i + 1])) }
            // Unpaired surrogates become U+FFFD, as Foundation reads them.
            result = (.string(String(decoding: utf16, as: UTF16.self)), 1, units * 2)
        case 0xA:
            let (count, contents) = try count(nibble, after: start)
            guard count <= offsetTable / referenceSize else { throw PlistError("binary property list: object runs past its end") }
            try check(contents, count * referenceSize)
            var values: [PlistValue] = []
            values.reserveCapacity(min(count, 4096))
            var nodes = 1, valueBytes = 0
            for i in 0..<count {
                let element = try object(try reference(at: contents + i * referenceSize), depth: depth + 1)
                nodes += element.nodes
                valueBytes += element.valueBytes
                try checkSize(nodes, valueBytes)
                values.append(element.value)
            }
            result = (.array(values), nodes, valueBytes)
        case 0xD:
            let (count, contents) = try count(nibble, after: start)
            guard count <= offsetTable / (2 * referenceSize) else { throw PlistError("binary property list: object runs past its end") }
            try check(contents, 2 * count * referenceSize)
            var values: [String: PlistValue] = [:]
            values.reserveCapacity(min(count, 4096))
            var nodes = 1, valueBytes = 0
            for i in 0..<count {
                let key = try object(try reference(at: contents + i * referenceSize), depth: depth + 1)
                guard let name = key.value.string else { throw PlistError("binary property list: dictionary key is not a string") }
                let value = try object(try reference(at: contents + (count + i) * referenceSize), depth: depth + 1)
                nodes += key.nodes + value.nodes
                valueBytes += key.valueBytes + value.valueBytes
                try checkSize(nodes, valueBytes)
                values[name] = value.value
            }
            result = (.dictionary(values), nodes, valueBytes)
        case 0xC, 0xB:
            throw PlistError("binary property list: sets are not accepted")
        case 0x8:
            throw PlistError("binary property list: UIDs are not accepted")
        default:
            throw PlistError("binary property list: unknown object type 0x\(String(marker, radix: 16))")
        }
        try checkSize(result.nodes, result.valueBytes)
        parsed[index] = result
        return result
    }

    private func reference(at position: Int) throws -> Int {
        let value = Self.unsigned(bytes, at: position, size: referenceSize)
        guard value < UInt64(objectCount) else { throw PlistError("binary property list: reference to no object") }
        return Int(value)
    }

    private func checkSize(_ nodes: Int, _ valueBytes: Int) throws {
        try limits.check(nodes: nodes, valueBytes: valueBytes, inputBytes: bytes.count)
    }
}
