import AsyncHTTPClient
import Foundation
import OrchardCore
import OrchardCrypto
import OrchardObservability
import OrchardMessaging
import OrchardSchemas
import OrchardStorage

/// Server tokens, one per ABM/ASM MDM server: the key pair whose certificate is uploaded to ABM, and
/// the `.p7m` server token ABM encrypts to it. Private keys and credentials are sealed with the KEK,
/// bound to their row; every change goes to the activity log.
struct ServerTokens: Sendable {
    let database: Database
    let box: SecretBox
    let outbox: OutboxPublisher
    let service: String
    /// Apple's device-assignment API (`ORCHARD_ABM_URL`) and the HTTP client that reaches it.
    let appleURL: String
    let http: HTTPClient
    /// user-enrollment-auth's discovery URL, registered with ABM for each connected server (nil: not registered).
    var discoveryURL: String? = nil
    /// Each token's ABM session, shared by all its calls (one `GET /session` until ABM ends it).
    let sessions = ABMSessionStore()

    /// Days before expiry from which a token shows as `expiring` (warnings at 30, 7 and 1 days).
    static let expiringWithinDays = 30

    func create(_ r: CreateABMToken, correlationID: String?) async throws -> ABMTokenHealth {
        let name = r.name.trimmingCharacters(in: .whitespaces)
        guard (1...100).contains(name.count), !name.containsControlCharacters else {
            throw RequestRefused(code: "abm-token.name", message: "name must be 1 to 100 characters, without control characters")
        }
        let id = RandomUUID.lowercased()
        let (key, certificate, pem) = try Self.newKeyPair(id)
        let sealedKey = try box.seal(try key.pemRepresentation(), context: Self.keyContext(id))
        do {
            try await database.transaction { c in
                try ABMTokenStore.insert(c, id: id, name: name, sealedKey: sealedKey, certificatePEM: pem,
                                         certificateSHA256: certificate.sha256Fingerprint)
                try Outbox.append(activity(r.actor, "abm-token.created", detail: "\(name) (\(id))"), correlationID: correlationID, on: c)
            }
        } catch let error as PostgresError where error.sqlState == "23505" {
            throw RequestRefused(code: "abm-token.exists", message: "a server token named \(name) exists already", httpStatus: 409)
        }
        outbox.notify()
        return try await health(id: id)
    }

