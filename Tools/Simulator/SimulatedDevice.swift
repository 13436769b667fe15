import AppleProtocol
import Foundation
import NIOHTTP1
import OrchardCrypto

/// A stand-in for an Apple device: holds an identity, signs every message with it (`Mdm-Signature`,
/// as `SignMessage` asks), and speaks the check-in and command-channel protocols over HTTP.
public final class SimulatedDevice: @unchecked Sendable {
    public let udid: String
    public let serial: String
    public let platform: String
    public var identity: SigningIdentity
    public var topic: String
    public var checkInURL: String
    public var serverURL: String
    public let pushToken: [UInt8]
    public let pushMagic: String
    public let unlockToken: [UInt8]
    public let productName: String
    public let osVersion: String
    /// The enrollment profile's MDM payload identifier, when enrolled through a profile.
    public var mdmPayloadIdentifier: String?
    /// The enrollment profile's top-level `PayloadIdentifier` (what RemoveProfile names).
    public var profileIdentifier: String?
    /// An ADE device in Setup Assistant whose profile says await_device_configured: TokenUpdate says so.
    public var awaitingConfiguration = false
    /// A User Enrollment (account-driven BYOD): identified by `EnrollmentID` only, never UDID or serial.
    public var enrollmentID: String?
    /// Account-driven enrollment: the Managed Apple Account it enrolled with.
    public var account: String?
    /// Account-driven enrollment: sent as `Authorization: Bearer` on every check-in and command request (iOS).
    public var bearer: String?
    /// Account-driven enrollment: signs in again when a request with the bearer is answered 401 (the token was revoked
    /// or expired; REFERENCE §5.7): given the `WWW-Authenticate` challenge, the new access token. The request is then
    /// retried once, as the device does.
    public var reauthenticate: (@Sendable (_ challenge: String) async throws -> String)?
    /// How many times the device signed in again.
    public private(set) var reauthentications = 0
    /// macOS: the user channel of the user who enrolled the Mac (the profile's `com.apple.mdm.per-user-connections`):
    /// `EnrollmentUserID` in a User Enrollment, `UserID` in a Device Enrollment, with the user's names.
    public var user: (id: String, shortName: String, longName: String)?
    /// Account-driven enrollment on macOS: the bearer travels on the user channel only (REFERENCE §5.7).
    public var userBearer: String?
    public let userPushToken: [UInt8] = (0..<32).map { _ in UInt8.random(in: 0...255) }
    /// Profiles installed by InstallProfile, by PayloadIdentifier (their PayloadUUID), for ProfileList.
    public var installedProfiles: [String: String] = [:]
    /// Managed apps it installed (InstallApplication), by bundle identifier → how many more InstalledApplicationList
    /// answers still say `Installing` (an app takes a while to download).
    public var installedApps: [String: Int] = [:]
    /// How many InstalledApplicationList answers an app it is told to install reports `Installing` first.
    public var installChecks = 0
    /// App Store ids whose InstallApplication it answers with an error (no licence, the store refused…).
    public var failingApps: Set<Int> = []
    /// An iPhone's paired watch whose apps the system keeps in step (Apple's automatic app install): an app with a watch
    /// app installed on the iPhone appears on this watch too. Nil: the watch gets only what it is sent.
    public weak var companionWatch: SimulatedDevice?
    /// How the simulator names the device in what it prints.
    public var label: String {
        if let enrollmentID { return "\(productName) (User Enrollment \(enrollmentID.prefix(8)))" }
        return "\(productName) \(serial.isEmpty ? String(udid.suffix(8)) : serial)"
    }

    public init(udid: String, serial: String, platform: String = "iOS", identity: SigningIdentity, topic: String,
                checkInURL: String, serverURL: String, productName: String = "iPhone15,2", osVersion: String = "18.1",
                pushToken: [UInt8]? = nil, pushMagic: String? = nil, unlockToken: [UInt8]? = nil) throws {
        self.udid = udid
        self.serial = serial
        self.platform = platform
        self.identity = identity
        self.topic = topic
        self.checkInURL = checkInURL
        self.serverURL = serverURL
        self.productName = productName
        self.osVersion = osVersion
        self.pushToken = try pushToken ?? SecureRandom.bytes(32)
        self.pushMagic = pushMagic ?? UUID().uuidString
        self.unlockToken = try unlockToken ?? SecureRandom.bytes(40)
    }

