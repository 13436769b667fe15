import AppleProtocol
import Foundation
import OrchardStorage
import OrchardTestSupport
import XCTest

/// Seed 001, "Deployment": apps for a managed Apple Watch, iPhone first, against the running services and the Apps and
/// Books stand-in. A paired app is licensed, installed on the iPhone, and only once the iPhone reports it installed,
/// on the watch; a standalone app goes to the watch alone; a failure on the iPhone stops the watch's step with its reason.
final class WatchAppDeploymentTests: XCTestCase {
    struct AppsAndBooksStandIn {
        let url: String
        init() throws { url = try TestEnvironment.require("ORCHARD_TEST_APPS_BOOKS_URL") }

        /// A location with these apps purchased; its content token (the .vpptoken file's text).
        func location(org: String, assets: [[String: Any]]) async throws -> String {
            let answer = try await http(.POST, "\(url)/_control/tokens", headers: [("Content-Type", "application/json")],
                                        body: Array(try JSONSerialization.data(withJSONObject: ["orgName": org, "locationName": "HQ", "assets": assets])))
            XCTAssertEqual(answer.status, 200, answer.text)
            return try unwrap(try answer.json()["sToken"] as? String)
        }

        func stats() async throws -> [String: Any] { try await http(.GET, "\(url)/_control/stats").json() }
    }

    static func flows(_ stack: Fixture.Ready) async throws -> EnrollmentFlows {
        try await EnrollmentFlows(environment: SimulatorEnvironment(
            gateway: stack.gateway, enrollmentAuth: try TestEnvironment.require("ORCHARD_URL_USER_ENROLLMENT_AUTH"),
            admin: stack.admin, appleCA: stack.appleCA), narrator: .silent)
    }

    /// The assignment's installs, by enrollment id.
    static func installs(_ stack: Fixture.Ready, _ id: String) async throws -> [String: [String: Any]] {
        let view = try await stack.admin.expect(.GET, "/apps/assignments/\(id)")
        var byDevice: [String: [String: Any]] = [:]
        for install in view["installs"] as? [[String: Any]] ?? [] { byDevice[install["enrollmentID"] as? String ?? ""] = install }
        return byDevice
    }

    /// Answers the device's queue (as a device does after a push) and returns the commands it was given.
    static func drain(_ device: SimulatedDevice, _ seen: inout [MDMCommand]) async throws {
        var command = try await device.idle()
        let responder = DeviceResponder()
        while let current = command, seen.count < 500 {
            seen.append(current)
            let (answered, _) = try await responder.answerOne(current, device)
            command = answered
        }
    }

    /// Both devices answer their queues (as they do after pushes) until `done`, for at most 60 s.
    static func drive(_ phone: SimulatedDevice, _ phoneCommands: inout [MDMCommand], _ watch: SimulatedDevice, _ watchCommands: inout [MDMCommand],
                      until done: () async -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            try? await drain(phone, &phoneCommands)
            try? await drain(watch, &watchCommands)
            if await done() { return true }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return false
    }

