import Foundation
import Hummingbird
import OrchardCore
import OrchardSchemas
import OrchardStorage

/// An app assignment as an admin asks for it: the App Store app (its store id: public or custom app), its watch
/// deployment, a licence source, and a target. Checked whole, then stored whole, in one transaction; what is refused
/// stores nothing.
///
/// - `paired` and `dependent` apps go to the iPhone first; the watch's install waits until the iPhone reports the app
///   installed, and fails with the iPhone's reason if the iPhone's fails.
/// - `standalone` apps go to the watch alone.
///
/// A target is one watch, one iPhone (with each enrolled watch paired with it), or a group (`devices`: watches and
/// iPhones, each resolved the same way).
struct AppAssignmentRequest: Decodable, Sendable {
    struct Target: Decodable, Sendable {
        var watch: String?
        var iphone: String?
        var devices: [String]?
    }
    var name: String?
    /// The App Store id (a public or custom app); or, for an in-house app, its manifests below.
    var adamId: String?
    /// An in-house app: the iPhone app's manifest (paired, dependent) and the watch app's (Apple's ManifestURL property
    /// list, `https://`). No licences, no metadata: the bundle ids and the deployment are given.
    var manifestURL: String?
    var watchManifestURL: String?
    /// The iPhone app's bundle id; from Apple's metadata when not given.
    var bundleId: String?
    var watchBundleId: String?
    /// From Apple's metadata when not given: an app with an iPhone and a watch app is installed iPhone first (`paired`;
    /// `dependent` apps go in the same order), a watch-only app is `standalone`.
    var watchDeployment: String?
    var contentToken: String?
    var pricingParam: String?
    /// `command` (InstallApplication, the default) or `declaration` (Apple's com.apple.configuration.app.managed, iOS
    /// 17.2+, which Apple's schema still marks beta) for the iPhone's install. A watch always gets InstallApplication:
    /// Apple's schema gives the declaration no watchOS.
    var iphoneInstall: String?
    var target: Target

    static let deployments: Set<String> = ["paired", "dependent", "standalone"]
    static let iphoneInstalls: Set<String> = ["command", "declaration"]

    var isInHouse: Bool { adamId == nil }

    /// Whether Apple's metadata is needed: a field only it can fill is missing.
    var needsMetadata: Bool {
        bundleId == nil || watchDeployment == nil || (watchDeployment != "standalone" && watchBundleId == nil)
    }

    /// The app, checked (a refusal names the field), with what Apple's metadata says where it says it. A value given that
    /// contradicts Apple's metadata is refused: an InstallApplication with another identifier than the store's fails on the
    /// device.
    /// The given fields' own form (before anything is asked of Apple): a refusal names the field.
    func checkForm() throws {
        if let adamId {
            guard !adamId.isEmpty, adamId.count <= 20, adamId.allSatisfy(\.isNumber), Int(adamId) != nil else {
                throw refuse(.badRequest, "adamId must be the app's App Store id (digits); a custom app has one too")
            }
            guard manifestURL == nil, watchManifestURL == nil else {
                throw refuse(.badRequest, "an App Store app (adamId) has no manifests; manifestURL and watchManifestURL are for in-house apps")
            }
        } else {
            guard manifestURL != nil || watchManifestURL != nil else {
                throw refuse(.badRequest, "name the app: adamId (App Store, public or custom), or watchManifestURL (and manifestURL) for an in-house app")
            }
            guard contentToken == nil, pricingParam == nil else {
                throw refuse(.badRequest, "an in-house app has no Apps and Books licences: leave out contentToken and pricingParam")
            }
            for (field, value) in [("manifestURL", manifestURL), ("watchManifestURL", watchManifestURL)] {
                guard let value else { continue }
                guard value.count <= 2048, value.hasPrefix("https://"), !value.contains(where: { $0.isWhitespace || $0.isNewline }),
                      !value.containsControlCharacters, let url = URL(string: value), url.host?.isEmpty == false else {
                    throw refuse(.badRequest, "\(field) must be an https:// URL of the app's manifest (Apple: the URL needs to begin with https:)")
                }
            }
        }
        if let watchDeployment, !Self.deployments.contains(watchDeployment) {
            throw refuse(.badRequest, "watchDeployment must be paired, dependent or standalone")
        }
        if let iphoneInstall, !Self.iphoneInstalls.contains(iphoneInstall) {
            throw refuse(.badRequest, "iphoneInstall must be command (InstallApplication) or declaration (com.apple.configuration.app.managed)")
        }
        _ = try bundleId.map { try Self.bundle($0, "bundleId") }
        _ = try watchBundleId.map { try Self.bundle($0, "watchBundleId") }
        if let name, name.count > 200 || name.containsControlCharacters { throw refuse(.badRequest, "name: at most 200 characters") }
        if let pricingParam, !["STDQ", "PLUS"].contains(pricingParam) { throw refuse(.badRequest, "pricingParam must be STDQ or PLUS") }
        if let contentToken, !(1...100).contains(contentToken.count) { throw refuse(.badRequest, "contentToken: the name of an uploaded content token") }
    }