    /// What a device keeps across runs of the simulator (its identity, enrollment and push credentials).
    public struct Saved: Codable, Sendable {
        public var udid, serial, platform, productName, osVersion, topic, checkInURL, serverURL: String
        public var certificatePEM, keyPEM: String
        public var pushToken, unlockToken: Data
        public var pushMagic: String
        public var enrollmentID, bearer, profileIdentifier: String?
    }

    public var saved: Saved {
        get throws {
            Saved(udid: udid, serial: serial, platform: platform, productName: productName, osVersion: osVersion, topic: topic,
                  checkInURL: checkInURL, serverURL: serverURL,
                  certificatePEM: String(decoding: try identity.certificate.pemRepresentation(), as: UTF8.self),
                  keyPEM: String(decoding: try identity.key.pemRepresentation(), as: UTF8.self),
                  pushToken: Data(pushToken), unlockToken: Data(unlockToken), pushMagic: pushMagic,
                  enrollmentID: enrollmentID, bearer: bearer, profileIdentifier: profileIdentifier)
        }
    }

    public convenience init(saved: Saved) throws {
        guard let certificate = try Certificate.parsePEM(Array(saved.certificatePEM.utf8)).first else {
            throw PlistError("a saved device without its certificate")
        }
        try self.init(udid: saved.udid, serial: saved.serial, platform: saved.platform,
                      identity: try SigningIdentity(certificate: certificate, key: try PrivateKey(pem: Array(saved.keyPEM.utf8))),
                      topic: saved.topic, checkInURL: saved.checkInURL, serverURL: saved.serverURL, productName: saved.productName,
                      osVersion: saved.osVersion, pushToken: Array(saved.pushToken), pushMagic: saved.pushMagic,
                      unlockToken: Array(saved.unlockToken))
        enrollmentID = saved.enrollmentID
        bearer = saved.bearer
        profileIdentifier = saved.profileIdentifier
    }

    /// A device that installed `signedProfile`: the signature must verify against `roots`; the device
    /// takes the PKCS#12 identity, Topic, ServerURL and CheckInURL from the profile.
    public static func installing(_ signedProfile: [UInt8], roots: [Certificate], udid: String, serial: String,
                                  platform: String = "iOS", productName: String? = nil,
                                  osVersion: String? = nil) throws -> (SimulatedDevice, [String: PlistValue]) {
        let verified = try CMS.verify(signedProfile, roots: roots)
        let profile = try Plist.parseDictionary(verified.content)
        let payloads = profile["PayloadContent"]?.array?.compactMap(\.dictionary) ?? []
        guard let mdm = payloads.first(where: { $0["PayloadType"]?.string == "com.apple.mdm" }),
              let p12 = payloads.first(where: { $0["PayloadType"]?.string == "com.apple.security.pkcs12" }),
              let p12Data = p12["PayloadContent"]?.data else {
            throw PlistError("profile lacks an MDM or PKCS#12 payload")
        }
        let identity = try PKCS12.parse(p12Data, password: p12["Password"]?.string ?? "")
        let device = try SimulatedDevice(udid: udid, serial: serial, platform: platform, identity: identity,
                                         topic: mdm["Topic"]?.string ?? "", checkInURL: mdm["CheckInURL"]?.string ?? "",
                                         serverURL: mdm["ServerURL"]?.string ?? "",
                                         productName: productName ?? (platform == "watchOS" ? "Watch7,3" : "iPhone15,2"),
                                         osVersion: osVersion ?? (platform == "watchOS" ? "11.1" : "18.1"))
        device.mdmPayloadIdentifier = mdm["PayloadIdentifier"]?.string
        device.profileIdentifier = profile["PayloadIdentifier"]?.string
        return (device, profile)
    }

