import AppleProtocol
import Foundation
import NIOConcurrencyHelpers
import OrchardCrypto

/// Every enrollment flow Orchard serves, played by simulated devices against a running stack over HTTP, as Apple's
/// documents describe the device's side: profile enrollment from a link, the Apple Watch through its supervised iPhone,
/// Automated Device Enrollment from the ABM stand-in, account-driven User Enrollment and Device Enrollment. Each step is
/// timed under its name (`timings`) and told by the narrator.
public struct EnrollmentFlows: Sendable {
    public let environment: SimulatorEnvironment
    public let narrator: Narrator
    public let profileCA: Certificate
    public let timings = StepTimings()
    private let accountEnrollments = NIOLockedValueBox(0)

    public init(environment: SimulatorEnvironment, narrator: Narrator) async throws {
        self.environment = environment
        self.narrator = narrator
        profileCA = try await environment.profileCA()
    }

    var admin: AdminClient { environment.admin }

    // MARK: Profile enrollment from a link

    /// A device that downloads and installs a link's profile, enrolls, and answers its first commands.
    /// `product`: the model it reports (`iPad16,3` for an iPad; by default an iPhone, or a Mac on macOS).
    public func enrollThroughLink(platform: String = "iOS", product given: String? = nil, supervised: Bool = true) async throws -> SimulatedDevice {
        let product = given ?? (platform == "macOS" ? "Mac14,2" : "iPhone17,1")
        let udid = Self.newUDID(), serial = Self.newSerial(platform == "macOS" ? "C02" : product.hasPrefix("iPad") ? "DMP" : "F17")
        let link = try await timings.time("link created (admin)") {
            try await admin.expect(.POST, "/enrollment-links", json: ["name": "orchard-sim \(serial)", "maxUses": 1])
        }
        guard let url = link["url"] as? String else { throw SimulatorError("the link has no url") }
        narrator.say("  \(product) \(serial) → gateway: GET the enrollment link")
        let profile = try await timings.time("profile downloaded") { try expect(200, try await http(.GET, url), "GET the link") }
        let (device, _) = try SimulatedDevice.installing(profile.body, roots: [profileCA], udid: udid, serial: serial, platform: platform,
                                                         productName: product, osVersion: platform == "macOS" ? "15.2" : "18.2")
        narrator.say("  \(device.label) installed the signed profile (its identity from profile-signer's CA)")
        try await complete(device, supervised: supervised)
        return device
    }

    /// Authenticate, TokenUpdate, then the first commands answered.
    func complete(_ device: SimulatedDevice, supervised: Bool, awaitRelease: Bool = false) async throws {
        try await timings.time("Authenticate") { _ = try expect(200, try await device.authenticate(), "Authenticate") }
        try await timings.time("TokenUpdate") { _ = try expect(200, try await device.tokenUpdate(), "TokenUpdate") }
        narrator.say("  \(device.label) → gateway: Authenticate, TokenUpdate: enrolled")
        let responder = DeviceResponder(narrator: narrator, supervised: supervised)
        let (answered, _) = try await timings.time("first commands") { try await responder.drain(device) }
        if awaitRelease && !answered.contains("DeviceConfigured") {
            throw SimulatorError("\(device.label) was not released (answered \(answered))")
        }
    }

    // MARK: Apple Watch

