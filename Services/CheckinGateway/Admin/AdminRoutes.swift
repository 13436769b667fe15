import OrchardCore
import AppleProtocol
import Foundation
import Hummingbird
import OrchardCrypto
import OrchardSchemas
import OrchardMessaging
import OrchardStorage

/// The admin API under `/admin/v1` (described by docs/openapi.yaml). Every change is written to the
/// activity log with the API key that made it.
struct AdminRoutes: Sendable {
    let database: Database
    let outbox: OutboxPublisher
    let links: EnrollmentLinks
    let declarations: DeclarationService
    let pushCertificates: PushCertificates
    let pusher: APNsPusher
    let requests: RequestClient
    let secrets: SecretBox
    let requestTimeout: Duration
    let watchEnrollment: WatchEnrollmentSettings
    let accounts: AccountAuthorization
    let passwords: PasswordHasher
    let returnToService: ADEReturnToService
    /// Orchard's ADE enrollment endpoint, the `url` of ADE profiles that give none.
    let adeEnrollmentURL: String
    /// Orchard's ADE sign-in page, the `configuration_web_url` of profiles defined with `signIn`.
    var adeSignInURL: String { adeEnrollmentURL.replacingOccurrences(of: "/mdm/ade/enroll", with: "/mdm/ade/sign-in") }

    /// `registeredWithABM`: whether an ABM server token has the domains' discovery URL registered (abm-sync says; when
    /// it does not answer, the domains show as not registered).
    private func withABMRegistration(_ domains: [ManagedDomain], correlationID: String) async -> [ManagedDomain] {
        guard let tokens = try? await requests.request(ListABMTokens(), timeout: requestTimeout, correlationID: correlationID) else {
            return domains
        }
        let registered = Set(tokens.items.filter { $0.discoveryRegisteredAt != nil }.compactMap(\.discoveryURL))
        return domains.map { var d = $0; d.registeredWithABM = d.discoveryURL.map(registered.contains) ?? false; return d }
    }

