import AppleProtocol
import Foundation
import Hummingbird
import OrchardCrypto
import OrchardMessaging
import OrchardSchemas
import OrchardStorage

/// Return to Service (iOS, visionOS 26; Apple's `ReturnToService` check-in and `EraseDevice`'s `ReturnToService`): an ADE
/// device erases itself and enrolls again with no one touching it. The configuration it gets: `Enabled`, the Wi-Fi
/// profile the administrator gave for its ADE profile, the escrowed bootstrap token (app preservation), and, when its ADE
/// profile uses the sign-in page (`configuration_web_url`), a fresh enrollment profile for its UDID (`MDMProfileData`).
/// Each grants the serial one re-enrollment without a new ABM profile push (`ADEReenrollment`), for a week.
struct ADEReturnToService: Sendable {
    let delivery: ProfileDelivery
    let secrets: SecretBox

    static let allowanceLifetime: TimeInterval = 7 * 86400

    /// What the device's return to service needs that the transaction read; the profile is built after it committed.
    struct Prepared: Sendable {
        var configuration: ReturnToServiceConfiguration
        let context: ADEStore.ReturnToServiceContext?
    }

    /// Reads the device's settings in `c` and grants its serial the re-enrollment. `requireBootstrapToken`: the
    /// administrator's erase refuses (409) a device without one; the device's own check-in gets a full erasure instead.
    /// `grant`: record the re-enrollment allowance (false: only read, as before building a profile outside the transaction).
    func prepare(_ c: Connection, enrollmentID: String, actor: String, requireBootstrapToken: Bool, grant: Bool = true) throws -> Prepared {
        guard let context = try ADEStore.returnToServiceContext(c, enrollmentID: enrollmentID), context.configured else {
            if requireBootstrapToken {
                throw refuse(.conflict, "enrollment \(enrollmentID) is not an ADE device whose profile has Return to Service settings "
                             + "(PUT /ade/profiles/{id}/return-to-service)")
            }
            return Prepared(configuration: ReturnToServiceConfiguration(enabled: false), context: nil)
        }
        guard context.supervised else {
            if requireBootstrapToken { throw refuse(.conflict, "enrollment \(enrollmentID) is not supervised: Return to Service needs supervision") }
            return Prepared(configuration: ReturnToServiceConfiguration(enabled: false), context: nil)
        }
        let token = try context.sealedBootstrapToken.map { try secrets.open($0, context: "bootstrap/\(enrollmentID)") }
        if requireBootstrapToken && token == nil {
            throw refuse(.conflict, "enrollment \(enrollmentID) has escrowed no bootstrap token (SetBootstrapToken): Return to Service needs one; nothing was queued")
        }
        if grant { _ = try ADEStore.allowReenrollment(c, serial: context.serial, by: "\(actor) (return to service)", for: Self.allowanceLifetime) }
        return Prepared(configuration: ReturnToServiceConfiguration(enabled: true, wifiProfile: context.wifiProfile, bootstrapToken: token),
                        context: context)
    }

    /// Adds `MDMProfileData` when the device's ADE profile uses the sign-in page (the device would otherwise need a person).
    /// (Return to Service is iOS and visionOS: the profile is built for iOS.)
    func complete(_ prepared: Prepared, udid: String, correlationID: String) async throws -> ReturnToServiceConfiguration {
        var configuration = prepared.configuration
        guard configuration.enabled, let context = prepared.context, context.requiresSignIn else { return configuration }
        configuration.mdmProfile = try await delivery.signedProfile(
            for: .init(subject: udid, platform: .iOS, deviceID: udid), correlationID: correlationID) { _ in
            ActivityRecorded(actor: "device:\(udid)", action: "ade.return-to-service.profile", deviceID: udid, relatedDeviceIDs: [], outcome: .succeeded,
                             detail: "serial \(context.serial): enrollment profile for the return to service (its ADE profile uses the sign-in page)",
                             service: ActivityLog.service)
        }
        return configuration
    }
}

/// `/admin/v1/ade/profiles/{id}/return-to-service`: the Wi-Fi profile an ADE profile's devices install after a return
/// to service (optional: devices with Ethernet need none). The profile must be a configuration profile with a
/// `com.apple.wifi.managed` payload (signed or not).
struct ADEReturnToServiceRoutes: Sendable {
    let database: Database
    let outbox: OutboxPublisher

    struct Input: Decodable { let wifiProfile: String? }
    struct View: ResponseEncodable { let profileID: String; let wifiProfile: Bool; let updatedBy: String?; let updatedAt: String? }

    func add(to admin: RouterGroup<GatewayContext>) {
        admin.put("ade/profiles/:id/return-to-service") { request, context -> View in
            let profileID = try context.parameters.require("id", as: UUID.self).uuidString.lowercased()
            let input = try await request.decode(as: Input.self, context: context)
            let wifi = try input.wifiProfile.map { try Self.checkWiFiProfile($0) }
            try await database.transaction { c in
                guard try ADEStore.profileRequiresSignIn(c, profileID: profileID) != nil else { throw refuse(.notFound, "no ADE profile \(profileID)") }
                try ADEStore.saveReturnToService(c, profileID: profileID, wifiProfile: wifi, actor: context.adminKey!.actor)
                var journal = Journal(correlationID: context.correlationID)
                journal.activity(actor: context.adminKey!.actor, "ade.return-to-service.saved", device: nil,
                                 detail: "profile \(profileID): Return to Service \(wifi == nil ? "without a Wi-Fi profile" : "with a Wi-Fi profile")")
                try journal.write(c)
            }
            outbox.notify()
            return View(profileID: profileID, wifiProfile: wifi != nil, updatedBy: context.adminKey!.actor, updatedAt: nil)
        }
        admin.get("ade/profiles/:id/return-to-service") { _, context -> View in
            let profileID = try context.parameters.require("id", as: UUID.self).uuidString.lowercased()
            guard let row = try await ADEStore.returnToService(database, profileID: profileID) else {
                throw refuse(.notFound, "profile \(profileID) has no Return to Service settings")
            }
            return View(profileID: profileID, wifiProfile: row.bytes("wifi_profile") != nil, updatedBy: row.string("updated_by"),
                        updatedAt: isoDate(row.date("updated_at")))
        }
        admin.delete("ade/profiles/:id/return-to-service") { _, context -> Response in
            let profileID = try context.parameters.require("id", as: UUID.self).uuidString.lowercased()
            guard try await database.transaction({ c in try ADEStore.deleteReturnToService(c, profileID: profileID) }) else {
                throw refuse(.notFound, "profile \(profileID) has no Return to Service settings")
            }
            return emptyResponse(.noContent)
        }
    }

    /// The Wi-Fi profile as given (base64), when it is a configuration profile with a `com.apple.wifi.managed` payload.
    static func checkWiFiProfile(_ base64: String) throws -> [UInt8] {
        guard base64.count <= 512 * 1024, let data = Data(base64Encoded: base64), !data.isEmpty else {
            throw refuse(.badRequest, "wifiProfile must be a configuration profile (.mobileconfig) in base64, at most 384 KiB")
        }
        guard let profile = try? ProfileContent.plist(Array(data)), profile["PayloadType"]?.string == "Configuration",
              let payloads = profile["PayloadContent"]?.array?.compactMap(\.dictionary),
              payloads.contains(where: { $0["PayloadType"]?.string == "com.apple.wifi.managed" }) else {
            throw refuse(.badRequest, "wifiProfile must be a configuration profile with a com.apple.wifi.managed payload")
        }
        return Array(data)
    }
}
