import AppleProtocol
import Foundation

/// What an enrolled device does on its command channel, as a real one would: it sends `Idle`, answers each command it
/// is given with Apple's response keys (DeviceInformation, InstalledApplicationList, SecurityInfo, ProfileList,
/// CertificateList; InstallProfile, RemoveProfile, DeviceLock, EraseDevice, ClearPasscode, DeviceConfigured and
/// DeclarativeManagement acknowledged, the last followed by a declaration sync and a status report), answers
/// `NotNow` while told to be busy, and `Error` for what it does not know, until the queue is empty.
public struct DeviceResponder: Sendable {
    public let narrator: Narrator
    public let supervised: Bool
    /// Answer `NotNow` to everything (a device that is busy: Setup Assistant, a locked Mac).
    public var busy = false

    public init(narrator: Narrator = .silent, supervised: Bool = true, busy: Bool = false) {
        self.narrator = narrator
        self.supervised = supervised
        self.busy = busy
    }

    /// What became of the device while answering.
    public enum Outcome: Sendable, Equatable {
        case active
        /// It acknowledged the removal of its own MDM profile: no longer enrolled.
        case unenrolled
        /// It acknowledged EraseDevice: wiped.
        case erased
    }

    /// Sends `Idle` and answers commands until the server has none; the command types answered, in order.
    @discardableResult
    public func drain(_ device: SimulatedDevice, limit: Int = 50) async throws -> (answered: [String], outcome: Outcome) {
        var answered: [String] = []
        var command = try await device.idle()
        while let current = command, answered.count < limit {
            answered.append(current.requestType)
            let (status, extra, outcome) = try await answer(current, device)
            narrator.say("    \(device.label) ← \(current.requestType) → \(status)")
            command = try await device.respond(to: current, status: status, extra: extra)
            if outcome != .active {
                // A wiped or unenrolled device does not ask again; the server's next command, if any, waits for no one.
                return (answered, outcome)
            }
            if current.requestType == "DeclarativeManagement", status == "Acknowledged" { try await syncDeclarations(device) }
        }
        return (answered, .active)
    }

    /// Answers one command as `drain` would; the server's next command, if any, and what became of the device.
    public func answerOne(_ command: MDMCommand, _ device: SimulatedDevice) async throws -> (next: MDMCommand?, outcome: Outcome) {
        let (status, extra, outcome) = try await answer(command, device)
        narrator.say("    \(device.label) ← \(command.requestType) → \(status)")
        let next = try await device.respond(to: command, status: status, extra: extra)
        if command.requestType == "DeclarativeManagement", status == "Acknowledged" { try await syncDeclarations(device) }
        return (outcome == .active ? next : nil, outcome)
    }