    func add(to router: Router<GatewayContext>) {
        let admin = router.group("admin/v1").add(middleware: AdminAuthentication(database: database))

        admin.post("enrollment-links") { request, context -> EnrollmentLinkCreated in
            let input = try await request.decode(as: EnrollmentLinkInput.self, context: context)
            let made = try await links.create(name: input.name, expiresAt: input.expiresAt, maxUses: input.maxUses,
                                              actor: context.adminKey!.actor, correlationID: context.correlationID)
            return EnrollmentLinkCreated(id: made.id, url: made.url, token: made.token)
        }
        admin.get("enrollment-links") { _, _ -> Page<EnrollmentLinkView> in
            Page(items: try await AdminQueries.links(database).map(EnrollmentLinkView.init))
        }
        admin.delete("enrollment-links/:id") { _, context -> Response in
            let id = try context.parameters.require("id", as: UUID.self).uuidString.lowercased()
            let revoked = try await database.transaction { c -> Bool in
                let hit = try AdminQueries.revokeLink(c, id: id)
                if hit { try audit(c, context, "enrollment-link.revoked", device: nil, detail: id) }
                return hit
            }
            guard revoked else { throw refuse(.notFound, "no active enrollment link \(id)") }
            outbox.notify()
            return emptyResponse(.noContent)
        }

        admin.get("devices") { request, _ -> Page<DeviceView> in
            let status = request.uri.queryParameters["status"].map(String.init)
            let limit = try pageLimit(request.uri.queryParameters["limit"])
            let after = request.uri.queryParameters["after"].map(String.init) ?? ""
            let rows = try await AdminQueries.devices(database, status: status, managedAppleID: request.uri.queryParameters["managedAppleID"].map(String.init),
                                                      after: after, limit: limit)
            return Page(items: rows.map(DeviceView.init))
        }
        admin.get("devices/:id") { _, context -> DeviceView in
            try await device(context.parameters.require("id"))
        }
        admin.get("devices/:id/commands") { _, context -> Page<CommandView> in
            let id = try context.parameters.require("id")
            let rows = try await AdminQueries.commands(database, of: id)
            return Page(items: rows.map(CommandView.init))
        }
        admin.post("devices/:id/commands") { request, context -> CommandQueued in
            let id = try context.parameters.require("id")
            let input = try await request.decode(as: CommandInput.self, context: context)
            return try await enqueue(input, for: [id], context: context)
        }
        admin.post("commands") { request, context -> CommandQueued in
            let input = try await request.decode(as: BulkCommandInput.self, context: context)
            guard !input.enrollmentIDs.isEmpty, input.enrollmentIDs.count <= 10_000 else {
                throw refuse(.badRequest, "enrollmentIDs must list 1 to 10000 enrollments")
            }
            return try await enqueue(input.command, for: input.enrollmentIDs, context: context)
        }

        admin.get("declarations") { _, _ -> Page<DeclarationView> in
            let rows = try await AdminQueries.declarations(database)
            return Page(items: rows.map {
                DeclarationView(identifier: $0.string("identifier") ?? "", type: $0.string("type") ?? "",
                                serverToken: $0.string("server_token") ?? "", updatedAt: isoDate($0.date("updated_at")),
                                payload: $0.string("payload") ?? "{}")
            })
        }
        admin.put("declarations/:identifier") { request, context -> Response in
            let identifier = try context.parameters.require("identifier")
            let input = try await request.decode(as: DeclarationInput.self, context: context)
            let devices = try await declarations.upsert(identifier: identifier, type: input.type, payload: input.payload.bytes,
                                                        actor: context.adminKey!.actor, correlationID: context.correlationID)
            await pusher.push(devices)
            return emptyResponse(.noContent)
        }
        admin.delete("declarations/:identifier") { _, context -> Response in
            let identifier = try context.parameters.require("identifier")
            let deleted = try await database.transaction { c -> Bool in
                let hit = try AdminQueries.deleteDeclaration(c, identifier: identifier)
                if hit { try audit(c, context, "declaration.deleted", device: nil, detail: identifier) }
                return hit
            }
            guard deleted else { throw refuse(.notFound, "no declaration \(identifier)") }
            outbox.notify()
            return emptyResponse(.noContent)
        }
        admin.put("devices/:id/declarations") { request, context -> Response in
            let id = try context.parameters.require("id")
            let input = try await request.decode(as: AssignmentInput.self, context: context)
            let devices = try await declarations.assign(input.identifiers, to: id, actor: context.adminKey!.actor,
                                                        correlationID: context.correlationID)
            await pusher.push(devices)
            return emptyResponse(.noContent)
        }
        admin.get("devices/:id/declarations") { _, context -> DeviceDeclarationsView in
            let id = try context.parameters.require("id")
            let assigned = try await AdminQueries.assignedDeclarations(database, to: id)
            let status = try await AdminQueries.declarationStatus(database, of: id)
            return DeviceDeclarationsView(identifiers: assigned, lastStatusReport: status?.string("report"),
                                          lastStatusAt: isoDate(status?.date("received_at")))
        }

        admin.put("push-certificate") { request, context -> PushCertificateView in
            let input = try await request.decode(as: PushCertificateInput.self, context: context)
            let identity = try pushIdentity(input)
            let saved = try await pushCertificates.save(identity)
            await pusher.certificateChanged()
            try await database.transaction { c in
                try audit(c, context, "push-certificate.uploaded", device: nil, detail: "\(saved.topic), expires \(isoDate(saved.notAfter) ?? "")")
            }
            outbox.notify()
            return PushCertificateView(topic: saved.topic, notAfter: isoDate(saved.notAfter), subject: identity.certificate.subject,
                                       uploadedAt: isoDate(saved.uploadedAt))
        }
        admin.get("push-certificate") { _, _ -> PushCertificateView in
            guard let cert = try await pushCertificates.load() else { throw refuse(.notFound, "no push certificate uploaded") }
            return PushCertificateView(topic: cert.topic, notAfter: isoDate(cert.notAfter), subject: cert.identity.certificate.subject,
                                       uploadedAt: isoDate(cert.uploadedAt))
        }
        admin.get("signing-identities") { _, context -> DescribeSigningIdentities.Reply in
            try await requests.request(DescribeSigningIdentities(), timeout: requestTimeout, correlationID: context.correlationID)
        }

        // Apple Business Manager server tokens: abm-sync owns them (private keys and credentials); these
        // routes ask it over Kafka, and it writes the activity entries.
        admin.post("abm/tokens") { request, context -> ABMTokenHealth in
            let input = try await request.decode(as: ABMTokenInput.self, context: context)
            return try await requests.request(CreateABMToken(name: input.name, actor: context.adminKey!.actor),
                                              timeout: requestTimeout, correlationID: context.correlationID)
        }
        admin.post("abm/tokens/:id/check") { _, context -> ABMTokenHealth in
            try await requests.request(CheckABMToken(id: try context.parameters.require("id"), actor: context.adminKey!.actor),
                                       timeout: requestTimeout, correlationID: context.correlationID)
        }
        admin.post("abm/tokens/:id/sync") { request, context -> SyncABMToken.Reply in
            let full = request.uri.queryParameters["fullFetch"].map { $0 == "true" } ?? false
            // A sync of many pages outlasts a request: it goes on in abm-sync after a 503, and the next call sees it.
            return try await requests.request(SyncABMToken(id: try context.parameters.require("id"), actor: context.adminKey!.actor,
                                                           fullFetch: full),
                                              timeout: max(requestTimeout, .seconds(30)), correlationID: context.correlationID)
        }
        admin.post("abm/tokens/:id/rotate-key") { _, context -> ABMTokenHealth in
            try await requests.request(RotateABMTokenKey(id: try context.parameters.require("id"), actor: context.adminKey!.actor),
                                       timeout: requestTimeout, correlationID: context.correlationID)
        }
        admin.get("abm/tokens") { _, context -> ListABMTokens.Reply in
            try await requests.request(ListABMTokens(), timeout: requestTimeout, correlationID: context.correlationID)
        }
        admin.put("abm/tokens/:id/server-token") { request, context -> ABMTokenHealth in
            let id = try context.parameters.require("id")
            let p7m = try await request.bodyBytes(limit: 64 * 1024)
            return try await requests.request(UploadABMServerToken(id: id, p7m: Data(p7m), actor: context.adminKey!.actor),
                                              timeout: requestTimeout, correlationID: context.correlationID)
        }

        // ADE profiles and the device mirror (abm-sync defines and assigns them with ABM).
        admin.post("abm/tokens/:id/profiles") { request, context -> ADEProfileView in
            let input = try await request.decode(as: ADEProfileInput.self, context: context)
            var profile = input.profile.bytes
            let object = (try? JSONSerialization.jsonObject(with: Data(profile))) as? [String: Any]
            if input.signIn == true, var object {
                if object["configuration_web_url"] == nil { object["configuration_web_url"] = adeSignInURL }
                if object["url"] == nil { object["url"] = adeEnrollmentURL }
                profile = Array(try JSONSerialization.data(withJSONObject: object))
            }
            // Whatever asked for it (signIn, or the page named by hand), a profile whose web view is the sign-in page
            // gets its profile only from that page's POST: the `url` then refuses.
            let webURL = ((try? JSONSerialization.jsonObject(with: Data(profile))) as? [String: Any])?["configuration_web_url"] as? String
            return try await requests.request(
                DefineADEProfile(tokenID: try context.parameters.require("id"), profile: Data(profile),
                                 minimumOS: input.minimumOS ?? [:], makeDefault: input.default ?? false,
                                 enrollmentURL: adeEnrollmentURL, actor: context.adminKey!.actor,
                                 requiresSignIn: webURL == adeSignInURL),
                timeout: max(requestTimeout, .seconds(30)), correlationID: context.correlationID)
        }
        admin.get("abm/profiles") { _, context -> ListADEProfiles.Reply in
            try await requests.request(ListADEProfiles(), timeout: requestTimeout, correlationID: context.correlationID)
        }
        admin.post("abm/profiles/:id/default") { _, context -> AssignADEProfile.Reply in
            try await requests.request(SetDefaultADEProfile(profileID: try context.parameters.require("id"), actor: context.adminKey!.actor),
                                       timeout: max(requestTimeout, .seconds(60)), correlationID: context.correlationID)
        }
        admin.post("abm/profiles/:id/assign") { request, context -> AssignADEProfile.Reply in
            let input = try await request.decode(as: SerialsInput.self, context: context)
            guard (1...100_000).contains(input.serials.count) else { throw refuse(.badRequest, "serials must list 1 to 100000 serial numbers") }
            return try await requests.request(
                AssignADEProfile(profileID: try context.parameters.require("id"), serials: input.serials, actor: context.adminKey!.actor),
                timeout: max(requestTimeout, .seconds(60)), correlationID: context.correlationID)
        }
        admin.get("abm/devices") { request, context -> ListABMDevices.Reply in
            let q = request.uri.queryParameters
            return try await requests.request(
                ListABMDevices(tokenID: q["tokenId"].map(String.init), after: q["after"].map(String.init) ?? "",
                               limit: try pageLimit(q["limit"])),
                timeout: requestTimeout, correlationID: context.correlationID)
        }
        admin.post("abm/tokens/:id/devices/check") { request, context -> ABMDeviceAction.Reply in
            try await deviceAction(.check, request, context)
        }
        admin.post("abm/tokens/:id/devices/disown") { request, context -> ABMDeviceAction.Reply in
            try await deviceAction(.disown, request, context)
        }
        admin.post("abm/tokens/:id/devices/remove-profile") { request, context -> ABMDeviceAction.Reply in
            try await deviceAction(.removeProfile, request, context)
        }

        // ADE as the gateway sees it: each device's state, and the setup items of each ADE profile.
        admin.get("ade/devices") { request, _ -> Page<ADEDeviceView> in
            let q = request.uri.queryParameters
            let rows = try await ADEStore.list(database, after: q["after"].map(String.init) ?? "", limit: try pageLimit(q["limit"]))
            return Page(items: rows.map(ADEDeviceView.init))
        }
        // Devices migrating here from another MDM server: deadline, state, setup items left, overdue.
        admin.get("ade/migrations") { request, _ -> Page<ADEMigrationView> in
            let rows = try await ADEStore.migrations(database, limit: try pageLimit(request.uri.queryParameters["limit"]))
            return Page(items: rows.map(ADEMigrationView.init))
        }
        // One re-enrollment of an enrolled serial without ABM showing a new profile push (a device wiped where Apple's
        // push is not seen, or a replaced logic board): spent by the next ADE enrollment of the serial, within 24 hours.
        admin.post("ade/devices/:serial/allow-reenrollment") { _, context -> ADEReenrollmentAllowance in
            let serial = try context.parameters.require("serial")
            guard (1...64).contains(serial.count), !serial.containsControlCharacters else {
                throw refuse(.badRequest, "a serial number is 1 to 64 characters")
            }
            guard try await ADEStore.assignment(database, serial: serial) != nil else {
                throw refuse(.notFound, "serial \(serial) is not an ADE device of this server (not in the copy of ABM's devices)")
            }
            let until = try await database.transaction { c -> Date in
                let until = try ADEStore.allowReenrollment(c, serial: serial, by: context.adminKey!.actor,
                                                           for: ADEReenrollment.allowanceLifetime)
                try audit(c, context, "ade.reenrollment.allowed", device: nil,
                          detail: "serial \(serial) may re-enroll once without a new profile push, until \(ISO8601.string(from: until))")
                return until
            }
            outbox.notify()
            return ADEReenrollmentAllowance(serialNumber: serial, allowedBy: context.adminKey!.actor, expiresAt: ISO8601.string(from: until))
        }
        admin.put("ade/accounts/:username") { request, context -> ADEAccountView in
            let username = try context.parameters.require("username").trimmingCharacters(in: .whitespaces).lowercased()
            guard (1...200).contains(username.count), !username.containsControlCharacters else {
                throw refuse(.badRequest, "username must be 1-200 characters")
            }
            let input = try await request.decode(as: ADEAccountInput.self, context: context)
            guard (12...1024).contains(input.password.count) else { throw refuse(.badRequest, "password must be 12 to 1024 characters") }
            let hashed = try await passwords.hash(input.password)
            try await database.transaction { c in
                try ADEAccountStore.save(c, username: username, salt: hashed.salt, hash: hashed.hash, iterations: ADESignInRoutes.iterations,
                                         disabled: input.disabled ?? false)
                try audit(c, context, "ade.account.saved", device: nil, detail: "\(username)\(input.disabled == true ? " (disabled)" : "")")
            }
            outbox.notify()
            return ADEAccountView(username: username, disabled: input.disabled ?? false, locked: false)
        }
        admin.get("ade/accounts") { _, _ -> Page<ADEAccountView> in
            Page(items: try await ADEAccountStore.list(database).map { ADEAccountView(username: $0.username, disabled: $0.disabled, locked: $0.locked) })
        }
        admin.delete("ade/accounts/:username") { _, context -> Response in
            let username = try context.parameters.require("username").lowercased()
            let deleted = try await database.transaction { c -> Bool in
                let hit = try ADEAccountStore.delete(c, username: username)
                if hit { try audit(c, context, "ade.account.deleted", device: nil, detail: username) }
                return hit
            }
            guard deleted else { throw refuse(.notFound, "no account \(username.prefix(200))") }
            outbox.notify()
            return emptyResponse(.noContent)
        }
        ADEPlatformSSORoutes(database: database, outbox: outbox, accounts: accounts).add(to: admin)
        ADEReturnToServiceRoutes(database: database, outbox: outbox).add(to: admin)
        ABMAPIRoutes(requests: requests, requestTimeout: requestTimeout).add(to: admin)
        ActivationLockRoutes(database: database, outbox: outbox, requests: requests, requestTimeout: requestTimeout, secrets: secrets).add(to: admin)
        InstalledProfilesRoutes(database: database).add(to: admin)
        admin.put("ade/profiles/:id/setup") { request, context -> ADESetupView in
            let profileID = try context.parameters.require("id", as: UUID.self).uuidString.lowercased()
            let input = try await request.decode(as: ADESetupInput.self, context: context)
            let commands = input.commands ?? [], declarationIDs = input.declarations ?? []
            guard commands.count <= 100, declarationIDs.count <= 100 else {
                throw refuse(.badRequest, "at most 100 commands and 100 declarations")
            }
            for command in commands {
                guard !["ClearPasscode", "Unenroll", "EraseDevice", "DeviceConfigured"].contains(command.type) else {
                    throw refuse(.badRequest, "\(command.type) cannot be a setup item")
                }
                _ = try command.command()
            }
            let text = String(decoding: try JSONEncoder().encode(commands), as: UTF8.self)
            try await database.transaction { c in
                let known = try DeclarationStore.existing(c, declarationIDs)
                if let missing = declarationIDs.first(where: { !known.contains($0) }) { throw refuse(.badRequest, "no declaration \(missing)") }
                try ADEStore.saveSetupItems(c, profileID: profileID, commands: text, declarations: declarationIDs,
                                            actor: context.adminKey!.actor)
                try audit(c, context, "ade.setup-items.saved", device: nil,
                          detail: "profile \(profileID): \(commands.map(\.type).joined(separator: ", ")); declarations \(declarationIDs.joined(separator: ", "))")
            }
            outbox.notify()
            return ADESetupView(profileID: profileID, commands: commands.map(\.type), declarations: declarationIDs)
        }

        // Managed Apple Account domains (account-driven enrollment): user-enrollment-auth owns them.
        admin.put("account-domains/:domain") { request, context -> ManagedDomain in
            let input = try await request.decode(as: ManagedDomainInput.self, context: context)
            let saved = try await requests.request(
                SaveManagedDomain(domain: try context.parameters.require("domain"), mode: input.mode, directory: input.directory,
                                  ldap: input.ldap, authentication: input.authentication, oidc: input.oidc, minimumOS: input.minimumOS,
                                  enrollmentSSO: input.enrollmentSSO, actor: context.adminKey!.actor),
                timeout: requestTimeout, correlationID: context.correlationID)
            return await withABMRegistration([saved], correlationID: context.correlationID)[0]
        }
        // A Managed Apple Account's tokens: revoked, its devices' next requests are challenged (they sign in again).
        admin.post("account-users/:user/revoke-tokens") { _, context -> RevokeAccountTokens.Reply in
            // Percent-decoded: clients that encode "@" (%40) mean the same account.
            let raw = try context.parameters.require("user")
            let user = (raw.removingPercentEncoding ?? raw).lowercased()
            let reply = try await requests.request(RevokeAccountTokens(managedAppleID: user, actor: context.adminKey!.actor),
                                                   timeout: requestTimeout, correlationID: context.correlationID)
            // This gateway's copy and cache at once (the revocation events reach the copy too, a moment later).
            try await AccountTokenCopyStore.revoke(database, user: user, reason: "revoked by \(context.adminKey!.actor)")
            accounts.forget(user: user)
            return reply
        }
        admin.get("account-domains") { _, context -> ListManagedDomains.Reply in
            let reply = try await requests.request(ListManagedDomains(), timeout: requestTimeout, correlationID: context.correlationID)
            return ListManagedDomains.Reply(items: await withABMRegistration(reply.items, correlationID: context.correlationID))
        }
        admin.delete("account-domains/:domain") { _, context -> Response in
            _ = try await requests.request(DeleteManagedDomain(domain: try context.parameters.require("domain"), actor: context.adminKey!.actor),
                                           timeout: requestTimeout, correlationID: context.correlationID)
            return emptyResponse(.noContent)
        }

        admin.get("activity") { request, _ -> Page<ActivityView> in
            let q = request.uri.queryParameters
            let limit = try pageLimit(q["limit"])
            let rows = try await AdminQueries.activity(database, deviceID: q["deviceID"].map(String.init),
                                                       action: q["action"].map(String.init), limit: limit)
            return Page(items: rows.map(ActivityView.init))
        }

        admin.put("watch-enrollment") { request, context -> WatchEnrollmentView in
            let input = try await request.decode(as: WatchEnrollmentInput.self, context: context)
            guard let mode = WatchEnrollmentSettings.Mode(rawValue: input.mode) else {
                throw refuse(.badRequest, "mode must be off, all-supervised or selected")
            }
            let outcome = try await watchEnrollment.save(mode: mode, selected: input.enrollmentIDs ?? [],
                                                         anchorsPEM: input.anchorCertificatesPEM,
                                                         actor: context.adminKey!.actor, correlationID: context.correlationID)
            outbox.notify()
            await pusher.push(outcome.push)
            return try await watchEnrollmentView()
        }
        admin.get("watch-enrollment") { _, _ -> WatchEnrollmentView in
            try await watchEnrollmentView()
        }

        admin.post("api-keys") { request, context -> APIKeyCreated in
            let input = try await request.decode(as: APIKeyInput.self, context: context)
            guard !input.name.isEmpty, input.name.count <= 100 else { throw refuse(.badRequest, "name must be 1-100 characters") }
            guard !input.scopes.isEmpty, Set(input.scopes).isSubset(of: ["admin", "read"]) else {
                throw refuse(.badRequest, "scopes must be admin and/or read")
            }
            let key = "orchard_" + (try SecureRandom.token())
            let id = RandomUUID.lowercased()
            do {
                try await database.transaction { c in
                    try AdminQueries.createKey(c, id: id, name: input.name, keyHash: Digest.sha256(Array(key.utf8)), scopes: input.scopes)
                    try audit(c, context, "api-key.created", device: nil, detail: input.name)
                }
            } catch let error as PostgresError where error.isUniqueViolation {
                throw refuse(.conflict, "an API key named \(input.name) exists")
            }
            outbox.notify()
            return APIKeyCreated(id: id, name: input.name, key: key, scopes: input.scopes)
        }
        admin.get("api-keys") { _, _ -> Page<APIKeyView> in
            let rows = try await AdminQueries.keys(database)
            return Page(items: rows.map {
                APIKeyView(id: $0.string("id") ?? "", name: $0.string("name") ?? "",
                           scopes: ($0.string("scopes") ?? "").split(separator: ",").map(String.init),
                           createdAt: isoDate($0.date("created_at")), revoked: !$0.isNull("revoked_at"))
            })
        }
        admin.delete("api-keys/:id") { _, context -> Response in
            let id = try context.parameters.require("id", as: UUID.self).uuidString.lowercased()
            let revoked = try await database.transaction { c -> Bool in
                let hit = try AdminQueries.revokeKey(c, id: id)
                if hit { try audit(c, context, "api-key.revoked", device: nil, detail: id) }
                return hit
            }
            guard revoked else { throw refuse(.notFound, "no active API key \(id)") }
            outbox.notify()
            return emptyResponse(.noContent)
        }
    }

