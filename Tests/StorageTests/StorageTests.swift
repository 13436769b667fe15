import Foundation
@testable import OrchardStorage
import XCTest

/// Against the real PostgreSQL started by Deploy/test.sh (ORCHARD_DATABASE_URL).
final class StorageTests: XCTestCase {
    var url: String!

    override func setUpWithError() throws {
        guard let url = ProcessInfo.processInfo.environment["ORCHARD_DATABASE_URL"] else {
            XCTFail("ORCHARD_DATABASE_URL is not set: run the tests with ./Deploy/test.sh")
            throw XCTSkip("no database")
        }
        self.url = url
    }

    /// A fresh schema per test, so tests do not see each other's rows.
    func makeDatabase(maxConnections: Int = 4) async throws -> Database {
        let schema = "storage_test_\(UUID().uuidString.prefix(8).lowercased())"
        let db = try Database(conninfo: url, schema: schema, maxConnections: maxConnections)
        try await db.migrate([Migration(1, "things", """
            CREATE TABLE things (id bigserial PRIMARY KEY, name text NOT NULL UNIQUE, blob bytea,
                                 flag boolean, at timestamptz)
            """)])
        return db
    }

    func testParametersAreNeverSQL() async throws {
        let db = try await makeDatabase()
        let hostile = "x'); DROP TABLE things; --"
        try await db.query("INSERT INTO things (name) VALUES ($1)", [.text(hostile)])
        let rows = try await db.query("SELECT name FROM things WHERE name = $1", [.text(hostile)])
        XCTAssertEqual(rows.first?.string("name"), hostile)
        let value1 = try await db.query("SELECT count(*) AS n FROM things").first?.int("n")
        XCTAssertEqual(value1, 1)
        await db.shutdown()
    }

    func testTypesRoundTrip() async throws {
        let db = try await makeDatabase()
        let blob: [UInt8] = [0, 1, 2, 0xFE, 0xFF, 0x5C, 0x78]
        let at = Date(timeIntervalSince1970: 1_795_000_000.25)
        try await db.query("INSERT INTO things (name, blob, flag, at) VALUES ($1, $2, $3, $4)",
                           [.text("ünïcode ✓"), .bytes(blob), .bool(true), .timestamp(at)])
        try await db.query("INSERT INTO things (name, blob) VALUES ($1, $2)", [.text("empty"), .bytes([])])
        let rows = try await db.query("SELECT * FROM things WHERE name = $1", [.text("ünïcode ✓")])
        let row = try XCTUnwrap(rows.first)
        XCTAssertEqual(row.bytes("blob"), blob)
        XCTAssertEqual(row.bool("flag"), true)
        XCTAssertEqual(try XCTUnwrap(row.date("at")).timeIntervalSince1970, at.timeIntervalSince1970, accuracy: 0.001)
        let emptyRows = try await db.query("SELECT blob, flag FROM things WHERE name = 'empty'")
        let empty = try XCTUnwrap(emptyRows.first)
        XCTAssertEqual(empty.bytes("blob"), [])
        XCTAssertTrue(empty.isNull("flag"))
        await db.shutdown()
    }

    func testTransactionRollsBackOnError() async throws {
        let db = try await makeDatabase()
        struct Boom: Error {}
        do {
            try await db.transaction { c in
                try c.query("INSERT INTO things (name) VALUES ('kept?')")
                throw Boom()
            }
            XCTFail("expected the error")
        } catch is Boom {}
        let value2 = try await db.query("SELECT count(*) AS n FROM things").first?.int("n")
        XCTAssertEqual(value2, 0)
        // The connection went back to the pool clean and keeps working.
        try await db.query("INSERT INTO things (name) VALUES ('after')")
        let value3 = try await db.query("SELECT count(*) AS n FROM things").first?.int("n")
        XCTAssertEqual(value3, 1)
        await db.shutdown()
    }