    /// A supervised iPhone (enrolled through a link) with watch enrollment on, and a watch that enrolls through it:
    /// the watch-enrollment declaration, the watch's 403 with a security token, the iPhone's GetToken, the pairing
    /// token, the watch's signed profile, Authenticate and TokenUpdate.
    public func enrollWatch(phone existing: SimulatedDevice? = nil) async throws -> (phone: SimulatedDevice, watch: SimulatedDevice) {
        let appleCA = try environment.requireAppleCA("the Apple Watch flow")
        let phone = try await { if let existing { return existing }; return try await enrollThroughLink(platform: "iOS", supervised: true) }()
        try await timings.time("watch enrollment turned on (admin)") {
            let settings = try await admin.expect(.GET, "/watch-enrollment")
            guard settings["mode"] as? String != "all-supervised" else { return }
            let on = (settings["phones"] as? [[String: Any]] ?? []).filter { $0["on"] as? Bool == true }.compactMap { $0["enrollmentID"] as? String }
            _ = try await admin.expect(.PUT, "/watch-enrollment", json: ["mode": "selected", "enrollmentIDs": on + [phone.udid]])
        }
        narrator.say("  admin → gateway: watch enrollment on for \(phone.label); the iPhone is told to synchronise declarations")
        try await DeviceResponder(narrator: narrator).drain(phone)
        let enrollmentProfileURL = try await timings.time("watch-enrollment declaration read") { () -> String in
            let items = try await device(phone, endpoint: "declaration-items")
            let configurations = ((items["Declarations"] as? [String: Any])?["Configurations"] as? [[String: Any]]) ?? []
            for configuration in configurations {
                guard let identifier = configuration["Identifier"] as? String else { continue }
                let declaration = try await device(phone, endpoint: "declaration/configuration/\(identifier)")
                if declaration["Type"] as? String == "com.apple.configuration.watch.enrollment",
                   let url = (declaration["Payload"] as? [String: Any])?["EnrollmentProfileURL"] as? String {
                    return url
                }
            }
            throw SimulatorError("\(phone.label) has no com.apple.configuration.watch.enrollment declaration")
        }
        narrator.say("  \(phone.label) has com.apple.configuration.watch.enrollment: EnrollmentProfileURL \(enrollmentProfileURL)")
        let watch = try SimulatedWatch(udid: "00008301-" + Self.hex(8) + "W", serial: Self.newSerial("H4H"), appleCA: appleCA)
        let securityToken = try await timings.time("watch's first request (403)") { () -> String in
            let first = try await watch.requestProfile(enrollmentProfileURL)
            guard first.status == 403, let token = ((try? first.json())?["details"] as? [String: Any])?["security-token"] as? String else {
                throw SimulatorError("the watch's first request → \(first.status) \(first.text.prefix(200)) (expected 403 with a security token)")
            }
            return token
        }
        narrator.say("  Watch \(watch.serial) → gateway: MachineInfo without a pairing token → 403 com.apple.watch.pairing.token.missing")
        let pairingToken = try await timings.time("iPhone GetToken") { () -> [UInt8] in
            let answer = try expect(200, try await phone.checkin(phone.identifiers.merging([
                "MessageType": .string("GetToken"), "TokenServiceType": .string("com.apple.watch.pairing"),
                "TokenParameters": .dictionary(["SecurityToken": .string(securityToken), "PhoneUDID": .string(phone.udid),
                                                "WatchUDID": .string(watch.udid)])]) { $1 }), "GetToken")
            guard let token = try Plist.parseDictionary(answer.body)["TokenData"]?.data else { throw SimulatorError("GetToken answered no TokenData") }
            return token
        }
        narrator.say("  \(phone.label) → gateway: GetToken com.apple.watch.pairing → a pairing token bound to both devices")
        let profile = try await timings.time("watch profile") {
            try expect(200, try await watch.requestProfile(enrollmentProfileURL, pairingToken: pairingToken), "the watch's second request")
        }
        let (enrolled, _) = try SimulatedDevice.installing(profile.body, roots: [profileCA], udid: watch.udid, serial: watch.serial,
                                                           platform: "watchOS")
        narrator.say("  Watch \(watch.serial) → gateway: MachineInfo with PAIRING_TOKEN → its signed enrollment profile")
        try await complete(enrolled, supervised: true)
        return (phone, enrolled)
    }

    private func device(_ phone: SimulatedDevice, endpoint: String) async throws -> [String: Any] {
        let answer = try expect(200, try await phone.declarativeManagement(endpoint), "DeclarativeManagement \(endpoint)")
        return (try? JSONSerialization.jsonObject(with: Data(answer.body)) as? [String: Any]) ?? [:]
    }