    /// Opens the `.p7m` with the entry's key and stores its credentials (renewal: a new `.p7m` for the same
    /// key replaces the old one). Refused with nothing stored: not a server token (400), another key's (422).
    func upload(_ r: UploadABMServerToken, correlationID: String?) async throws -> ABMTokenHealth {
        let id = try Self.canonicalID(r.id)
        guard let row = try await ABMTokenStore.keys(database, id: id),
              let sealedKey = row.bytes("sealed_private_key"), let pem = row.string("certificate_pem") else {
            throw RequestRefused(code: "abm-token.unknown", message: "no server token \(id)", httpStatus: 404)
        }
        let key = try PrivateKey(pem: try box.open(sealedKey, context: Self.keyContext(id)))
        let certificate = try Certificate.parsePEM(Array(pem.utf8))[0]
        // A key rotation in progress: the staged pair opens the .p7m ABM made for its certificate.
        let staged = try row.bytes("staged_private_key").map { sealed in
            (key: try PrivateKey(pem: try box.open(sealed, context: Self.stagedKeyContext(id))),
             certificate: try Certificate.parsePEM(Array((row.string("staged_certificate_pem") ?? "").utf8))[0],
             sealed: sealed, pem: row.string("staged_certificate_pem") ?? "", sha256: row.string("staged_certificate_sha256") ?? "")
        }
        var rotated = false
        let credentials: ServerTokenFile.Credentials
        do {
            let envelope = try ServerTokenFile.envelope(from: Array(r.p7m))
            let content: [UInt8]
            do { content = try CMS.decrypt(envelope, certificate: certificate, key: key) } catch CMS.DecryptionFailure.notCMS {
                throw ServerTokenFile.Malformed(reason: "not a CMS EnvelopedData message")
            } catch CMS.DecryptionFailure.notForThisKey where staged != nil {
                do { content = try CMS.decrypt(envelope, certificate: staged!.certificate, key: staged!.key) } catch CMS.DecryptionFailure.notForThisKey {
                    throw RequestRefused(code: "abm-token.other-key", message: """
                        this server token was encrypted neither to server token \(id)'s certificate nor to its staged one \
                        (SHA-256 \(staged!.sha256.prefix(16))…): download the server token again after uploading the staged certificate
                        """, httpStatus: 422)
                }
                rotated = true
            } catch CMS.DecryptionFailure.notForThisKey {
                throw RequestRefused(code: "abm-token.other-key", message: """
                    this server token was encrypted to another certificate than server token \(id)'s \
                    (SHA-256 \(certificate.sha256Fingerprint.prefix(16))…): upload that certificate to the MDM server \
                    in Apple Business Manager, then download its server token again
                    """, httpStatus: 422)
            }
            credentials = try ServerTokenFile.credentials(from: content)
        } catch let malformed as ServerTokenFile.Malformed {
            throw RequestRefused(code: "abm-token.malformed", message: "not an ABM server token (.p7m): \(malformed.reason)")
        }
        let sealed = try box.seal(Array(try JSONEncoder().encode(credentials)), context: Self.credentialsContext(id))
        let renewed = row.string("consumer_key") != nil
        // The staged key becomes the key (sealed again for its new place); the old one goes only now.
        let promoted = rotated ? try staged.map { try box.seal(try $0.key.pemRepresentation(), context: Self.keyContext(id)) } : nil
        try await database.transaction { c in
            try ABMTokenStore.saveCredentials(c, id: id, sealed: sealed, consumerKey: credentials.consumerKey,
                                              expiry: credentials.accessTokenExpiry)
            if let staged, let promoted {
                try ABMTokenStore.promoteStagedKey(c, id: id, sealedKey: promoted, certificatePEM: staged.pem, certificateSHA256: staged.sha256)
                try Outbox.append(activity(r.actor, "abm-token.key-rotated", detail: """
                    \(row.string("name") ?? id): the staged key (certificate SHA-256 \(staged.sha256.prefix(16))…) replaced the old one
                    """), correlationID: correlationID, on: c)
            }
            try Outbox.append(activity(r.actor, renewed ? "abm-token.renewed" : "abm-token.uploaded",
                                       detail: "\(row.string("name") ?? id): expires \(ISO8601.string(from: credentials.accessTokenExpiry))"),
                              correlationID: correlationID, on: c)
        }
        outbox.notify()
        try await warnIfExpiring(id: id)
        try await registerDiscovery(id: id, correlationID: correlationID)
        return try await health(id: id)
    }

    /// Registers the account-driven discovery URL with ABM for token `id` (`POST /account-driven-enrollment/profile`) unless
    /// ABM already has this URL; the outcome is stored on the token (shown in its health and in the admin API's domains).
    /// A failure is recorded, not thrown: the next sync tries again.
    func registerDiscovery(id: String, correlationID: String?, force: Bool = false) async throws {
        guard let url = discoveryURL else { return }
        if !force, let known = try await ABMTokenStore.discovery(database, id: id), known.url == url, known.registered {
            return
        }
        var attempt: String?
        do {
            let session = try await session(id: id)
            let body = try JSONSerialization.data(withJSONObject: ["mdm_service_discovery_url": url], options: [.withoutEscapingSlashes])
            _ = try await session.call(.POST, "/account-driven-enrollment/profile", json: Array(body))
        } catch {
            attempt = "\(error)"
        }
        let failure = attempt
        try await database.transaction { c in
            try ABMTokenStore.saveDiscovery(c, id: id, url: url, failure: failure)
            try Outbox.append(activity("service:\(service)", "abm-token.discovery-url", outcome: failure == nil ? .succeeded : .failed,
                                       detail: failure.map { "\(url) not registered: \($0)" } ?? "\(url) registered with ABM"),
                              correlationID: correlationID, on: c)
        }
        outbox.notify()
    }

    /// Stages a new key pair (key rotation): its certificate goes to ABM; the `.p7m` ABM then makes for it
    /// promotes it (`upload`). Until then the current key and server token keep working.
    func rotate(_ r: RotateABMTokenKey, correlationID: String?) async throws -> ABMTokenHealth {
        let id = try Self.canonicalID(r.id)
        let (key, certificate, pem) = try Self.newKeyPair(id)
        let sealed = try box.seal(try key.pemRepresentation(), context: Self.stagedKeyContext(id))
        try await database.transaction { c in
            guard let name = try ABMTokenStore.stageKey(c, id: id, sealedKey: sealed, certificatePEM: pem,
                                                        certificateSHA256: certificate.sha256Fingerprint) else {
                throw RequestRefused(code: "abm-token.unknown", message: "no server token \(id)", httpStatus: 404)
            }
            try Outbox.append(activity(r.actor, "abm-token.key-staged", detail: """
                \(name): new certificate SHA-256 \(certificate.sha256Fingerprint.prefix(16))… to upload to ABM; the current key stays \
                until ABM's server token for it is uploaded
                """), correlationID: correlationID, on: c)
        }
        outbox.notify()
        return try await health(id: id)
    }

