import Foundation
import HTTPTypes
import OrchardCrypto
import OrchardServiceKit

/// checkin-gateway's own settings, on top of the common ones.
struct GatewayConfiguration: Sendable {
    /// The URL devices reach this gateway at (through the TLS terminator); ServerURL and CheckInURL derive from it.
    let publicURL: String
    let organization: String
    let secrets: SecretBox
    let bootstrapAdminKey: String?
    let apnsURL: String
    let apnsTrustRoots: [Certificate]
    /// A header in which the TLS terminator forwards the client certificate (URL-encoded PEM), when used.
    let clientCertificateHeader: String?
    /// Extra roots for device identities from an external SCEP or ACME CA.
    let extraDeviceRoots: [Certificate]
    let commandRetentionDays: Int
    /// How often the app rollout looks for installs to move along (it goes on at once while it finds work).
    let appRolloutIntervalMilliseconds: Int
    /// Roots that Apple devices' MachineInfo signatures chain to (Apple's, or a test CA).
    let appleDeviceRoots: [Certificate]
    /// How long an ADE device's setup items may take before it is released anyway (a NotNow must not hold it).
    let adeReleaseDeadline: Duration
    /// How long the gateway trusts user-enrollment-auth's answer about a bearer token (account-driven enrollment).
    let accountTokenCacheSeconds: Int
    /// The TLS terminator's header naming the client address (per-address limits of the ADE sign-in and refusals).
    let forwardedFor: HTTPField.Name?
    /// Failed ADE sign-ins of one account, and from one address, within 15 minutes that lock it for 15 minutes.
    let signInAccountFailures: Int
    let signInAddressFailures: Int
    /// `ORCHARD_LOCAL_TRIAL=1`: stand-ins for Apple's services are trusted (a stand-in Apple device CA, a stand-in APNs),
    /// as the local trial and the test stack run them; only with a loopback public URL.
    let localTrial: Bool

    /// What marks a stand-in's certificate (the local trial's and the tests' CAs say so in their subject).
    static let standInMark = "Orchard stand-in"

    var serverURL: String { "\(publicURL)/mdm/server" }
    var checkInURL: String { "\(publicURL)/mdm/checkin" }

    init(_ runtime: ServiceRuntime) throws {
        let env = runtime.configuration.environment
        var url = try env.string("ORCHARD_PUBLIC_URL", default: "http://127.0.0.1:\(runtime.configuration.httpPort)")
        while url.hasSuffix("/") { url.removeLast() }
        guard url.hasPrefix("https://") || url.hasPrefix("http://") else {
            throw ConfigurationError("ORCHARD_PUBLIC_URL must be an http(s) URL")
        }
        publicURL = url
        organization = try env.string("ORCHARD_ORGANIZATION", default: "Orchard")
        secrets = try SecretBox(key: try runtime.requireKeyEncryptionKey("encrypts unlock tokens and the push key with it"))
        bootstrapAdminKey = env.optional("ORCHARD_ADMIN_API_KEY")
        if let key = bootstrapAdminKey, key.count < 24 {
            throw ConfigurationError("ORCHARD_ADMIN_API_KEY must be at least 24 characters")
        }
        apnsURL = try env.string("ORCHARD_APNS_URL", default: "https://api.push.apple.com")
        apnsTrustRoots = try env.optional("ORCHARD_APNS_CA_PEM").map(Self.readPEM) ?? []
        clientCertificateHeader = env.optional("ORCHARD_CLIENT_CERT_HEADER")
        extraDeviceRoots = try env.optional("ORCHARD_DEVICE_IDENTITY_ROOTS").map(Self.readPEM) ?? []
        commandRetentionDays = try env.int("ORCHARD_COMMAND_RETENTION_DAYS", default: 30, range: 1...3650)
        appRolloutIntervalMilliseconds = try env.int("ORCHARD_APP_ROLLOUT_INTERVAL_MS", default: 1000, range: 100...60_000)
        appleDeviceRoots = try env.optional("ORCHARD_APPLE_DEVICE_ROOTS").map(Self.readPEM) ?? []
        adeReleaseDeadline = .seconds(try env.int("ORCHARD_ADE_RELEASE_DEADLINE_SECONDS", default: 900, range: 1...86400))
        accountTokenCacheSeconds = try env.int("ORCHARD_ACCOUNT_TOKEN_CACHE_SECONDS", default: 20, range: 0...30)
        forwardedFor = try env.forwardedForHeader()
        signInAccountFailures = try env.int("ORCHARD_SIGN_IN_ACCOUNT_FAILURES", default: 5, range: 1...1000)
        signInAddressFailures = try env.int("ORCHARD_SIGN_IN_ADDRESS_FAILURES", default: 20, range: 1...100_000)
        let trial = try env.string("ORCHARD_LOCAL_TRIAL", default: "0")
        guard trial == "0" || trial == "1" else { throw ConfigurationError("ORCHARD_LOCAL_TRIAL must be 0 or 1, not \(trial)") }
        localTrial = trial == "1"
        if localTrial {
            let host = URLComponents(string: url)?.host ?? ""
            guard host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.") else {
                throw ConfigurationError("ORCHARD_LOCAL_TRIAL=1 trusts stand-ins for Apple's services: only with a loopback ORCHARD_PUBLIC_URL, not \(url)")
            }
        }
        for (variable, roots) in [("ORCHARD_APPLE_DEVICE_ROOTS", appleDeviceRoots), ("ORCHARD_APNS_CA_PEM", apnsTrustRoots)] {
            if let standIn = roots.first(where: { $0.subject.contains(Self.standInMark) }), !localTrial {
                throw ConfigurationError("\(variable) holds a stand-in's certificate (\(standIn.subject)): it is trusted only in a local trial (ORCHARD_LOCAL_TRIAL=1)")
            }
        }
    }

    private static func readPEM(_ path: String) throws -> [Certificate] {
        try Certificate.parsePEM(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
    }
}