    // MARK: Automated Device Enrollment

    /// A device ABM assigns to Orchard (the stand-in), synced, given the token's default profile (one is defined when the
    /// token has none), then in Setup Assistant: Apple pushes its profile, it sends its signed MachineInfo, enrolls
    /// awaiting configuration, answers its setup items and is released by DeviceConfigured.
    public func enrollADE(platform: String = "macOS") async throws -> SimulatedDevice {
        let appleCA = try environment.requireAppleCA("ADE")
        guard let standIn = environment.abmStandIn, let consumerKey = environment.abmConsumerKey else {
            throw SimulatorError("ADE needs the ABM stand-in and a server token connected to it (a local trial, or --abm-standin and --abm-consumer-key)")
        }
        let tokenID = try await adeToken(consumerKey: consumerKey)
        let awaitConfigured = try await defaultProfile(tokenID: tokenID)
        let mac = platform == "macOS"
        let device = try SimulatedADEDevice(udid: Self.newUDID(), serial: Self.newSerial(mac ? "C02" : "F17"), product: mac ? "Mac14,2" : "iPhone17,1",
                                            osVersion: mac ? "15.2" : "18.2", appleCA: appleCA)
        try await timings.time("assigned in ABM and synced") {
            try await control(standIn, "devices", ["consumer_key": consumerKey, "devices": [[
                "serial_number": device.serial, "model": mac ? "MacBook Air" : "iPhone 16", "os": mac ? "OSX" : "iOS",
                "device_family": mac ? "Mac" : "iPhone"]]])
            _ = try await admin.expect(.POST, "/abm/tokens/\(tokenID)/sync")
            try await waitFor("\(device.serial) assigned in the gateway's copy") {
                let view = try await admin.expect(.GET, "/ade/devices?after=\(device.serial.dropLast())&limit=5")
                return (view["items"] as? [[String: Any]] ?? []).contains { $0["serialNumber"] as? String == device.serial && $0["state"] as? String == "assigned" }
            }
        }
        narrator.say("  ABM assigns \(device.product) \(device.serial) to Orchard; abm-sync syncs it and assigns the default profile")
        try await control(standIn, "push", ["consumer_key": consumerKey, "serial_number": device.serial])
        let enrollURL = "\(environment.gateway)/mdm/ade/enroll"
        let profile = try await timings.time("MachineInfo → profile") {
            try expect(200, mac ? try await device.post(enrollURL) : try await device.get(enrollURL), "the ADE enrollment request")
        }
        narrator.say("  \(device.product) \(device.serial) in Setup Assistant → gateway: signed MachineInfo (\(mac ? "POST" : "GET with x-apple-aspen-deviceinfo")) → its profile")
        let (installed, _) = try SimulatedDevice.installing(profile.body, roots: [profileCA], udid: device.udid, serial: device.serial,
                                                            platform: mac ? "macOS" : "iOS", productName: device.product, osVersion: device.osVersion)
        installed.awaitingConfiguration = awaitConfigured
        try await complete(installed, supervised: true, awaitRelease: awaitConfigured)
        if awaitConfigured {
            try await waitFor("\(device.serial) released") {
                let view = try await admin.expect(.GET, "/ade/devices?after=\(device.serial.dropLast())&limit=5")
                return (view["items"] as? [[String: Any]] ?? []).contains { $0["serialNumber"] as? String == device.serial && $0["state"] as? String == "released" }
            }
            narrator.say("  \(installed.label) acknowledged DeviceConfigured: released from Setup Assistant")
        }
        return installed
    }