    private func deviceAction(_ action: ABMDeviceAction.Action, _ request: Request, _ context: GatewayContext) async throws
        -> ABMDeviceAction.Reply {
        let input = try await request.decode(as: SerialsInput.self, context: context)
        guard (1...1000).contains(input.serials.count) else { throw refuse(.badRequest, "serials must list 1 to 1000 serial numbers") }
        return try await requests.request(ABMDeviceAction(tokenID: try context.parameters.require("id"), action: action,
                                                          serials: input.serials, actor: context.adminKey!.actor),
                                          timeout: requestTimeout, correlationID: context.correlationID)
    }

    /// `limit` of a listing: 1 to 1000, 100 when absent; anything else is a 400 (it was a 500 for -1).

    /// The settings, and for every iPhone whether watch enrollment is on or why it cannot be.
    func watchEnrollmentView() async throws -> WatchEnrollmentView {
        let settings = try await AdminQueries.watchSettings(database)
        let on = try await AdminQueries.watchEnabledPhones(database)
        let phones = try await AdminQueries.iPhones(database)
        return WatchEnrollmentView(
            mode: settings?.string("mode") ?? "off", enrollmentProfileURL: watchEnrollment.enrollmentProfileURL,
            hasAnchorCertificates: settings?.bool("anchors") ?? false,
            phones: phones.compactMap { r in
                r.string("id").map { .init(enrollmentID: $0, on: on.contains($0), notEligibleBecause: WatchEnrollmentSettings.ineligibility(r)) }
            })
    }

