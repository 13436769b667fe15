import Foundation
import Logging
import OrchardCrypto
import OrchardServiceKit
import OrchardStorage
import XCTest
@testable import CheckinGateway

/// Hardening issue 18, item 7: while PostgreSQL was away, a profile request could be answered "503 no push
/// certificate is installed yet" without Retry-After, because reading the push topic turned the database's error into
/// "no certificate". The error now reaches `DependencyFailure`: 503 with Retry-After.
final class PushTopicTests: XCTestCase {
    func testADatabaseThatIsAwayIsNotReadAsNoPushCertificate() async throws {
        // Nothing listens on port 9 of this machine: every query fails as an unreachable database does.
        let database = try Database(conninfo: "postgres://orchard@127.0.0.1:9/orchard?connect_timeout=2", schema: "checkin_gateway",
                                    maxConnections: 1)
        let certificates = PushCertificates(database: database, secrets: try SecretBox(key: try SecureRandom.bytes(32)))
        let pusher = APNsPusher(database: database, certificates: certificates, baseURL: "https://127.0.0.1:9", trustRoots: [],
                                logger: Logger(label: "test"))
        do {
            let topic = try await pusher.topic()
            XCTFail("a database that is away was read as no certificate: \(String(describing: topic))")
        } catch {
            let mapped = try XCTUnwrap(DependencyFailure.httpError(for: error), "\(error)")
            XCTAssertEqual(mapped.status, .serviceUnavailable)
            XCTAssertEqual(mapped.headers[.retryAfter], String(DependencyFailure.retryAfterSeconds))
        }
        await database.shutdown()
    }
}