    /// For load: `count` devices assigned at once in the stand-in, one sync, and the gateway's copy waited for (not
    /// part of what a device does, so not measured); each is then enrolled by `enrollPrepared`.
    public func prepareADE(count: Int, platform: String = "macOS") async throws -> [SimulatedADEDevice] {
        let appleCA = try environment.requireAppleCA("ADE")
        guard let standIn = environment.abmStandIn, let consumerKey = environment.abmConsumerKey else {
            throw SimulatorError("ADE needs the ABM stand-in and a server token connected to it")
        }
        let tokenID = try await adeToken(consumerKey: consumerKey)
        _ = try await defaultProfile(tokenID: tokenID)
        let mac = platform == "macOS", prefix = "L" + Self.hex(5)
        let key = try PrivateKey.generateP256()
        let devices = try (0..<count).map { i -> SimulatedADEDevice in
            try SimulatedADEDevice(udid: Self.newUDID(), serial: String(format: "%@%06d", prefix, i), product: mac ? "Mac14,2" : "iPhone17,1",
                                   osVersion: mac ? "15.2" : "18.2", appleCA: appleCA, key: key)
        }
        for chunk in stride(from: 0, to: count, by: 5000) {
            try await control(standIn, "devices", ["consumer_key": consumerKey, "devices": devices[chunk..<min(chunk + 5000, count)].map {
                ["serial_number": $0.serial, "model": mac ? "MacBook Air" : "iPhone 16", "os": mac ? "OSX" : "iOS"] }])
        }
        _ = try await admin.expect(.POST, "/abm/tokens/\(tokenID)/sync")
        try await waitFor("\(count) devices assigned in the gateway's copy", timeout: 300) {
            var assigned = 0, after = "\(prefix)"
            while true {
                let page = try await admin.expect(.GET, "/ade/devices?after=\(after)&limit=1000")["items"] as? [[String: Any]] ?? []
                let mine = page.filter { ($0["serialNumber"] as? String)?.hasPrefix(prefix) == true }
                assigned += mine.filter { $0["state"] as? String == "assigned" }.count
                guard mine.count == 1000, let last = mine.last?["serialNumber"] as? String else { break }
                after = last
            }
            return assigned >= count
        }
        return devices
    }

    /// A prepared device in Setup Assistant: Apple pushes its profile; MachineInfo → profile → enrollment → release.
    public func enrollPrepared(_ device: SimulatedADEDevice) async throws -> SimulatedDevice {
        guard let standIn = environment.abmStandIn, let consumerKey = environment.abmConsumerKey else {
            throw SimulatorError("ADE needs the ABM stand-in")
        }
        try await control(standIn, "push", ["consumer_key": consumerKey, "serial_number": device.serial])
        let mac = device.product.hasPrefix("Mac")
        let profile = try await timings.time("MachineInfo → profile") {
            try expect(200, try await device.post("\(environment.gateway)/mdm/ade/enroll"), "the ADE enrollment request")
        }
        let (installed, _) = try SimulatedDevice.installing(profile.body, roots: [profileCA], udid: device.udid, serial: device.serial,
                                                            platform: mac ? "macOS" : "iOS", productName: device.product, osVersion: device.osVersion)
        installed.awaitingConfiguration = true
        try await complete(installed, supervised: true, awaitRelease: true)
        return installed
    }

    private func adeToken(consumerKey: String) async throws -> String {
        let tokens = try await admin.expect(.GET, "/abm/tokens")["items"] as? [[String: Any]] ?? []
        guard let token = tokens.first(where: { $0["consumerKey"] as? String == consumerKey && $0["hasServerToken"] as? Bool == true }),
              let id = token["id"] as? String else {
            throw SimulatorError("no ABM server token with consumer key \(consumerKey) is connected (orchardctl abm tokens list)")
        }
        return id
    }