    func testPairedAppInstallsOnTheIPhoneThenTheWatch() async throws {
        let stack = try await Fixture.shared.prepare()
        let flows = try await Self.flows(stack)
        let standIn = try AppsAndBooksStandIn()
        let tag = UUID().uuidString.prefix(6)
        let storeID = Int.random(in: 100_000_000...999_999_999), failingID = storeID + 1, standaloneID = storeID + 2
        AppCatalog.shared.register(storeID: storeID, bundleID: "com.example.field\(tag)", watchBundleID: "com.example.field\(tag).watchkitapp")
        AppCatalog.shared.register(storeID: failingID, bundleID: "com.example.broken\(tag)", watchBundleID: "com.example.broken\(tag).watchkitapp")
        AppCatalog.shared.register(storeID: standaloneID, bundleID: "com.example.timer\(tag).watchkitapp", watchBundleID: nil)

        let (phone, watch) = try await step("1. A supervised iPhone and its watch, enrolled through it") {
            try await flows.enrollWatch()
        }
        phone.installChecks = 1  // the iPhone's install takes a while: its first answer says Installing

        let tokenName = "hq-\(tag)"
        try await step("2. The admin uploads the organisation's content token; Apple (the stand-in) is told Orchard uses it") {
            let consumerKey = "CK_apps_\(tag)"
            _ = try await uploadedToken(stack, standIn: try ABMStandIn(), consumerKey: consumerKey)  // Orchard's organisation: Acme Inc.
            let sToken = try await standIn.location(org: "Acme Inc.", assets: [
                ["adamId": "\(storeID)", "count": 10], ["adamId": "\(failingID)", "count": 10], ["adamId": "\(standaloneID)", "count": 10]])
            let saved = try await stack.admin.expect(.PUT, "/apps/content-tokens/\(tokenName)", json: ["sToken": sToken])
            XCTAssertEqual(saved["organization"] as? String, "Acme Inc.")
            XCTAssertEqual(saved["location"] as? String, "HQ")
            let listed = try await stack.admin.expect(.GET, "/apps/content-tokens")
            XCTAssertFalse((listed["items"] as? [[String: Any]] ?? []).isEmpty)
            XCTAssertFalse(String(describing: listed).contains(sToken), "the token itself is never shown")
            let stats = try await standIn.stats()
            let mdm = ((stats["locations"] as? [String: Any])?["HQ"] as? [String: Any])?["mdmInfo"] as? [String: Any]
            XCTAssertEqual(mdm?["name"] as? String, "Orchard", "the token's MDM is Orchard now")
        }

        let assignment = try await step("3. A paired app is assigned to the watch: installs for the iPhone, and the watch after it") {
            let created = try await stack.admin.call(.POST, "/apps/assignments", json: [
                "name": "Field Notes", "adamId": "\(storeID)", "bundleId": "com.example.field\(tag)",
                "watchBundleId": "com.example.field\(tag).watchkitapp", "watchDeployment": "paired", "contentToken": tokenName,
                "target": ["watch": watch.udid]])
            XCTAssertEqual(created.status, 201, created.text)
            let body = try created.json()
            let installs = body["installs"] as? [[String: Any]] ?? []
            XCTAssertEqual(installs.map { $0["role"] as? String }, ["iphone", "watch"])
            XCTAssertEqual(installs.last?["after"] as? String, phone.udid)
            return try unwrap(body["id"] as? String)
        }

        var phoneCommands: [MDMCommand] = [], watchCommands: [MDMCommand] = []
        try await step("4. The iPhone is licensed and told to install; the watch is told nothing while the iPhone's install is on its way") {
            let licensed = await eventually(timeout: 60) {
                let state = (try? await Self.installs(stack, assignment))?[phone.udid]?["state"] as? String
                return state == "installing" || state == "installed"
            }
            XCTAssertTrue(licensed, "the iPhone's install is licensed and queued")
            let stats = try await standIn.stats()
            let assets = ((stats["locations"] as? [String: Any])?["HQ"] as? [String: Any])?["assets"] as? [String: Any]
            XCTAssertEqual(assets?["\(storeID)"] as? Int, 1, "one licence, the iPhone's serial number")
            try await Self.drain(phone, &phoneCommands)
            let install = try unwrap(phoneCommands.first { $0.requestType == "InstallApplication" })
            XCTAssertEqual(install.parameters["iTunesStoreID"]?.integer, storeID)
            XCTAssertEqual(install.parameters["Options"]?["PurchaseMethod"]?.integer, 1, "a licence assigned to the device")
            XCTAssertEqual(AppleSchema.problems(install.parameters, try AppleSchema.load("mdm/commands/application.install.yaml").payloadKeys,
                                                platform: "iOS"), [])
            XCTAssertTrue(phoneCommands.contains { $0.requestType == "InstalledApplicationList" }, "asked at once whether it finished")
            try await Self.drain(watch, &watchCommands)
            XCTAssertFalse(watchCommands.contains { $0.requestType == "InstallApplication" }, "the watch waits for its iPhone")
            let waiting = try await Self.installs(stack, assignment)[watch.udid]?["state"] as? String
            XCTAssertEqual(waiting, "assigned")
        }

        try await step("5. The iPhone reports it installed (its second InstalledApplicationList); then the watch gets the watch app") {
            let installed = await eventually(timeout: 60) {
                try? await Self.drain(phone, &phoneCommands)
                return (try? await Self.installs(stack, assignment))?[phone.udid]?["state"] as? String == "installed"
            }
            XCTAssertTrue(installed, "the iPhone's install is reported installed: \(phoneCommands.map(\.requestType))")
            let watchInstalled = await eventually(timeout: 60) {
                try? await Self.drain(watch, &watchCommands)
                return (try? await Self.installs(stack, assignment))?[watch.udid]?["state"] as? String == "installed"
            }
            XCTAssertTrue(watchInstalled, "the watch's install follows: \(watchCommands.map(\.requestType))")
            let install = try unwrap(watchCommands.first { $0.requestType == "InstallApplication" })
            XCTAssertEqual(install.parameters["Identifier"]?.string, "com.example.field\(tag).watchkitapp", "the watch app's identifier")
            XCTAssertEqual(AppleSchema.problems(install.parameters, try AppleSchema.load("mdm/commands/application.install.yaml").payloadKeys,
                                                platform: "watchOS"), [])
            let apps = try await stack.admin.expect(.GET, "/devices/\(watch.udid)/apps")
            let mine = (apps["items"] as? [[String: Any]] ?? []).first { $0["assignmentID"] as? String == assignment }
            XCTAssertEqual(mine?["state"] as? String, "installed")
            XCTAssertEqual(mine?["bundleId"] as? String, "com.example.field\(tag).watchkitapp")
        }

        try await step("6. An app whose install fails on the iPhone: the watch's step stops, with the iPhone's reason") {
            phone.failingApps = [failingID]
            let created = try await stack.admin.expect(.POST, "/apps/assignments", json: [
                "adamId": "\(failingID)", "bundleId": "com.example.broken\(tag)", "watchBundleId": "com.example.broken\(tag).watchkitapp",
                "watchDeployment": "dependent", "contentToken": tokenName, "target": ["iphone": phone.udid]])
            let id = try unwrap(created["id"] as? String)
            let failed = await eventually(timeout: 60) {
                try? await Self.drain(phone, &phoneCommands)
                return (try? await Self.installs(stack, id))?[watch.udid]?["state"] as? String == "failed"
            }
            XCTAssertTrue(failed, "the watch's install fails with the iPhone's")
            let installs = try await Self.installs(stack, id)
            XCTAssertEqual(installs[phone.udid]?["state"] as? String, "failed")
            XCTAssertTrue((installs[phone.udid]?["detail"] as? String ?? "").contains("could not be installed"), "\(installs)")
            XCTAssertTrue((installs[watch.udid]?["detail"] as? String ?? "").hasPrefix("its iPhone's install failed"), "\(installs)")
            var seen: [MDMCommand] = []
            try await Self.drain(watch, &seen)
            XCTAssertFalse(seen.contains { $0.parameters["Identifier"]?.string == "com.example.broken\(tag).watchkitapp" },
                           "nothing is sent to the watch for it")
        }

        try await step("7. A standalone app goes to the watch alone") {
            let created = try await stack.admin.expect(.POST, "/apps/assignments", json: [
                "adamId": "\(standaloneID)", "bundleId": "com.example.timer\(tag).watchkitapp", "watchDeployment": "standalone",
                "contentToken": tokenName, "target": ["iphone": phone.udid]])
            let id = try unwrap(created["id"] as? String)
            XCTAssertEqual((created["installs"] as? [[String: Any]])?.map { $0["enrollmentID"] as? String }, [watch.udid])
            let before = phoneCommands.count
            let installed = await eventually(timeout: 60) {
                try? await Self.drain(watch, &watchCommands)
                return (try? await Self.installs(stack, id))?[watch.udid]?["state"] as? String == "installed"
            }
            XCTAssertTrue(installed)
            try await Self.drain(phone, &phoneCommands)
            XCTAssertFalse(phoneCommands[before...].contains { $0.parameters["iTunesStoreID"]?.integer == standaloneID }, "nothing for the iPhone")
        }
    }