    func testStatementsQueuedForCommitAreAtomicWithTheTransaction() async throws {
        let db = try await makeDatabase()
        try await db.transaction { c in
            try c.query("INSERT INTO things (name) VALUES ('first')")
            try c.queryAtCommit("INSERT INTO things (name) VALUES ('deferred')")
            // Not sent yet: the transaction does not see it before COMMIT.
            XCTAssertEqual(try c.query("SELECT count(*) AS n FROM things").first?.int("n"), 1)
        }
        let afterCommit = try await db.query("SELECT count(*) AS n FROM things")
        XCTAssertEqual(afterCommit.first?.int("n"), 2)
        do {
            try await db.transaction { c in
                try c.query("INSERT INTO things (name) VALUES ('rolled back')")
                try c.queryAtCommit("INSERT INTO things (name) VALUES ('first')")   // unique violation at commit
            }
            XCTFail("expected the deferred statement to fail")
        } catch let error as PostgresError {
            XCTAssertTrue(error.isUniqueViolation, "\(error)")
        }
        let afterFailure = try await db.query("SELECT name FROM things ORDER BY name")
        XCTAssertEqual(afterFailure.compactMap { $0.string("name") }, ["deferred", "first"], "nothing of the failed transaction stays")
        // Statements reused on a connection are prepared; results stay right across many uses.
        for i in 0..<20 {
            let rows = try await db.query("SELECT $1::int + 1 AS n", [.int(i)])
            XCTAssertEqual(rows.first?.int("n"), i + 1)
        }
        await db.shutdown()
    }

    func testRowsReadWithTheCommitArriveOnlyWhenItSucceeded() async throws {
        let db = try await makeDatabase()
        let pending = try await db.transaction { c in
            try c.query("INSERT INTO things (name) VALUES ('a')")
            let pending = try c.queryWithCommit("UPDATE things SET flag = true WHERE name = 'a' RETURNING name, flag")
            XCTAssertTrue(pending.rows.isEmpty, "not sent before the COMMIT")
            // Queued after it, sent after it: it sees the UPDATE.
            try c.queryAtCommit("INSERT INTO things (name, flag) SELECT 'b', flag FROM things WHERE name = 'a'")
            return pending
        }
        XCTAssertEqual(pending.rows.first?.string("name"), "a")
        XCTAssertEqual(pending.rows.first?.bool("flag"), true)
        let b = try await db.query("SELECT flag FROM things WHERE name = 'b'").first?.bool("flag")
        XCTAssertEqual(b, true, "statements queued for the commit run in the order they were queued")
        // A failure at commit: nothing is stored and the rows never arrive.
        let box = PendingBox()
        do {
            try await db.transaction { c in
                box.pending = try c.queryWithCommit("INSERT INTO things (name) VALUES ('c') RETURNING name")
                try c.queryAtCommit("INSERT INTO things (name) VALUES ('a')")   // unique violation at commit
            }
            XCTFail("expected the unique violation")
        } catch let error as PostgresError {
            XCTAssertTrue(error.isUniqueViolation, "\(error)")
        }
        XCTAssertEqual(box.pending?.rows.count, 0)
        let names = try await db.query("SELECT name FROM things ORDER BY name").compactMap { $0.string("name") }
        XCTAssertEqual(names, ["a", "b"])
        await db.shutdown()
    }

    func testExecutedStatementsGoAheadOfTheNextAndFailTheTransaction() async throws {
        let db = try await makeDatabase(maxConnections: 1)
        // Queued, then the next statement (in the same round trip) sees its effect; rows read with the commit still
        // arrive where they belong when executed statements go out with the COMMIT too.
        let (seen, pending) = try await db.transaction { c -> ([Row], PendingRows) in
            try c.execute("INSERT INTO things (name, flag) VALUES ('a', true)")
            try c.execute("UPDATE things SET flag = false WHERE name = 'a'")
            let seen = try c.query("SELECT name, flag FROM things")
            let pending = try c.queryWithCommit("UPDATE things SET blob = '\\x01' WHERE name = 'b' RETURNING name")
            try c.execute("INSERT INTO things (name) VALUES ('b')")   // queued after the one above, so it goes first
            return (seen, pending)
        }
        XCTAssertEqual(seen.map { $0.string("name") }, ["a"])
        XCTAssertEqual(seen.first?.bool("flag"), false, "executed in order, before the SELECT")
        XCTAssertEqual(pending.rows.map { $0.string("name") }, ["b"], "the executed INSERT ran ahead of the commit's statements")
        // A transaction that only executes: its statements commit.
        try await db.transaction { c in try c.execute("INSERT INTO things (name) VALUES ('c')") }
        // A failing executed statement fails the statement it travelled with, and the whole transaction.
        do {
            try await db.transaction { c in
                try c.execute("INSERT INTO things (name) VALUES ('d')")
                try c.execute("INSERT INTO things (name) VALUES ('a')")   // unique violation
                _ = try c.query("SELECT 1 AS one")
                XCTFail("the SELECT travelled with the failing INSERT")
            }
            XCTFail("expected the unique violation")
        } catch let error as PostgresError {
            XCTAssertTrue(error.isUniqueViolation, "\(error)")
        }
        // And one that fails at the COMMIT.
        do {
            try await db.transaction { c in try c.execute("INSERT INTO things (name) VALUES ('a')") }
            XCTFail("expected the unique violation")
        } catch let error as PostgresError {
            XCTAssertTrue(error.isUniqueViolation, "\(error)")
        }
        let names = try await db.query("SELECT name FROM things ORDER BY name").compactMap { $0.string("name") }
        XCTAssertEqual(names, ["a", "b", "c"], "nothing of the failed transactions stayed")
        // The pool's one connection is usable after both failures, and outside a transaction execute runs at once.
        try await db.withConnection { c in try c.execute("INSERT INTO things (name) VALUES ('e')") }
        let count = try await db.query("SELECT count(*) AS n FROM things").first?.int("n")
        XCTAssertEqual(count, 4)
        await db.shutdown()
    }