    private func answer(_ command: MDMCommand, _ device: SimulatedDevice) async throws -> (String, [String: PlistValue], Outcome) {
        if busy { return ("NotNow", [:], .active) }
        switch command.requestType {
        case "DeviceInformation":
            let queries = command.parameters["Queries"]?.array?.compactMap(\.string) ?? []
            let all = device.informationAnswers(supervised: supervised)["QueryResponses"]?.dictionary ?? [:]
            var responses = queries.isEmpty ? all : all.filter { queries.contains($0.key) }
            if device.enrollmentID != nil { for key in ["UDID", "SerialNumber", "IMEI", "MEID"] { responses[key] = nil } }
            return ("Acknowledged", ["QueryResponses": .dictionary(responses)], .active)
        case "InstalledApplicationList":
            // The system's apps, unless only managed ones are asked for; then the managed apps Orchard installed.
            let managedOnly = command.parameters["ManagedAppsOnly"]?.bool == true
            var list: [(String, String, Bool)] = managedOnly ? [] : [("com.apple.mobilesafari", "Safari", false),
                                                                    ("com.example.orchard.demo", "Orchard Demo", false)]
            for (identifier, remaining) in device.installedApps.sorted(by: { $0.key < $1.key }) {
                list.append((identifier, identifier.split(separator: ".").last.map(String.init) ?? identifier, remaining > 0))
                if remaining > 0 { device.installedApps[identifier] = remaining - 1 }
            }
            if let wanted = command.parameters["Identifiers"]?.array?.compactMap(\.string) { list = list.filter { wanted.contains($0.0) } }
            let apps: [PlistValue] = list.map { id, name, installing in
                .dictionary(["Identifier": .string(id), "Name": .string(name), "ShortVersion": .string("1.0"), "Version": .string("1"),
                             "BundleSize": .integer(12_345_678), "DynamicSize": .integer(1_024), "IsValidated": .bool(true),
                             "Installing": .bool(installing), "HasUpdateAvailable": .bool(false)])
            }
            return ("Acknowledged", ["InstalledApplicationList": .array(apps)], .active)
        case "InstallApplication":
            // The store id names the app (the App Store tells a real device its bundle identifier; here the catalog does);
            // a watch is given the watch app's identifier.
            let manifest = command.parameters["ManifestURL"]?.string
            let storeID = command.parameters["iTunesStoreID"]?.integer ?? manifest.flatMap { AppCatalog.shared.storeID(manifest: $0) } ?? 0
            guard !device.failingApps.contains(storeID),
                  let identifier = command.parameters["Identifier"]?.string
                    ?? manifest.flatMap({ AppCatalog.shared.bundleID(manifest: $0) })
                    ?? (manifest == nil ? AppCatalog.shared.bundleID(storeID, watch: device.platform == "watchOS") : nil) else {
                return ("Error", ["ErrorChain": .array([.dictionary([
                    "ErrorDomain": .string("MCMDMErrorDomain"), "ErrorCode": .integer(12024),
                    "LocalizedDescription": .string("The app \(storeID) could not be installed"),
                    "USEnglishDescription": .string("The app \(storeID) could not be installed")])])], .active)
            }
            device.installedApps[identifier] = device.installChecks
            Self.syncToWatch(storeID, from: device)
            return ("Acknowledged", ["Identifier": .string(identifier), "State": .string(device.installChecks > 0 ? "Installing" : "Managed")], .active)
        case "SecurityInfo":
            var info: [String: PlistValue] = ["PasscodePresent": .bool(true), "PasscodeCompliant": .bool(true),
                                              "PasscodeCompliantWithProfiles": .bool(true)]
            if device.platform == "macOS" {
                info["FDE_Enabled"] = .bool(true)
                info["SystemIntegrityProtectionEnabled"] = .bool(true)
            } else {
                info["HardwareEncryptionCaps"] = .integer(3)
            }
            info["ManagementStatus"] = .dictionary(["IsUserEnrollment": .bool(device.enrollmentID != nil)])
            return ("Acknowledged", ["SecurityInfo": .dictionary(info)], .active)
        case "ProfileList":
            let list = device.installedProfiles.map { identifier, uuid in
                PlistValue.dictionary(["PayloadIdentifier": .string(identifier), "PayloadUUID": .string(uuid), "PayloadVersion": .integer(1),
                                       "IsManaged": .bool(true)])
            }
            return ("Acknowledged", ["ProfileList": .array(list)], .active)
        case "CertificateList":
            return ("Acknowledged", ["CertificateList": .array([.dictionary([
                "CommonName": .string(device.identity.certificate.subjectValue("CN") ?? device.udid), "IsIdentity": .bool(true),
                "Data": .data(device.identity.certificate.der)])])], .active)
        case "InstallProfile":
            if let payload = command.parameters["Payload"]?.data, let profile = try? Plist.parseDictionary(payload),
               let identifier = profile["PayloadIdentifier"]?.string {
                device.installedProfiles[identifier] = profile["PayloadUUID"]?.string ?? UUID().uuidString
            }
            return ("Acknowledged", [:], .active)
        case "RemoveProfile":
            let identifier = command.parameters["Identifier"]?.string ?? ""
            device.installedProfiles[identifier] = nil
            return ("Acknowledged", [:], identifier == device.profileIdentifier ? .unenrolled : .active)
        case "EraseDevice":
            return ("Acknowledged", [:], .erased)
        case "DeviceLock", "ClearPasscode", "DeviceConfigured", "DeclarativeManagement", "RestartDevice", "ShutDownDevice":
            return ("Acknowledged", [:], .active)
        default:
            return ("Error", ["ErrorChain": .array([.dictionary([
                "ErrorDomain": .string("MCMDMErrorDomain"), "ErrorCode": .integer(12021),
                "LocalizedDescription": .string("Unknown command \(command.requestType)")])])], .active)
        }
    }

