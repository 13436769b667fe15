import Foundation

/// A property-list value. Raw plist dictionaries stop here: the protocol types below are built from these.
public enum PlistValue: Sendable, Equatable, Hashable {
    case string(String)
    case integer(Int)
    case real(Double)
    case bool(Bool)
    case data([UInt8])
    case date(Date)
    case array([PlistValue])
    case dictionary([String: PlistValue])

    public var string: String? { if case .string(let v) = self { return v }; return nil }
    public var integer: Int? { if case .integer(let v) = self { return v }; return nil }
    public var bool: Bool? { if case .bool(let v) = self { return v }; return nil }
    public var data: [UInt8]? { if case .data(let v) = self { return v }; return nil }
    public var array: [PlistValue]? { if case .array(let v) = self { return v }; return nil }
    public var dictionary: [String: PlistValue]? { if case .dictionary(let v) = self { return v }; return nil }

    public subscript(key: String) -> PlistValue? { dictionary?[key] }
}

/// A malformed or unexpected property list from a client.
public struct PlistError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

public enum Plist {
    /// Parses an XML or binary property list whose root must be a dictionary, within `limits`.
    /// Both formats are read by Orchard's own readers, never by Foundation: `BinaryPlistParser` (Foundation crashed
    /// on sets and expanded shared references without bound), `XMLPlistParser` (Foundation's parser and bridging
    /// cost more CPU than the request's SQL). Any other format (OpenStep text, JSON) is refused.
    public static func parseDictionary(_ bytes: [UInt8], limits: PlistLimits = .device) throws -> [String: PlistValue] {
        guard !bytes.isEmpty else { throw PlistError("empty body") }
        let root: PlistValue
        if bytes.starts(with: BinaryPlistParser.magic) {
            root = try BinaryPlistParser.parse(bytes, limits: limits)
        } else {
            guard looksLikeXML(bytes) else { throw PlistError("not an XML or binary property list") }
            root = try XMLPlistParser.parse(bytes, limits: limits)
        }
        guard let dictionary = root.dictionary else { throw PlistError("root is not a dictionary") }
        return dictionary
    }

    /// An XML document through Foundation's `PropertyListSerialization`, bounded the same way: the reference
    /// `XMLPlistParser` is tested and fuzzed against (Tests, Fuzz/PlistFuzzer.swift).
    static func foundationParseXML(_ bytes: [UInt8], limits: PlistLimits = .device) throws -> PlistValue {
        let object: Any
        do {
            object = try PropertyListSerialization.propertyList(from: Data(bytes), options: [], format: nil)
        } catch {
            throw PlistError("not a property list")
        }
        var budget = Budget(limits: limits, inputBytes: bytes.count)
        return try convert(object, depth: 0, limits: limits, budget: &budget)
    }

    /// An XML document: optional byte-order mark and white space, then `<`.
    private static func looksLikeXML(_ bytes: [UInt8]) -> Bool {
        var rest = bytes[...]
        if rest.starts(with: [0xEF, 0xBB, 0xBF]) { rest = rest.dropFirst(3) }
        guard let first = rest.first(where: { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }) else { return false }
        return first == UInt8(ascii: "<")
    }

    /// Serialises a dictionary as an XML property list.
    public static func xml(_ dictionary: [String: PlistValue]) -> [UInt8] {
        PlistXMLWriter.document(.dictionary(dictionary))
    }

    /// What an XML document has used of its limits so far.
    private struct Budget {
        let limits: PlistLimits
        let inputBytes: Int
        var nodes = 0, valueBytes = 0

        mutating func charge(nodes: Int = 1, valueBytes: Int = 0) throws {
            self.nodes += nodes
            self.valueBytes += valueBytes
            try limits.check(nodes: self.nodes, valueBytes: self.valueBytes, inputBytes: inputBytes)
        }
    }

    private static func convert(_ object: Any, depth: Int, limits: PlistLimits, budget: inout Budget) throws -> PlistValue {
        guard depth < limits.maxDepth else { throw PlistError("property list nested too deeply") }
        try budget.charge()
        switch object {
        case let v as String:
            try budget.charge(nodes: 0, valueBytes: v.utf8.count)
            return .string(v)
        case let v as Data:
            try budget.charge(nodes: 0, valueBytes: v.count)
            return .data(Array(v))
        case let v as Date:
            try PlistLimits.checkDate(v.timeIntervalSinceReferenceDate)
            return .date(v)
        case let v as Bool where type(of: object) == Bool.self: return .bool(v)
        case let v as NSNumber:
            switch String(cString: v.objCType) {
            case "c", "B": return .bool(v.boolValue)
            case "d", "f": return .real(v.doubleValue)
            default: return .integer(v.intValue)
            }
        case let v as Int: return .integer(v)
        case let v as Double: return .real(v)
        case let v as [Any]:
            var values: [PlistValue] = []
            for element in v { values.append(try convert(element, depth: depth + 1, limits: limits, budget: &budget)) }
            return .array(values)
        case let v as [String: Any]:
            var values: [String: PlistValue] = [:]
            for (key, element) in v {
                try budget.charge(valueBytes: key.utf8.count)
                values[key] = try convert(element, depth: depth + 1, limits: limits, budget: &budget)
            }
            return .dictionary(values)
        default: throw PlistError("unsupported property list value")
        }
    }

    /// The same document through Foundation's `PropertyListSerialization`: the reference the direct
    /// writer is tested against.
    static func foundationXML(_ dictionary: [String: PlistValue]) throws -> [UInt8] {
        Array(try PropertyListSerialization.data(fromPropertyList: foundationObject(.dictionary(dictionary)), format: .xml, options: 0))
    }

    private static func foundationObject(_ value: PlistValue) -> Any {
        switch value {
        case .string(let v): return v
        case .integer(let v): return NSNumber(value: v)
        case .real(let v): return NSNumber(value: v)
        case .bool(let v): return NSNumber(value: v)
        case .data(let v): return Data(v)
        case .date(let v): return v
        case .array(let v): return v.map(foundationObject)
        case .dictionary(let v): return v.mapValues(foundationObject)
        }
    }
}

/// Reads typed fields out of a plist dictionary with errors that name the key.
public struct PlistReader: Sendable {
    public let values: [String: PlistValue]
    public init(_ values: [String: PlistValue]) { self.values = values }

    public func string(_ key: String) throws -> String {
        guard let value = values[key] else { throw PlistError("missing \(key)") }
        guard let s = value.string else { throw PlistError("\(key) must be a string") }
        guard s.utf8.count <= 4096 else { throw PlistError("\(key) is too long") }
        return s
    }

    public func optionalString(_ key: String) throws -> String? {
        values[key] == nil ? nil : try string(key)
    }

    public func data(_ key: String) throws -> [UInt8] {
        guard let value = values[key] else { throw PlistError("missing \(key)") }
        guard let d = value.data else { throw PlistError("\(key) must be data") }
        return d
    }

    public func optionalData(_ key: String) throws -> [UInt8]? { values[key] == nil ? nil : try data(key) }

    public func optionalBool(_ key: String) throws -> Bool? {
        guard let value = values[key] else { return nil }
        guard let b = value.bool else { throw PlistError("\(key) must be a boolean") }
        return b
    }

    public func optionalDictionary(_ key: String) throws -> [String: PlistValue]? {
        guard let value = values[key] else { return nil }
        guard let d = value.dictionary else { throw PlistError("\(key) must be a dictionary") }
        return d
    }
}
