import CLibPQ
import Foundation

/// One libpq connection. Its calls block, so the pool only runs them on its own thread pool,
/// never on a SwiftNIO event loop, and one connection is used by one task at a time.
/// It is marked Sendable only so the pool can move it between tasks; the pool guarantees exclusive use.
public final class Connection: @unchecked Sendable {
    private let conn: OpaquePointer

    init(conninfo: String, searchPath: String?) throws {
        guard let conn = PQconnectdb(conninfo) else { throw PostgresError(message: "out of memory", sqlState: nil) }
        // From here on deinit owns conn, also when init throws.
        self.conn = conn
        guard PQstatus(conn) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(conn)).trimmingCharacters(in: .whitespacesAndNewlines)
            throw PostgresError(message: "cannot connect to PostgreSQL: \(message)", sqlState: nil)
        }
        var setup = "SET TIME ZONE 'UTC'"
        if let searchPath { setup += "; SET search_path TO \(searchPath), public" }
        try executeScript(setup)
    }

    deinit { PQfinish(conn) }

    var isHealthy: Bool { PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) == PQTRANS_IDLE }

    /// Runs one parameterised statement (`$1`, `$2`, …) and returns its rows.
    @discardableResult
    public func query(_ sql: String, _ parameters: [SQLValue] = []) throws -> [Row] {
        let encoded: [[UInt8]?] = parameters.map(encode)
        let formats: [Int32] = parameters.map { if case .bytes = $0 { return 1 } else { return 0 } }
        let lengths: [Int32] = encoded.map { Int32($0?.count ?? 0) }
        let result: OpaquePointer? = withCStrings(encoded) { pointers in
            PQexecParams(conn, sql, Int32(parameters.count), nil, pointers, lengths, formats, 0)
        }
        return try rows(of: result)
    }

    /// Runs SQL text without parameters, possibly several statements (migrations, SET).
    public func executeScript(_ sql: String) throws {
        _ = try rows(of: PQexec(conn, sql))
    }

    /// Runs body inside BEGIN/COMMIT; rolls back if it throws.
    public func transaction<T>(_ body: (Connection) throws -> T) throws -> T {
        try executeScript("BEGIN")
        do {
            let value = try body(self)
            try executeScript("COMMIT")
            return value
        } catch {
            try? executeScript("ROLLBACK")
            throw error
        }
    }

    private func rows(of result: OpaquePointer?) throws -> [Row] {
        guard let result else {
            throw PostgresError(message: String(cString: PQerrorMessage(conn)), sqlState: nil)
        }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
            return []
        case PGRES_TUPLES_OK:
            let fieldCount = Int(PQnfields(result))
            var columns = [String: Int]()
            for f in 0..<fieldCount { columns[String(cString: PQfname(result, Int32(f)))] = f }
            return (0..<PQntuples(result)).map { r in
                let values: [[UInt8]?] = (0..<fieldCount).map { f in
                    if PQgetisnull(result, r, Int32(f)) == 1 { return nil }
                    let length = Int(PQgetlength(result, r, Int32(f)))
                    return PQgetvalue(result, r, Int32(f)).withMemoryRebound(to: UInt8.self, capacity: length) {
                        Array(UnsafeBufferPointer(start: $0, count: length))
                    }
                }
                return Row(columns: columns, values: values)
            }
        default:
            let message = String(cString: PQresultErrorMessage(result)).trimmingCharacters(in: .whitespacesAndNewlines)
            let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
            throw PostgresError(message: message, sqlState: state)
        }
    }
}

private func encode(_ value: SQLValue) -> [UInt8]? {
    switch value {
    case .text(let s): return Array(s.utf8) + [0]
    case .int(let i): return Array(String(i).utf8) + [0]
    case .bool(let b): return Array((b ? "true" : "false").utf8) + [0]
    case .bytes(let b): return b
    case .timestamp(let d): return Array(formatTimestamp(d).utf8) + [0]
    case .null: return nil
    }
}

/// Pins each parameter's bytes for the duration of the libpq call.
private func withCStrings<T>(_ values: [[UInt8]?], _ body: ([UnsafePointer<CChar>?]) -> T) -> T {
    var pointers: [UnsafePointer<CChar>?] = []
    var storage: [UnsafeMutableRawPointer] = []
    defer { storage.forEach { $0.deallocate() } }
    for value in values {
        guard let value else { pointers.append(nil); continue }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(value.count, 1), alignment: 1)
        if !value.isEmpty { value.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: value.count) } }
        storage.append(buffer)
        pointers.append(UnsafePointer(buffer.assumingMemoryBound(to: CChar.self)))
    }
    return body(pointers)
}
