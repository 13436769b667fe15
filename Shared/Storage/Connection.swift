import CLibPQ
import Foundation

/// One libpq connection. Its calls block, so the pool only runs them on its own thread pool,
/// never on a SwiftNIO event loop, and one connection is used by one task at a time.
/// It is marked Sendable only so the pool can move it between tasks; the pool guarantees exclusive use.
public final class Connection: @unchecked Sendable {
    private let conn: OpaquePointer
    /// Statements seen on this connection: prepared (parsed and planned once) from their second use.
    private var statements: [String: (uses: Int, name: String?, preparable: Bool)] = [:]
    private var preparedCount = 0
    /// Inside `transaction`: BEGIN not sent yet; it goes out with the first statement.
    private var beginPending = false
    /// Statements sent with COMMIT in one round trip: those whose results nobody reads, and those whose
    /// rows are read only after the commit (`queryWithCommit`, by their index in `deferred`).
    private var deferred: [(String, [SQLValue])] = []
    private var pendingRows: [(index: Int, rows: PendingRows)] = []
    /// Statements queued by `execute`: they go out ahead of the transaction's next statement, in one round trip.
    private var ahead: [(String, [SQLValue])] = []

    init(conninfo: String, searchPath: String?) throws {
        guard let conn = PQconnectdb(conninfo) else { throw PostgresError(message: "out of memory", sqlState: nil) }
        // From here on deinit owns conn, also when init throws.
        self.conn = conn
        // libpq prints server NOTICEs (such as "already exists, skipping") to stderr, which would break the
        // services' JSON log; they are informational only.
        PQsetNoticeProcessor(conn, { _, _ in }, nil)
        guard PQstatus(conn) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(conn)).trimmingCharacters(in: .whitespacesAndNewlines)
            throw PostgresError(message: "cannot connect to PostgreSQL: \(message)", sqlState: nil)
        }
        var setup = "SET TIME ZONE 'UTC'"
        if let searchPath { setup += "; SET search_path TO \(searchPath), public" }
        try executeScript(setup)
    }

    deinit { PQfinish(conn) }

    /// Rolls back an open transaction begun by SQL text (`BEGIN` through `executeScript`), if any.
    func rollbackIfInTransaction() {
        if PQtransactionStatus(conn) != PQTRANS_IDLE { _ = try? executeScript("ROLLBACK") }
    }

    var isHealthy: Bool { PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) == PQTRANS_IDLE }

    /// Runs one parameterised statement (`$1`, `$2`, …) and returns its rows.
    @discardableResult
    public func query(_ sql: String, _ parameters: [SQLValue] = []) throws -> [Row] {
        if beginPending || !ahead.isEmpty { return try withPending([(sql, parameters)])[0] }
        let name = try preparedName(sql, parameterCount: parameters.count)
        let result: OpaquePointer? = withEncoded(parameters) { values, lengths, formats in
            if let name {
                return PQexecPrepared(conn, name, Int32(parameters.count), values, lengths, formats, 0)
            }
            return PQexecParams(conn, sql, Int32(parameters.count), nil, values, lengths, formats, 0)
        }
        return try rows(of: result)
    }

    /// Runs several statements in one round trip (with a transaction's pending BEGIN and executed statements ahead of
    /// them) and returns each one's rows. For statements whose parameters do not depend on each other's results.
    public func queries(_ batch: [(String, [SQLValue])]) throws -> [[Row]] {
        guard batch.count > 1 else { return try batch.map { try query($0.0, $0.1) } }
        return try withPending(batch)
    }

    /// Sends `batch` in one round trip behind the transaction's pending BEGIN and the statements `execute` queued;
    /// returns the rows of `batch`'s statements only.
    private func withPending(_ batch: [(String, [SQLValue])]) throws -> [[Row]] {
        let first = (beginPending ? 1 : 0) + ahead.count
        let sent = (beginPending ? [("BEGIN", [])] : []) + ahead + batch
        beginPending = false
        ahead = []
        return Array(try pipeline(sent).dropFirst(first))
    }

    /// Inside a transaction, queues a statement whose rows nobody reads: it goes out with the transaction's next
    /// statement (or its COMMIT), ahead of it and in the same round trip, so what follows sees its effect as if it had
    /// run at once. Its error surfaces at that next statement and fails the transaction. Outside a transaction it runs
    /// at once. Not for a statement whose own error the caller handles (a unique violation turned into a refusal).
    public func execute(_ sql: String, _ parameters: [SQLValue] = []) throws {
        if inTransaction { ahead.append((sql, parameters)) } else { try query(sql, parameters) }
    }

    /// Inside a transaction, queues a statement whose result is not needed; it is sent together with
    /// COMMIT (one round trip). Outside a transaction it runs at once.
    public func queryAtCommit(_ sql: String, _ parameters: [SQLValue] = []) throws {
        if inTransaction { deferred.append((sql, parameters)) } else { try query(sql, parameters) }
    }

    /// Inside a transaction, queues a statement whose rows the caller reads only once the transaction has
    /// committed (`PendingRows.rows`); it is sent together with COMMIT (one round trip), in order with the
    /// statements queued by `queryAtCommit`. Outside a transaction it runs at once.
    public func queryWithCommit(_ sql: String, _ parameters: [SQLValue] = []) throws -> PendingRows {
        let pending = PendingRows()
        if inTransaction {
            pendingRows.append((deferred.count, pending))
            deferred.append((sql, parameters))
        } else {
            pending.rows = try query(sql, parameters)
        }
        return pending
    }

    private var inTransaction = false

    /// Statements with more parameters are bulk ones whose text changes with their row count: never
    /// prepared nor remembered (remembering each text grew a gateway by ~1 MB per bulk command).
    static let maxPreparedParameters = 64
    /// Statement texts remembered per connection (prepared or counted), at most.
    static let maxRememberedStatements = 1024

    /// The prepared statement's name from the second use of the same SQL on; nil to run it unprepared.
    private func preparedName(_ sql: String, parameterCount: Int) throws -> String? {
        guard parameterCount <= Self.maxPreparedParameters else { return nil }
        if let known = statements[sql] {
            if let name = known.name { return name }
            if !known.preparable { return nil }
        } else if statements.count >= Self.maxRememberedStatements {
            // Forget the texts seen once and never prepared; keep the prepared ones and those never to be.
            statements = statements.filter { $0.value.name != nil || !$0.value.preparable }
            if statements.count >= Self.maxRememberedStatements { return nil }
        }
        // A statement that takes an array (`= ANY($n)`) is planned for each call, with the array at hand: the generic
        // plan PostgreSQL caches for a prepared one, made while the table was small, scanned all of it for ever after
        // (a device's DeviceInformation took 3.2–3.5 ms at 8,000 devices instead of 0.13; auto_explain showed the scan).
        // Decided once per text: the search went through Foundation's NSString and cost ~4% of a gateway's CPU per call.
        var entry = statements[sql] ?? (0, nil, !Self.takesArray(sql))
        guard entry.preparable else { statements[sql] = entry; return nil }
        entry.uses += 1
        defer { statements[sql] = entry }
        guard entry.uses >= 2, preparedCount < 512 else { return nil }
        preparedCount += 1
        let name = "orchard_\(preparedCount)"
        _ = try rows(of: PQprepare(conn, name, sql, Int32(parameterCount), nil))
        entry.name = name
        return name
    }

    /// Whether the text has `ANY($`, searched as bytes (Swift's `contains` on strings goes through NSString here).
    static func takesArray(_ sql: String) -> Bool {
        sql.utf8.firstRange(of: "ANY($".utf8) != nil
    }

    /// Sends several statements in one round trip (libpq pipeline mode) and returns each one's rows.
    /// On an error, later statements are skipped by the server and the first error is thrown.
    func pipeline(_ batch: [(String, [SQLValue])]) throws -> [[Row]] {
        // Statements are prepared (when due) before the pipeline starts: PQprepare cannot run inside it.
        let names = try batch.map { sql, parameters in
            sql == "BEGIN" || sql == "COMMIT" ? nil : try preparedName(sql, parameterCount: parameters.count)
        }
        guard PQenterPipelineMode(conn) == 1 else { throw connectionError("cannot enter pipeline mode") }
        defer { PQexitPipelineMode(conn) }
        for ((sql, parameters), name) in zip(batch, names) {
            let sent: Int32 = withEncoded(parameters) { values, lengths, formats in
                if let name { return PQsendQueryPrepared(conn, name, Int32(parameters.count), values, lengths, formats, 0) }
                return PQsendQueryParams(conn, sql, Int32(parameters.count), nil, values, lengths, formats, 0)
            }
            guard sent == 1 else { throw connectionError("cannot send statement") }
        }
        guard PQpipelineSync(conn) == 1 else { throw connectionError("cannot sync pipeline") }
        var results: [[Row]] = []
        var firstError: (any Error)?
        for _ in batch {
            var rowsOfStatement: [Row] = []
            while let result = PQgetResult(conn) {
                if PQresultStatus(result) == PGRES_PIPELINE_ABORTED { PQclear(result); continue }
                do { rowsOfStatement = try rows(of: result) } catch { firstError = firstError ?? error }
            }
            results.append(rowsOfStatement)
        }
        // The sync marker ends the pipeline.
        while let result = PQgetResult(conn) {
            let status = PQresultStatus(result)
            PQclear(result)
            if status == PGRES_PIPELINE_SYNC { break }
        }
        if let firstError { throw firstError }
        return results
    }

    private func connectionError(_ what: String) -> PostgresError {
        PostgresError(message: "\(what): \(String(cString: PQerrorMessage(conn)))", sqlState: nil)
    }

    /// Opens a transaction that stays open across awaits (`Database.withHeldConnection`): BEGIN travels with
    /// `sql`, one round trip. End it with `commitOpenTransaction`; the pool rolls back one left open.
    public func beginOpenTransaction(_ sql: String, _ parameters: [SQLValue] = []) throws -> [Row] {
        try pipeline([("BEGIN", []), (sql, parameters)])[1]
    }

    /// Commits the transaction `beginOpenTransaction` opened, sending `statements` with the COMMIT (one round trip).
    public func commitOpenTransaction(_ statements: [(String, [SQLValue])] = []) throws {
        _ = try pipeline(statements + [("COMMIT", [])])
    }

    /// Runs SQL text without parameters, possibly several statements (migrations, SET).
    public func executeScript(_ sql: String) throws {
        if beginPending || !ahead.isEmpty {
            let batch = (beginPending ? [("BEGIN", [])] : []) + ahead
            beginPending = false
            ahead = []
            _ = try pipeline(batch)
        }
        _ = try rows(of: PQexec(conn, sql))
    }

    /// Runs body inside BEGIN/COMMIT; rolls back if it throws. BEGIN travels with the first statement
    /// and COMMIT with the statements queued by `queryAtCommit`, so a transaction costs fewer round trips.
    public func transaction<T>(_ body: (Connection) throws -> T) throws -> T {
        beginPending = true
        inTransaction = true
        deferred = []
        pendingRows = []
        ahead = []
        defer { inTransaction = false; beginPending = false; deferred = []; pendingRows = []; ahead = [] }
        do {
            let value = try body(self)
            // The statements `execute` queued go first, then those queued for the COMMIT.
            let first = (beginPending ? 1 : 0) + ahead.count
            let batch = (beginPending ? [("BEGIN", [])] : []) + ahead + deferred
            // The body ran no statement and queued none: there is nothing to commit.
            if beginPending && batch.count == 1 { return value }
            beginPending = false
            ahead = []
            let results = Array(try pipeline(batch + [("COMMIT", [])]).dropFirst(first))
            for (index, pending) in pendingRows { pending.rows = results[index] }
            return value
        } catch {
            ahead = []
            if !beginPending { try? executeScript("ROLLBACK") }
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

/// The rows of a statement sent with a transaction's COMMIT (`Connection.queryWithCommit`): empty until the
/// transaction has committed, and never filled if it failed.
public final class PendingRows: @unchecked Sendable {
    public internal(set) var rows: [Row] = []
}

/// Encodes parameters (text, or binary for bytea) into one buffer and pins it for the duration of a libpq call:
/// one allocation for all of a statement's parameters (it was three per parameter, ~4% of a gateway's CPU).
private func withEncoded<T>(_ parameters: [SQLValue],
                            _ body: ([UnsafePointer<CChar>?], [Int32], [Int32]) -> T) -> T {
    var storage: [UInt8] = []
    storage.reserveCapacity(parameters.count * 24)
    var offsets: [Int?] = []
    offsets.reserveCapacity(parameters.count)
    var lengths: [Int32] = []
    lengths.reserveCapacity(parameters.count)
    var formats: [Int32] = []
    formats.reserveCapacity(parameters.count)
    func text<S: Sequence>(_ utf8: S) where S.Element == UInt8 {
        let start = storage.count
        offsets.append(start)
        storage.append(contentsOf: utf8)
        storage.append(0)
        lengths.append(Int32(storage.count - start))
        formats.append(0)
    }
    for value in parameters {
        switch value {
        case .text(let s): text(s.utf8)
        case .int(let i): text(String(i).utf8)
        case .bool(let b): text((b ? "true" : "false").utf8)
        case .timestamp(let d): text(formatTimestamp(d).utf8)
        case .bytes(let b):
            offsets.append(storage.count)
            storage.append(contentsOf: b)
            lengths.append(Int32(b.count))
            formats.append(1)
        case .null:
            offsets.append(nil)
            lengths.append(0)
            formats.append(0)
        }
    }
    storage.append(0)   // never empty, so an empty bytea at the end points into the buffer
    return storage.withUnsafeBufferPointer { buffer in
        let base = UnsafeRawPointer(buffer.baseAddress!)
        let pointers = offsets.map { $0.map { (base + $0).assumingMemoryBound(to: CChar.self) } }
        return body(pointers, lengths, formats)
    }
}