    static func bundle(_ value: String, _ field: String) throws -> String {
        guard (1...255).contains(value.count), value.contains("."),
              value.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-") }) else {
            throw refuse(.badRequest, "\(field) must be a bundle identifier (reverse-DNS: letters, digits, '.', '-')")
        }
        return value
    }

    func app(metadata: LookUpAppMetadata.App? = nil) throws -> AppInstallStore.App {
        try checkForm()
        var bundleID = bundleId
        var watchBundleID = watchBundleId
        var deployment = watchDeployment
        if isInHouse {
            guard let deployment else { throw refuse(.badRequest, "watchDeployment is required for an in-house app (paired, dependent or standalone)") }
            guard watchManifestURL != nil else { throw refuse(.badRequest, "watchManifestURL is required: the watch installs the watch app from its manifest") }
            guard watchBundleID != nil else {
                throw refuse(.badRequest, "watchBundleId is required for an in-house app: Orchard asks the watch whether it is installed by it")
            }
            if deployment != "standalone" {
                guard manifestURL != nil, bundleID != nil else {
                    throw refuse(.badRequest, "a \(deployment) in-house app installs on the iPhone first: manifestURL and bundleId (the iPhone app's) are required")
                }
            } else if manifestURL != nil {
                throw refuse(.badRequest, "a standalone app goes to the watch alone: leave out manifestURL (the iPhone app's manifest)")
            }
        }
        if let m = metadata {
            let families = Set(m.deviceFamilies)
            let listed = m.deviceFamilies.isEmpty ? "none" : m.deviceFamilies.joined(separator: ", ")
            guard families.contains("watch") || m.watchBundleID != nil else {
                throw refuse(.badRequest, "Apple's metadata for app \(m.adamID) lists no watch app (device families: \(listed)); nothing was assigned")
            }
            let hasPhoneApp = families.contains("iphone")
            if let given = deployment, given != "standalone", !hasPhoneApp {
                throw refuse(.badRequest, "Apple's metadata for app \(m.adamID) lists no iPhone app (device families: \(listed)): it is standalone, "
                             + "not \(given); nothing was assigned")
            }
            deployment = deployment ?? (hasPhoneApp ? "paired" : "standalone")
            if let apple = m.watchBundleID {
                if let given = watchBundleID, given != apple {
                    throw refuse(.badRequest, "watchBundleId \(given) is not app \(m.adamID)'s watch app: Apple's metadata says \(apple); nothing was assigned")
                }
                watchBundleID = apple
            }
            if let apple = m.bundleID {
                if let given = bundleID, given != apple {
                    throw refuse(.badRequest, "bundleId \(given) is not app \(m.adamID)'s: Apple's metadata says \(apple); nothing was assigned")
                }
                bundleID = apple
            }
        }
        guard let deployment else {
            throw refuse(.badRequest, "watchDeployment is required (paired, dependent or standalone), or name a contentToken so Orchard reads it "
                         + "from Apple's app metadata")
        }
        if deployment == "standalone", bundleID == nil { bundleID = watchBundleID }
        guard let bundleID else {
            throw refuse(.badRequest, "bundleId is required, or name a contentToken so Orchard reads it from Apple's app metadata")
        }
        if deployment != "standalone" && watchBundleID == nil {
            throw refuse(.badRequest, "watchBundleId is required for a \(deployment) app: the watch's InstallApplication names the watch app's "
                         + "bundle identifier, which differs from the iPhone app's (Apple's content metadata gives it as watchBundleId)")
        }
        let install = iphoneInstall ?? "command"
        if install == "declaration" && deployment == "standalone" {
            throw refuse(.badRequest, "iphoneInstall declaration: a standalone app goes to the watch alone, and Apple's schema gives "
                         + "com.apple.configuration.app.managed no watchOS")
        }
        return AppInstallStore.App(name: name ?? metadata?.name, adamID: adamId ?? "", bundleID: bundleID, watchBundleID: watchBundleID,
                                   pricingParam: pricingParam, contentToken: contentToken, watchDeployment: deployment,
                                   detailsFrom: metadata == nil ? "admin" : "apple", deviceFamilies: metadata?.deviceFamilies,
                                   iphoneInstall: install, manifestURL: manifestURL, watchManifestURL: watchManifestURL)
    }

    /// The named devices.
    func targets() throws -> [String] {
        let named = [target.watch.map { [$0] }, target.iphone.map { [$0] }, target.devices].compactMap { $0 }
        guard named.count == 1, let ids = named.first, (1...10_000).contains(ids.count) else {
            throw refuse(.badRequest, "target names one of watch, iphone or devices (1 to 10000 enrollment ids)")
        }
        return ids
    }
}

