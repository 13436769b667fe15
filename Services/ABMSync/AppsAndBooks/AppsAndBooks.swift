import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import OrchardCore
import OrchardCrypto
import OrchardMessaging
import OrchardSchemas
import OrchardStorage

/// Apple's Apps and Books for Organizations API (`https://vpp.itunes.apple.com/mdm/v2`): content tokens and device-based
/// licence assignment. A content token is the `.vpptoken` file Apple Business Manager downloads per location: base64 of
/// `{"token", "expDate", "orgName"}`, sent whole as `Authorization: Bearer`. It is sealed with ORCHARD_KEK; Apple is asked
/// before anything is stored (its client configuration, then Orchard's `mdmInfo`, which tells Apple and other MDM servers
/// that Orchard uses the token). Licences: `POST /assets/associate` gives an event id, `GET /status?eventId=` says when
/// the event is `COMPLETE` or `FAILED`, with the serial numbers that failed and why.
struct AppsAndBooks: Sendable {
    let database: Database
    let box: SecretBox
    let outbox: OutboxPublisher
    let service: String
    let http: HTTPClient
    /// `https://vpp.itunes.apple.com/mdm/v2` (or a stand-in).
    let baseURL: String
    /// How long a licence event may stay `PENDING` before the request answers 503 (the caller retries; associating
    /// again is harmless).
    var eventDeadline: Duration = .seconds(50)
    /// Asks ABM which organisation a server token belongs to (ServerTokens' check), for tokens never checked.
    var checkOrganization: @Sendable (_ abmTokenID: String) async -> Void = { _ in }

    /// Apple's `maxSerialNumbers` for a manage request (Service Config's limits; 1,000 as documented).
    static let maxSerialNumbers = 1000
    static let maxAttempts = 5

    struct Decoded: Equatable {
        let organization: String
        let expiresAt: Date
    }

    /// What a `.vpptoken` file says of itself: base64 of a JSON object with `token`, `expDate` and `orgName`.
    static func decode(_ sToken: String) -> Decoded? {
        let text = sToken.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (16...8192).contains(text.count), let data = Data(base64Encoded: text),
              let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
              let token = json["token"] as? String, !token.isEmpty,
              let organization = json["orgName"] as? String, (1...200).contains(organization.count), !organization.containsControlCharacters,
              let expText = json["expDate"] as? String, let expires = ISO8601.date(from: expText) else { return nil }
        return Decoded(organization: organization, expiresAt: expires)
    }

    func refuse(_ code: String, _ message: String, _ status: Int = 400) -> RequestRefused {
        RequestRefused(code: "apps-books.\(code)", message: message, httpStatus: status)
    }

    // MARK: Content tokens

