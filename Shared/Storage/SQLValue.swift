import Foundation
import OrchardCore

/// A statement parameter. Statements are always parameterised: values never become SQL text.
public enum SQLValue: Sendable, Equatable {
    case text(String)
    case int(Int64)
    case bool(Bool)
    case bytes([UInt8])
    case timestamp(Date)
    case null

    public static func int(_ value: Int) -> SQLValue { .int(Int64(value)) }
    public static func optionalText(_ value: String?) -> SQLValue { value.map(SQLValue.text) ?? .null }
}

/// One result row; values are read by column name and converted from PostgreSQL's text format.
public struct Row: Sendable {
    let columns: [String: Int]
    let values: [[UInt8]?]

    public func isNull(_ column: String) -> Bool { raw(column) == nil }

    public func string(_ column: String) -> String? { raw(column).map { String(decoding: $0, as: UTF8.self) } }

    public func int(_ column: String) -> Int? { string(column).flatMap { Int($0) } }

    public func bool(_ column: String) -> Bool? { string(column).map { $0 == "t" } }

    public func double(_ column: String) -> Double? { string(column).flatMap { Double($0) } }

    /// bytea columns arrive hex-encoded (`\x…`).
    public func bytes(_ column: String) -> [UInt8]? {
        guard let raw = raw(column) else { return nil }
        guard raw.count >= 2, raw[0] == UInt8(ascii: "\\"), raw[1] == UInt8(ascii: "x") else { return raw }
        var out = [UInt8]()
        out.reserveCapacity((raw.count - 2) / 2)
        var i = 2
        while i + 1 < raw.count {
            out.append(hexValue(raw[i]) << 4 | hexValue(raw[i + 1]))
            i += 2
        }
        return out
    }

    /// timestamptz columns; connections run with TimeZone UTC.
    public func date(_ column: String) -> Date? { string(column).flatMap(parseTimestamp) }

    private func raw(_ column: String) -> [UInt8]? {
        guard let index = columns[column] else { return nil }
        return values[index]
    }
}

private func hexValue(_ c: UInt8) -> UInt8 {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
    default: return 0
    }
}

/// PostgreSQL's `YYYY-MM-DD HH:MM:SS[.ffffff]+00` text form (connections run in UTC).
func parseTimestamp(_ text: String) -> Date? { ISO8601.date(from: text) }

func formatTimestamp(_ date: Date) -> String { ISO8601.string(from: date) }
