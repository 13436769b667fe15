import Foundation
import OrchardTestSupport
import XCTest

/// Account-driven enrollment, items 1 and 2: Managed Apple Account domains in the admin API, and the service
/// discovery a device does first (`/.well-known/com.apple.remotemanagement`), answered by user-enrollment-auth.
final class AccountDiscoveryTests: XCTestCase {
    func testAKnownDomainAnswersItsServerAndAnyOtherIsRefusedAsAppleSpecifies() async throws {
        let stack = try await Fixture.shared.prepare()
        let auth = try TestEnvironment.require("ORCHARD_URL_USER_ENROLLMENT_AUTH")
        let tag = UUID().uuidString.prefix(6).lowercased()
        let byod = "byod-\(tag).example.com", adde = "corp-\(tag).example.com"
        func discover(_ query: String) async throws -> HTTPResult {
            try await http(.GET, "\(auth)/.well-known/com.apple.remotemanagement?\(query)")
        }

        try await step("1. The administrator adds a User Enrollment domain and a Device Enrollment domain (minimum OS defaults, one changed)") {
            let saved = try await stack.admin.expect(.PUT, "/account-domains/\(byod.uppercased())", json: ["mode": "mdm-byod"])
            XCTAssertEqual(saved["domain"] as? String, byod, "stored lowercased")
            XCTAssertEqual(saved["minimumOS"] as? [String: String], ["iOS": "18.2", "iPadOS": "18.2", "macOS": "15.2"])
            XCTAssertNotNil(saved["registeredWithABM"] as? Bool, "the admin API says whether ABM has the discovery URL")
            XCTAssertEqual(saved["discoveryURL"] as? String, "\(auth)/.well-known/com.apple.remotemanagement")
            let corp = try await stack.admin.expect(.PUT, "/account-domains/\(adde)", json: ["mode": "mdm-adde", "minimumOS": ["macOS": "15.4"]])
            XCTAssertEqual((corp["minimumOS"] as? [String: String])?["macOS"], "15.4")
            for (path, body, why) in [("/account-domains/\(byod)", ["mode": "mdm-user"], "mode"),
                                      ("/account-domains/not_a_domain", ["mode": "mdm-byod"], "domain name"),
                                      ("/account-domains/\(byod)", ["mode": "mdm-byod", "minimumOS": ["iOS": "eighteen"]], "minimumOS"),
                                      ("/account-domains/\(byod)", ["mode": "mdm-byod", "minimumOS": ["watchOS": "11"]], "minimumOS")] as [(String, [String: Any], String)] {
                let refused = try await stack.admin.call(.PUT, path, json: body)
                XCTAssertEqual(refused.status, 400, "\(why): \(refused.text)")
                XCTAssertTrue(refused.text.contains(why), refused.text)
            }
            let listed = try await stack.admin.expect(.GET, "/account-domains")["items"] as? [[String: Any]] ?? []
            XCTAssertEqual(listed.first { $0["domain"] as? String == byod }?["mode"] as? String, "mdm-byod", "a refused change changed nothing")
        }

        try await step("2. A device with a Managed Apple Account of a known domain learns its enrollment server") {
            let answer = try await discover("user-identifier=anne@\(byod)&model-family=iPhone")
            XCTAssertEqual(answer.status, 200, answer.text)
            XCTAssertEqual(answer.headers["content-type"], "application/json")
            let servers = try XCTUnwrap(try answer.json()["Servers"] as? [[String: Any]])
            XCTAssertEqual(servers.count, 1)
            XCTAssertEqual(servers.first?["Version"] as? String, "mdm-byod")
            XCTAssertEqual(servers.first?["BaseURL"] as? String, "\(stack.gateway)/mdm/account/enroll/\(byod)")
            let corp = try await discover("user-identifier=\("it+mac@".addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)\(adde)&model-family=Mac")
            XCTAssertEqual((try corp.json()["Servers"] as? [[String: Any]])?.first?["Version"] as? String, "mdm-adde")
        }

        try await step("3. Unknown domain, no account, unknown model family, a removed domain: 403 com.apple.well-known.failed") {
            _ = try await stack.admin.call(.DELETE, "/account-domains/\(adde)")
            for query in ["user-identifier=anne@unknown-\(tag).example.com", "model-family=iPhone", "user-identifier=anne",
                          "user-identifier=anne@\(byod)&model-family=Toaster", "user-identifier=it@\(adde)&model-family=Mac",
                          "user-identifier=@\(byod)"] {
                let answer = try await discover(query)
                XCTAssertEqual(answer.status, 403, "\(query): \(answer.text)")
                let document = try answer.json()
                XCTAssertEqual(document["code"] as? String, "com.apple.well-known.failed", query)
                XCTAssertNotNil(document["message"] as? String)
                XCTAssertEqual(Set(document.keys).subtracting(["code", "description", "message"]), [], "only the keys Apple's schema has")
            }
        }

        try await step("4. Hostile queries (raw bytes, broken percent-encoding, huge and repeated parameters): a 4xx, never a 5xx") {
            var random = SplitMix64(seed: 0x11)
            var queries = ["user-identifier=%FF%FE@\(byod)", "user-identifier=a%40\(byod)", "user-identifier=a@\(byod)&user-identifier=b@x.y",
                           "user-identifier=" + String(repeating: "a", count: 20_000) + "@\(byod)", "user-identifier=a@@@", "user-identifier=%",
                           "user-identifier=a@\(byod).", "user-identifier=a@-\(byod)", "model-family=&user-identifier=&"]
            for _ in 0..<150 {
                let length = Int(random.next() % 80)
                let alphabet = Array("abc@%.-_=&+/\\'\"<>;:0123456789ABCDEFéü")
                queries.append(String((0..<length).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] })
                    .addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? "x")
            }
            for query in queries {
                let answer = try await discover(query)
                XCTAssertTrue([200, 400, 403, 414, 431].contains(answer.status), "\(query.prefix(80)) → \(answer.status)")
            }
            let health = try await http(.GET, "\(auth)/healthz")
            XCTAssertEqual(health.status, 200)
        }

        try await step("5. A flood from one address is answered every time, but only 30 entries a minute reach the activity log") {
            let flood = "flood-\(tag)@\(byod)"
            for _ in 0..<45 {
                let answer = try await http(.GET, "\(auth)/.well-known/com.apple.remotemanagement?user-identifier=\(flood)&model-family=iPhone",
                                            headers: [("X-Forwarded-For", "203.0.113.77")])
                XCTAssertEqual(answer.status, 200)
            }
            var count = 0
            _ = try await eventually(timeout: 60) {
                let page = try await stack.admin.expect(.GET, "/activity?limit=500&action=account.discovery")
                count = (page["items"] as? [[String: Any]] ?? []).filter { ($0["detail"] as? String ?? "").contains(flood) }.count
                return count >= 30
            }
            XCTAssertEqual(count, 30, "the activity budget of one address")
        }

        try await step("5. The activity log has each change") {
            let logged = await eventually {
                let items = (try? await stack.admin.expect(.GET, "/activity?limit=500"))?["items"] as? [[String: Any]] ?? []
                let mine = Set(items.filter { ($0["detail"] as? String ?? "").contains(tag) }.compactMap { $0["action"] as? String })
                return mine.isSuperset(of: ["account-domain.created", "account-domain.deleted"])
            }
            XCTAssertTrue(logged)
        }
    }

    /// Item 2's ABM part: abm-sync registers user-enrollment-auth's discovery URL with ABM
    /// (`POST /account-driven-enrollment/profile`) for each connected server token, and the admin API says so.
    func testTheDiscoveryURLIsRegisteredWithABMForEachConnectedServer() async throws {
        let stack = try await Fixture.shared.prepare()
        let auth = try TestEnvironment.require("ORCHARD_URL_USER_ENROLLMENT_AUTH")
        let standIn = try ABMStandIn()
        let consumerKey = "CK_adde_\(UUID().uuidString.prefix(6))"
        let tokenID = try await uploadedToken(stack, standIn: standIn, consumerKey: consumerKey)
        let discovery = "\(auth)/.well-known/com.apple.remotemanagement"
        let registered = try await standInJSON(standIn, "discovery?consumer_key=\(consumerKey)") as? [String: Any]
        XCTAssertEqual(registered?["mdm_service_discovery_url"] as? String, discovery, "ABM has the discovery URL once the token is connected")
        let tokens = try await stack.admin.expect(.GET, "/abm/tokens")["items"] as? [[String: Any]] ?? []
        let token = try unwrap(tokens.first { $0["id"] as? String == tokenID })
        XCTAssertEqual(token["discoveryURL"] as? String, discovery)
        XCTAssertNotNil(token["discoveryRegisteredAt"] as? String)
        let domain = "reg-\(UUID().uuidString.prefix(6).lowercased()).example.com"
        let saved = try await stack.admin.expect(.PUT, "/account-domains/\(domain)", json: ["mode": "mdm-byod"])
        XCTAssertEqual(saved["registeredWithABM"] as? Bool, true)
        _ = try await stack.admin.call(.DELETE, "/account-domains/\(domain)")
    }
}