    /// As NanoDEP: RSA-2048, self-signed; ABM only uses the certificate to encrypt the server token to us.
    static func newKeyPair(_ id: String) throws -> (PrivateKey, Certificate, String) {
        let key = try PrivateKey.generateRSA(bits: 2048)
        let now = Date()
        let certificate = try Certificate.issue(subject: "/CN=Orchard ABM server token \(id)", key: key, issuer: nil,
                                                usage: .clientIdentity, validity: now.addingTimeInterval(-300)...now.addingTimeInterval(86400 * 3650))
        return (key, certificate, String(decoding: try certificate.pemRepresentation(), as: UTF8.self))
    }

    /// Warns once per threshold (30, 7 and 1 days before the access token expires) with an activity entry,
    /// and keeps the days-left gauge current. Runs after every upload and, through `ExpiryWatch`, hourly.
    func warnIfExpiring(id: String) async throws {
        guard let row = try await ABMTokenStore.expiry(database, id: id) else { return }
        let expiry = row.expiry
        let days = Int((expiry.timeIntervalSinceNow / 86400).rounded(.down))
        OrchardMetrics.abmTokenDaysLeft(token: id).set(Double(days))
        guard let threshold = Self.warningDays.first(where: { days < $0 }),
              row.warnedDays.map({ threshold < $0 }) ?? true else { return }
        let name = row.name ?? id
        try await database.transaction { c in
            try ABMTokenStore.markWarned(c, id: id, days: threshold)
            try Outbox.append(activity("service:\(service)", days < 0 ? "abm-token.expired" : "abm-token.expiring", outcome: .failed,
                                       detail: "\(name): \(days < 0 ? "expired" : "\(days) days left"), expires \(ISO8601.string(from: expiry)); renew it in Apple Business Manager"),
                              correlationID: nil, on: c)
        }
        outbox.notify()
    }

    /// Warning thresholds, in days left (a token with fewer than this many days left is warned about once).
    static let warningDays = [1, 7, 30]

    func warnAll() async throws {
        for id in try await ABMTokenStore.idsWithCredentials(database) { try await warnIfExpiring(id: id) }
    }

    /// `GET /account` with the token: the organisation and server name, or why ABM refused.
    func check(_ r: CheckABMToken, correlationID: String?) async throws -> ABMTokenHealth {
        let id = try Self.canonicalID(r.id)
        let session = try await session(id: id)
        let outcome: AccountCheck
        do {
            let answer = try await session.call(.GET, "/account")
            let account = (try? JSONSerialization.jsonObject(with: Data(answer.body)) as? [String: Any]) ?? [:]
            outcome = AccountCheck(failure: nil, termsNotSigned: false, organization: account["org_name"] as? String,
                                   serverName: account["server_name"] as? String, serverUUID: account["server_uuid"] as? String)
        } catch let error as ABMSession.TermsNotSigned {
            outcome = AccountCheck(failure: error.description, termsNotSigned: true)
        } catch {
            outcome = AccountCheck(failure: "\(error)", termsNotSigned: false)
        }
        try await database.transaction { c in
            let name = try ABMTokenStore.saveCheck(c, id: id, failure: outcome.failure.map { String($0.prefix(500)) },
                                                   termsNotSigned: outcome.termsNotSigned, organization: outcome.organization,
                                                   serverName: outcome.serverName, serverUUID: outcome.serverUUID) ?? id
            try Outbox.append(activity(r.actor, "abm-token.checked", outcome: outcome.failure == nil ? .succeeded : .failed,
                                       detail: "\(name): \(outcome.failure ?? "organisation \(outcome.organization ?? "?")")"),
                              correlationID: correlationID, on: c)
        }
        outbox.notify()
        return try await health(id: id)
    }