    func device(_ id: String) async throws -> DeviceView {
        guard let row = try await AdminQueries.device(database, id: id) else {
            throw refuse(.notFound, "no enrollment \(id)")
        }
        var view = DeviceView(row)
        let channels = try await UserChannelStore.channels(database, enrollmentID: id)
        if !channels.isEmpty { view.userChannels = channels.map(DeviceView.UserChannelView.init) }
        return view
    }

    /// Builds the command an admin asked for, queues it and pushes the devices.
    func enqueue(_ input: CommandInput, for ids: [String], context: GatewayContext) async throws -> CommandQueued {
        let actor = context.adminKey!.actor
        // Erase and return to service: each device's own configuration; a profile it will need is built before the
        // transaction that grants its re-enrollment and queues the command.
        var returnProfiles: [String: ReturnToServiceConfiguration] = [:]
        if input.type == "EraseDevice" && input.returnToService == true {
            guard ids.count <= 100 else { throw refuse(.badRequest, "erase and return to service: at most 100 devices at a time") }
            for id in ids {
                let prepared = try await database.transaction { c in
                    try returnToService.prepare(c, enrollmentID: id, actor: actor, requireBootstrapToken: true, grant: false)
                }
                returnProfiles[id] = try await returnToService.complete(prepared, udid: id, correlationID: context.correlationID)
            }
        }
        let prebuilt = returnProfiles
        let queued = try await database.transaction { c -> (MDMCommand, [String], [CommandQueued.Part]) in
            var journal = Journal(correlationID: context.correlationID)
            var queued: [String] = []
            var last: MDMCommand?
            var parts: [CommandQueued.Part] = []
            // ClearPasscode and Unenroll depend on each device's own data, so each gets its own command.
            if !prebuilt.isEmpty {
                for id in ids {
                    // Read again in this transaction (and the re-enrollment granted): what the device gets is what holds now.
                    var configuration = try returnToService.prepare(c, enrollmentID: id, actor: actor, requireBootstrapToken: true).configuration
                    configuration.mdmProfile = prebuilt[id]?.mdmProfile
                    let command = MDMCommand.eraseDevice(preserveDataPlan: input.preserveDataPlan ?? false, returnToService: configuration)
                    let these = try CommandQueue.enqueue(c, command, enrollmentIDs: [id], requestedBy: actor, journal: &journal)
                    queued += these
                    last = command
                    journal.activity(actor: actor, "ade.return-to-service.erase-queued", device: id,
                                     detail: "EraseDevice with Return to Service: Wi-Fi profile \(configuration.wifiProfile == nil ? "none" : "sent"), "
                                        + "MDM profile \(configuration.mdmProfile == nil ? "not needed" : "sent"), bootstrap token sent")
                }
            } else if input.type == "ClearPasscode" || input.type == "Unenroll" {
                for id in ids {
                    let command = try perDeviceCommand(c, input.type, enrollmentID: id)
                    queued += try CommandQueue.enqueue(c, command, enrollmentIDs: [id], requestedBy: actor, journal: &journal)
                    last = command
                }
            } else if input.type == "DeviceInformation" && input.queries == nil {
                // The default queries include UDID, SerialNumber and IMEI, which Apple's schema forbids asking a User
                // Enrollment: those get the same queries without them, as a command of their own.
                let userEnrollments = Set(try AdminQueries.userEnrollments(c, among: ids).keys)
                let groups = [(ids.filter { !userEnrollments.contains($0) }, MDMCommand.standardQueries),
                              (ids.filter { userEnrollments.contains($0) }, MDMCommand.userEnrollmentQueries)]
                for (group, queries) in groups where !group.isEmpty {
                    let command = MDMCommand.deviceInformation(queries: queries)
                    let these = try CommandQueue.enqueue(c, command, enrollmentIDs: group, requestedBy: actor, journal: &journal)
                    guard !these.isEmpty else { continue }
                    queued += these
                    last = command
                    parts.append(CommandQueued.Part(commandUUID: command.commandUUID, queuedFor: these))
                }
            } else {
                let command = try input.command()
                if input.type == "InstallProfile", let bytes = input.profile.flatMap({ Data(base64Encoded: $0) }).map(Array.init) {
                    // A watch takes only the payloads and keys Apple's schemas allow on watchOS (and its supervision allows).
                    let watches = try AdminQueries.watches(c, among: ids)
                    if !watches.isEmpty {
                        let profile = try ProfileContent.plist(bytes)
                        for (id, supervised) in watches.sorted(by: { $0.key < $1.key }) {
                            let problems = WatchOSRules.problems(profile: profile, supervised: supervised)
                            guard problems.isEmpty else {
                                throw refuse(.badRequest, "InstallProfile to the watch \(id)\(supervised ? "" : " (not supervised)"): "
                                             + problems.joined(separator: "; ") + "; nothing was queued")
                            }
                        }
                    }
                }
                if input.type == "DeviceInformation", let queries = input.queries {
                    // Named queries Apple's schema forbids for a User Enrollment are refused, not sent to be refused there.
                    for (id, product) in try AdminQueries.userEnrollments(c, among: ids).sorted(by: { $0.key < $1.key }) {
                        let os = UserEnrollmentQueries.os(productName: product)
                        let refused = UserEnrollmentQueries.refused(queries, os: os)
                        guard refused.isEmpty else {
                            throw refuse(.badRequest, "DeviceInformation: Apple does not allow asking a User Enrollment (\(id), \(os ?? "any OS")) for "
                                         + "\(refused.joined(separator: ", ")) (information.device.yaml, userenrollment: forbidden); nothing was queued")
                        }
                    }
                }
                queued = try CommandQueue.enqueue(c, command, enrollmentIDs: ids, requestedBy: actor, journal: &journal)
                last = command
            }
            guard let command = last, !queued.isEmpty else {
                throw refuse(.notFound, "none of the enrollments exists or is enrolled")
            }
            try journal.write(c)
            return (command, queued, parts)
        }
        outbox.notify()
        await pusher.push(queued.1)
        // One command, or (DeviceInformation split between User Enrollments and others) the first, with every part listed.
        let first = queued.2.first
        return CommandQueued(commandUUID: first?.commandUUID ?? queued.0.commandUUID, requestType: queued.0.requestType,
                             queuedFor: queued.1, commands: queued.2.count > 1 ? queued.2 : nil)
    }