    /// The token's default profile (defined here when it has none); whether it awaits DeviceConfigured.
    private func defaultProfile(tokenID: String) async throws -> Bool {
        let profiles = try await admin.expect(.GET, "/abm/profiles")["items"] as? [[String: Any]] ?? []
        if let current = profiles.first(where: { $0["tokenID"] as? String == tokenID && $0["isDefault"] as? Bool == true }) {
            let body = (current["profile"] as? String).flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            return body?["await_device_configured"] as? Bool ?? false
        }
        _ = try await admin.expect(.POST, "/abm/tokens/\(tokenID)/profiles", json: [
            "profile": ["profile_name": "Orchard simulator", "is_supervised": true, "await_device_configured": true, "is_mandatory": true,
                        "skip_setup_items": ["Siri", "Privacy", "TOS"]], "default": true])
        narrator.say("  admin → abm-sync: an ADE profile defined with ABM (await_device_configured) and made the token's default")
        return true
    }

    private func control(_ standIn: String, _ path: String, _ json: [String: Any]) async throws {
        let answer = try await http(.POST, "\(standIn)/_control/\(path)", headers: [("Content-Type", "application/json")],
                                    body: Array(try JSONSerialization.data(withJSONObject: json)))
        guard answer.status == 204 else { throw SimulatorError("the ABM stand-in's \(path) → \(answer.status) \(answer.text)") }
    }

    // MARK: Account-driven enrollment

    public enum AccountMode: String, Sendable { case byod = "mdm-byod", adde = "mdm-adde" }

