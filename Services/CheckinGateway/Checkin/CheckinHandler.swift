import AppleProtocol
import Foundation
import Hummingbird
import OrchardCrypto
import OrchardMessages
import OrchardMessaging
import OrchardStorage

/// What a check-in produced: the HTTP answer and the enrollments to push once the transaction committed.
struct CheckinOutcome: Sendable {
    var response: Response
    var push: [String] = []
}

/// Applies check-in messages. Every branch runs in one transaction with the events it announces
/// (outbox), so a crash never leaves a state change without its event or the reverse.
struct CheckinHandler: Sendable {
    let database: Database
    let secrets: SecretBox
    let declarations: DeclarationService
    let tokens: WatchPairingTokens
    let pushTopic: @Sendable () async -> String?
    let service: String

    func handle(_ message: CheckinMessage, signer: Certificate, correlationID: String) async throws -> CheckinOutcome {
        guard let id = message.identity.enrollmentKey else { throw refuse(.badRequest, "missing UDID or EnrollmentID") }
        let fingerprint = signer.sha256Fingerprint
        switch message {
        case .authenticate(let m):
            try await authenticate(m, id: id, fingerprint: fingerprint, correlationID: correlationID)
            return CheckinOutcome(response: emptyResponse())
        case .tokenUpdate(let m):
            return try await tokenUpdate(m, id: id, fingerprint: fingerprint, correlationID: correlationID)
        case .checkOut:
            try await database.transaction { c in
                _ = try EnrollmentAccess.authorize(c, enrollmentID: id, fingerprint: fingerprint, allowCheckedOut: true)
                try c.query("UPDATE enrollments SET status = 'checked-out' WHERE id = $1", [.text(id)])
                var journal = Journal(correlationID: correlationID)
                journal.event(DeviceEvent(kind: .checkedOut, enrollmentID: id))
                journal.activity(actor: "device:\(id)", "device.checked-out", device: id)
                try journal.write(c)
            }
            return CheckinOutcome(response: emptyResponse())
        case .setBootstrapToken(let m):
            let sealed = try m.bootstrapToken.flatMap { $0.isEmpty ? nil : try secrets.seal($0, context: "bootstrap/\(id)") }
            try await database.transaction { c in
                _ = try EnrollmentAccess.authorize(c, enrollmentID: id, fingerprint: fingerprint)
                try c.query("UPDATE enrollments SET sealed_bootstrap_token = $2 WHERE id = $1",
                            [.text(id), sealed.map(SQLValue.bytes) ?? .null])
                var journal = Journal(correlationID: correlationID)
                journal.activity(actor: "device:\(id)", sealed == nil ? "bootstrap-token.deleted" : "bootstrap-token.escrowed", device: id)
                try journal.write(c)
            }
            return CheckinOutcome(response: emptyResponse())
        case .getBootstrapToken:
            let sealed = try await database.transaction { c -> [UInt8]? in
                _ = try EnrollmentAccess.authorize(c, enrollmentID: id, fingerprint: fingerprint)
                return try c.query("SELECT sealed_bootstrap_token FROM enrollments WHERE id = $1", [.text(id)]).first?
                    .bytes("sealed_bootstrap_token")
            }
            var body: [String: PlistValue] = [:]
            if let sealed { body["BootstrapToken"] = .data(try secrets.open(sealed, context: "bootstrap/\(id)")) }
            return CheckinOutcome(response: bytesResponse(Plist.xml(body), contentType: "application/xml"))
        case .declarativeManagement(let m):
            _ = try await database.transaction { c in try EnrollmentAccess.authorize(c, enrollmentID: id, fingerprint: fingerprint) }
            return CheckinOutcome(response: try await declarations.respond(to: m, enrollmentID: id, correlationID: correlationID))
        case .getToken(let m):
            // One transaction: the identity check, and whether this iPhone may pair a watch.
            let (enrollment, pairingRefusal) = try await database.transaction { c in
                let enrollment = try EnrollmentAccess.authorize(c, enrollmentID: id, fingerprint: fingerprint)
                let refusal = m.tokenServiceType == GetToken.watchPairing ? try tokens.settings.mayPair(c, phone: enrollment.id) : nil
                return (enrollment, refusal)
            }
            guard m.tokenServiceType == GetToken.watchPairing else {
                throw refuse(.badRequest, "unsupported TokenServiceType \(m.tokenServiceType.prefix(64))")
            }
            let data = try await tokens.pairingToken(for: m, phone: enrollment, mayNotPair: pairingRefusal, correlationID: correlationID)
            return CheckinOutcome(response: bytesResponse(GetToken.response(tokenData: data), contentType: "application/xml"))
        case .userAuthenticate:
            return CheckinOutcome(response: Response(status: .gone, headers: [.contentLength: "0"]))
        }
    }

