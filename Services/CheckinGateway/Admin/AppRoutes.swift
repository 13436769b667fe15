import Foundation
import Hummingbird
import OrchardMessaging
import OrchardSchemas
import OrchardServiceKit
import OrchardStorage

/// `/admin/v1/apps`: Apps and Books content tokens (abm-sync keeps them) and app assignments, iPhone first
/// (`Apps/AppAssignments`, `Apps/AppRollout`); `/admin/v1/devices/{id}/apps`: one device's installs.
struct AppRoutes: Sendable {
    let database: Database
    let outbox: OutboxPublisher
    let requests: RequestClient
    let requestTimeout: Duration

    struct TokenInput: Decodable {
        let sToken: String
        let takeOver: Bool?
    }

    struct InstallView: Codable, Sendable {
        let enrollmentID: String
        /// `iphone` or `watch`.
        let role: String
        /// assigned, licensed, installing, installed, failed.
        let state: String
        let detail: String?
        /// The iPhone whose install this watch's waits for.
        let after: String?
        /// The managed-app declaration an iPhone's install goes through (none: InstallApplication).
        let declaration: String?
        let updatedAt: String?
    }

    struct AssignmentView: ResponseEncodable {
        let id: String
        let name: String?
        /// The App Store id; none for an in-house app.
        let adamId: String?
        let manifestURL: String?
        let watchManifestURL: String?
        let bundleId: String
        let watchBundleId: String?
        let watchDeployment: String
        /// `apple` (bundle ids and deployment read from Apple's app metadata) or `admin` (as given).
        let detailsFrom: String
        let deviceFamilies: [String]?
        /// `command` or `declaration`.
        let iphoneInstall: String
        let contentToken: String?
        let pricingParam: String?
        let createdBy: String
        let createdAt: String?
        /// How many installs are in each state.
        let states: [String: Int]
        let installs: [InstallView]?
    }

    struct DeviceAppView: Codable, Sendable {
        let assignmentID: String
        let name: String?
        let adamId: String?
        let bundleId: String
        let watchDeployment: String
        let role: String
        let state: String
        let detail: String?
        let after: String?
        let updatedAt: String?
    }

    static func view(_ i: AppInstallStore.Install) -> InstallView {
        InstallView(enrollmentID: i.enrollmentID, role: i.role, state: i.state.rawValue, detail: i.detail, after: i.afterEnrollmentID,
                    declaration: i.declarationID, updatedAt: isoDate(i.updatedAt))
    }

    func view(_ s: AppInstallStore.Summary, installs: [AppInstallStore.Install]?) -> AssignmentView {
        AssignmentView(id: s.id, name: s.app.name, adamId: s.app.isInHouse ? nil : s.app.adamID, manifestURL: s.app.manifestURL,
                       watchManifestURL: s.app.watchManifestURL, bundleId: s.app.bundleID, watchBundleId: s.app.watchBundleID,
                       watchDeployment: s.app.watchDeployment, detailsFrom: s.app.detailsFrom, deviceFamilies: s.app.deviceFamilies,
                       iphoneInstall: s.app.iphoneInstall, contentToken: s.app.contentToken, pricingParam: s.app.pricingParam,
                       createdBy: s.createdBy, createdAt: isoDate(s.createdAt), states: s.states, installs: installs.map { $0.map(Self.view) })
    }

