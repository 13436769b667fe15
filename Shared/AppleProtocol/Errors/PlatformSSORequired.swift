import Foundation

/// `ErrorCodePlatformSSORequired` (macOS 26): the 403 body that tells a Mac in Setup Assistant to install the SSO app
/// (`Package.ManifestURL`) and its `com.apple.extensiblesso` profile (`ProfileURL`), then authenticate at `AuthURL`;
/// it then asks for its profile again with `Authorization: Bearer <the identity provider's token>`.
public struct PlatformSSORequired: Sendable, Equatable {
    public var profileURL: String
    public var manifestURL: String
    public var authURL: String
    /// DER certificates that pin the connection fetching `manifestURL`.
    public var pinningCerts: [[UInt8]] = []
    public var pinningRevocationCheckRequired: Bool?
    public var message: String?

    public init(profileURL: String, manifestURL: String, authURL: String, pinningCerts: [[UInt8]] = [],
                pinningRevocationCheckRequired: Bool? = nil, message: String? = nil) {
        self.profileURL = profileURL
        self.manifestURL = manifestURL
        self.authURL = authURL
        self.pinningCerts = pinningCerts
        self.pinningRevocationCheckRequired = pinningRevocationCheckRequired
        self.message = message
    }

    public static let code = "com.apple.psso.required"

    /// The JSON body (`application/json`).
    public var json: [UInt8] {
        var package: [String: Any] = ["ManifestURL": manifestURL]
        if !pinningCerts.isEmpty { package["PinningCerts"] = pinningCerts.map { Data($0).base64EncodedString() } }
        if let pinningRevocationCheckRequired { package["PinningRevocationCheckRequired"] = pinningRevocationCheckRequired }
        var object: [String: Any] = [
            "code": Self.code, "description": "Platform SSO is required before this Mac enrolls",
            "details": ["ProfileURL": profileURL, "Package": package, "AuthURL": authURL],
        ]
        if let message { object["message"] = message }
        return Array(try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
    }
}
