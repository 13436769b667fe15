import Foundation
import OrchardMessaging

/// Asks token-service for a security token for a watch that asked to enroll without a pairing token
/// (the first step of Apple Watch enrollment). The reply carries the token the gateway puts in its 403.
public struct IssueSecurityToken: RequestSchema, Equatable {
    public static let topic = "orchard.token-requests.v1"
    public static let type = "security-token.issue"
    public static let version = 1

    public var watchUDID: String
    public var watchSerialNumber: String?

    public var key: String { watchUDID }

    public init(watchUDID: String, watchSerialNumber: String? = nil) {
        self.watchUDID = watchUDID
        self.watchSerialNumber = watchSerialNumber
    }

    public struct Reply: Codable, Sendable, Equatable {
        /// A random UUID string, as Apple's error document expects.
        public var securityToken: String
        public var expiresAt: Date

        public init(securityToken: String, expiresAt: Date) {
            self.securityToken = securityToken
            self.expiresAt = expiresAt
        }
    }
}
