import AppleProtocol
import Foundation
import OrchardCore
import OrchardCrypto
import OrchardTestSupport
import XCTest

/// What the account-driven enrollment tests share: the two domains of the tests' directory (Tests/Fixtures/ldap,
/// a real slapd started by Deploy/test.sh), a device that signs its MachineInfo with its built-in identity, and the
/// two ways through the sign-in page (a real headless chromium, or plain HTTP with the form's cookie and CSRF field).
enum AccountEnrollment {
    static let byod = "byod.example.com", adde = "adde.example.com"
    static let passwords = ["alice": "alice-correct-horse", "bob": "bob-correct-horse", "carol": "carol-correct-horse",
                            "dave": "dave-correct-horse", "erin": "erin-correct-horse", "frank": "frank-correct-horse",
                            "gina": "gina-correct-horse"]
    static let oauth = "oauth.example.com"

    static var auth: String { get throws { try TestEnvironment.require("ORCHARD_URL_USER_ENROLLMENT_AUTH") } }

    /// Changes the tests' slapd as its administrator would (`ldapmodify` with an LDIF change record).
    static func ldapModify(_ ldif: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/ldapmodify")
        process.arguments = ["-x", "-H", try TestEnvironment.require("ORCHARD_TEST_LDAP_URL"), "-D", "cn=admin,dc=example,dc=com", "-w", "admin-secret"]
        let input = Pipe()
        process.standardInput = input
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        input.fileHandleForWriting.write(Data(ldif.utf8))
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw NSError(domain: "ldapmodify", code: Int(process.terminationStatus)) }
    }

    static func ldapSettings() throws -> [String: Any] {
        ["url": try TestEnvironment.require("ORCHARD_TEST_LDAP_URL"), "baseDN": "ou=people,dc=example,dc=com",
         "userFilter": "(mail={user})", "disabledFilter": "(employeeType=disabled)",
         "bindDN": "uid=orchard,ou=people,dc=example,dc=com", "bindPassword": "orchard-search-secret"]
    }

    /// Both domains, signed in against the tests' slapd (idempotent: every test may call it).
    static func configureDomains(_ stack: Fixture.Ready) async throws {
        for (domain, mode) in [(byod, "mdm-byod"), (adde, "mdm-adde")] {
            _ = try await stack.admin.expect(.PUT, "/account-domains/\(domain)", json: ["mode": mode, "ldap": try ldapSettings()])
        }
    }

    /// The MachineInfo of an account-driven enrollment request: no UDID or serial for User Enrollment.
    static func machineInfo(product: String = "iPhone17,2", osVersion: String? = "18.3", udid: String? = nil,
                            canRequestSoftwareUpdate: Bool = false) -> [UInt8] {
        var d: [String: PlistValue] = ["PRODUCT": .string(product), "VERSION": .string("22D63"), "LANGUAGE": .string("en-US")]
        if let osVersion { d["OS_VERSION"] = .string(osVersion) }
        if let udid { d["UDID"] = .string(udid) }
        if canRequestSoftwareUpdate { d["MDM_CAN_REQUEST_SOFTWARE_UPDATE"] = .bool(true) }
        return Plist.xml(d)
    }

    /// A device's built-in identity (issued by the tests' stand-in for Apple's device CA).
    static func deviceIdentity(_ stack: Fixture.Ready) throws -> SigningIdentity {
        let key = try PrivateKey.generateP256()
        let cert = try Certificate.issue(subject: "/CN=\(UUID().uuidString)/O=Apple Inc. (test)", key: key,
                                         issuer: (stack.appleCA.certificate, stack.appleCA.key), usage: .clientIdentity,
                                         validity: Date().addingTimeInterval(-3600)...Date().addingTimeInterval(86400 * 365))
        return try SigningIdentity(certificate: cert, key: key)
    }

    /// POSTs to `BaseURL` as iOS 18 does (`application/pkcs7-signature`, DeviceManagementClient user agent).
    static func post(_ baseURL: String, _ body: [UInt8], bearer: String? = nil) async throws -> HTTPResult {
        var headers = [("Content-Type", "application/pkcs7-signature"), ("User-Agent", "DeviceManagementClient/1.0")]
        if let bearer { headers.append(("Authorization", "Bearer \(bearer)")) }
        return try await http(.POST, baseURL, headers: headers, body: body)
    }

    /// The sign-in page over plain HTTP: GET it (cookie and CSRF field), then POST the form from `address`.
    /// `pageFor` opens the page for another account than the one typed into it.
    /// `tamper` changes the page's own CSRF value before it is posted (with the page's cookie).
    static func signIn(_ user: String, _ password: String, address: String, csrf: String? = nil, pageFor: String? = nil,
                       tamper: ((String) -> String)? = nil) async throws -> HTTPResult {
        let auth = try auth
        let opened = (pageFor ?? user).addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        let page = try await http(.GET, "\(auth)/account/sign-in?user-identifier=\(opened)")
        let field = csrf ?? page.text.range(of: #"name="csrf" value="([^"]+)""#, options: .regularExpression).map {
            String(page.text[$0].dropFirst(#"name="csrf" value=""#.count).dropLast())
        } ?? ""
        let posted = tamper.map { $0(field) } ?? field
        let cookie = page.headers["set-cookie"]?.split(separator: ";").first.map(String.init) ?? ""
        let form = "user=\(user.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)&password=\(password.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)&csrf=\(posted)"
        return try await http(.POST, "\(auth)/account/sign-in", headers: [
            ("Content-Type", "application/x-www-form-urlencoded"), ("Cookie", cookie), ("X-Forwarded-For", address),
        ], body: Array(form.utf8))
    }

    /// The OAuth 2 variant over plain HTTP: GET the authorization endpoint with `query`, then POST the page's form
    /// (its hidden fields carry the authorization request) with the password.
    static func oauthSignIn(_ query: [(String, String)], password: String, address: String, typing: String? = nil) async throws -> HTTPResult {
        let auth = try auth
        let page = try await http(.GET, "\(auth)/account/oauth2/authorize?" + FormEncoding.encode(query))
        guard page.status == 200 else { return page }
        var fields: [(String, String)] = []
        let pattern = try NSRegularExpression(pattern: #"<input type="hidden" name="([^"]+)" value="([^"]*)">"#)
        for match in pattern.matches(in: page.text, range: NSRange(page.text.startIndex..., in: page.text)) {
            let name = String(page.text[Range(match.range(at: 1), in: page.text)!])
            let value = String(page.text[Range(match.range(at: 2), in: page.text)!])
                .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&#39;", with: "'")
                .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&amp;", with: "&")
            fields.append((name, value))
        }
        let user = typing ?? query.first { $0.0 == "login_hint" }?.1 ?? ""
        let cookie = page.headers["set-cookie"]?.split(separator: ";").first.map(String.init) ?? ""
        return try await http(.POST, "\(auth)/account/sign-in", headers: [
            ("Content-Type", "application/x-www-form-urlencoded"), ("Cookie", cookie), ("X-Forwarded-For", address),
        ], body: Array(FormEncoding.encode(fields + [("user", user), ("password", password)]).utf8))
    }

    /// The token endpoint.
    static func token(_ form: [(String, String)]) async throws -> HTTPResult {
        try await http(.POST, "\(try auth)/account/oauth2/token", headers: [("Content-Type", "application/x-www-form-urlencoded")],
                       body: Array(FormEncoding.encode(form).utf8))
    }

    /// The access token of a successful sign-in's `308` (`apple-remotemanagement-user-login://authentication-results?access-token=…`).
    static func token(_ location: String?) -> String? {
        guard let location, let url = URLComponents(string: location), url.scheme == "apple-remotemanagement-user-login",
              url.host == "authentication-results" else { return nil }
        return url.queryItems?.first { $0.name == "access-token" }?.value
    }

    /// Signs in through HTTP and returns the token (fails the test otherwise).
    static func signedIn(_ user: String, address: String = "198.51.100.7") async throws -> String {
        let name = String(user.prefix { $0 != "@" })
        let answer = try await signIn(user, passwords[name] ?? "", address: address)
        XCTAssertEqual(answer.status, 308, answer.text)
        return try unwrap(token(answer.headers["location"]), "access token of \(user)")
    }

    /// Drives the page in headless chromium (Tests/Browser/sign_in.py): what the page offered and how it ended.
    static func browserSignIn(_ url: String, password: String, screenshot: String) throws -> [String: Any] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["Tests/Browser/sign_in.py", url, password, screenshot]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0,
              let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw NSError(domain: "browser", code: Int(process.terminationStatus),
                          userInfo: [NSLocalizedDescriptionKey: "sign_in.py failed: \(String(decoding: data, as: UTF8.self))"])
        }
        return object
    }

    static var artifacts: String {
        ProcessInfo.processInfo.environment["ORCHARD_TEST_ARTIFACTS"] ?? FileManager.default.temporaryDirectory.path
    }

    /// The `com.apple.mdm` payload of a signed profile.
    static func mdmPayload(_ signed: [UInt8], stack: Fixture.Ready) throws -> ([String: PlistValue], [String: PlistValue]) {
        let profile = try unwrap(try opensslVerifiedProfile(signed, ca: stack.profileCA), "openssl cms -verify accepts the profile")
        let payloads = profile["PayloadContent"]?.array?.compactMap(\.dictionary) ?? []
        return (profile, try unwrap(payloads.first { $0["PayloadType"]?.string == "com.apple.mdm" }, "com.apple.mdm payload"))
    }

    /// Activity entries of `action`, newest first.
    static func activity(_ stack: Fixture.Ready, _ action: String) async throws -> [[String: Any]] {
        let page = try await stack.admin.expect(.GET, "/activity?limit=200&action=\(action)")
        return page["items"] as? [[String: Any]] ?? []
    }

    /// Waits until the activity log holds an entry of `action` whose detail contains `text`.
    static func logged(_ stack: Fixture.Ready, _ action: String, _ text: String) async throws -> Bool {
        try await eventually(timeout: 60) {
            try await activity(stack, action).contains { ($0["detail"] as? String ?? "").contains(text) || $0["deviceID"] as? String == text }
        }
    }
}