    /// A personal iPhone (User Enrollment) or an organisation's one (Device Enrollment) that enrolls with a Managed
    /// Apple Account: discovery at the account's domain, the first POST answered 401 with the sign-in challenge, the
    /// sign-in page filled as a browser does (its cookie and CSRF field), the bearer it ends with, the profile, and
    /// every later request with the bearer.
    public func enrollAccount(_ mode: AccountMode, platform: String = "iOS") async throws -> SimulatedDevice {
        let appleCA = try environment.requireAppleCA("account-driven enrollment")
        guard let template = mode == .byod ? environment.byodUser : environment.addeUser else {
            throw SimulatorError("account-driven enrollment needs an account of a \(mode.rawValue) domain and its password")
        }
        let user = environment.account(template, index: accountEnrollments.withLockedValue { n in defer { n += 1 }; return n })
        let family = platform == "macOS" ? "Mac" : "iPhone"
        let baseURL = try await timings.time("discovery") { () -> String in
            let discovered = try expect(200, try await http(.GET, "\(environment.enrollmentAuth)/.well-known/com.apple.remotemanagement?"
                                                                   + "user-identifier=\(Self.query(user.account))&model-family=\(family)"), "discovery")
            guard let server = ((try discovered.json())["Servers"] as? [[String: Any]])?.first, server["Version"] as? String == mode.rawValue,
                  let url = server["BaseURL"] as? String else {
                throw SimulatorError("discovery for \(user.account) did not name a \(mode.rawValue) server: \(discovered.text.prefix(200))")
            }
            return url
        }
        narrator.say("  \(family) → user-enrollment-auth: discovery for \(user.account) → \(mode.rawValue) at \(baseURL)")
        let udid = Self.newUDID()
        var info: [String: PlistValue] = ["PRODUCT": .string(platform == "macOS" ? "Mac16,1" : "iPhone17,2"), "VERSION": .string("22D63"),
                                          "OS_VERSION": .string(platform == "macOS" ? "15.3" : "18.3"), "LANGUAGE": .string("en-US")]
        if mode == .adde { info["UDID"] = .string(udid) }
        let key = try PrivateKey.generateP256()
        let cert = try Certificate.issue(subject: "/CN=\(UUID().uuidString)/O=Apple Inc. (stand-in)", key: key,
                                         issuer: (appleCA.certificate, appleCA.key), usage: .clientIdentity,
                                         validity: Date().addingTimeInterval(-3600)...Date().addingTimeInterval(86400 * 365))
        let request = try CMS.sign(Plist.xml(info), identity: try SigningIdentity(certificate: cert, key: key))
        func post(_ bearer: String?) async throws -> HTTPResult {
            var headers = [("Content-Type", "application/pkcs7-signature"), ("User-Agent", "DeviceManagementClient/1.0")]
            if let bearer { headers.append(("Authorization", "Bearer \(bearer)")) }
            return try await http(.POST, baseURL, headers: headers, body: request)
        }
        let signInURL = try await timings.time("first POST (401)") { () -> String in
            let first = try await post(nil)
            guard first.status == 401, let challenge = first.headers["www-authenticate"],
                  let url = Self.parameter("url", challenge) ?? Self.parameter("authorization-url", challenge) else {
                throw SimulatorError("the first POST → \(first.status) \(first.text.prefix(200)) (expected 401 with a challenge)")
            }
            return url
        }
        narrator.say("  \(family) → gateway: signed MachineInfo → 401 Bearer method=\"apple-as-web\"")
        let token = try await timings.time("sign-in") { try await signIn(signInURL, user: user) }
        narrator.say("  web view → user-enrollment-auth: \(user.account) signs in against the directory → 308 with an access token")
        let profile = try await timings.time("profile") { try expect(200, try await post(token), "the POST with the bearer") }
        let (device, _) = try SimulatedDevice.installing(profile.body, roots: [profileCA], udid: udid, serial: mode == .adde ? Self.newSerial("F17") : "",
                                                         platform: platform, productName: platform == "macOS" ? "Mac16,1" : "iPhone17,2",
                                                         osVersion: platform == "macOS" ? "15.3" : "18.3")
        if mode == .byod { device.enrollmentID = "\(UUID().uuidString)-\(Self.hex(8))" }
        if platform != "macOS" {
            device.bearer = token
            device.reauthenticate = { [self] challenge in
                guard let url = Self.parameter("url", challenge) ?? Self.parameter("authorization-url", challenge) else {
                    throw SimulatorError("a 401 without a sign-in URL in its challenge: \(challenge.prefix(200))")
                }
                narrator.say("  \(device.label) → gateway: 401 Bearer (its token no longer works) → \(user.account) signs in again")
                return try await signIn(url, user: user)
            }
        }
        device.account = user.account
        narrator.say("  \(device.label) installed the \(mode == .byod ? "User" : "Device") Enrollment profile for \(user.account)")
        try await complete(device, supervised: mode == .adde)
        if platform == "macOS" {
            // The Mac's bearer travels on the user channel only: the user who enrolled opens it with its TokenUpdate.
            let name = String(user.account.prefix { $0 != "@" })
            device.user = (id: UUID().uuidString, shortName: name, longName: name.capitalized)
            device.userBearer = token
            _ = try expect(200, try await device.userTokenUpdate(), "the user channel's TokenUpdate with the bearer")
            narrator.say("  \(device.label) → gateway: user channel TokenUpdate (\(mode == .byod ? "EnrollmentUserID" : "UserID"), bearer) → 200")
        }
        return device
    }

    /// An administrator revokes the account's tokens (as when a person leaves, or a device is lost); the device's next
    /// check-in is answered 401, it signs in again and the check-in goes through with the new bearer.
    public func revokeAndSignInAgain(_ device: SimulatedDevice) async throws {
        guard let account = device.account, device.bearer != nil else { throw SimulatorError("\(device.label) has no bearer to revoke") }
        let segment = account.addingPercentEncoding(withAllowedCharacters: CharacterSet.urlPathAllowed.subtracting(CharacterSet(charactersIn: "/?#"))) ?? account
        let revoked = try await admin.expect(.POST, "/account-users/\(segment)/revoke-tokens")
        narrator.say("  admin → gateway: revoke \(account)'s tokens (\(revoked["revoked"] as? Int ?? 0) revoked)")
        let before = device.reauthentications
        let answer = try await device.tokenUpdate()
        guard answer.status == 200, device.reauthentications == before + 1 else {
            throw SimulatorError("after the revocation: TokenUpdate → \(answer.status), \(device.reauthentications - before) sign-ins (expected 200 after one)")
        }
        narrator.say("  \(device.label) → gateway: TokenUpdate retried with the new bearer → 200")
    }

