import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import OrchardCore
import OrchardCrypto
import OrchardMessaging
import OrchardSchemas
import OrchardStorage

/// The Apple Business Manager API ("Apple School Manager and Apple Business API", REFERENCE §4.8): OAuth 2 client
/// credentials with a signed JWT client assertion (RFC 7523), then JSON:API calls with the access token. It adds to the
/// device-assignment API (profiles, sync cursors and Activation Lock stay there): the organisation's whole inventory,
/// its device management services, and assigning devices to them in bulk.
///
/// An API account is its client id, its key id, and either its P-256 private key (Orchard signs a short-lived assertion
/// for each token) or an assertion made elsewhere (used until it expires). Both are sealed with ORCHARD_KEK. A new
/// account is stored only once Apple gave a token for it: a key that is not the client id's is refused, nothing kept.
struct BusinessAPI: Sendable {
    let database: Database
    let box: SecretBox
    let outbox: OutboxPublisher
    let service: String
    let http: HTTPClient
    /// `https://api-business.apple.com` (or a stand-in).
    let apiURL: String
    /// `https://account.apple.com/auth/oauth2/token` (or a stand-in).
    let tokenURL: String
    let cache = AccessTokens()

    static let audience = "https://account.apple.com/auth/oauth2/v2/token"
    static let scopes: Set<String> = ["business.api", "school.api"]
    static let pageSize = 1000
    static let maxAttempts = 6

    /// Access tokens by account, until a minute before they expire.
    actor AccessTokens {
        private var tokens: [String: (token: String, until: Date)] = [:]
        func get(_ id: String) -> String? { tokens[id].flatMap { $0.until > Date() ? $0.token : nil } }
        func set(_ id: String, _ token: String, expiresIn: Int) { tokens[id] = (token, Date().addingTimeInterval(TimeInterval(max(expiresIn - 60, 1)))) }
        func forget(_ id: String) { tokens[id] = nil }
    }

    // MARK: Accounts

