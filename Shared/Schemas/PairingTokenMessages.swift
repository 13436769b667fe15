import Foundation
import OrchardMessaging

/// The iPhone's GetToken (`com.apple.watch.pairing`): exchange the watch's security token for a pairing
/// token bound to both devices. The gateway has already checked that the phone may pair.
public struct IssuePairingToken: RequestSchema, Equatable {
    public static let topic = "orchard.token-requests.v1"
    public static let type = "pairing-token.issue"
    public static let version = 1

    public var securityToken: String
    public var phoneUDID: String
    public var watchUDID: String
    public var organization: String

    public var key: String { watchUDID }

    public init(securityToken: String, phoneUDID: String, watchUDID: String, organization: String) {
        self.securityToken = securityToken
        self.phoneUDID = phoneUDID
        self.watchUDID = watchUDID
        self.organization = organization
    }

    public struct Reply: Codable, Sendable, Equatable {
        /// The bytes the phone returns as `TokenData`.
        public var pairingToken: String
        public var expiresAt: Date
        public init(pairingToken: String, expiresAt: Date) {
            self.pairingToken = pairingToken
            self.expiresAt = expiresAt
        }
    }
}

/// The watch's second enrollment request carried `PAIRING_TOKEN`: verify and spend it.
public struct RedeemPairingToken: RequestSchema, Equatable {
    public static let topic = "orchard.token-requests.v1"
    public static let type = "pairing-token.redeem"
    public static let version = 1

    public var pairingToken: String
    /// The UDID from the watch's verified MachineInfo.
    public var watchUDID: String
    public var organization: String

    public var key: String { watchUDID }

    public init(pairingToken: String, watchUDID: String, organization: String) {
        self.pairingToken = pairingToken
        self.watchUDID = watchUDID
        self.organization = organization
    }

    public struct Reply: Codable, Sendable, Equatable {
        public var phoneUDID: String
        /// The token's single-use id: the gateway spends it when it records the profile it delivered, so a
        /// watch whose profile request failed can present the same token again.
        public var tokenID: String?
        /// When the token expires (the gateway keeps the spent id until then).
        public var expiresAt: Date?

        public init(phoneUDID: String, tokenID: String? = nil, expiresAt: Date? = nil) {
            self.phoneUDID = phoneUDID
            self.tokenID = tokenID
            self.expiresAt = expiresAt
        }
    }
}