    private func perDeviceCommand(_ c: Connection, _ type: String, enrollmentID: String) throws -> MDMCommand {
        guard let row = try AdminQueries.commandInputs(c, of: enrollmentID) else {
            throw refuse(.notFound, "no enrollment \(enrollmentID)")
        }
        if type == "Unenroll" {
            guard let identifier = row.string("profile_identifier") else {
                throw refuse(.conflict, "enrollment \(enrollmentID) was not enrolled with an Orchard profile; send RemoveProfile with its identifier")
            }
            return .removeProfile(identifier: identifier)
        }
        guard let sealed = row.bytes("sealed_unlock_token") else {
            throw refuse(.conflict, "enrollment \(enrollmentID) sent no UnlockToken; ClearPasscode needs one")
        }
        return .clearPasscode(unlockToken: try secrets.open(sealed, context: "unlock/\(enrollmentID)"))
    }

    private func pushIdentity(_ input: PushCertificateInput) throws -> SigningIdentity {
        do {
            if let p12 = input.pkcs12 {
                guard let data = Data(base64Encoded: p12) else { throw refuse(.badRequest, "pkcs12 must be base64") }
                return try PKCS12.parse(Array(data), password: input.password ?? "")
            }
            guard let cert = input.certificate, let key = input.privateKey else {
                throw refuse(.badRequest, "send certificate and privateKey (PEM), or pkcs12 (base64) and password")
            }
            guard let certificate = try Certificate.parsePEM(Array(cert.utf8)).first else { throw refuse(.badRequest, "no certificate") }
            return try SigningIdentity(certificate: certificate, key: try PrivateKey(pem: Array(key.utf8)))
        } catch let error as CryptoError {
            throw refuse(.badRequest, "\(error)")
        }
    }