    func upload(_ r: UploadContentToken, correlationID: String?) async throws -> ContentTokenView {
        guard (1...100).contains(r.id.count), r.id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }) else {
            throw refuse("name", "a content token's name is 1 to 100 letters, digits, '.', '-' or '_'")
        }
        let sToken = r.sToken.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let decoded = Self.decode(sToken) else {
            throw refuse("token", "not a content token: give the text of the .vpptoken file Apple Business Manager downloads (Apps and Books, location settings)")
        }
        guard decoded.expiresAt > Date() else {
            throw refuse("expired", "the content token expired at \(ISO8601.string(from: decoded.expiresAt)); download a new one in Apple Business Manager")
        }
        for id in try await AppsAndBooksStore.abmTokensWithoutOrganization(database) { await checkOrganization(id) }
        let organizations = try await AppsAndBooksStore.abmOrganizations(database)
        guard organizations.isEmpty || organizations.contains(decoded.organization) else {
            throw refuse("organization", "the content token is for \(decoded.organization); Orchard's ABM server tokens are for "
                         + organizations.sorted().joined(separator: ", ") + ". Nothing was stored", 409)
        }
        // Apple first: a token it refuses is not stored.
        let config = try await call(sToken, .GET, "/client/config")
        let mdmID = try await AppsAndBooksStore.mdmID(database)
        if let other = config["mdmInfo"] as? [String: Any], let otherID = other["id"] as? String, !otherID.isEmpty, otherID != mdmID, !r.takeOver {
            throw refuse("in-use", "the content token is in use by another MDM server (\(other["name"] as? String ?? otherID)); "
                         + "upload it with takeOver to move it to Orchard (that server stops managing its licences). Nothing was stored", 409)
        }
        _ = try await call(sToken, .POST, "/client/config", body: ["mdmInfo": ["id": mdmID, "name": "Orchard", "metadata": "orchard"]])
        let view = ContentTokenView(id: r.id, organization: decoded.organization, location: config["locationName"] as? String,
                                    countryCode: config["countryISO2ACode"] as? String,
                                    expiresAt: (config["tokenExpirationDate"] as? String).flatMap(ISO8601.date(from:)) ?? decoded.expiresAt,
                                    uploadedAt: Date())
        let sealed = try box.seal(Array(sToken.utf8), context: "apps-books-token:\(r.id)")
        try await database.transaction { c in
            try AppsAndBooksStore.save(c, view, sealed: sealed, actor: r.actor)
            try Outbox.append(activity(r.actor, "apps-books.token.uploaded", detail: """
                content token \(r.id): \(view.organization), location \(view.location ?? "?"), valid until \(ISO8601.string(from: view.expiresAt))
                """), correlationID: correlationID, on: c)
        }
        outbox.notify()
        return view
    }

    func list() async throws -> [ContentTokenView] { try await AppsAndBooksStore.tokens(database).map(\.view) }

    // MARK: Licences

    func associate(_ r: AssociateAppLicences, correlationID: String?) async throws -> AssociateAppLicences.Reply {
        guard let stored = try await AppsAndBooksStore.token(database, id: r.tokenID) else { throw refuse("unknown", "no content token \(r.tokenID)", 404) }
        guard stored.view.expiresAt > Date() else {
            throw refuse("expired", "content token \(r.tokenID) expired at \(ISO8601.string(from: stored.view.expiresAt)); upload a new one", 409)
        }
        guard !r.adamID.isEmpty, r.adamID.count <= 20, r.adamID.allSatisfy(\.isNumber) else { throw refuse("app", "adamId is the app's App Store id (digits)") }
        let serials = Array(Set(r.serialNumbers.filter { !$0.isEmpty && $0.count <= 64 && !$0.containsControlCharacters })).sorted()
        guard (1...Self.maxSerialNumbers).contains(serials.count) else {
            throw refuse("serials", "1 to \(Self.maxSerialNumbers) serial numbers per licence request")
        }
        let sToken = String(decoding: try box.open(stored.sealed, context: "apps-books-token:\(r.tokenID)"), as: UTF8.self)
        var asset: [String: Any] = ["adamId": r.adamID]
        asset["pricingParam"] = r.pricingParam ?? "STDQ"
        let event = try await call(sToken, .POST, "/assets/associate", body: ["assets": [asset], "serialNumbers": serials])
        guard let eventID = event["eventId"] as? String, !eventID.isEmpty, eventID.count <= 100 else {
            throw refuse("unavailable", "Apple's associate answer has no eventId", 503)
        }
        let started = ContinuousClock.now
        var wait = Duration.milliseconds(200)
        while true {
            let status = try await call(sToken, .GET, "/status?eventId=" + (eventID.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? eventID))
            let state = status["eventStatus"] as? String ?? ""
            if state == "COMPLETE" || state == "FAILED" {
                var failed: [String: String] = [:]
                for failure in status["failures"] as? [[String: Any]] ?? [] {
                    let reason = "\(failure["errorNumber"].map { "\($0)" } ?? "?"): \(failure["errorMessage"] as? String ?? "failed")"
                    for serial in (failure["errorInfo"] as? [String: Any])?["serialNumbers"] as? [String] ?? [] { failed[serial] = reason }
                }
                if state == "FAILED" && failed.isEmpty {
                    // Apple failed the event without naming serials: every serial failed.
                    for serial in serials { failed[serial] = "the licence event failed" }
                }
                let reply = AssociateAppLicences.Reply(licensed: serials.filter { failed[$0] == nil },
                                                       failed: failed.sorted { $0.key < $1.key }.map { .init(serialNumber: $0.key, reason: $0.value) })
                try await database.transaction { c in
                    try Outbox.append(activity(r.actor, "apps-books.licences.associated", outcome: reply.failed.isEmpty ? .succeeded : .failed, detail: """
                        app \(r.adamID) with content token \(r.tokenID): \(reply.licensed.count) licensed, \(reply.failed.count) failed\
                        \(reply.failed.first.map { " (first: \($0.serialNumber) \($0.reason))" } ?? "")
                        """), correlationID: correlationID, on: c)
                }
                outbox.notify()
                return reply
            }
            guard ContinuousClock.now - started < eventDeadline else {
                throw refuse("pending", "Apple's licence event \(eventID) is still \(state.isEmpty ? "unknown" : state); try again", 503)
            }
            try await Task.sleep(for: wait)
            wait = min(wait * 2, .seconds(2))
        }
    }

    // MARK: Calls

    /// A call with the content token: 429 and 5xx wait (Retry-After, or 1, 2, 4… s) and retry; Apple's refusals (its
    /// `errorNumber` and `errorMessage`) become a 400 (401: the token) with Apple's words.
    private func call(_ sToken: String, _ method: HTTPMethod, _ path: String, body: [String: Any]? = nil) async throws -> [String: Any] {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(sToken)")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])))
        }
        let (status, bytes) = try await Self.send(request, http: http, what: "Apple's Apps and Books API", refuse: refuse)
        let json = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] ?? [:]
        if status == 200 { return json }
        let apple = "\(json["errorNumber"].map { "\($0)" } ?? "HTTP \(status)"): \(json["errorMessage"] as? String ?? "refused")"
        if status == 401 { throw refuse("token", "Apple refused the content token (\(apple)); it may be revoked or replaced by a newer download") }
        throw refuse("apple", "Apple's Apps and Books API refused \(method.rawValue) \(path.split(separator: "?").first ?? ""): \(apple)")
    }

    /// One request to Apple (its Apps and Books APIs), tried again as Apple asks: a transport error, 429 or 5xx waits
    /// (Retry-After, or 1, 2, 4… s) and retries, up to `maxAttempts`, then is a 503 refusal. Any other answer is returned.
    static func send(_ request: HTTPClientRequest, http: HTTPClient, what: String,
                     refuse: (String, String, Int) -> RequestRefused) async throws -> (status: Int, body: [UInt8]) {
        let retry = RetryPolicy(attempts: maxAttempts)
        var attempt = 0
        while true {
            attempt += 1
            let status: Int, bytes: [UInt8], retryAfter: Duration?
            do {
                let response = try await http.execute(request, timeout: .seconds(60))
                var buffer = try await response.body.collect(upTo: 16 << 20)
                (status, bytes, retryAfter) = (Int(response.status.code), buffer.readBytes(length: buffer.readableBytes) ?? [],
                                               RetryPolicy.retryAfter(response.headers.first(name: "Retry-After")))
            } catch {
                guard retry.allowsRetry(after: attempt) else { throw refuse("unavailable", "\(what) cannot be reached: \(error)", 503) }
                try await Task.sleep(for: retry.delay(after: attempt))
                continue
            }
            guard status == 429 || status >= 500 else { return (status, bytes) }
            guard retry.allowsRetry(after: attempt) else { throw refuse("unavailable", "\(what) answered HTTP \(status) \(attempt) times", 503) }
            try await Task.sleep(for: retry.delay(after: attempt, retryAfter: retryAfter))
        }
    }

    func activity(_ actor: String, _ action: String, outcome: ActivityRecorded.Outcome = .succeeded, detail: String) -> ActivityRecorded {
        ActivityRecorded(actor: actor, action: action, deviceID: nil, relatedDeviceIDs: [], outcome: outcome, detail: detail, service: service)
    }
}
