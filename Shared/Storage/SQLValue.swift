import Foundation

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

/// Parses PostgreSQL's `YYYY-MM-DD HH:MM:SS[.ffffff]+00` text form.
func parseTimestamp(_ text: String) -> Date? {
    let parts = text.split(separator: " ")
    guard parts.count == 2 else { return nil }
    let day = parts[0].split(separator: "-").compactMap { Int($0) }
    var time = String(parts[1])
    if let sign = time.lastIndex(where: { $0 == "+" || $0 == "-" }) { time = String(time[..<sign]) }
    let hms = time.split(separator: ":")
    guard day.count == 3, hms.count == 3, let h = Int(hms[0]), let m = Int(hms[1]), let s = Double(hms[2]) else {
        return nil
    }
    var components = DateComponents()
    components.year = day[0]; components.month = day[1]; components.day = day[2]
    components.hour = h; components.minute = m
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = TimeZone(identifier: "UTC")!
    guard let base = calendar.date(from: components) else { return nil }
    return base.addingTimeInterval(s)
}

func formatTimestamp(_ date: Date) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return formatter.string(from: date)
}