    private func audit(_ c: Connection, _ context: GatewayContext, _ action: String, device: String?, detail: String) throws {
        var journal = Journal(correlationID: context.correlationID)
        journal.activity(actor: context.adminKey!.actor, action, device: device, detail: detail)
        try journal.write(c)
    }
}

extension DescribeSigningIdentities.Reply: ResponseEncodable {}
extension ABMTokenHealth: ResponseEncodable {}
extension ListABMTokens.Reply: ResponseEncodable {}
extension SyncABMToken.Reply: ResponseEncodable {}
extension ADEProfileView: ResponseEncodable {}
extension ManagedDomain: ResponseEncodable {}
extension ListManagedDomains.Reply: ResponseEncodable {}
extension ListADEProfiles.Reply: ResponseEncodable {}
extension AssignADEProfile.Reply: ResponseEncodable {}
extension ListABMDevices.Reply: ResponseEncodable {}
extension ABMDeviceAction.Reply: ResponseEncodable {}
extension RevokeAccountTokens.Reply: ResponseEncodable {}

/// An admin list's `limit` query parameter: 100 by default, 1 to 1000.
func pageLimit(_ value: Substring?) throws -> Int {
    guard let value else { return 100 }
    guard let limit = Int(value), (1...1000).contains(limit) else {
        throw refuse(.badRequest, "limit must be an integer from 1 to 1000")
    }
    return limit
}