    private func authenticate(_ m: Authenticate, id: String, fingerprint: String, correlationID: String) async throws {
        if let topic = await pushTopic(), topic != m.topic {
            throw refuse(.forbidden, "Topic \(m.topic.prefix(80)) is not this server's push topic")
        }
        let kind = m.identity.udid == nil ? "user" : "device"
        try await database.transaction { c in
            // One round trip: the enrollment as it is (locked) and whether Orchard issued this identity.
            let state = try c.query("""
                SELECT (SELECT identity_fingerprint FROM enrollments WHERE id = $1 FOR UPDATE) AS bound,
                       (SELECT status FROM enrollments WHERE id = $1) AS status,
                       (SELECT mdm_payload_identifier FROM issued_identities WHERE fingerprint = $2) AS issued,
                       (SELECT server_capabilities FROM issued_identities WHERE fingerprint = $2) AS capabilities,
                       (SELECT paired_phone FROM issued_identities WHERE fingerprint = $2) AS paired_phone
                """, [.text(id), .text(fingerprint)]).first
            // Re-enrollment brings a new identity; an enrolled device may switch only to one Orchard just issued.
            if let bound = state?.string("bound"), bound != fingerprint, state?.string("status") == "enrolled",
               state?.isNull("issued") ?? true {
                throw refuse(.forbidden, "enrollment \(id) is bound to another identity")
            }
            do {
                try c.query("""
                    INSERT INTO enrollments (id, udid, enrollment_kind, status, identity_fingerprint, topic, serial_number,
                                             os_version, build_version, product_name, model, device_name,
                                             mdm_payload_identifier, server_capabilities, paired_with, supervised, last_seen_at)
                    VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                            CASE WHEN $14::text IS NOT NULL THEN true END, now())
                    ON CONFLICT (id) DO UPDATE SET
                        status = CASE WHEN enrollments.identity_fingerprint = EXCLUDED.identity_fingerprint
                                       AND enrollments.status = 'enrolled' THEN 'enrolled' ELSE 'pending' END,
                        identity_fingerprint = EXCLUDED.identity_fingerprint, topic = EXCLUDED.topic,
                        serial_number = COALESCE(EXCLUDED.serial_number, enrollments.serial_number),
                        os_version = COALESCE(EXCLUDED.os_version, enrollments.os_version),
                        build_version = COALESCE(EXCLUDED.build_version, enrollments.build_version),
                        product_name = COALESCE(EXCLUDED.product_name, enrollments.product_name),
                        model = COALESCE(EXCLUDED.model, enrollments.model),
                        device_name = COALESCE(EXCLUDED.device_name, enrollments.device_name),
                        mdm_payload_identifier = COALESCE(EXCLUDED.mdm_payload_identifier, enrollments.mdm_payload_identifier),
                        server_capabilities = COALESCE(EXCLUDED.server_capabilities, enrollments.server_capabilities),
                        paired_with = COALESCE(EXCLUDED.paired_with, enrollments.paired_with),
                        supervised = COALESCE(EXCLUDED.supervised, enrollments.supervised),
                        last_seen_at = now()
                    """, [.text(id), .optionalText(m.identity.udid), .text(kind), .text(fingerprint), .text(m.topic),
                          .optionalText(m.serialNumber), .optionalText(m.osVersion), .optionalText(m.buildVersion),
                          .optionalText(m.productName), .optionalText(m.model), .optionalText(m.deviceName),
                          .optionalText(state?.string("issued")), .optionalText(state?.string("capabilities")),
                          .optionalText(state?.string("paired_phone"))])
            } catch let error as PostgresError where error.isUniqueViolation {
                // enrollments_identity: this identity is already bound to another enrollment.
                throw refuse(.forbidden, "this identity belongs to another enrollment")
            }
            var details: [String: String] = [:]
            details["serial"] = m.serialNumber
            details["product"] = m.productName
            var journal = Journal(correlationID: correlationID)
            journal.event(DeviceEvent(kind: .authenticated, enrollmentID: id, details: details))
            let phone = state?.string("paired_phone")
            journal.activity(actor: "device:\(id)", phone == nil ? "device.authenticated" : "watch.authenticated", device: id,
                             related: phone.map { [$0] } ?? [])
            try journal.write(c)
        }
    }

    private func tokenUpdate(_ m: TokenUpdate, id: String, fingerprint: String, correlationID: String) async throws -> CheckinOutcome {
        let unlock = try m.unlockToken.map { try secrets.seal($0, context: "unlock/\(id)") }
        let information = MDMCommand.deviceInformation()
        let first = try await database.transaction { c -> Bool in
            // Checks the identity and updates in one statement; returns the status before the update.
            let previous = try c.query("""
                UPDATE enrollments e SET push_token = $3, push_magic = $4, topic = $5, push_token_invalid = false,
                    sealed_unlock_token = COALESCE($6, e.sealed_unlock_token), awaiting_configuration = $7,
                    status = 'enrolled', enrolled_at = COALESCE(e.enrolled_at, now()), last_seen_at = now()
                FROM (SELECT status FROM enrollments WHERE id = $1 FOR UPDATE) old
                WHERE e.id = $1 AND e.identity_fingerprint = $2 AND old.status <> 'checked-out'
                RETURNING old.status, e.paired_with
                """, [.text(id), .text(fingerprint), .bytes(m.token), .text(m.pushMagic), .text(m.topic),
                      unlock.map(SQLValue.bytes) ?? .null, .bool(m.awaitingConfiguration)]).first
            guard let status = previous?.string("status") else {
                // Nothing was updated: say why, as every other message does.
                _ = try EnrollmentAccess.authorize(c, enrollmentID: id, fingerprint: fingerprint)
                throw refuse(.unauthorized, "enrollment \(id) cannot take a TokenUpdate now")
            }
            var journal = Journal(correlationID: correlationID)
            let first = status != "enrolled"
            if first {
                try CommandQueue.enqueue(c, information, enrollmentIDs: [id], requestedBy: "service:\(service)", journal: &journal)
                journal.event(DeviceEvent(kind: .enrolled, enrollmentID: id,
                                          details: ["awaitingConfiguration": String(m.awaitingConfiguration)]))
                let phone = previous?.string("paired_with")
                journal.activity(actor: "device:\(id)", phone == nil ? "device.enrolled" : "watch.enrolled", device: id,
                                 related: phone.map { [$0] } ?? [])
            } else {
                journal.event(DeviceEvent(kind: .tokenUpdated, enrollmentID: id))
            }
            try journal.write(c)
            return first
        }
        return CheckinOutcome(response: emptyResponse(), push: first ? [id] : [])
    }
}
