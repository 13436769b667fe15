import AppleProtocol
import Foundation
import Hummingbird
import OrchardCrypto
import Hummingbird
import OrchardStorage

/// Platform SSO in Setup Assistant (macOS 26, Apple's "Implementing Platform SSO during device enrollment"): an ADE
/// profile may require it. A Mac whose MachineInfo says `MDM_CAN_REQUEST_PSSO_CONFIG` is answered 403
/// `com.apple.psso.required` naming the SSO app's manifest, its profile and the authentication URL; it comes back with
/// `Authorization: Bearer <identity provider token>`, which user-enrollment-auth verifies against the OpenID Connect
/// provider of `domain` (a Managed Apple Account domain with `oidc`), and gets its profile. A Mac that cannot (older
/// macOS) follows `fallback`: `sign-in` (the profile's sign-in page, which the profile must use) or `refuse`.
struct ADEPlatformSSO: ResponseCodable, Sendable, Equatable {
    var profileURL: String
    var manifestURL: String
    var authURL: String
    /// DER certificates, base64, that pin the connection fetching `manifestURL`.
    var pinningCerts: [String]?
    var pinningRevocationCheckRequired: Bool?
    /// The Managed Apple Account domain whose OpenID Connect provider issues the tokens.
    var domain: String
    /// `sign-in` or `refuse`, for a Mac that cannot do Platform SSO during setup.
    var fallback: String

    static let fallbacks: Set<String> = ["sign-in", "refuse"]

    /// The settings an admin may save for a profile; the reason otherwise (400, nothing stored).
    func check(requiresSignIn: Bool) throws {
        for (name, url) in [("profileURL", profileURL), ("manifestURL", manifestURL), ("authURL", authURL)] {
            guard url.count <= 2048, let parts = URLComponents(string: url), parts.scheme == "https", parts.host?.isEmpty == false,
                  !url.containsControlCharacters else {
                throw refuse(.badRequest, "platform SSO needs \(name): the https URL of \(Self.what[name] ?? name)")
            }
        }
        guard Self.fallbacks.contains(fallback) else {
            throw refuse(.badRequest, "fallback must be sign-in or refuse (what a Mac that cannot do Platform SSO during setup gets)")
        }
        if fallback == "sign-in" && !requiresSignIn {
            throw refuse(.badRequest, "fallback sign-in needs a profile that uses Orchard's sign-in page (defined with signIn: true)")
        }
        guard (pinningCerts ?? []).count <= 10 else { throw refuse(.badRequest, "at most 10 pinningCerts") }
        for cert in pinningCerts ?? [] {
            guard let der = Data(base64Encoded: cert), (try? Certificate(der: Array(der))) != nil else {
                throw refuse(.badRequest, "pinningCerts must be DER certificates in base64")
            }
        }
    }

    static let what = ["profileURL": "the profile with the SSO extension's com.apple.extensiblesso payload",
                       "manifestURL": "the SSO app's package manifest", "authURL": "the identity provider's authentication start"]

    var required: PlatformSSORequired {
        PlatformSSORequired(profileURL: profileURL, manifestURL: manifestURL, authURL: authURL,
                            pinningCerts: (pinningCerts ?? []).compactMap { Data(base64Encoded: $0).map(Array.init) },
                            pinningRevocationCheckRequired: pinningRevocationCheckRequired,
                            message: "Sign in with your organisation's account to set up this Mac.")
    }
}