    func add(to admin: RouterGroup<GatewayContext>) {
        admin.put("apps/content-tokens/:id") { request, context -> ContentTokenView in
            let input = try await request.decode(as: TokenInput.self, context: context)
            return try await requests.request(
                UploadContentToken(id: try context.parameters.require("id"), sToken: input.sToken, takeOver: input.takeOver ?? false,
                                   actor: context.adminKey!.actor),
                timeout: max(requestTimeout, .seconds(30)), correlationID: context.correlationID)
        }
        admin.get("apps/content-tokens") { _, context -> ListContentTokens.Reply in
            try await requests.request(ListContentTokens(), timeout: requestTimeout, correlationID: context.correlationID)
        }

        admin.post("apps/assignments") { request, context -> Response in
            let input = try await request.decode(as: AppAssignmentRequest.self, context: context)
            try input.checkForm()
            let ids = try input.targets()
            // Apple's metadata (watch bundle id, device families) with the content token that licenses the app. Without
            // a developer key the admin's fields stand, if they are complete.
            var metadata: LookUpAppMetadata.App?
            if let token = input.contentToken, let adamId = input.adamId {
                do {
                    let reply = try await requests.request(LookUpAppMetadata(tokenID: token, adamIDs: [adamId]), timeout: requestTimeout,
                                                           correlationID: context.correlationID)
                    guard let found = reply.apps.first else {
                        throw refuse(.conflict, "Apple's app metadata for content token \(token)'s location has no app \(adamId): the location "
                                     + "does not own it, so its licences cannot come from there. Nothing was assigned")
                    }
                    metadata = found
                } catch let refused as RequestRefused where refused.code == "apps-books.metadata.no-key" && !input.needsMetadata {
                    metadata = nil
                }
            }
            let app = try input.app(metadata: metadata)
            if let token = app.contentToken, metadata == nil {
                // The licences come from this token: it must be one abm-sync keeps, and not expired. (With Apple's metadata,
                // read with the token, abm-sync has checked both already.)
                let tokens = try await requests.request(ListContentTokens(), timeout: requestTimeout, correlationID: context.correlationID)
                guard let found = tokens.items.first(where: { $0.id == token }) else {
                    throw refuse(.notFound, "no content token \(token) (PUT /admin/v1/apps/content-tokens/\(token) uploads one); nothing was assigned")
                }
                guard found.expiresAt > Date() else {
                    throw refuse(.conflict, "content token \(token) expired at \(isoDate(found.expiresAt) ?? "?"); nothing was assigned")
                }
            }
            let actor = context.adminKey!.actor
            let id = UUID().uuidString.lowercased()
            try await database.transaction { c in
                let devices = try AppInstallStore.devices(c, around: ids)
                let installs = try AppAssignments.installs(for: ids, app: app, devices: devices)
                try AppInstallStore.create(c, id: id, app: app, installs: installs, actor: actor)
                var journal = Journal(correlationID: context.correlationID)
                journal.activity(actor: actor, "app.assigned", device: nil, detail: """
                    app \(app.label) (\(app.bundleID), \(app.watchDeployment), details from \(app.detailsFrom), iPhone by \(app.iphoneInstall)\
                    \(app.contentToken.map { ", licences from \($0)" } ?? "")): \
                    \(installs.count) installs on \(Set(installs.map(\.enrollmentID)).count) devices
                    """, related: Array(installs.map(\.enrollmentID).prefix(100)))
                try journal.write(c)
            }
            outbox.notify()
            guard let summary = try await AppInstallStore.assignments(database, id: id).first else { throw refuse(.internalServerError, "assignment vanished") }
            let installs = try await AppInstallStore.installs(database, assignmentID: id)
            return jsonResponse(.created, encoding: view(summary, installs: installs))
        }
        admin.get("apps/assignments") { _, _ -> Page<AssignmentView> in
            Page(items: try await AppInstallStore.assignments(database).map { view($0, installs: nil) })
        }
        admin.get("apps/assignments/:id") { _, context -> AssignmentView in
            let id = try context.parameters.require("id")
            guard UUID(uuidString: id) != nil, let summary = try await AppInstallStore.assignments(database, id: id).first else {
                throw refuse(.notFound, "no app assignment \(id)")
            }
            return view(summary, installs: try await AppInstallStore.installs(database, assignmentID: id))
        }
        admin.delete("apps/assignments/:id") { _, context -> Response in
            let id = try context.parameters.require("id")
            guard UUID(uuidString: id) != nil else { throw refuse(.notFound, "no app assignment \(id)") }
            let removed = try await database.transaction { c -> Bool in
                guard try AppInstallStore.remove(c, id: id) else { return false }
                var journal = Journal(correlationID: context.correlationID)
                journal.activity(actor: context.adminKey!.actor, "app.assignment.removed", device: nil,
                                 detail: "app assignment \(id) (installed apps stay; nothing more is sent)")
                try journal.write(c)
                return true
            }
            guard removed else { throw refuse(.notFound, "no app assignment \(id)") }
            outbox.notify()
            return Response(status: .noContent)
        }
        admin.get("devices/:id/apps") { _, context -> Page<DeviceAppView> in
            let id = try context.parameters.require("id")
            return Page(items: try await AppInstallStore.installs(database, enrollmentID: id).map {
                DeviceAppView(assignmentID: $0.assignmentID, name: $0.app.name, adamId: $0.app.isInHouse ? nil : $0.app.adamID,
                              bundleId: $0.role == "watch" ? ($0.app.watchBundleID ?? $0.app.bundleID) : $0.app.bundleID,
                              watchDeployment: $0.app.watchDeployment, role: $0.role, state: $0.state.rawValue, detail: $0.detail,
                              after: $0.afterEnrollmentID, updatedAt: isoDate($0.updatedAt))
            })
        }
    }
}

extension ContentTokenView: ResponseEncodable {}
extension ListContentTokens.Reply: ResponseEncodable {}