    func testAHeldConnectionsOpenTransactionIsRolledBackWhenLeftOpen() async throws {
        let db = try await makeDatabase(maxConnections: 1)
        struct Boom: Error {}
        do {
            try await db.withHeldConnection { held in
                let rows = try await held.run { try $0.beginOpenTransaction("INSERT INTO things (name) VALUES ('held') RETURNING name") }
                XCTAssertEqual(rows.first?.string("name"), "held")
                try await Task.sleep(for: .milliseconds(1))   // an await while the transaction is open
                throw Boom()
            }
            XCTFail("expected the error")
        } catch is Boom {}
        // The pool's only connection came back without the transaction: nothing stored, and it works.
        var count = try await db.query("SELECT count(*) AS n FROM things").first?.int("n")
        XCTAssertEqual(count, 0)
        try await db.withHeldConnection { held in
            _ = try await held.run { try $0.beginOpenTransaction("INSERT INTO things (name) VALUES ('kept')") }
            try await held.run { try $0.commitOpenTransaction() }
        }
        count = try await db.query("SELECT count(*) AS n FROM things").first?.int("n")
        XCTAssertEqual(count, 1)
        await db.shutdown()
    }

    func testStatementsTakingAnArrayAreNeverPreparedOthersAre() async throws {
        let db = try await makeDatabase(maxConnections: 1)
        for i in 0..<8 {
            try await db.query("INSERT INTO things (name) VALUES ($1)", [.text("t\(i)")])
            let found = try await db.query("SELECT name FROM things WHERE name = ANY($1::text[])", [.text("{t\(i),t0}")])
            XCTAssertEqual(Set(found.compactMap { $0.string("name") }), Set(["t\(i)", "t0"]))
        }
        // The pool's one connection: what it prepared.
        let prepared = try await db.query("SELECT statement FROM pg_prepared_statements").compactMap { $0.string("statement") }
        XCTAssertTrue(prepared.contains { $0.contains("INSERT INTO things") }, "reused statements are prepared: \(prepared)")
        XCTAssertFalse(prepared.contains { $0.contains("ANY($1") }, "a generic plan for an array can scan the table: \(prepared)")
        await db.shutdown()
    }

    func testArrayParametersAreFoundInTheText() {
        XCTAssertTrue(Connection.takesArray("SELECT 1 FROM t WHERE id = ANY($1::text[])"))
        XCTAssertTrue(Connection.takesArray("WHERE a = 'ANY(' OR b = ANANY($12)"))
        XCTAssertTrue(Connection.takesArray("ANY($"))
        XCTAssertFalse(Connection.takesArray("SELECT 1 FROM t WHERE id = ANY ($1)"))
        XCTAssertFalse(Connection.takesArray("WHERE a = 'ANY(' AND b = $1"))
        XCTAssertFalse(Connection.takesArray("ANY("))
        XCTAssertFalse(Connection.takesArray(""))
    }