    func save(_ r: SaveABMAPIAccount, correlationID: String?) async throws -> ABMAPIAccountView {
        func refuse(_ code: String, _ message: String, _ status: Int = 400) -> RequestRefused {
            RequestRefused(code: "abm-api.\(code)", message: message, httpStatus: status)
        }
        guard (1...100).contains(r.id.count), r.id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }) else {
            throw refuse("name", "an API account's name is 1 to 100 letters, digits, '.', '-' or '_'")
        }
        guard (1...200).contains(r.clientID.count), !r.clientID.containsControlCharacters, (1...200).contains(r.keyID.count),
              !r.keyID.containsControlCharacters else {
            throw refuse("client", "clientID and keyID are required (Apple Business Manager shows both for the API account)")
        }
        let scope = r.scope ?? (r.clientID.hasPrefix("SCHOOLAPI.") ? "school.api" : "business.api")
        guard Self.scopes.contains(scope) else { throw refuse("scope", "scope must be business.api or school.api") }
        let credential: (key: PrivateKey?, assertion: String?, expires: Date?)
        switch (r.privateKeyPEM, r.clientAssertion) {
        case (let pem?, nil):
            guard pem.count <= 16384, let key = try? PrivateKey(pem: Array(pem.utf8)), key.isP256 else {
                throw refuse("key", "privateKey must be the API account's P-256 private key in PEM, as Apple Business Manager downloads it")
            }
            credential = (key, nil, nil)
        case (nil, let assertion?):
            credential = (nil, assertion, try Self.checkAssertion(assertion, clientID: r.clientID, keyID: r.keyID))
        default:
            throw refuse("credential", "give privateKey (PEM) or clientAssertion (a JWT made with it), one of them")
        }
        let assertion = try credential.assertion ?? Self.assertion(clientID: r.clientID, keyID: r.keyID, key: credential.key!)
        // Apple first: an account it refuses is not stored.
        let (token, expiresIn) = try await requestToken(clientID: r.clientID, scope: scope, assertion: assertion)
        let sealedKey = try credential.key.map { try box.seal(try $0.pemRepresentation(), context: "abm-api-key:\(r.id)") }
        let sealedAssertion = try credential.assertion.map { try box.seal(Array($0.utf8), context: "abm-api-assertion:\(r.id)") }
        try await database.transaction { c in
            try BusinessAPIStore.save(c, id: r.id, clientID: r.clientID, keyID: r.keyID, scope: scope, sealedKey: sealedKey,
                                      sealedAssertion: sealedAssertion, assertionExpiresAt: credential.expires, actor: r.actor)
            try Outbox.append(activity(r.actor, "abm-api.account.saved", detail: """
                API account \(r.id) (client \(r.clientID), key \(r.keyID), \(scope)): \(credential.key == nil ? "a client assertion valid until \(ISO8601.string(from: credential.expires ?? Date()))" : "its private key"), accepted by Apple
                """), correlationID: correlationID, on: c)
        }
        outbox.notify()
        await cache.set(r.id, token, expiresIn: expiresIn)
        guard let saved = try await BusinessAPIStore.account(database, id: r.id) else { throw refuse("unknown", "no API account \(r.id)", 404) }
        return saved.view
    }

    /// A client assertion made elsewhere: a JWT for this client id and key, ES256, not expired; its expiry.
    static func checkAssertion(_ jwt: String, clientID: String, keyID: String) throws -> Date {
        func refuse(_ message: String) -> RequestRefused { RequestRefused(code: "abm-api.assertion", message: "clientAssertion: \(message)") }
        let parts = jwt.split(separator: ".", omittingEmptySubsequences: false)
        guard jwt.count <= 8192, parts.count == 3, let h = fromBase64URL(parts[0]).map({ Data($0) }), let c = fromBase64URL(parts[1]).map({ Data($0) }),
              let header = try? JSONSerialization.jsonObject(with: h) as? [String: Any],
              let claims = try? JSONSerialization.jsonObject(with: c) as? [String: Any] else { throw refuse("not a JWT") }
        guard header["alg"] as? String == "ES256" else { throw refuse("must be signed with ES256") }
        guard header["kid"] as? String == keyID else { throw refuse("its kid is not key \(keyID)") }
        guard claims["sub"] as? String == clientID, claims["iss"] as? String == clientID else { throw refuse("its sub and iss are not client \(clientID)") }
        guard claims["aud"] as? String == audience else { throw refuse("its aud is not \(audience)") }
        guard let exp = (claims["exp"] as? NSNumber)?.doubleValue else { throw refuse("it has no exp") }
        let expires = Date(timeIntervalSince1970: exp)
        guard expires > Date().addingTimeInterval(60) else { throw refuse("it expired at \(ISO8601.string(from: expires)); make a new one") }
        return expires
    }

    /// A client assertion Orchard signs for one token request: an hour's validity (Apple allows up to 180 days).
    static func assertion(clientID: String, keyID: String, key: PrivateKey, now: Date = Date()) throws -> String {
        let iat = Int(now.timeIntervalSince1970)
        let header = try JSONSerialization.data(withJSONObject: ["alg": "ES256", "kid": keyID, "typ": "JWT"], options: [.sortedKeys])
        let claims = try JSONSerialization.data(withJSONObject: [
            "sub": clientID, "iss": clientID, "aud": audience, "iat": iat, "exp": iat + 3600, "jti": RandomUUID.lowercased(),
        ] as [String: Any], options: [.sortedKeys, .withoutEscapingSlashes])
        let input = base64URL(Array(header)) + "." + base64URL(Array(claims))
        return input + "." + base64URL(try key.jwsSignature(Array(input.utf8), ecdsa: true))
    }

    private func requestToken(clientID: String, scope: String, assertion: String) async throws -> (String, Int) {
        var request = HTTPClientRequest(url: tokenURL)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.body = .bytes(ByteBuffer(string: FormEncoding.encode([
            ("grant_type", "client_credentials"), ("client_id", clientID),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"), ("client_assertion", assertion), ("scope", scope),
        ])))
        let (status, body) = try await send(request)
        let json = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]
        guard status == 200, let token = json?["access_token"] as? String else {
            let error = json?["error"] as? String ?? "HTTP \(status)"
            if status == 400 || status == 401 {
                let why = error == "invalid_client" ? "the key (or assertion) does not belong to client \(clientID), or the account was removed"
                    : error == "invalid_grant" ? "the client assertion is expired or not valid yet" : error == "invalid_scope" ? "the account has no \(scope) access" : error
                throw RequestRefused(code: "abm-api.token", message: "Apple refused a token: \(error) (\(why))", httpStatus: 400)
            }
            throw RequestRefused(code: "abm-api.unavailable", message: "Apple's token endpoint answered \(error)", httpStatus: 503)
        }
        return (token, json?["expires_in"] as? Int ?? 3600)
    }

    /// The account's access token: cached, or a new one (from its key, or its stored assertion).
    private func accessToken(_ account: BusinessAPIStore.Account, fresh: Bool = false) async throws -> String {
        if !fresh, let token = await cache.get(account.id) { return token }
        let assertion: String
        if let sealed = account.sealedKey {
            let pem = String(decoding: try box.open(sealed, context: "abm-api-key:\(account.id)"), as: UTF8.self)
            assertion = try Self.assertion(clientID: account.clientID, keyID: account.keyID, key: try PrivateKey(pem: Array(pem.utf8)))
        } else if let sealed = account.sealedAssertion {
            assertion = String(decoding: try box.open(sealed, context: "abm-api-assertion:\(account.id)"), as: UTF8.self)
        } else {
            throw RequestRefused(code: "abm-api.credential", message: "API account \(account.id) has no credential", httpStatus: 409)
        }
        let (token, expiresIn) = try await requestToken(clientID: account.clientID, scope: account.scope, assertion: assertion)
        await cache.set(account.id, token, expiresIn: expiresIn)
        return token
    }

    private func account(_ id: String) async throws -> BusinessAPIStore.Account {
        guard let account = try await BusinessAPIStore.account(database, id: id) else {
            throw RequestRefused(code: "abm-api.unknown", message: "no API account \(id.prefix(100))", httpStatus: 404)
        }
        return account
    }

    // MARK: Calls

    /// A call with the account's token: a 401 gets one new token and one retry; 429 and 5xx wait (Retry-After, or 1, 2,
    /// 4… s) and retry, at most `maxAttempts` times. `throttled` counts the 429s.
    private func call(_ account: BusinessAPIStore.Account, _ method: HTTPMethod, _ path: String, json: Any? = nil,
                      throttled: inout Int) async throws -> [String: Any] {
        var fresh = false
        let retry = RetryPolicy(attempts: Self.maxAttempts)
        for attempt in 1...Self.maxAttempts {
            var request = HTTPClientRequest(url: apiURL + path)
            request.method = method
            request.headers.add(name: "Authorization", value: "Bearer \(try await accessToken(account, fresh: fresh))")
            request.headers.add(name: "Accept", value: "application/json")
            if let json {
                request.headers.add(name: "Content-Type", value: "application/json")
                request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: json)))
            }
            let (status, body, retryAfter) = try await sendWithRetryAfter(request)
            switch status {
            case 200..<300:
                return ((try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]) ?? [:]
            case 401 where !fresh:
                fresh = true
                await cache.forget(account.id)
                continue
            case 429, 500...599:
                if status == 429 { throttled += 1 }
                guard retry.allowsRetry(after: attempt) else { break }
                try await Task.sleep(for: retry.delay(after: attempt, retryAfter: retryAfter))
                continue
            default:
                break
            }
            let errors = (((try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any])?["errors"] as? [[String: Any]])?.first
            let detail = [errors?["code"] as? String, errors?["detail"] as? String].compactMap { $0 }.joined(separator: ": ")
            throw RequestRefused(code: "abm-api.call", message: "Apple's API answered \(status) to \(method) \(path.prefix(80))\(detail.isEmpty ? "" : ": \(detail)")",
                                 httpStatus: status == 404 ? 404 : status == 400 ? 400 : 502)
        }
        throw RequestRefused(code: "abm-api.unavailable", message: "Apple's API kept answering 429 or 5xx to \(method) \(path.prefix(80))", httpStatus: 503)
    }

    private func send(_ request: HTTPClientRequest) async throws -> (Int, [UInt8]) {
        let (status, body, _) = try await sendWithRetryAfter(request)
        return (status, body)
    }

    private func sendWithRetryAfter(_ request: HTTPClientRequest) async throws -> (Int, [UInt8], Duration?) {
        do {
            let response = try await http.execute(request, timeout: .seconds(60))
            var buffer = try await response.body.collect(upTo: 64 << 20)
            return (Int(response.status.code), buffer.readBytes(length: buffer.readableBytes) ?? [],
                    RetryPolicy.retryAfter(response.headers.first(name: "Retry-After")))
        } catch let refused as RequestRefused {
            throw refused
        } catch {
            throw RequestRefused(code: "abm-api.unavailable", message: "Apple's API cannot be reached: \(error)", httpStatus: 503)
        }
    }

    // MARK: Inventory

    /// Every page of `/v1/orgDevices` into the copy (one statement per page; never the whole inventory in memory); devices
    /// the organisation no longer has are dropped at the end of a complete read.
    func syncInventory(_ r: SyncABMInventory, correlationID: String?) async throws -> SyncABMInventory.Reply {
        let account = try await account(r.accountID)
        let started = Date()
        let generation = Int64(started.timeIntervalSince1970 * 1000)
        var cursor: String?, pages = 0, devices = 0, throttled = 0
        repeat {
            var path = "/v1/orgDevices?limit=\(Self.pageSize)"
            if let cursor { path += "&cursor=" + (cursor.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? cursor) }
            let page = try await call(account, .GET, path, throttled: &throttled)
            let items = (page["data"] as? [[String: Any]] ?? []).compactMap(Self.device)
            try await database.transaction { c in try BusinessAPIStore.upsert(c, accountID: account.id, generation: generation, devices: items) }
            pages += 1
            devices += items.count
            cursor = ((page["meta"] as? [String: Any])?["paging"] as? [String: Any])?["nextCursor"] as? String
        } while cursor != nil && pages < 100_000
        let (read, pagesRead, waited) = (devices, pages, throttled)
        let gone = try await database.transaction { c -> Int in
            let gone = try BusinessAPIStore.finishInventory(c, accountID: account.id, generation: generation)
            try Outbox.append(activity(r.actor, "abm-api.inventory.synced", detail: """
                API account \(account.id): \(read) devices in \(pagesRead) pages\(gone > 0 ? ", \(gone) no longer the organisation's" : "")\(waited > 0 ? ", \(waited) throttled calls waited out" : "")
                """), correlationID: correlationID, on: c)
            return gone
        }
        _ = gone
        outbox.notify()
        return .init(devices: devices, pages: pages, seconds: Date().timeIntervalSince(started), throttled: throttled)
    }

    /// One `orgDevices` resource as Orchard keeps it (what the device-assignment API lacks: part and order numbers,
    /// purchase source, whether some service has it).
    static func device(_ resource: [String: Any]) -> ABMOrgDeviceView? {
        guard resource["type"] as? String == "orgDevices", let a = resource["attributes"] as? [String: Any],
              let serial = (a["serialNumber"] as? String) ?? (resource["id"] as? String), (1...64).contains(serial.count) else { return nil }
        func text(_ key: String) -> String? { (a[key] as? String).map { String($0.prefix(200)) } }
        return ABMOrgDeviceView(serialNumber: serial, model: text("deviceModel"), productFamily: text("productFamily"), partNumber: text("partNumber"),
                                orderNumber: text("orderNumber"), purchaseSource: text("purchaseSourceType"), status: text("status"),
                                addedToOrg: text("addedToOrgDateTime"), updatedAt: Date())
    }

    func inventory(_ r: ListABMInventory) async throws -> ListABMInventory.Reply {
        _ = try await account(r.accountID)
        return .init(items: try await BusinessAPIStore.inventory(database, accountID: r.accountID, after: r.after, limit: r.limit))
    }

    func servers(_ r: ListABMServers) async throws -> ListABMServers.Reply {
        let account = try await account(r.accountID)
        var items: [ListABMServers.Server] = [], cursor: String?, throttled = 0, pages = 0
        repeat {
            var path = "/v1/mdmServers?limit=100"
            if let cursor { path += "&cursor=" + (cursor.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? cursor) }
            let page = try await call(account, .GET, path, throttled: &throttled)
            for resource in page["data"] as? [[String: Any]] ?? [] {
                guard let id = resource["id"] as? String else { continue }
                let a = resource["attributes"] as? [String: Any]
                items.append(.init(id: id, name: a?["serverName"] as? String, type: a?["serverType"] as? String))
            }
            cursor = ((page["meta"] as? [String: Any])?["paging"] as? [String: Any])?["nextCursor"] as? String
            pages += 1
        } while cursor != nil && pages < 100
        return .init(items: items)
    }

    // MARK: Assignment jobs

    /// Starts assigning (or unassigning) `serials` to a service, in jobs of at most 1,000; or, with `activityID`, reads a job.
    func assignment(_ r: ABMAssignmentJob, correlationID: String?) async throws -> ABMAssignmentJob.Reply {
        let account = try await account(r.accountID)
        var throttled = 0
        if let activityID = r.activityID {
            guard let job = try await BusinessAPIStore.job(database, accountID: account.id, activityID: activityID) else {
                throw RequestRefused(code: "abm-api.job", message: "no assignment job \(activityID.prefix(100))", httpStatus: 404)
            }
            let answer = try await call(account, .GET, "/v1/orgDeviceActivities/\(activityID.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")",
                                        throttled: &throttled)
            let a = (answer["data"] as? [String: Any])?["attributes"] as? [String: Any]
            let status = a?["status"] as? String ?? "UNKNOWN", sub = a?["subStatus"] as? String
            if status != job.status {
                try await database.transaction { c in
                    try BusinessAPIStore.updateJob(c, activityID: activityID, status: status, subStatus: sub)
                    try Outbox.append(activity(r.actor, "abm-api.assignment.\(status.lowercased())", outcome: status == "COMPLETED" ? .succeeded : .failed,
                                               detail: "API account \(account.id): job \(activityID) for \(job.serials.count) devices is \(status)\(sub.map { " (\($0))" } ?? "")"),
                                      correlationID: correlationID, on: c)
                }
                outbox.notify()
            }
            let outcome = status == "IN_PROGRESS" ? "SUBMITTED" : sub ?? status
            return .init(activityIDs: [activityID], status: status, subStatus: sub,
                         outcomes: Dictionary(job.serials.map { ($0, outcome) }, uniquingKeysWith: { a, _ in a }))
        }
        guard let server = r.mdmServerID, (1...200).contains(server.count), !server.containsControlCharacters else {
            throw RequestRefused(code: "abm-api.job", message: "mdmServerID is required (GET …/mdm-servers lists them)")
        }
        let serials = Array(Set(r.serials.map { $0.trimmingCharacters(in: .whitespaces).uppercased() })).sorted()
        guard (1...100_000).contains(serials.count), serials.allSatisfy({ (1...64).contains($0.count) && !$0.containsControlCharacters }) else {
            throw RequestRefused(code: "abm-api.job", message: "serials must list 1 to 100000 serial numbers")
        }
        let known = try await BusinessAPIStore.known(database, accountID: account.id, serials: serials)
        var outcomes = Dictionary(serials.filter { !known.contains($0) }.map { ($0, "NOT_IN_ORGANIZATION") }, uniquingKeysWith: { a, _ in a })
        let sendable = serials.filter { known.contains($0) }
        guard !sendable.isEmpty else {
            return .init(activityIDs: [], status: "FAILED", subStatus: "NO_DEVICES", outcomes: outcomes)
        }
        let kind = r.unassign ? "UNASSIGN_DEVICES" : "ASSIGN_DEVICES"
        var ids: [String] = [], status = "IN_PROGRESS", sub: String?
        for start in stride(from: 0, to: sendable.count, by: 1000) {
            let chunk = Array(sendable[start..<min(start + 1000, sendable.count)])
            let body: [String: Any] = ["data": [
                "type": "orgDeviceActivities", "attributes": ["activityType": kind],
                "relationships": ["mdmServer": ["data": ["type": "mdmServers", "id": server]],
                                  "devices": ["data": chunk.map { ["type": "orgDevices", "id": $0] }]],
            ]]
            let answer = try await call(account, .POST, "/v1/orgDeviceActivities", json: body, throttled: &throttled)
            guard let data = answer["data"] as? [String: Any], let id = data["id"] as? String else {
                throw RequestRefused(code: "abm-api.call", message: "Apple's API started no job (no id in its answer)", httpStatus: 502)
            }
            let a = data["attributes"] as? [String: Any]
            status = a?["status"] as? String ?? "IN_PROGRESS"
            sub = a?["subStatus"] as? String
            ids.append(id)
            for serial in chunk { outcomes[serial] = "SUBMITTED" }
            let (jobStatus, skipped) = (status, outcomes.count - sendable.count)
            try await database.transaction { c in
                try BusinessAPIStore.recordJob(c, activityID: id, accountID: account.id, serverID: server, action: kind, serials: chunk,
                                               status: jobStatus, actor: r.actor)
                try Outbox.append(activity(r.actor, "abm-api.assignment.started", detail: """
                    API account \(account.id): \(kind) of \(chunk.count) devices to \(server), job \(id)\(skipped > 0 ? "; \(skipped) serials not the organisation's, not sent" : "")
                    """), correlationID: correlationID, on: c)
            }
        }
        outbox.notify()
        return .init(activityIDs: ids, status: status, subStatus: sub, outcomes: outcomes)
    }

    func list() async throws -> [ABMAPIAccountView] { try await BusinessAPIStore.accounts(database).map(\.view) }

    func activity(_ actor: String, _ action: String, outcome: ActivityRecorded.Outcome = .succeeded, detail: String) -> ActivityRecorded {
        ActivityRecorded(actor: actor, action: action, deviceID: nil, relatedDeviceIDs: [], outcome: outcome, detail: detail, service: service)
    }
}