    // MARK: Check-in

    /// PUTs a check-in message, signed.
    public func checkin(_ message: [String: PlistValue], signWith other: SigningIdentity? = nil) async throws -> HTTPResult {
        let body = Plist.xml(message)
        return try await put(checkInURL, body: body, contentType: "application/x-apple-aspen-mdm-checkin", signer: other ?? identity)
    }

    public var identifiers: [String: PlistValue] { enrollmentID.map { ["EnrollmentID": .string($0)] } ?? ["UDID": .string(udid)] }

    public var authenticateMessage: [String: PlistValue] {
        var m = identifiers.merging(["MessageType": .string("Authenticate"), "Topic": .string(topic), "OSVersion": .string(osVersion),
                                     "BuildVersion": .string("22B83"), "ProductName": .string(productName)]) { $1 }
        if enrollmentID == nil { m["SerialNumber"] = .string(serial) }
        return m
    }

    public var tokenUpdateMessage: [String: PlistValue] {
        identifiers.merging(["MessageType": .string("TokenUpdate"), "Topic": .string(topic), "Token": .data(pushToken),
                             "PushMagic": .string(pushMagic), "UnlockToken": .data(unlockToken),
                             "AwaitingConfiguration": .bool(awaitingConfiguration)]) { $1 }
    }

    public func authenticate() async throws -> HTTPResult { try await checkin(authenticateMessage) }
    public func tokenUpdate() async throws -> HTTPResult { try await checkin(tokenUpdateMessage) }

    public func declarativeManagement(_ endpoint: String, data: [UInt8]? = nil) async throws -> HTTPResult {
        var m = identifiers.merging(["MessageType": .string("DeclarativeManagement"), "Endpoint": .string(endpoint)]) { $1 }
        if let data { m["Data"] = .data(data) }
        return try await checkin(m)
    }

    public func getToken(serviceType: String, parameters: [String: String]) async throws -> HTTPResult {
        try await checkin(identifiers.merging([
            "MessageType": .string("GetToken"), "TokenServiceType": .string(serviceType),
            "TokenParameters": .dictionary(parameters.mapValues(PlistValue.string)),
        ]) { $1 })
    }

    // MARK: User channel (macOS)

    /// The user channel's keys: the device's identifiers and the user's.
    public var userIdentifiers: [String: PlistValue] {
        guard let user else { return identifiers }
        var ids = identifiers
        ids[enrollmentID == nil ? "UserID" : "EnrollmentUserID"] = .string(user.id)
        ids["UserShortName"] = .string(user.shortName)
        ids["UserLongName"] = .string(user.longName)
        return ids
    }

    public var userTokenUpdateMessage: [String: PlistValue] {
        userIdentifiers.merging([
            "MessageType": .string("TokenUpdate"), "Topic": .string(topic), "Token": .data(userPushToken),
            "PushMagic": .string(pushMagic + "-user"), "NotOnConsole": .bool(false),
        ]) { $1 }
    }

    /// The user's TokenUpdate (after the device's), with the user bearer when there is one.
    public func userTokenUpdate() async throws -> HTTPResult {
        try await userPut(checkInURL, userTokenUpdateMessage, contentType: "application/x-apple-aspen-mdm-checkin")
    }

    /// A pre-signed user-channel request, with the user bearer.
    public func sendOnUserChannel(_ presigned: Presigned, to url: String, contentType: String) async throws -> HTTPResult {
        var headers = [("Content-Type", contentType), ("User-Agent", "MDM/1.0"), ("Mdm-Signature", presigned.signature)]
        if let userBearer { headers.append(("Authorization", "Bearer \(userBearer)")) }
        return try await http(.PUT, url, headers: headers, body: presigned.body)
    }

    /// `Idle` on the user channel's command channel; the raw answer (a 401 challenge is for the caller to see).
    public func userIdle() async throws -> HTTPResult {
        try await userPut(serverURL, userIdentifiers.merging(["Status": .string("Idle")]) { $1 }, contentType: "application/x-apple-aspen-mdm")
    }

