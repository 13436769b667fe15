import Foundation
import Hummingbird
import OrchardCore
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
    var adamId: String
    var bundleId: String
    var watchBundleId: String?
    var watchDeployment: String
    var contentToken: String?
    var pricingParam: String?
    var target: Target

    static let deployments: Set<String> = ["paired", "dependent", "standalone"]

    /// The app, checked: a refusal names the field.
    func app() throws -> AppInstallStore.App {
        func bundle(_ value: String, _ field: String) throws -> String {
            guard (1...255).contains(value.count), value.contains("."),
                  value.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-") }) else {
                throw refuse(.badRequest, "\(field) must be a bundle identifier (reverse-DNS: letters, digits, '.', '-')")
            }
            return value
        }
        guard !adamId.isEmpty, adamId.count <= 20, adamId.allSatisfy(\.isNumber), Int(adamId) != nil else {
            throw refuse(.badRequest, "adamId must be the app's App Store id (digits); a custom app has one too")
        }
        guard Self.deployments.contains(watchDeployment) else {
            throw refuse(.badRequest, "watchDeployment must be paired, dependent or standalone")
        }
        let bundleID = try bundle(bundleId, "bundleId")
        let watchBundleID = try watchBundleId.map { try bundle($0, "watchBundleId") }
        if watchDeployment != "standalone" && watchBundleID == nil {
            throw refuse(.badRequest, "watchBundleId is required for a \(watchDeployment) app: the watch's InstallApplication names the watch app's "
                         + "bundle identifier, which differs from the iPhone app's (Apple's content metadata gives it as watchBundleId)")
        }
        if let name, name.count > 200 || name.containsControlCharacters { throw refuse(.badRequest, "name: at most 200 characters") }
        if let pricingParam, !["STDQ", "PLUS"].contains(pricingParam) { throw refuse(.badRequest, "pricingParam must be STDQ or PLUS") }
        if let contentToken, !(1...100).contains(contentToken.count) { throw refuse(.badRequest, "contentToken: the name of an uploaded content token") }
        return AppInstallStore.App(name: name, adamID: adamId, bundleID: bundleID, watchBundleID: watchBundleID, pricingParam: pricingParam,
                                   contentToken: contentToken, watchDeployment: watchDeployment)
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
    static func installs(for ids: [String], deployment: String, devices: [String: AppInstallStore.Device]) throws -> [AppInstallStore.NewInstall] {
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
                    add(pair.phone, "iphone", after: nil)
                    add(pair.watch, "watch", after: pair.phone)
                }
            }
        }
        return installs
    }
}