enum AppAssignments {
    /// The installs an assignment makes: per named device, the iPhone's (paired, dependent) and each watch's, a watch's
    /// after its iPhone's. Refuses (409, naming the device) a watch whose iPhone is not enrolled, an iPhone with no
    /// enrolled watch, a device that does not take commands.
    /// Apple's schema for com.apple.configuration.app.managed: `supportedOS.iOS.introduced` (WatchOSRulesTests checks it).
    static let managedAppDeclarationIOS = "17.2"

    /// Whether `version` (an OSVersion such as 17.4.1) is at least `minimum`.
    static func osVersion(_ version: String, atLeast minimum: String) -> Bool {
        let a = version.split(separator: ".").map { Int($0) ?? 0 }, b = minimum.split(separator: ".").map { Int($0) ?? 0 }
        for i in 0..<max(a.count, b.count) {
            let x = i < a.count ? a[i] : 0, y = i < b.count ? b[i] : 0
            if x != y { return x > y }
        }
        return true
    }

    static func installs(for ids: [String], app: AppInstallStore.App, devices: [String: AppInstallStore.Device]) throws -> [AppInstallStore.NewInstall] {
        let deployment = app.watchDeployment
        var installs: [AppInstallStore.NewInstall] = []
        var index: [String: Int] = [:]
        func add(_ id: String, _ role: String, after: String?) {
            guard index[id] == nil else { return }
            index[id] = installs.count
            installs.append(.init(enrollmentID: id, role: role, after: after.flatMap { index[$0] }))
        }
        let standalone = deployment == "standalone"
        for id in ids {
            guard let device = devices[id] else { throw refuse(.notFound, "no enrollment \(id); nothing was assigned") }
            var pairs: [(phone: String, watch: String)] = []
            if device.isWatch {
                guard device.active else { throw refuse(.conflict, "the watch \(id) is not enrolled; nothing was assigned") }
                guard let phone = device.pairedWith else {
                    throw refuse(.conflict, "the watch \(id) was not enrolled through an iPhone; Orchard cannot tell its iPhone. Nothing was assigned")
                }
                if !standalone, devices[phone]?.active != true {
                    throw refuse(.conflict, "the watch \(id)'s iPhone \(phone) is not enrolled: a \(deployment) app installs on the iPhone first. "
                                 + "Nothing was assigned")
                }
                pairs = [(phone, id)]
            } else {
                guard device.active else { throw refuse(.conflict, "the iPhone \(id) is not enrolled; nothing was assigned") }
                let watches = devices.values.filter { $0.pairedWith == id && $0.active }.map(\.id).sorted()
                guard !watches.isEmpty else {
                    throw refuse(.conflict, "no enrolled watch is paired with the iPhone \(id); target the iPhone's watch once it is enrolled. "
                                 + "Nothing was assigned")
                }
                pairs = watches.map { (id, $0) }
            }
            for pair in pairs {
                if standalone {
                    add(pair.watch, "watch", after: nil)
                } else {
                    if app.iphoneInstall == "declaration" {
                        let os = devices[pair.phone]?.osVersion
                        guard let os, osVersion(os, atLeast: managedAppDeclarationIOS) else {
                            throw refuse(.conflict, "the iPhone \(pair.phone) runs iOS \(os ?? "(not known yet)"): Apple's com.apple.configuration.app.managed "
                                         + "needs iOS \(managedAppDeclarationIOS); use iphoneInstall command. Nothing was assigned")
                        }
                    }
                    add(pair.phone, "iphone", after: nil)
                    add(pair.watch, "watch", after: pair.phone)
                }
            }
        }
        return installs
    }
}