    private func userPut(_ url: String, _ message: [String: PlistValue], contentType: String) async throws -> HTTPResult {
        let body = Plist.xml(message)
        var headers = [("Content-Type", contentType), ("User-Agent", "MDM/1.0"),
                       ("Mdm-Signature", Data(try CMS.sign(body, identity: identity, detached: true)).base64EncodedString())]
        if let userBearer { headers.append(("Authorization", "Bearer \(userBearer)")) }
        return try await http(.PUT, url, headers: headers, body: body)
    }

    // MARK: Command channel

    /// Sends `Idle` and returns the command the server answered with (nil for an empty body).
    public func idle() async throws -> MDMCommand? {
        try await report(identifiers.merging(["Status": .string("Idle")]) { $1 })
    }

    /// Answers `command` with `status` (and extra keys such as `QueryResponses` or `ErrorChain`).
    public func respond(to command: MDMCommand, status: String, extra: [String: PlistValue] = [:]) async throws -> MDMCommand? {
        try await report(identifiers.merging(["Status": .string(status), "CommandUUID": .string(command.commandUUID)]) { $1 }
            .merging(extra) { $1 })
    }

    public func report(_ message: [String: PlistValue]) async throws -> MDMCommand? {
        let result = try await put(serverURL, body: Plist.xml(message), contentType: "application/x-apple-aspen-mdm", signer: identity)
        guard result.status == 200 else {
            throw NSError(domain: "device", code: result.status, userInfo: [NSLocalizedDescriptionKey: "command channel → \(result.status) \(result.text)"])
        }
        return result.body.isEmpty ? nil : try MDMCommand(plist: result.body)
    }

    /// What a device answers to DeviceInformation.
    public func informationAnswers(supervised: Bool) -> [String: PlistValue] {
        ["QueryResponses": .dictionary([
            "UDID": .string(udid), "SerialNumber": .string(serial), "OSVersion": .string(osVersion),
            "BuildVersion": .string("22B83"), "ProductName": .string(productName), "Model": .string(productName),
            "DeviceName": .string("\(platform) \(serial)"), "IsSupervised": .bool(supervised),
        ])]
    }

    /// A check-in built and signed ahead of time (load generators keep signing out of the measurement).
    public struct Presigned: Sendable {
        public let body: [UInt8]
        public let signature: String
    }

    public func presign(_ message: [String: PlistValue]) throws -> Presigned {
        let body = Plist.xml(message)
        return Presigned(body: body, signature: Data(try CMS.sign(body, identity: identity, detached: true)).base64EncodedString())
    }

    public func send(_ presigned: Presigned, to url: String, contentType: String) async throws -> HTTPResult {
        let headers = [("Content-Type", contentType), ("User-Agent", "MDM/1.0"), ("Mdm-Signature", presigned.signature)]
        return try await withBearer { bearer in
            try await http(.PUT, url, headers: headers + (bearer.map { [("Authorization", "Bearer \($0)")] } ?? []), body: presigned.body)
        }
    }

    public func put(_ url: String, body: [UInt8], contentType: String, signer: SigningIdentity?,
                    extraHeaders: [(String, String)] = []) async throws -> HTTPResult {
        var headers = [("Content-Type", contentType), ("User-Agent", "MDM/1.0")] + extraHeaders
        if let signer {
            headers.append(("Mdm-Signature", Data(try CMS.sign(body, identity: signer, detached: true)).base64EncodedString()))
        }
        return try await withBearer { bearer in
            try await http(.PUT, url, headers: headers + (bearer.map { [("Authorization", "Bearer \($0)")] } ?? []), body: body)
        }
    }

    /// The request with the current bearer; on a 401 with a challenge, signs in again and retries once (§5.7).
    private func withBearer(_ request: (String?) async throws -> HTTPResult) async throws -> HTTPResult {
        let first = try await request(bearer)
        guard first.status == 401, bearer != nil, let reauthenticate, let challenge = first.headers["www-authenticate"] else { return first }
        bearer = try await reauthenticate(challenge)
        reauthentications += 1
        return try await request(bearer)
    }
}
