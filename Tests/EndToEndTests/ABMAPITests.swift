import AppleProtocol
import Foundation
import OrchardCrypto
import OrchardTestSupport
import XCTest

/// The Apple Business Manager API against its stand-in (Deploy/standins/abm_api_standin.py, as strict as Apple documents
/// it): an API account whose key Apple accepts; the organisation's inventory of 10,000 devices read page by page through
/// expiring tokens and rate limits; its device management services; a bulk assignment job and its outcome.
final class ABMAPITests: XCTestCase {
    let standIn = "http://127.0.0.1:\(ProcessInfo.processInfo.environment["ORCHARD_TEST_ABM_API_PORT"] ?? "18447")"

    func control(_ path: String, _ json: [String: Any]) async throws {
        let answer = try await http(.POST, "\(standIn)/_control/\(path)", headers: [("Content-Type", "application/json")],
                                    body: Array(try JSONSerialization.data(withJSONObject: json)))
        XCTAssertEqual(answer.status, 204, answer.text)
    }

    /// A P-256 key as Apple Business Manager hands it out (PKCS#8 PEM), and its public key (for the stand-in).
    func keyPair() throws -> (privatePEM: String, publicPEM: String) {
        let pem = String(decoding: try PrivateKey.generateP256().pemRepresentation(), as: UTF8.self)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("orchard-abmapi-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let keyFile = dir.appendingPathComponent("key.pem")
        try Data(pem.utf8).write(to: keyFile)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = ["pkey", "-in", keyFile.path, "-pubout"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (pem, String(decoding: out, as: UTF8.self))
    }

    func testAnAPIAccountReadsTheInventoryAndAssignsDevicesInBulk() async throws {
        let stack = try await Fixture.shared.prepare()
        let tag = UUID().uuidString.prefix(6).uppercased()
        let clientID = "BUSINESSAPI.\(UUID().uuidString.lowercased())", keyID = UUID().uuidString.lowercased()
        let (privatePEM, publicPEM) = try keyPair()
        try await control("accounts", ["client_id": clientID, "key_id": keyID, "public_key_pem": publicPEM, "scope": "business.api"])
        let account = "acme-\(tag.lowercased())"
        let path = "/abm/api-accounts/\(account)"
        func listed() async throws -> Bool {
            let items = try await stack.admin.expect(.GET, "/abm/api-accounts")["items"] as? [[String: Any]] ?? []
            return items.contains { $0["id"] as? String == account }
        }

        try await step("1. A key that is not the client id's, an expired client assertion, another scope, no credential: 400, nothing stored") {
            let other = try keyPair().privatePEM
            let wrongKey = try await stack.admin.call(.PUT, path, json: ["clientID": clientID, "keyID": keyID, "privateKey": other])
            XCTAssertEqual(wrongKey.status, 400, wrongKey.text)
            XCTAssertTrue(wrongKey.text.contains("invalid_client"), wrongKey.text)
            // An assertion made elsewhere (as Apple's sample script does), signed with the right key, expired yesterday.
            let expired = try Self.assertion(clientID: clientID, keyID: keyID, privatePEM: privatePEM, issuedAt: Date().addingTimeInterval(-2 * 86400),
                                             lifetime: 86400)
            let stale = try await stack.admin.call(.PUT, path, json: ["clientID": clientID, "keyID": keyID, "clientAssertion": expired])
            XCTAssertEqual(stale.status, 400, stale.text)
            XCTAssertTrue(stale.text.contains("expired"), stale.text)
            let school = try await stack.admin.call(.PUT, path, json: ["clientID": clientID, "keyID": keyID, "privateKey": privatePEM, "scope": "school.api"])
            XCTAssertEqual(school.status, 400, school.text)
            XCTAssertTrue(school.text.contains("invalid_scope"), school.text)
            let nothing = try await stack.admin.call(.PUT, path, json: ["clientID": clientID, "keyID": keyID])
            XCTAssertEqual(nothing.status, 400, nothing.text)
            let notPEM = try await stack.admin.call(.PUT, path, json: ["clientID": clientID, "keyID": keyID, "privateKey": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"])
            XCTAssertEqual(notPEM.status, 400, notPEM.text)
            let stored = try await listed()
            XCTAssertFalse(stored, "nothing was stored")
        }

        try await step("2. The account's own key: Apple gives a token; the account is stored, its key never shown") {
            let saved = try await stack.admin.expect(.PUT, path, json: ["clientID": clientID, "keyID": keyID, "privateKey": privatePEM])
            XCTAssertEqual(saved["credential"] as? String, "key")
            XCTAssertEqual(saved["scope"] as? String, "business.api")
            let all = String(decoding: try JSONSerialization.data(withJSONObject: try await stack.admin.expect(.GET, "/abm/api-accounts")), as: UTF8.self)
            XCTAssertFalse(all.contains("PRIVATE KEY"), "the key is not shown")
            // A valid assertion made elsewhere is accepted too.
            let made = try Self.assertion(clientID: clientID, keyID: keyID, privatePEM: privatePEM, issuedAt: Date(), lifetime: 180 * 86400 - 60)
            let second = try await stack.admin.expect(.PUT, "\(path)-assertion", json: ["clientID": clientID, "keyID": keyID, "clientAssertion": made])
            XCTAssertEqual(second["credential"] as? String, "assertion")
            XCTAssertNotNil(second["assertionExpiresAt"] as? String)
        }

        try await step("3. The inventory of 10,000 devices, page by page, through tokens that expire every 2 s and a rate limit of 4 calls/s") {
            try await control("devices", ["prefix": "API\(tag)", "count": 10_000])
            try await control("tokens/expire", [:])
            try await control("token-lifetime", ["seconds": 2])
            try await control("rate", ["per_second": 4])
            let before = try await http(.GET, "\(standIn)/_control/stats").json()
            let synced = try await stack.admin.expect(.POST, "\(path)/inventory/sync")
            let after = try await http(.GET, "\(standIn)/_control/stats").json()
            try await control("token-lifetime", ["seconds": 3600])
            try await control("rate", ["per_second": 400])
            XCTAssertGreaterThan(synced["throttled"] as? Int ?? 0, 0, "429s were waited out")
            XCTAssertGreaterThanOrEqual(synced["devices"] as? Int ?? 0, 10_000)
            XCTAssertGreaterThanOrEqual(synced["pages"] as? Int ?? 0, 10)
            XCTAssertGreaterThan((after["tokens"] as? Int ?? 0) - (before["tokens"] as? Int ?? 0), 0, "new tokens as the old ones expired")
            let page = try await stack.admin.expect(.GET, "\(path)/devices?after=API\(tag)0004999&limit=2")["items"] as? [[String: Any]] ?? []
            XCTAssertEqual(page.first?["serialNumber"] as? String, "API\(tag)0005000")
            XCTAssertNotNil(page.first?["partNumber"] as? String, "what the device-assignment API lacks: part and order numbers")
            XCTAssertNotNil(page.first?["orderNumber"] as? String)
            XCTAssertEqual(page.first?["status"] as? String, "UNASSIGNED")
        }

        try await step("4. The organisation's device management services, and a bulk assignment: two jobs of ≤1,000, unknown serials not sent") {
            try await control("token-lifetime", ["seconds": 3600])
            try await control("rate", ["per_second": 400])
            let servers = try await stack.admin.expect(.GET, "\(path)/mdm-servers")["items"] as? [[String: Any]] ?? []
            XCTAssertEqual(Set(servers.compactMap { $0["id"] as? String }), ["MDM-ORCHARD", "MDM-OTHER"])
            let serials = (0..<1500).map { String(format: "API\(tag)%07d", $0) } + ["NOPE\(tag)1", "NOPE\(tag)2"]
            let started = try await stack.admin.expect(.POST, "\(path)/assignments", json: ["mdmServerID": "MDM-ORCHARD", "serials": serials])
            let ids = started["activityIDs"] as? [String] ?? []
            XCTAssertEqual(ids.count, 2, "1,500 devices: two jobs")
            let outcomes = started["outcomes"] as? [String: String] ?? [:]
            XCTAssertEqual(outcomes.values.filter { $0 == "SUBMITTED" }.count, 1500)
            XCTAssertEqual(outcomes["NOPE\(tag)1"], "NOT_IN_ORGANIZATION")
            var job: [String: Any] = [:]
            let done = await eventually(timeout: 30) {
                job = (try? await stack.admin.expect(.GET, "\(path)/assignments/\(ids[0])")) ?? [:]
                return job["status"] as? String == "COMPLETED"
            }
            XCTAssertTrue(done, "\(job)")
            XCTAssertEqual((job["outcomes"] as? [String: String])?.count, 1000)
            let badServer = try await stack.admin.call(.POST, "\(path)/assignments", json: ["mdmServerID": "MDM-NOWHERE", "serials": [serials[0]]])
            XCTAssertEqual(badServer.status, 404, badServer.text)
            let unknown = try await stack.admin.call(.GET, "/abm/api-accounts/nobody-\(tag.lowercased())/devices")
            XCTAssertEqual(unknown.status, 404, unknown.text)
            let resynced = try await stack.admin.expect(.POST, "\(path)/inventory/sync")
            XCTAssertGreaterThanOrEqual(resynced["devices"] as? Int ?? 0, 10_000)
            let assigned = try await stack.admin.expect(.GET, "\(path)/devices?after=API\(tag)0000000&limit=1")["items"] as? [[String: Any]] ?? []
            XCTAssertEqual(assigned.first?["status"] as? String, "ASSIGNED", "the inventory shows the finished job")
        }
    }

    /// A client assertion as Apple's documentation describes it, made here with openssl-independent code (CryptoKit's
    /// P-256 from swift-crypto is what Orchard uses too, so the check that matters is the stand-in's openssl verify).
    static func assertion(clientID: String, keyID: String, privatePEM: String, issuedAt: Date, lifetime: TimeInterval) throws -> String {
        let header = try JSONSerialization.data(withJSONObject: ["alg": "ES256", "kid": keyID, "typ": "JWT"])
        let iat = Int(issuedAt.timeIntervalSince1970)
        let claims = try JSONSerialization.data(withJSONObject: ["sub": clientID, "iss": clientID, "aud": "https://account.apple.com/auth/oauth2/v2/token",
                                                                 "iat": iat, "exp": iat + Int(lifetime), "jti": UUID().uuidString] as [String: Any],
                                                options: [.withoutEscapingSlashes])
        let input = base64URL(Array(header)) + "." + base64URL(Array(claims))
        // openssl signs (DER ECDSA); the JWS form is r || s.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("orchard-assert-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data(privatePEM.utf8).write(to: dir.appendingPathComponent("k.pem"))
        try Data(input.utf8).write(to: dir.appendingPathComponent("in"))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = ["dgst", "-sha256", "-sign", dir.appendingPathComponent("k.pem").path, dir.appendingPathComponent("in").path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let der = Array(pipe.fileHandleForReading.readDataToEndOfFile())
        process.waitUntilExit()
        return input + "." + base64URL(rawSignature(der))
    }

    /// DER ECDSA-Sig-Value → r || s, 32 bytes each.
    static func rawSignature(_ der: [UInt8]) -> [UInt8] {
        var i = 2
        func integer() -> [UInt8] {
            let length = Int(der[i + 1])
            var value = Array(der[(i + 2)..<(i + 2 + length)])
            i += 2 + length
            while value.count > 32 && value.first == 0 { value.removeFirst() }
            return Array(repeating: 0, count: 32 - value.count) + value
        }
        let r = integer(), s = integer()
        return r + s
    }
}
