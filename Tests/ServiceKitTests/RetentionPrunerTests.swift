import Foundation
import Logging
import OrchardServiceKit
import OrchardStorage
import XCTest

/// Against the PostgreSQL started by Deploy/test.sh: only rows past their retention go, in batches.
final class RetentionPrunerTests: XCTestCase {
    func testDeletesOnlyExpiredRowsInBatches() async throws {
        guard let url = ProcessInfo.processInfo.environment["ORCHARD_DATABASE_URL"] else {
            XCTFail("ORCHARD_DATABASE_URL is not set: run the tests with ./Deploy/test.sh")
            return
        }
        let schema = "pruner_test_\(UUID().uuidString.prefix(8).lowercased())"
        let database = try Database(conninfo: url, schema: schema, maxConnections: 2)
        try await database.migrate([Migration(1, "tokens", "CREATE TABLE tokens (id serial PRIMARY KEY, expires_at timestamptz NOT NULL)")])
        try await database.query("""
            INSERT INTO tokens (expires_at)
            SELECT now() - interval '2 days' FROM generate_series(1, 2500)
            UNION ALL SELECT now() + interval '1 hour' FROM generate_series(1, 30)
            UNION ALL SELECT now() - interval '1 hour' FROM generate_series(1, 20)
            """)
        let pruner = RetentionPruner(database: database, rules: [
            .init(name: "old tokens", deleteBatch: """
                DELETE FROM tokens WHERE id IN (SELECT id FROM tokens WHERE expires_at < now() - interval '1 day' LIMIT 1000) RETURNING 1
                """, batchSize: 1000),
        ], logger: Logger(label: "test"))
        let deleted = try await pruner.pruneOnce()
        XCTAssertEqual(deleted["old tokens"], 2500, "three batches of up to 1000")
        let left = try await database.query("SELECT count(*)::int AS n FROM tokens").first?.int("n")
        XCTAssertEqual(left, 50, "unexpired rows and rows expired less than a day ago stay")
        let again = try await pruner.pruneOnce()
        XCTAssertEqual(again["old tokens"], 0)
        try await database.query("DROP SCHEMA \(schema) CASCADE")
    }
}