    /// The app's details from Apple's metadata (the stand-in checks the developer token and the `itvt` cookie as Apple's
    /// API does), and an iPhone that gets the app through Apple's managed-app declaration: the watch still waits for it.
    func testAppDetailsFromAppleMetadataAndTheManagedAppDeclaration() async throws {
        let stack = try await Fixture.shared.prepare()
        let flows = try await Self.flows(stack)
        let standIn = try AppsAndBooksStandIn()
        let tag = UUID().uuidString.prefix(6)
        let pairedID = Int.random(in: 100_000_000...999_999_999), watchOnlyID = pairedID + 1, phoneOnlyID = pairedID + 2, brokenID = pairedID + 3
        let notOwnedID = pairedID + 4
        AppCatalog.shared.register(storeID: pairedID, bundleID: "com.example.rounds\(tag)", watchBundleID: "com.example.rounds\(tag).watchapp")
        AppCatalog.shared.register(storeID: brokenID, bundleID: "com.example.shaky\(tag)", watchBundleID: "com.example.shaky\(tag).watchapp")
        _ = try await uploadedToken(stack, standIn: try ABMStandIn(), consumerKey: "CK_meta_\(tag)")  // Orchard's organisation: Acme Inc.
        let (phone, watch) = try await step("1. A supervised iPhone (iOS 18) and its watch, enrolled through it") { try await flows.enrollWatch() }
        phone.installChecks = 1
        let tokenName = "meta-\(tag)"
        try await step("2. A location that owns four apps; Apple's metadata knows their bundle ids and device families") {
            let sToken = try await standIn.location(org: "Acme Inc.", assets: [
                ["adamId": "\(pairedID)", "name": "Rounds", "bundleId": "com.example.rounds\(tag)", "watchBundleId": "com.example.rounds\(tag).watchapp",
                 "deviceFamilies": ["iphone", "watch"]],
                ["adamId": "\(watchOnlyID)", "name": "Wrist Timer", "watchBundleId": "com.example.wrist\(tag).watchapp", "deviceFamilies": ["watch"]],
                ["adamId": "\(phoneOnlyID)", "name": "Desk", "bundleId": "com.example.desk\(tag)", "deviceFamilies": ["iphone", "ipad"]],
                ["adamId": "\(brokenID)", "name": "Shaky", "bundleId": "com.example.shaky\(tag)", "watchBundleId": "com.example.shaky\(tag).watchapp",
                 "deviceFamilies": ["iphone", "watch"]]])
            _ = try await stack.admin.expect(.PUT, "/apps/content-tokens/\(tokenName)", json: ["sToken": sToken])
        }

        try await step("3. What contradicts Apple's metadata is refused, naming it; nothing is stored") {
            let before = (try await stack.admin.expect(.GET, "/apps/assignments")["items"] as? [[String: Any]] ?? []).count
            for (body, status, words) in [
                (["adamId": "\(phoneOnlyID)"], 400, "lists no watch app"),
                (["adamId": "\(watchOnlyID)", "watchDeployment": "paired"], 400, "lists no iPhone app"),
                (["adamId": "\(pairedID)", "watchBundleId": "com.example.other.watchkitapp"], 400, "com.example.rounds\(tag).watchapp"),
                (["adamId": "\(pairedID)", "bundleId": "com.example.impostor"], 400, "Apple's metadata says com.example.rounds\(tag)"),
                (["adamId": "\(notOwnedID)"], 409, "does not own it"),
                (["adamId": "\(watchOnlyID)", "iphoneInstall": "declaration"], 400, "no watchOS"),
            ] as [([String: Any], Int, String)] {
                let answer = try await stack.admin.call(.POST, "/apps/assignments", json: body.merging(["contentToken": tokenName,
                                                                                                         "target": ["watch": watch.udid]]) { a, _ in a })
                XCTAssertEqual(answer.status, status, "\(body): \(answer.text)")
                XCTAssertTrue(answer.text.contains(words), "\(body): \(answer.text)")
            }
            let after = (try await stack.admin.expect(.GET, "/apps/assignments")["items"] as? [[String: Any]] ?? []).count
            XCTAssertEqual(after, before, "nothing was stored")
        }

        let assignment = try await step("4. The admin names the app and the watch only: bundle ids and deployment come from Apple; the iPhone by declaration") {
            let created = try await stack.admin.expect(.POST, "/apps/assignments", json: [
                "adamId": "\(pairedID)", "contentToken": tokenName, "iphoneInstall": "declaration", "target": ["watch": watch.udid]])
            XCTAssertEqual(created["detailsFrom"] as? String, "apple")
            XCTAssertEqual(created["watchDeployment"] as? String, "paired", "an iPhone app with a watch app installs iPhone first")
            XCTAssertEqual(created["bundleId"] as? String, "com.example.rounds\(tag)")
            XCTAssertEqual(created["watchBundleId"] as? String, "com.example.rounds\(tag).watchapp")
            XCTAssertEqual(created["name"] as? String, "Rounds")
            XCTAssertEqual(created["deviceFamilies"] as? [String], ["iphone", "watch"])
            XCTAssertEqual(created["iphoneInstall"] as? String, "declaration")
            return try unwrap(created["id"] as? String)
        }

        var phoneCommands: [MDMCommand] = [], watchCommands: [MDMCommand] = []
        try await step("5. The iPhone is licensed and told to synchronise: Apple's app.managed declaration, activated, with a status subscription") {
            let declared = await eventually(timeout: 60) {
                (try? await Self.installs(stack, assignment))?[phone.udid]?["declaration"] as? String != nil
            }
            XCTAssertTrue(declared, "the iPhone's install goes through a declaration")
            let declarationID = try unwrap(try await Self.installs(stack, assignment)[phone.udid]?["declaration"] as? String)
            let fetched = try await phone.declarativeManagement("declaration/configuration/\(declarationID)")
            XCTAssertEqual(fetched.status, 200)
            let declaration = try unwrap(try plistValue(json: fetched.body).dictionary)
            XCTAssertEqual(declaration["Type"]?.string, "com.apple.configuration.app.managed")
            let payload = try unwrap(declaration["Payload"]?.dictionary)
            XCTAssertEqual(payload["AppStoreID"]?.string, "\(pairedID)")
            XCTAssertEqual(payload["InstallBehavior"]?["License"]?["Assignment"]?.string, "Device", "Apple: required for an App Store app")
            XCTAssertEqual(AppleSchema.problems(payload, try AppleSchema.load("declarative/declarations/configurations/app.managed.yaml").payloadKeys,
                                                platform: "iOS"), [])
            let activation = try plistValue(json: try await phone.declarativeManagement("declaration/activation/\(declarationID).activation").body)
            XCTAssertEqual(activation["Payload"]?["StandardConfigurations"]?.array?.compactMap(\.string).contains(declarationID), true)
            let stats = try await standIn.stats()
            let assets = ((stats["locations"] as? [String: Any])?["HQ"] as? [String: Any])?["assets"] as? [String: Any]
            XCTAssertEqual(assets?["\(pairedID)"] as? Int, 1, "licensed before it is declared")
            try await Self.drain(watch, &watchCommands)
            XCTAssertFalse(watchCommands.contains { $0.requestType == "InstallApplication" }, "the watch waits for its iPhone")
        }

        try await step("5b. Hostile reports change nothing: another device claiming the iPhone's app, and malformed items (204, no 5xx)") {
            let declarationID = try unwrap(try await Self.installs(stack, assignment)[phone.udid]?["declaration"] as? String)
            let claim: [String: Any] = ["StatusItems": ["app": ["managed": ["list": [
                ["identifier": "com.example.rounds\(tag)", "declaration-identifier": declarationID, "state": "managed"]]]]], "Errors": [Any]()]
            let other = try await watch.declarativeManagement("status", data: Array(try JSONSerialization.data(withJSONObject: claim)))
            XCTAssertEqual(other.status, 204, other.text)
            for junk: Any in [["StatusItems": ["app": ["managed": ["list": "not a list"]]], "Errors": [Any]()],
                              ["StatusItems": ["app": ["managed": ["list": [["declaration-identifier": declarationID, "state": 42, "reasons": "x"],
                                                                           ["declaration-identifier": 7], "junk"]]]], "Errors": [Any]()],
                              ["StatusItems": ["app": ["managed": ["list": (0..<2000).map { ["declaration-identifier": "orchard.app.\($0)", "state": "managed"] }]]],
                               "Errors": [Any]()]] {
                let answer = try await phone.declarativeManagement("status", data: Array(try JSONSerialization.data(withJSONObject: junk)))
                XCTAssertEqual(answer.status, 204, answer.text)
            }
            let state = try await Self.installs(stack, assignment)[phone.udid]?["state"] as? String
            XCTAssertEqual(state, "installing", "only the iPhone's own managed report installs it")
        }

        try await step("6. The iPhone syncs and reports app.managed.list: installing, then managed; the watch then gets the watch app Apple named") {
            try await Self.drain(phone, &phoneCommands)
            XCTAssertTrue(phoneCommands.contains { $0.requestType == "DeclarativeManagement" })
            XCTAssertFalse(phoneCommands.contains { $0.requestType == "InstallApplication" && $0.parameters["iTunesStoreID"]?.integer == pairedID },
                           "no InstallApplication for the iPhone: the declaration installs it")
            let installed = await eventually(timeout: 60) {
                (try? await Self.installs(stack, assignment))?[phone.udid]?["state"] as? String == "installed"
            }
            let states = try await Self.installs(stack, assignment)
            XCTAssertTrue(installed, "\(states)")
            let watchInstalled = await eventually(timeout: 60) {
                try? await Self.drain(watch, &watchCommands)
                return (try? await Self.installs(stack, assignment))?[watch.udid]?["state"] as? String == "installed"
            }
            XCTAssertTrue(watchInstalled)
            let install = try unwrap(watchCommands.first { $0.requestType == "InstallApplication" && $0.parameters["iTunesStoreID"]?.integer == pairedID })
            XCTAssertEqual(install.parameters["Identifier"]?.string, "com.example.rounds\(tag).watchapp", "Apple's watchBundleId")
        }

        try await step("7. An app that fails on the iPhone through its declaration: the device's reasons, and the watch's step stops") {
            phone.failingApps = [brokenID]
            let created = try await stack.admin.expect(.POST, "/apps/assignments", json: [
                "adamId": "\(brokenID)", "contentToken": tokenName, "iphoneInstall": "declaration", "target": ["iphone": phone.udid]])
            let id = try unwrap(created["id"] as? String)
            let failed = await eventually(timeout: 60) {
                try? await Self.drain(phone, &phoneCommands)
                return (try? await Self.installs(stack, id))?[watch.udid]?["state"] as? String == "failed"
            }
            XCTAssertTrue(failed)
            let installs = try await Self.installs(stack, id)
            XCTAssertTrue((installs[phone.udid]?["detail"] as? String ?? "").contains("could not be installed"), "\(installs)")
            XCTAssertTrue((installs[watch.udid]?["detail"] as? String ?? "").hasPrefix("its iPhone's install failed"), "\(installs)")
        }

        try await step("8. An iPhone that never reports the declared app managed: failed at the deadline (24 h; here the clock is moved), and its watch") {
            let created = try await stack.admin.expect(.POST, "/apps/assignments", json: [
                "adamId": "\(pairedID)", "contentToken": tokenName, "iphoneInstall": "declaration", "target": ["iphone": phone.udid]])
            let id = try unwrap(created["id"] as? String)
            let declared = await eventually(timeout: 60) { (try? await Self.installs(stack, id))?[phone.udid]?["declaration"] as? String != nil }
            XCTAssertTrue(declared)
            // The iPhone does not synchronise. Its deadline passes (the row's, moved back with SQL rather than waiting a day).
            let database = try Database(conninfo: try TestEnvironment.require("ORCHARD_DATABASE_URL"), schema: "checkin_gateway", maxConnections: 1)
            let moved = try await database.query("""
                UPDATE app_installs SET next_at = now() - interval '1 second' WHERE assignment_id = $1::uuid AND role = 'iphone' AND state = 'installing'
                RETURNING id
                """, [.text(id)])
            XCTAssertEqual(moved.count, 1)
            let failed = await eventually(timeout: 60) { (try? await Self.installs(stack, id))?[watch.udid]?["state"] as? String == "failed" }
            XCTAssertTrue(failed)
            let installs = try await Self.installs(stack, id)
            XCTAssertTrue((installs[phone.udid]?["detail"] as? String ?? "").hasPrefix("the iPhone did not report the app managed"), "\(installs)")
            XCTAssertTrue((installs[watch.udid]?["detail"] as? String ?? "").hasPrefix("its iPhone's install failed"), "\(installs)")
        }
    }

