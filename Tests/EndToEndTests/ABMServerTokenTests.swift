import Foundation
import OrchardCrypto
import OrchardStorage
import OrchardTestSupport
import XCTest

/// Apple Business Manager server tokens (ADE issue, item 1), against the running gateway and abm-sync:
/// the admin creates an entry and uploads its certificate to ABM; ABM encrypts the server token to it.
final class ABMServerTokenTests: XCTestCase {
    func testServerTokenIsUploadedRenewedAndRefusedWhenForAnotherKey() async throws {
        let stack = try await Fixture.shared.prepare()
        let name = "Acme ABM \(UUID().uuidString.prefix(8))"

        let (id, certificate) = try await step("1. The admin creates a server-token entry and gets the certificate to upload to ABM") {
            let created = try await stack.admin.expect(.POST, "/abm/tokens", json: ["name": name])
            XCTAssertEqual(created["name"] as? String, name)
            XCTAssertEqual(created["state"] as? String, "awaiting-server-token")
            XCTAssertEqual(created["hasServerToken"] as? Bool, false)
            let certificate = try Certificate.parsePEM(Array(try unwrap(created["certificatePEM"] as? String).utf8))[0]
            XCTAssertEqual(certificate.sha256Fingerprint, created["certificateSHA256"] as? String)
            XCTAssertTrue(certificate.subject.contains("Orchard ABM server token"), certificate.subject)
            return (try unwrap(created["id"] as? String), certificate)
        }

        let expiry = Date().addingTimeInterval(365 * 86400)
        try await step("2. ABM's .p7m for that certificate is uploaded: the token is ready, its expiry and days left shown") {
            let p7m = try serverTokenFile(for: certificate, consumerKey: "CK_first", expiry: expiry)
            XCTAssertTrue(String(decoding: p7m, as: UTF8.self).hasPrefix("MIME-Version"), "S/MIME as ABM writes it")
            let uploaded = try await stack.admin.call(.PUT, "/abm/tokens/\(id)/server-token", body: p7m)
            XCTAssertEqual(uploaded.status, 200, uploaded.text)
            let health = try uploaded.json()
            XCTAssertEqual(health["hasServerToken"] as? Bool, true)
            XCTAssertEqual(health["consumerKey"] as? String, "CK_first")
            XCTAssertEqual(health["state"] as? String, "ok")
            XCTAssertEqual(health["daysLeft"] as? Int, 364)
            XCTAssertFalse(uploaded.text.contains("CS_secret") || uploaded.text.contains("AS_secret"), "no secret in the answer")
        }

        try await step("3. A .p7m for another entry's key, garbage, or an unknown entry: refused, nothing stored") {
            let other = try await stack.admin.expect(.POST, "/abm/tokens", json: ["name": "\(name) other"])
            let otherCertificate = try Certificate.parsePEM(Array(try unwrap(other["certificatePEM"] as? String).utf8))[0]
            let foreign = try await stack.admin.call(.PUT, "/abm/tokens/\(id)/server-token",
                                                     body: try serverTokenFile(for: otherCertificate, consumerKey: "CK_foreign", expiry: expiry))
            XCTAssertEqual(foreign.status, 422, foreign.text)
            XCTAssertTrue(foreign.text.contains("encrypted to another certificate"), foreign.text)
            let garbage = try await stack.admin.call(.PUT, "/abm/tokens/\(id)/server-token", body: Array("MIME-Version: 1.0\n\nnot base64!".utf8))
            XCTAssertEqual(garbage.status, 400, garbage.text)
            XCTAssertTrue(garbage.text.contains("not an ABM server token"), garbage.text)
            let unknown = try await stack.admin.call(.PUT, "/abm/tokens/\(UUID().uuidString)/server-token", body: Array("x".utf8))
            XCTAssertEqual(unknown.status, 404, unknown.text)
            let duplicate = try await stack.admin.call(.POST, "/abm/tokens", json: ["name": name])
            XCTAssertEqual(duplicate.status, 409, duplicate.text)
            let listed = try await stack.admin.expect(.GET, "/abm/tokens")["items"] as? [[String: Any]] ?? []
            let mine = try unwrap(listed.first { $0["id"] as? String == id })
            XCTAssertEqual(mine["consumerKey"] as? String, "CK_first", "the refused uploads changed nothing")
        }

        try await step("4. Renewal: a new .p7m for the same key replaces the token; secrets are sealed at rest") {
            let later = expiry.addingTimeInterval(30 * 86400)
            let renewed = try await stack.admin.call(.PUT, "/abm/tokens/\(id)/server-token",
                                                     body: try serverTokenFile(for: certificate, consumerKey: "CK_renewed", expiry: later))
            XCTAssertEqual(renewed.status, 200, renewed.text)
            XCTAssertEqual(try renewed.json()["consumerKey"] as? String, "CK_renewed")
            XCTAssertEqual(try renewed.json()["daysLeft"] as? Int, 394)
            let database = try Database(conninfo: try TestEnvironment.require("ORCHARD_DATABASE_URL"), schema: "abm_sync", maxConnections: 1)
            let row = try await database.query("SELECT sealed_server_token, sealed_private_key FROM abm_tokens WHERE id = $1::uuid",
                                               [.text(id)]).first
            await database.shutdown()
            let sealedToken = try unwrap(row?.bytes("sealed_server_token")), sealedKey = try unwrap(row?.bytes("sealed_private_key"))
            XCTAssertNil(String(decoding: sealedToken, as: UTF8.self).range(of: "CS_secret"))
            XCTAssertNil(String(decoding: sealedKey, as: UTF8.self).range(of: "PRIVATE KEY"))
        }

        try await step("5. The activity log shows the entry created, its token uploaded and renewed") {
            let logged = await eventually {
                let items = (try? await stack.admin.expect(.GET, "/activity?limit=500"))?["items"] as? [[String: Any]] ?? []
                let mine = items.filter { ($0["detail"] as? String ?? "").hasPrefix(name) && $0["service"] as? String == "abm-sync" }
                return Set(mine.compactMap { $0["action"] as? String }).isSuperset(of: ["abm-token.created", "abm-token.uploaded",
                                                                                        "abm-token.renewed"])
            }
            XCTAssertTrue(logged, "activity entries missing")
        }
    }
}