    /// A session with ABM for the token's credentials (refused while no server token is uploaded).
    /// `attempts`: how many times a call is tried (a device waiting on the answer cannot wait for five).
    func session(id: String, attempts: Int = 5) async throws -> ABMSession {
        guard let stored = try await ABMTokenStore.sealedCredentials(database, id: id)
        else { throw RequestRefused(code: "abm-token.unknown", message: "no server token \(id)", httpStatus: 404) }
        guard let sealed = stored else {
            throw RequestRefused(code: "abm-token.awaiting", message: "server token \(id) has no .p7m uploaded yet", httpStatus: 409)
        }
        let credentials = try JSONDecoder().decode(ServerTokenFile.Credentials.self,
                                                   from: Data(try box.open(sealed, context: Self.credentialsContext(id))))
        return ABMSession(baseURL: appleURL, credentials: .init(consumerKey: credentials.consumerKey, consumerSecret: credentials.consumerSecret,
                                                                token: credentials.accessToken, tokenSecret: credentials.accessSecret),
                          client: http, maxAttempts: attempts, store: sessions, tokenID: id)
    }

    func list() async throws -> [ABMTokenHealth] {
        try await ABMTokenStore.healthRows(database).map(Self.health)
    }

    private func health(id: String) async throws -> ABMTokenHealth {
        guard let row = try await ABMTokenStore.healthRow(database, id: id) else {
            throw RequestRefused(code: "abm-token.unknown", message: "no server token \(id)", httpStatus: 404)
        }
        return Self.health(row)
    }

    private static func health(_ row: Row) -> ABMTokenHealth {
        let expiry = row.date("access_token_expiry")
        let daysLeft = expiry.map { Int(($0.timeIntervalSinceNow / 86400).rounded(.down)) }
        let state: String
        switch daysLeft {
        case _ where row.bool("terms_not_signed") == true: state = "terms-not-signed"
        case nil: state = "awaiting-server-token"
        case let days? where days < 0 || expiry! < Date(): state = "expired"
        case let days? where days <= expiringWithinDays: state = "expiring"
        default: state = "ok"
        }
        var health = ABMTokenHealth(id: row.string("id") ?? "", name: row.string("name") ?? "",
                              certificateSHA256: row.string("certificate_sha256") ?? "", certificatePEM: row.string("certificate_pem") ?? "",
                              hasServerToken: row.bool("has_token") ?? false, consumerKey: row.string("consumer_key"),
                              accessTokenExpiry: expiry, daysLeft: daysLeft, state: state,
                              serverTokenUploadedAt: row.date("server_token_uploaded_at"), createdAt: row.date("created_at") ?? Date(),
                              organization: row.string("org_name"), serverName: row.string("server_name"),
                              lastCheckedAt: row.date("last_checked_at"), lastError: row.string("last_error"),
                              termsNotSigned: row.bool("terms_not_signed") ?? false,
                              stagedCertificatePEM: row.string("staged_certificate_pem"),
                              stagedCertificateSHA256: row.string("staged_certificate_sha256"))
        health.lastSyncAt = row.date("last_sync_at")
        health.lastSyncError = row.string("last_sync_error")
        health.defaultProfileID = row.string("default_profile_id")
        health.devices = row.int("devices")
        health.discoveryURL = row.string("discovery_url")
        health.discoveryRegisteredAt = row.date("discovery_registered_at")
        health.discoveryError = row.string("discovery_error")
        return health
    }

    /// An activity entry of abm-sync's (none concerns one device: the ABM mirror's changes are events).
    func activity(_ actor: String, _ action: String, outcome: ActivityRecorded.Outcome = .succeeded, detail: String) -> ActivityRecorded {
        ActivityRecorded(actor: actor, action: action, deviceID: nil, relatedDeviceIDs: [], outcome: outcome, detail: detail,
                         service: service)
    }

    private struct AccountCheck: Sendable {
        var failure: String?
        var termsNotSigned: Bool
        var organization: String? = nil
        var serverName: String? = nil
        var serverUUID: String? = nil
    }

    static func canonicalID(_ id: String) throws -> String {
        guard let uuid = UUID(uuidString: id) else {
            throw RequestRefused(code: "abm-token.unknown", message: "no server token \(id.prefix(64))", httpStatus: 404)
        }
        return uuid.uuidString.lowercased()
    }

    static func keyContext(_ id: String) -> String { "abm_sync.abm_tokens/\(id)/key" }
    static func stagedKeyContext(_ id: String) -> String { "abm_sync.abm_tokens/\(id)/staged-key" }
    static func credentialsContext(_ id: String) -> String { "abm_sync.abm_tokens/\(id)/server-token" }
}
