import AppleProtocol
import Foundation
import OrchardCrypto

/// What the simulated devices need to know about the stack they enroll with: where the gateway and
/// user-enrollment-auth answer, an admin key (the simulator also plays the administrator who creates links, assigns
/// devices in ABM and turns watch enrollment on), the Apple device CA whose identities sign MachineInfo (a stand-in:
/// only a local trial or a test stack trusts one), the ABM stand-in, and a directory account for account-driven
/// enrollment.
public struct SimulatorEnvironment: Sendable {
    public var gateway: String
    public var enrollmentAuth: String
    public var admin: AdminClient
    /// The stand-in for Apple's device CA (ADE and watch MachineInfo, account-driven requests).
    public var appleCA: SigningIdentity?
    /// The ABM stand-in (`Deploy/standins/abm_standin.py`) and the consumer key of a server token connected to it.
    public var abmStandIn: String?
    public var abmConsumerKey: String?
    /// Managed Apple Account domains and a user who can sign in to each (`user@domain`, password).
    public var byodUser: (account: String, password: String)?
    public var addeUser: (account: String, password: String)?
    /// With an account such as `bench{n}@byod.example.com`, `{n}` takes the values 0000, 0001, … up to `accounts - 1`
    /// in turn, so that each enrollment signs in as its own user, as a real roll-out does.
    public var accounts = 1
    /// The APNs stand-in's feed of pushes (`orchard-sim apns`), to wake devices as a push would.
    public var pushFeed: String?

    public init(gateway: String, enrollmentAuth: String, admin: AdminClient, appleCA: SigningIdentity? = nil, abmStandIn: String? = nil,
                abmConsumerKey: String? = nil, byodUser: (String, String)? = nil, addeUser: (String, String)? = nil, pushFeed: String? = nil) {
        self.gateway = gateway
        self.enrollmentAuth = enrollmentAuth
        self.admin = admin
        self.appleCA = appleCA
        self.abmStandIn = abmStandIn
        self.abmConsumerKey = abmConsumerKey
        self.byodUser = byodUser.map { (account: $0.0, password: $0.1) }
        self.addeUser = addeUser.map { (account: $0.0, password: $0.1) }
        self.pushFeed = pushFeed
    }

    /// profile-signer's device CA: enrollment profiles must verify against it, as a device checks a profile's signer.
    public func profileCA() async throws -> Certificate {
        let signing = try await admin.expect(.GET, "/signing-identities")
        let certificates = signing["certificates"] as? [[String: Any]] ?? []
        guard let pem = certificates.first(where: { $0["role"] as? String == "device-ca" })?["pem"] as? String,
              let ca = try Certificate.parsePEM(Array(pem.utf8)).first else {
            throw SimulatorError("the gateway names no device CA (is profile-signer up?)")
        }
        return ca
    }

    /// Reads the Apple CA stand-in from `<dir>/apple-ca.pem` and `<dir>/apple-ca.key`.
    public static func appleCA(directory: String) throws -> SigningIdentity {
        func read(_ name: String) throws -> [UInt8] {
            guard let data = FileManager.default.contents(atPath: "\(directory)/\(name)") else {
                throw SimulatorError("cannot read \(directory)/\(name) (the stand-in Apple device CA)")
            }
            return Array(data)
        }
        guard let certificate = try Certificate.parsePEM(try read("apple-ca.pem")).first else {
            throw SimulatorError("\(directory)/apple-ca.pem holds no certificate")
        }
        return try SigningIdentity(certificate: certificate, key: try PrivateKey(pem: try read("apple-ca.key")))
    }

    /// Reads the config file `./Deploy/run-local.sh` (and the flow benchmarks) write: the admin API's URL and key, each
    /// service's URL, and the local trial's stand-ins.
    public static func configFile(at path: String) throws -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: path) else { throw SimulatorError("cannot read \(path)") }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw SimulatorError("\(path) is not a JSON object")
        }
        return object
    }

    /// The environment a config file describes, nothing overridden.
    public static func fromConfigFile(_ path: String) throws -> SimulatorEnvironment {
        let file = try configFile(at: path)
        let trial = file["trial"] as? [String: Any] ?? [:], services = file["services"] as? [String: String] ?? [:]
        guard let gateway = file["url"] as? String, let key = file["apiKey"] as? String else {
            throw SimulatorError("\(path) names no url and apiKey")
        }
        func account(_ name: String) -> (String, String)? {
            guard let user = trial["\(name)User"] as? String, let password = trial["\(name)Password"] as? String else { return nil }
            return (user, password)
        }
        return SimulatorEnvironment(gateway: gateway, enrollmentAuth: services["user-enrollment-auth"] ?? gateway,
                                    admin: AdminClient(baseURL: gateway, key: key),
                                    appleCA: try (trial["appleCA"] as? String).map(appleCA(directory:)),
                                    abmStandIn: trial["abmStandIn"] as? String, abmConsumerKey: trial["abmConsumerKey"] as? String,
                                    byodUser: account("byod"), addeUser: account("adde"), pushFeed: trial["pushFeed"] as? String)
    }

    /// The account the `index`th account-driven enrollment signs in with.
    func account(_ user: (account: String, password: String), index: Int) -> (account: String, password: String) {
        guard user.account.contains("{n}") else { return user }
        return (user.account.replacingOccurrences(of: "{n}", with: String(format: "%04d", index % max(1, accounts))), user.password)
    }

    func requireAppleCA(_ flow: String) throws -> SigningIdentity {
        guard let appleCA else { throw SimulatorError("\(flow) needs the stand-in Apple device CA (--apple-ca DIR, or a local trial)") }
        return appleCA
    }
}

/// A simulation that cannot go on, in one line.
public struct SimulatorError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Prints a flow's steps as they happen (demo), or nothing (load).
public struct Narrator: Sendable {
    let enabled: Bool
    let prefix: String
    public init(enabled: Bool, prefix: String = "") {
        self.enabled = enabled
        self.prefix = prefix
    }
    public static let silent = Narrator(enabled: false)

    public func say(_ text: String) {
        guard enabled else { return }
        FileHandle.standardOutput.write(Data("\(prefix)\(text)\n".utf8))
    }
}