    /// Apple's automatic app install: an iPhone's app with a watch app appears on its companion watch.
    static func syncToWatch(_ storeID: Int, from device: SimulatedDevice) {
        guard device.platform == "iOS", let watch = device.companionWatch, let watchApp = AppCatalog.shared.watchBundleID(storeID) else { return }
        watch.installedApps[watchApp] = 0
    }

    /// The declarative-management sync a device runs when told to: tokens, the declaration items, each declaration,
    /// then a status report saying each is active and valid.
    public func syncDeclarations(_ device: SimulatedDevice) async throws {
        _ = try await device.declarativeManagement("tokens")
        let itemsAnswer = try await device.declarativeManagement("declaration-items")
        guard itemsAnswer.status == 200,
              let items = (try? JSONSerialization.jsonObject(with: Data(itemsAnswer.body)) as? [String: Any])?["Declarations"] as? [String: Any] else {
            return
        }
        var statuses: [String: [[String: Any]]] = [:]
        var subscribed: Set<String> = []
        var managedApps: [(declaration: String, storeID: Int)] = []
        var fetchedBodies: [(kind: String, identifier: String, serverToken: String, body: [String: Any]?)] = []
        for (kind, path) in [("Activations", "activation"), ("Configurations", "configuration"), ("Assets", "asset"), ("Management", "management")] {
            for item in items[kind] as? [[String: Any]] ?? [] {
                guard let identifier = item["Identifier"] as? String else { continue }
                let fetched = try await device.declarativeManagement("declaration/\(path)/\(identifier)")
                let body = fetched.status == 200 ? (try? JSONSerialization.jsonObject(with: Data(fetched.body))) as? [String: Any] : nil
                fetchedBodies.append((kind, identifier, item["ServerToken"] as? String ?? "", body))
            }
        }
        // Apple: a configuration applies only when an activation names it (com.apple.activation.simple's StandardConfigurations).
        let activated = Set(fetchedBodies.filter { $0.kind == "Activations" }.flatMap {
            ($0.body?["Payload"] as? [String: Any])?["StandardConfigurations"] as? [String] ?? []
        })
        for (kind, identifier, serverToken, body) in fetchedBodies {
            var valid = body != nil
            if let body, kind == "Configurations", activated.contains(identifier) {
                let payload = body["Payload"] as? [String: Any] ?? [:]
                switch body["Type"] as? String {
                case "com.apple.configuration.management.status-subscriptions":
                    for item in payload["StatusItems"] as? [[String: Any]] ?? [] { if let name = item["Name"] as? String { subscribed.insert(name) } }
                case "com.apple.configuration.app.managed":
                    // Apple: one and only one of AppStoreID, BundleID, ManifestURL; License.Assignment for a store app.
                    let sources = ["AppStoreID", "BundleID", "ManifestURL"].filter { payload[$0] != nil }
                    let license = ((payload["InstallBehavior"] as? [String: Any])?["License"] as? [String: Any])?["Assignment"] as? String
                    if device.platform != "iOS" || sources.count != 1 || (payload["ManifestURL"] == nil && !["Device", "User"].contains(license ?? "")) {
                        valid = false
                    } else if let storeID = (payload["AppStoreID"] as? String).flatMap(Int.init)
                                ?? (payload["ManifestURL"] as? String).flatMap({ AppCatalog.shared.storeID(manifest: $0) }) {
                        managedApps.append((identifier, storeID))
                    }
                default: break
                }
            }
            let active = valid && (kind != "Configurations" || activated.contains(identifier))
            statuses[kind.lowercased(), default: []].append([
                "identifier": identifier, "active": active, "valid": valid ? "valid" : "invalid", "server-token": serverToken])
        }
        // Managed apps (iOS 17.2+): installed as the declaration says; app.managed.list reported to a subscriber, first
        // on its way when the device takes time (installChecks), then managed, or failed for an app the store refuses.
        var appStates: [[[String: Any]]] = [[], []]
        for (declaration, storeID) in managedApps {
            guard let bundleID = AppCatalog.shared.bundleID(storeID, watch: false) else { continue }
            if device.failingApps.contains(storeID) {
                appStates[1].append(["identifier": bundleID, "declaration-identifier": declaration, "state": "failed",
                                     "reasons": [["code": "Error.AppInstallFailed", "description": "The app \(storeID) could not be installed"]]])
                continue
            }
            if device.installedApps[bundleID] == nil && device.installChecks > 0 {
                appStates[0].append(["identifier": bundleID, "declaration-identifier": declaration, "state": "installing"])
            }
            device.installedApps[bundleID] = 0
            Self.syncToWatch(storeID, from: device)
            appStates[1].append(["identifier": bundleID, "declaration-identifier": declaration, "state": "managed", "name": bundleID,
                                 "version": "1", "short-version": "1.0"])
        }
        for (index, apps) in appStates.enumerated() where index == 1 || !apps.isEmpty {
            var items: [String: Any] = index == 1 ? ["management": ["declarations": statuses]] : [:]
            if subscribed.contains("app.managed.list"), !apps.isEmpty { items["app"] = ["managed": ["list": apps]] }
            let report: [String: Any] = ["StatusItems": items, "Errors": [Any]()]
            _ = try await device.declarativeManagement("status", data: Array(try JSONSerialization.data(withJSONObject: report)))
        }
        narrator.say("    \(device.label) synchronised declarations: \(statuses.values.map(\.count).reduce(0, +)) reported active")
    }
}