    /// Apps are shared between an iPhone and its watch (the system's automatic app install): a watch that already has
    /// the watch app from its iPhone is not sent it again, and the admin API says so. And in-house apps from manifests.
    func testWhatTheIPhoneSyncsIsNotSentTwiceAndInHouseAppsInstallFromManifests() async throws {
        let stack = try await Fixture.shared.prepare()
        let flows = try await Self.flows(stack)
        let standIn = try AppsAndBooksStandIn()
        let tag = UUID().uuidString.prefix(6)
        let sharedID = Int.random(in: 100_000_000...999_999_999), inHouseID = sharedID + 1
        AppCatalog.shared.register(storeID: sharedID, bundleID: "com.example.shared\(tag)", watchBundleID: "com.example.shared\(tag).watchkitapp")
        let phoneManifest = "https://apps.example.com/\(tag)/rota.plist", watchManifest = "https://apps.example.com/\(tag)/rota-watch.plist"
        AppCatalog.shared.register(inHouse: inHouseID, bundleID: "com.example.rota\(tag)", manifestURL: phoneManifest,
                                   watchBundleID: "com.example.rota\(tag).watchkitapp", watchManifestURL: watchManifest)
        _ = try await uploadedToken(stack, standIn: try ABMStandIn(), consumerKey: "CK_sync_\(tag)")  // Orchard's organisation: Acme Inc.
        let (phone, watch) = try await step("1. A supervised iPhone and its watch; the iPhone puts its apps' watch apps on the watch") {
            try await flows.enrollWatch()
        }
        phone.companionWatch = watch
        let tokenName = "sync-\(tag)"
        let sToken = try await standIn.location(org: "Acme Inc.", assets: [["adamId": "\(sharedID)"]])
        _ = try await stack.admin.expect(.PUT, "/apps/content-tokens/\(tokenName)", json: ["sToken": sToken])

        var phoneCommands: [MDMCommand] = [], watchCommands: [MDMCommand] = []
        try await step("2. A paired app: installed on the iPhone; the watch is asked first, has it already, and is not sent it") {
            let created = try await stack.admin.expect(.POST, "/apps/assignments", json: [
                "adamId": "\(sharedID)", "bundleId": "com.example.shared\(tag)", "watchBundleId": "com.example.shared\(tag).watchkitapp",
                "watchDeployment": "paired", "contentToken": tokenName, "target": ["watch": watch.udid]])
            let id = try unwrap(created["id"] as? String)
            let done = await Self.drive(phone, &phoneCommands, watch, &watchCommands) {
                (try? await Self.installs(stack, id))?[watch.udid]?["state"] as? String == "installed"
            }
            let states = (try? await Self.installs(stack, id)) ?? [:]
            XCTAssertTrue(done, "\(states)")
            let check = try unwrap(watchCommands.first { $0.requestType == "InstalledApplicationList" })
            XCTAssertEqual(check.parameters["ManagedAppsOnly"]?.bool, false, "any app with the identifier: the system's copy is not managed")
            XCTAssertEqual(check.parameters["Identifiers"]?.array?.compactMap(\.string), ["com.example.shared\(tag).watchkitapp"])
            XCTAssertEqual(try AppleSchema.commandProblems(check, schema: "application.installed.list", platform: "watchOS"), [])
            XCTAssertFalse(watchCommands.contains { $0.requestType == "InstallApplication" }, "not sent twice")
            let detail = try await Self.installs(stack, id)[watch.udid]?["detail"] as? String
            XCTAssertEqual(detail, "on the watch already (the system put it there from its iPhone): not sent again")
            let stats = try await standIn.stats()
            let assets = ((stats["locations"] as? [String: Any])?["HQ"] as? [String: Any])?["assets"] as? [String: Any]
            XCTAssertEqual(assets?["\(sharedID)"] as? Int, 1, "one licence: the iPhone's; none for a watch that needed nothing")
        }

        phone.companionWatch = nil
        try await step("3. An in-house paired app: the iPhone installs from its manifest, then the watch (asked first, without it) from the watch app's") {
            for (change, words) in [(["contentToken": tokenName], "no Apps and Books licences"), (["manifestURL": "http://apps.example.com/x.plist"], "must be an https"),
                                    (["adamId": "\(sharedID)"], "has no manifests"), (["watchDeployment": "standalone"], "leave out manifestURL")]
                as [([String: Any], String)] {
                let refused = try await stack.admin.call(.POST, "/apps/assignments", json: [
                    "manifestURL": phoneManifest, "watchManifestURL": watchManifest, "bundleId": "com.example.rota\(tag)",
                    "watchBundleId": "com.example.rota\(tag).watchkitapp", "watchDeployment": "paired", "target": ["watch": watch.udid],
                ].merging(change) { $1 })
                XCTAssertEqual(refused.status, 400, "\(change): \(refused.text)")
                XCTAssertTrue(refused.text.contains(words), "\(change): \(refused.text)")
            }
            let created = try await stack.admin.expect(.POST, "/apps/assignments", json: [
                "name": "Rota", "manifestURL": phoneManifest, "watchManifestURL": watchManifest, "bundleId": "com.example.rota\(tag)",
                "watchBundleId": "com.example.rota\(tag).watchkitapp", "watchDeployment": "paired", "target": ["watch": watch.udid]])
            XCTAssertTrue(created["adamId"] is NSNull || created["adamId"] == nil)
            XCTAssertEqual(created["watchManifestURL"] as? String, watchManifest)
            let id = try unwrap(created["id"] as? String)
            let done = await Self.drive(phone, &phoneCommands, watch, &watchCommands) {
                (try? await Self.installs(stack, id))?[watch.udid]?["state"] as? String == "installed"
            }
            let states = (try? await Self.installs(stack, id)) ?? [:]
            XCTAssertTrue(done, "\(states)")
            let onPhone = try unwrap(phoneCommands.first { $0.parameters["ManifestURL"]?.string == phoneManifest })
            XCTAssertNil(onPhone.parameters["iTunesStoreID"])
            XCTAssertEqual(try AppleSchema.commandProblems(onPhone, schema: "application.install", platform: "iOS"), [])
            let onWatch = try unwrap(watchCommands.first { $0.parameters["ManifestURL"]?.string == watchManifest })
            XCTAssertEqual(try AppleSchema.commandProblems(onWatch, schema: "application.install", platform: "watchOS"), [],
                           "ManifestURL is inherited by watchOS in Apple's schema")
            let checks = watchCommands.filter { $0.requestType == "InstalledApplicationList" }.map { $0.parameters["ManagedAppsOnly"]?.bool }
            XCTAssertTrue(checks.contains(false) && checks.contains(true), "asked first (any app), then whether the sent app is installed: \(checks)")
        }
    }

