import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import OrchardCore
import OrchardCrypto
import OrchardMessaging
import OrchardSchemas
import OrchardStorage

/// Apple's Apps and Books Metadata for Organizations API (`https://api.ent.apple.com/v1`): what an app the organisation
/// owns is — its iPhone bundle id, its watch app's bundle id (`watchBundleId`, the identifier a watch's
/// InstallApplication names) and its device families. Every request carries a developer token (a JWT Orchard signs with
/// the MDM vendor's key from Apple's developer account: ES256, `kid` the key id, `iss` the team id, `iat`, `exp`); the
/// `stoken-authenticated-apps` endpoint, which also knows custom apps, wants the content token as the `itvt` cookie.
/// Without a developer key (ORCHARD_APPS_METADATA_KEY_FILE, …_KEY_ID, …_TEAM_ID) a lookup is refused with 409 and the
/// admin gives the fields an assignment needs.
struct AppMetadata: Sendable {
    struct DeveloperKey: Sendable {
        let key: PrivateKey
        let keyID: String
        let teamID: String
    }

    let database: Database
    let box: SecretBox
    let http: HTTPClient
    /// `https://api.ent.apple.com/v1` (or a stand-in).
    let baseURL: String
    let developerKey: DeveloperKey?

    /// Apple's fetch limit for `ids`.
    static let maxIDs = 100
    /// How long a developer token Orchard signs is valid (Apple allows up to six months; one per call is cheap).
    static let tokenLifetime: TimeInterval = 3600

    func refuse(_ code: String, _ message: String, _ status: Int = 400) -> RequestRefused {
        RequestRefused(code: "apps-books.metadata.\(code)", message: message, httpStatus: status)
    }

    /// The developer token: `{"alg":"ES256","kid"}` . `{"iss","iat","exp"}`.
    static func developerToken(_ d: DeveloperKey, now: Date = Date()) throws -> String {
        let iat = Int(now.timeIntervalSince1970)
        let header = try JSONSerialization.data(withJSONObject: ["alg": "ES256", "kid": d.keyID], options: [.sortedKeys])
        let claims = try JSONSerialization.data(withJSONObject: ["iss": d.teamID, "iat": iat, "exp": iat + Int(tokenLifetime)] as [String: Any],
                                                options: [.sortedKeys])
        let input = base64URL(Array(header)) + "." + base64URL(Array(claims))
        return input + "." + base64URL(try d.key.jwsSignature(Array(input.utf8), ecdsa: true))
    }

    func lookUp(_ r: LookUpAppMetadata) async throws -> LookUpAppMetadata.Reply {
        guard let developerKey else {
            throw refuse("no-key", "Orchard has no developer key for Apple's app metadata (ORCHARD_APPS_METADATA_KEY_FILE, _KEY_ID, _TEAM_ID); "
                         + "give bundleId, watchBundleId and watchDeployment yourself", 409)
        }
        let ids = Array(Set(r.adamIDs)).sorted()
        guard (1...Self.maxIDs).contains(ids.count), ids.allSatisfy({ (1...20).contains($0.count) && $0.allSatisfy(\.isNumber) }) else {
            throw refuse("ids", "1 to \(Self.maxIDs) App Store ids (digits)")
        }
        guard let stored = try await AppsAndBooksStore.token(database, id: r.tokenID) else {
            throw refuse("unknown", "no content token \(r.tokenID)", 404)
        }
        guard stored.view.expiresAt > Date() else {
            throw refuse("expired", "content token \(r.tokenID) expired at \(ISO8601.string(from: stored.view.expiresAt)); upload a new one", 409)
        }
        let sToken = String(decoding: try box.open(stored.sealed, context: "apps-books-token:\(r.tokenID)"), as: UTF8.self)
        let storefront = (stored.view.countryCode ?? "us").lowercased()
        guard storefront.count == 2, storefront.allSatisfy({ $0.isASCII && $0.isLetter }) else {
            throw refuse("storefront", "content token \(r.tokenID)'s country \(storefront) is not an ISO 3166 alpha-2 code")
        }
        var request = HTTPClientRequest(url: "\(baseURL)/catalog/\(storefront)/stoken-authenticated-apps?ids=\(ids.joined(separator: ","))&platform=iphone")
        request.headers.add(name: "Authorization", value: "Bearer \(try Self.developerToken(developerKey))")
        request.headers.add(name: "Cookie", value: "itvt=\(sToken)")
        let (status, bytes) = try await AppsAndBooks.send(request, http: http, what: "Apple's app metadata API", refuse: refuse)
        let json = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] ?? [:]
        if status == 200 { return Self.parse(json, asked: ids) }
        let first = (json["errors"] as? [[String: Any]])?.first
        let apple = [first?["title"] as? String, first?["detail"] as? String].compactMap { $0 }.joined(separator: ": ")
        if status == 401 || status == 403 {
            throw refuse("refused", "Apple refused Orchard's developer token or content token \(r.tokenID) (HTTP \(status)\(apple.isEmpty ? "" : ": \(apple)"))")
        }
        throw refuse("apple", "Apple's app metadata API answered HTTP \(status)\(apple.isEmpty ? "" : ": \(apple)")")
    }

    /// Apple's `AppsResponse`: `data[]` with `id` and `attributes` (`name`, `deviceFamilies`, `watchBundleId`,
    /// `isB2BCustomApp`, `platformAttributes.ios.bundleId`). Only asked ids count; malformed values are left out.
    static func parse(_ json: [String: Any], asked: [String]) -> LookUpAppMetadata.Reply {
        func bundle(_ value: Any?) -> String? {
            guard let s = value as? String, (1...255).contains(s.count), s.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-") })
            else { return nil }
            return s
        }
        let wanted = Set(asked)
        var apps: [String: LookUpAppMetadata.App] = [:]
        for item in json["data"] as? [[String: Any]] ?? [] {
            guard let id = item["id"] as? String, wanted.contains(id), let a = item["attributes"] as? [String: Any] else { continue }
            let ios = (a["platformAttributes"] as? [String: Any])?["ios"] as? [String: Any]
            let families = (a["deviceFamilies"] as? [Any] ?? []).compactMap { $0 as? String }.filter { $0.count <= 40 }.prefix(20)
            let name = (a["name"] as? String).map { String($0.prefix(200)) }.flatMap { $0.containsControlCharacters ? nil : $0 }
            apps[id] = .init(adamID: id, name: name, bundleID: bundle(ios?["bundleId"]), watchBundleID: bundle(a["watchBundleId"]),
                             deviceFamilies: Array(families), isCustomApp: a["isB2BCustomApp"] as? Bool ?? false)
        }
        return .init(apps: asked.compactMap { apps[$0] }, missing: asked.filter { apps[$0] == nil })
    }
}