/// A token close to its expiry is warned about (activity entry, days-left gauge), once per threshold.
final class ABMTokenExpiryTests: XCTestCase {
    func testATokenExpiringSoonIsWarnedAboutOnce() async throws {
        let stack = try await Fixture.shared.prepare()
        let name = "expiring \(UUID().uuidString.prefix(8))"
        let created = try await stack.admin.expect(.POST, "/abm/tokens", json: ["name": name])
        let id = try unwrap(created["id"] as? String)
        let certificate = try Certificate.parsePEM(Array(try unwrap(created["certificatePEM"] as? String).utf8))[0]
        let file = try serverTokenFile(for: certificate, consumerKey: "CK_exp", expiry: Date().addingTimeInterval(5 * 86400 + 3600))
        let health = try await stack.admin.call(.PUT, "/abm/tokens/\(id)/server-token", body: file)
        XCTAssertEqual(try health.json()["state"] as? String, "expiring")
        XCTAssertEqual(try health.json()["daysLeft"] as? Int, 5)
        // The same token again (a renewal that did not move the date): warned again, once.
        _ = try await stack.admin.call(.PUT, "/abm/tokens/\(id)/server-token", body: file)
        var warnings: [[String: Any]] = []
        let warned = await eventually {
            let items = (try? await stack.admin.expect(.GET, "/activity?action=abm-token.expiring&limit=500"))?["items"] as? [[String: Any]] ?? []
            warnings = items.filter { ($0["detail"] as? String ?? "").hasPrefix(name) }
            return warnings.count == 2
        }
        XCTAssertTrue(warned, "\(warnings)")
        XCTAssertTrue((warnings.first?["detail"] as? String ?? "").contains("5 days left"), "\(warnings)")
        let metrics = try await http(.GET, "\(try TestEnvironment.require("ORCHARD_URL_ABM_SYNC"))/metrics").text
        XCTAssertTrue(metrics.contains(#"orchard_abm_token_days_left{token="\#(id)"} 5"#), String(metrics.suffix(800)))
    }
}

/// A server token as ABM makes it: the credentials' JSON between MESSAGE markers under MIME headers,
/// encrypted to `certificate` as S/MIME (`openssl smime -encrypt`, AES-256).
func serverTokenFile(for certificate: Certificate, consumerKey: String, expiry: Date) throws -> [UInt8] {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("orchard-p7m-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let formatter = ISO8601DateFormatter()
    let message = """
        Content-Type: text/plain;charset=UTF-8\r
        Content-Transfer-Encoding: 7bit\r
        \r
        -----BEGIN MESSAGE-----
        {"consumer_key":"\(consumerKey)","consumer_secret":"CS_secret","access_token":"AT_token","access_secret":"AS_secret","access_token_expiry":"\(formatter.string(from: expiry))"}
        -----END MESSAGE-----

        """
    try Data(message.utf8).write(to: dir.appendingPathComponent("message.txt"))
    try Data(try certificate.pemRepresentation()).write(to: dir.appendingPathComponent("cert.pem"))
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
    process.arguments = ["smime", "-encrypt", "-aes256", "-in", "message.txt", "-out", "token.p7m", "cert.pem"]
    process.currentDirectoryURL = dir
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw NSError(domain: "openssl", code: Int(process.terminationStatus)) }
    return Array(try Data(contentsOf: dir.appendingPathComponent("token.p7m")))
}

/// The token against Apple's API (the tests' stand-in, as strict as Apple about OAuth, sessions and headers).
final class ABMTokenCheckTests: XCTestCase {
    func testCheckCallsABMReauthenticatesWaitsOutThrottlingAndStopsOnNewTerms() async throws {
        let stack = try await Fixture.shared.prepare()
        let standIn = try ABMStandIn()
        let consumerKey = "CK_\(UUID().uuidString.prefix(8))"
        func control(_ path: String, _ json: [String: Any]) async throws { try await standIn.control(path, json) }
        func check(_ id: String) async throws -> [String: Any] {
            try await stack.admin.expect(.POST, "/abm/tokens/\(id)/check")
        }
        func seen() async throws -> [[String: Any]] { try await standIn.requests(consumerKey) }

        let id = try await step("1. A token ABM knows is uploaded; the check reads the organisation from GET /account") {
            let id = try await uploadedToken(stack, standIn: standIn, consumerKey: consumerKey)
            let health = try await check(id)
            XCTAssertEqual(health["organization"] as? String, "Acme Inc.")
            XCTAssertEqual(health["serverName"] as? String, "Orchard MDM")
            XCTAssertNil(health["lastError"] as? String)
            let calls = try await seen().map { "\($0["method"]!) \($0["path"]!) \($0["status"]!)" }
            // The upload registered the account-driven discovery URL; the check then called GET /account in the same session.
            XCTAssertEqual(calls, ["GET /session 200", "POST /account-driven-enrollment/profile 200", "GET /account 200"])
            return id
        }

        try await step("2. The session ends: one 401, a new /session, the call answered") {
            try await control("sessions/expire", [:])
            let health = try await check(id)
            XCTAssertNil(health["lastError"] as? String, "\(health)")
            let paths = try await seen().suffix(2).map { "\($0["path"]!) \($0["status"]!)" }
            XCTAssertEqual(paths, ["/session 200", "/account 200"])
        }

        try await step("2b. Twelve checks at once take turns in the session (ABM ends a session once it hands out the next)") {
            let before = try await seen()
            let admin = stack.admin
            try await withThrowingTaskGroup(of: String?.self) { group in
                for _ in 0..<12 { group.addTask { try await admin.expect(.POST, "/abm/tokens/\(id)/check")["lastError"] as? String } }
                for try await lastError in group { XCTAssertNil(lastError) }
            }
            let calls = try await seen().dropFirst(before.count)
            XCTAssertEqual(calls.map { "\($0["path"]!) \($0["status"]!)" }, Array(repeating: "/account 200", count: 12),
                           "no new session, no 401")
        }

        try await step("3. Throttled: 429 with Retry-After is waited out") {
            try await control("throttle", ["consumer_key": consumerKey, "count": 1, "retry_after": 1])
            let health = try await check(id)
            XCTAssertNil(health["lastError"] as? String, "\(health)")
            let statuses = try await seen().suffix(2).map { $0["status"] as? Int }
            XCTAssertEqual(statuses, [429, 200])
        }

        try await step("4. New terms in ABM (T_C_NOT_SIGNED): the token stops and says so, without retrying") {
            try await control("terms", ["consumer_key": consumerKey, "signed": false])
            let before = try await seen().count
            let health = try await check(id)
            XCTAssertEqual(health["termsNotSigned"] as? Bool, true)
            XCTAssertEqual(health["state"] as? String, "terms-not-signed")
            XCTAssertTrue((health["lastError"] as? String ?? "").contains("T_C_NOT_SIGNED"), "\(health)")
            let calls = try await seen().count - before
            XCTAssertEqual(calls, 1, "one call, no retry storm")
            try await control("terms", ["consumer_key": consumerKey, "signed": true])
            let again = try await check(id)
            XCTAssertEqual(again["termsNotSigned"] as? Bool, false)
            XCTAssertEqual(again["state"] as? String, "ok")
        }
    }
}

/// Key rotation (ADE issue, item 1): the new pair is staged first; the current key and server token keep
/// working until ABM's `.p7m` for the staged certificate is uploaded, which promotes it and drops the old key.
final class ABMKeyRotationTests: XCTestCase {
    func testTheNewKeyIsStagedAndReplacesTheOldOneOnlyWithItsServerToken() async throws {
        let stack = try await Fixture.shared.prepare()
        let standIn = try ABMStandIn()
        let consumerKey = "CK_rotate_\(UUID().uuidString.prefix(8))"
        let id = try await uploadedToken(stack, standIn: standIn, consumerKey: consumerKey)
        let before = try unwrap((try await stack.admin.expect(.GET, "/abm/tokens")["items"] as? [[String: Any]])?.first { $0["id"] as? String == id })
        let oldCertificate = try Certificate.parsePEM(Array(try unwrap(before["certificatePEM"] as? String).utf8))[0]

        let staged = try await stack.admin.expect(.POST, "/abm/tokens/\(id)/rotate-key")
        let stagedCertificate = try Certificate.parsePEM(Array(try unwrap(staged["stagedCertificatePEM"] as? String).utf8))[0]
        XCTAssertNotEqual(stagedCertificate.sha256Fingerprint, oldCertificate.sha256Fingerprint)
        XCTAssertEqual(staged["certificateSHA256"] as? String, oldCertificate.sha256Fingerprint, "the current key stays until then")
        // Meanwhile the token works as before (a check with ABM), and a renewal for the old key is still taken.
        let checked = try await stack.admin.expect(.POST, "/abm/tokens/\(id)/check")
        XCTAssertNil(checked["lastError"] as? String, "\(checked)")
        let renewedOld = try await stack.admin.call(.PUT, "/abm/tokens/\(id)/server-token", body: try serverTokenFile(
            for: oldCertificate, consumerKey: consumerKey, expiry: Date().addingTimeInterval(86400 * 300)))
        XCTAssertEqual(renewedOld.status, 200, renewedOld.text)
        XCTAssertNotNil(try renewedOld.json()["stagedCertificatePEM"] as? String, "still staged")

        // ABM's .p7m for the staged certificate promotes it.
        let rotated = try await stack.admin.call(.PUT, "/abm/tokens/\(id)/server-token", body: try serverTokenFile(
            for: stagedCertificate, consumerKey: consumerKey, expiry: Date().addingTimeInterval(86400 * 365)))
        XCTAssertEqual(rotated.status, 200, rotated.text)
        let health = try rotated.json()
        XCTAssertEqual(health["certificateSHA256"] as? String, stagedCertificate.sha256Fingerprint)
        XCTAssertNil(health["stagedCertificatePEM"] as? String)
        // The old key is gone: a .p7m for it is now another key's.
        let stale = try await stack.admin.call(.PUT, "/abm/tokens/\(id)/server-token", body: try serverTokenFile(
            for: oldCertificate, consumerKey: consumerKey, expiry: Date().addingTimeInterval(86400 * 365)))
        XCTAssertEqual(stale.status, 422, stale.text)
        let checkedAfter = try await stack.admin.expect(.POST, "/abm/tokens/\(id)/check")
        XCTAssertNil(checkedAfter["lastError"] as? String, "\(checkedAfter)")
        let logged = await eventually {
            let items = (try? await stack.admin.expect(.GET, "/activity?limit=500"))?["items"] as? [[String: Any]] ?? []
            let actions = Set(items.filter { ($0["detail"] as? String ?? "").contains(consumerKey) }.compactMap { $0["action"] as? String })
            return actions.isSuperset(of: ["abm-token.key-staged", "abm-token.key-rotated"])
        }
        XCTAssertTrue(logged)
    }
}