/// The App Store as simulated devices see it: an app's store id → its bundle identifier, and its watch app's. A real
/// device asks the store; the tests and benchmarks register the apps they assign.
public final class AppCatalog: @unchecked Sendable {
    public static let shared = AppCatalog()
    private let lock = NSLock()
    private var apps: [Int: (bundleID: String, watchBundleID: String?)] = [:]
    private var manifests: [String: (storeID: Int, bundleID: String)] = [:]

    public func register(storeID: Int, bundleID: String, watchBundleID: String?) {
        lock.lock(); defer { lock.unlock() }
        apps[storeID] = (bundleID, watchBundleID)
    }

    /// An in-house app's manifests (the device downloads the app from them): the iPhone app's and the watch app's. It is
    /// known by a made-up store id too, so a test can make it fail (`failingApps`).
    public func register(inHouse storeID: Int, bundleID: String, manifestURL: String?, watchBundleID: String, watchManifestURL: String) {
        lock.lock(); defer { lock.unlock() }
        apps[storeID] = (bundleID, watchBundleID)
        if let manifestURL { manifests[manifestURL] = (storeID, bundleID) }
        manifests[watchManifestURL] = (storeID, watchBundleID)
    }

    public func bundleID(manifest: String) -> String? {
        lock.lock(); defer { lock.unlock() }
        return manifests[manifest]?.bundleID
    }

    public func storeID(manifest: String) -> Int? {
        lock.lock(); defer { lock.unlock() }
        return manifests[manifest]?.storeID
    }

    public func watchBundleID(_ storeID: Int) -> String? {
        lock.lock(); defer { lock.unlock() }
        return apps[storeID]?.watchBundleID
    }

    public func bundleID(_ storeID: Int, watch: Bool) -> String? {
        lock.lock(); defer { lock.unlock() }
        guard let app = apps[storeID] else { return nil }
        return watch ? (app.watchBundleID ?? app.bundleID) : app.bundleID
    }
}