    func testUniqueViolationCarriesSQLState() async throws {
        let db = try await makeDatabase()
        try await db.query("INSERT INTO things (name) VALUES ('a')")
        do {
            try await db.query("INSERT INTO things (name) VALUES ('a')")
            XCTFail("expected a unique violation")
        } catch let error as PostgresError {
            XCTAssertTrue(error.isUniqueViolation, "\(error)")
        }
        do {
            try await db.query("SELEKT 1")
            XCTFail("expected a syntax error")
        } catch let error as PostgresError {
            XCTAssertEqual(error.sqlState, "42601")
        }
        await db.shutdown()
    }

    func testPoolServesMoreTasksThanConnections() async throws {
        let db = try await makeDatabase(maxConnections: 3)
        // 60 tasks at once, each holding its connection a little: all are served, by 3 server sessions at most.
        let backends = try await withThrowingTaskGroup(of: Int?.self) { group -> Set<Int> in
            for i in 0..<60 {
                group.addTask {
                    try await db.transaction { c -> Int? in
                        try c.query("INSERT INTO things (name) VALUES ($1)", [.text("t\(i)")])
                        return try c.query("SELECT pg_backend_pid() AS pid, pg_sleep(0.01)").first?.int("pid")
                    }
                }
            }
            var pids = Set<Int>()
            for try await pid in group { if let pid { pids.insert(pid) } }
            return pids
        }
        let value4 = try await db.query("SELECT count(*) AS n FROM things").first?.int("n")
        XCTAssertEqual(value4, 60)
        XCTAssertLessThanOrEqual(backends.count, 3, "never more connections than the cap: \(backends)")
        XCTAssertGreaterThanOrEqual(backends.count, 2, "the tasks did run side by side")
        await db.shutdown()
    }

    func testConcurrentMigrationsApplyOnce() async throws {
        let schema = "storage_migrate_\(UUID().uuidString.prefix(8).lowercased())"
        let migrations = [
            Migration(1, "create", "CREATE TABLE counter (n integer NOT NULL); INSERT INTO counter VALUES (0)"),
            Migration(2, "bump", "UPDATE counter SET n = n + 1"),
        ]
        // Five "replicas" start at once, each with its own pool.
        let url: String = self.url
        let applied = try await withThrowingTaskGroup(of: [Int].self) { group in
            for _ in 0..<5 {
                group.addTask {
                    let db = try Database(conninfo: url, schema: schema, maxConnections: 1)
                    let applied = try await db.migrate(migrations)
                    await db.shutdown()
                    return applied
                }
            }
            var all: [[Int]] = []
            for try await a in group { all.append(a) }
            return all
        }
        XCTAssertEqual(applied.filter { !$0.isEmpty }, [[1, 2]], "exactly one replica applies the migrations")
        let db = try Database(conninfo: url, schema: schema, maxConnections: 1)
        let value5 = try await db.query("SELECT n FROM counter").first?.int("n")
        XCTAssertEqual(value5, 1)
        let value6 = try await db.migrate(migrations + [Migration(3, "again", "UPDATE counter SET n = n + 10")])
        XCTAssertEqual(value6, [3])
        let value7 = try await db.query("SELECT n FROM counter").first?.int("n")
        XCTAssertEqual(value7, 11)
        await db.shutdown()
    }

    func testFailedMigrationLeavesNothingHalfApplied() async throws {
        let db = try await makeDatabase()
        do {
            try await db.migrate([Migration(2, "broken", "CREATE TABLE half (x int); SELECT no_such_function()")])
            XCTFail("expected failure")
        } catch is PostgresError {}
        let half = try await db.query("SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'half'",
                                      [.text(db.schema)])
        XCTAssertEqual(half.first?.int("n"), 0)
        let value8 = try await db.query("SELECT max(version) AS v FROM schema_migrations").first?.int("v")
        XCTAssertEqual(value8, 1)
        await db.shutdown()
    }

    func testBadConnectionStringIsAClearError() async throws {
        let db = try Database(conninfo: "postgres://nobody@127.0.0.1:1/none?connect_timeout=2", schema: "x", maxConnections: 1)
        do {
            try await db.query("SELECT 1")
            XCTFail("expected a connection error")
        } catch let error as PostgresError {
            XCTAssertTrue(error.message.contains("cannot connect"), error.message)
        }
        XCTAssertThrowsError(try Database(conninfo: url, schema: "bad; DROP", maxConnections: 1))
        await db.shutdown()
    }
}

private final class PendingBox: @unchecked Sendable {
    var pending: PendingRows?
}