    func testAssignmentsAndTokensThatCannotBeHonouredAreRefused() async throws {
        let stack = try await Fixture.shared.prepare()
        let flows = try await Self.flows(stack)
        let standIn = try AppsAndBooksStandIn()
        let tag = UUID().uuidString.prefix(6)
        _ = try await uploadedToken(stack, standIn: try ABMStandIn(), consumerKey: "CK_refusals_\(tag)")  // Orchard's organisation: Acme Inc.
        let (phone, watch) = try await flows.enrollWatch()
        let before = (try await stack.admin.expect(.GET, "/apps/assignments")["items"] as? [[String: Any]] ?? []).count

        try await step("1. A content token for another organisation, an expired one, garbage: refused, nothing stored") {
            let foreign = try await standIn.location(org: "Globex \(tag)", assets: [])
            let refused = try await stack.admin.call(.PUT, "/apps/content-tokens/globex-\(tag)", json: ["sToken": foreign])
            XCTAssertEqual(refused.status, 409, refused.text)
            XCTAssertTrue(refused.text.contains("Globex \(tag)"), refused.text)
            let expired = try await standIn.location(org: "Acme Inc.", assets: [])
            let raw = String(decoding: try unwrap(Data(base64Encoded: expired)), as: UTF8.self)
            let stale = Data(raw.replacingOccurrences(of: #""expDate": "[^"]*""#, with: #""expDate": "2020-01-01T00:00:00+0000""#,
                                                      options: .regularExpression).utf8).base64EncodedString()
            let old = try await stack.admin.call(.PUT, "/apps/content-tokens/old-\(tag)", json: ["sToken": stale])
            XCTAssertEqual(old.status, 400, old.text)
            let garbage = try await stack.admin.call(.PUT, "/apps/content-tokens/junk-\(tag)", json: ["sToken": "not a token at all, really"])
            XCTAssertEqual(garbage.status, 400, garbage.text)
            let names = (try await stack.admin.expect(.GET, "/apps/content-tokens")["items"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
            XCTAssertFalse(names.contains { $0.hasSuffix(tag) }, "\(names)")
        }

        try await step("2. Bad assignments: 400 naming the field, 404 for an unknown token or device") {
            let base: [String: Any] = ["adamId": "123456789", "bundleId": "com.example.x", "watchBundleId": "com.example.x.watchkitapp",
                                       "watchDeployment": "paired", "target": ["watch": watch.udid]]
            for (change, status) in [(["adamId": "abc"], 400), (["watchDeployment": "sideways"], 400), (["bundleId": "no spaces allowed"], 400),
                                     (["watchBundleId": NSNull()], 400), (["target": ["watch": watch.udid, "iphone": phone.udid]], 400),
                                     (["contentToken": "nope-\(tag)"], 404), (["target": ["watch": "no-such-device"]], 404)] as [([String: Any], Int)] {
                let body = base.merging(change) { $1 }.filter { !($0.value is NSNull) }
                let answer = try await stack.admin.call(.POST, "/apps/assignments", json: body)
                XCTAssertEqual(answer.status, status, "\(change): \(answer.text)")
            }
        }

        try await step("3. A paired app for a watch whose iPhone is not enrolled: 409, nothing stored") {
            _ = try await stack.admin.expect(.POST, "/devices/\(phone.udid)/commands", json: ["type": "Unenroll"])
            try await DeviceResponder().drain(phone)
            let refused = try await stack.admin.call(.POST, "/apps/assignments", json: [
                "adamId": "123456789", "bundleId": "com.example.x", "watchBundleId": "com.example.x.watchkitapp",
                "watchDeployment": "paired", "target": ["watch": watch.udid]])
            XCTAssertEqual(refused.status, 409, refused.text)
            XCTAssertTrue(refused.text.contains("is not enrolled"), refused.text)
            let after = (try await stack.admin.expect(.GET, "/apps/assignments")["items"] as? [[String: Any]] ?? []).count
            XCTAssertEqual(after, before, "nothing was stored")
        }
    }
}
