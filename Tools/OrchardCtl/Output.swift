import ArgumentParser
import Foundation

/// The options every command takes: where the admin API is, and `--json` for scripts.
struct Global: ParsableArguments {
    @Option(help: "The gateway's URL (default: ORCHARD_URL, then the config file).")
    var url: String?
    @Option(name: .customLong("api-key"), help: "An admin API key (default: ORCHARD_API_KEY, then the config file).")
    var apiKey: String?
    @Flag(help: "Print the API's JSON answer instead of a table.")
    var json = false

    func api() throws -> AdminAPI { AdminAPI(settings: try Settings.resolve(url: url, key: apiKey)) }

    /// Prints `answer`: its JSON as is, or rows of `columns` (key paths into each item) as a table.
    func show(_ answer: AdminAPI.Answer, columns: [(String, String)], items: [[String: Any]]? = nil) {
        if json { return printJSON(answer.json ?? [:]) }
        Table.print(items ?? answer.items, columns: columns)
    }

    /// Prints one object: as JSON, or as `key: value` lines.
    func show(_ answer: AdminAPI.Answer, fields: [(String, String)]? = nil) {
        if json { return printJSON(answer.json ?? [:]) }
        let object = answer.object
        let keys = fields ?? object.keys.sorted().map { ($0, $0) }
        let width = keys.map(\.0.count).max() ?? 0
        for (label, key) in keys {
            let value = Table.text(Table.value(object, key))
            guard !value.isEmpty else { continue }
            print(label.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + value)
        }
    }

    func done(_ answer: AdminAPI.Answer, _ message: String) {
        if json { return printJSON(answer.json ?? ["ok": true]) }
        print(message)
    }
}

func printJSON(_ value: Any) {
    guard JSONSerialization.isValidJSONObject(value),
          let data = try? JSONSerialization.data(withJSONObject: value, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]) else {
        return print("\(value)")
    }
    print(String(decoding: data, as: UTF8.self))
}

enum Table {
    /// A value at a dotted key path (`pairedWith`, `error.message`).
    static func value(_ object: [String: Any], _ path: String) -> Any? {
        var current: Any? = object
        for part in path.split(separator: ".") { current = (current as? [String: Any])?[String(part)] }
        return current
    }

    static func text(_ value: Any?) -> String {
        switch value {
        case nil, is NSNull: return ""
        case let s as String: return s.replacingOccurrences(of: "\n", with: " ")
        // JSON numbers and booleans both arrive as NSNumber; a boolean's type is "c".
        case let n as NSNumber where String(cString: n.objCType) == "c": return n.boolValue ? "yes" : "no"
        case let n as NSNumber: return n.stringValue
        case let b as Bool: return b ? "yes" : "no"
        case let a as [Any]: return a.map { text($0) }.joined(separator: ",")
        case let d as [String: Any]: return d.keys.sorted().map { "\($0)=\(text(d[$0]))" }.joined(separator: " ")
        default: return "\(value!)"
        }
    }

    static func print(_ items: [[String: Any]], columns: [(String, String)]) {
        guard !items.isEmpty else { return Swift.print("(none)") }
        let rows = items.map { item in columns.map { String(text(value(item, $0.1)).prefix(60)) } }
        let widths = columns.indices.map { i in max(columns[i].0.count, rows.map { $0[i].count }.max() ?? 0) }
        func line(_ cells: [String]) -> String {
            zip(cells, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        }
        Swift.print(line(columns.map { $0.0.uppercased() }))
        for row in rows { Swift.print(line(row)) }
    }
}

/// Reads a file named on the command line; a clear line when it cannot be read.
func readFile(_ path: String) throws -> [UInt8] {
    guard let data = FileManager.default.contents(atPath: path) else { throw CtlError("cannot read \(path)") }
    return Array(data)
}

/// A file of JSON: an object, or a clear line naming the file and what is wrong.
func readJSONObject(_ path: String) throws -> [String: Any] {
    let bytes = try readFile(path)
    guard let object = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] else {
        throw CtlError("\(path) is not a JSON object")
    }
    return object
}

/// `KEY=VALUE` pairs (`--minimum-os iOS=18.0`).
func pairs(_ items: [String], option: String) throws -> [String: String] {
    var out: [String: String] = [:]
    for item in items {
        let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { throw CtlError("\(option) takes KEY=VALUE, not \(item)") }
        out[parts[0]] = parts[1]
    }
    return out
}

/// The path segment for an identifier given by the user (a UDID, a domain, a serial).
func segment(_ value: String) -> String {
    value.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~@"))) ?? value
}