    /// The sign-in page as a browser fills it: GET (cookie and CSRF field), POST the form, follow nothing: the 308's
    /// `apple-remotemanagement-user-login://authentication-results?access-token=…` ends it.
    public func signIn(_ url: String, user: (account: String, password: String)) async throws -> String {
        let page = try expect(200, try await http(.GET, "\(url)?user-identifier=\(Self.query(user.account))"), "the sign-in page")
        guard let csrf = page.text.range(of: #"name="csrf" value="([^"]+)""#, options: .regularExpression).map({
                  String(page.text[$0].dropFirst(#"name="csrf" value=""#.count).dropLast()) }),
              let cookie = page.headers["set-cookie"]?.split(separator: ";").first.map(String.init) else {
            throw SimulatorError("the sign-in page has no form to fill")
        }
        let form = "user=\(Self.query(user.account))&password=\(Self.query(user.password))&csrf=\(Self.query(csrf))"
        let answer = try await http(.POST, url, headers: [("Content-Type", "application/x-www-form-urlencoded"), ("Cookie", cookie)],
                                    body: Array(form.utf8))
        guard answer.status == 308, let location = answer.headers["location"], let components = URLComponents(string: location),
              components.scheme == "apple-remotemanagement-user-login",
              let token = components.queryItems?.first(where: { $0.name == "access-token" })?.value else {
            throw SimulatorError("signing in as \(user.account) → \(answer.status) (expected 308 with an access token)")
        }
        return token
    }

    // MARK: Helpers

    static func parameter(_ name: String, _ challenge: String) -> String? {
        guard let range = challenge.range(of: "\(name)=\"") else { return nil }
        let rest = challenge[range.upperBound...]
        return rest.firstIndex(of: "\"").map { String(rest[..<$0]) }
    }

    static func query(_ value: String) -> String { value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? value }
    static func hex(_ count: Int) -> String { String(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(count)) }
    public static func newUDID() -> String { "00008030-" + hex(16) }
    public static func newSerial(_ prefix: String) -> String { prefix + hex(9) }

    /// Polls `condition` until it holds (60 s at most).
    func waitFor(_ what: String, timeout: TimeInterval = 60, _ condition: () async throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw SimulatorError("gave up waiting: \(what)")
    }
}

@discardableResult
func expect(_ status: Int, _ answer: HTTPResult, _ what: String) throws -> HTTPResult {
    guard answer.status == status else {
        throw SimulatorError("\(what) → \(answer.status) \(answer.text.prefix(240)) (expected \(status))")
    }
    return answer
}

/// Milliseconds each named step took, for p50/p99 per step.
public final class StepTimings: Sendable {
    private let samples = NIOLockedValueBox<[String: [Double]]>([:])
    private let order = NIOLockedValueBox<[String]>([])

    public init() {}

    func time<T>(_ step: String, _ body: () async throws -> T) async throws -> T {
        let start = DispatchTime.now()
        let value = try await body()
        let ms = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6
        samples.withLockedValue { $0[step, default: []].append(ms) }
        order.withLockedValue { if !$0.contains(step) { $0.append(step) } }
        return value
    }

    public func reset() { samples.withLockedValue { $0 = [:] } }

    /// "step: n, p50, p99" lines in the order the steps first ran.
    public func report(indent: String = "  ") -> [String] {
        let all = samples.withLockedValue { $0 }
        return order.withLockedValue { $0 }.compactMap { step in
            guard let values = all[step]?.sorted(), !values.isEmpty else { return nil }
            func p(_ q: Double) -> Double { values[min(values.count - 1, Int(Double(values.count) * q))] }
            return String(format: "%@%@: %d, p50 %.1f ms, p99 %.1f ms", indent, step, values.count, p(0.5), p(0.99))
        }
    }
}
