/// The `WWW-Authenticate` challenge of a domain's `401` (REFERENCE §5.3), in Apple's comma form: the simple web flow
/// sends the device to the sign-in page; OAuth 2 names Orchard's authorization and token endpoints, the redirect the
/// device listens for, the client id and the scope.
struct AccountChallenges: Sendable {
    /// user-enrollment-auth's public URL.
    let ownURL: String
    let clientID: String
    let oidc: OIDCProviders

    static let redirectURI = "apple-remotemanagement-user-login:/oauth2/redirection"
    static let scope = "enroll"
    /// The paths the challenges name (SignInRoutes and OAuth2Routes serve them).
    static let signInPath = "account/sign-in"
    static let authorizePath = "account/oauth2/authorize"
    static let tokenPath = "account/oauth2/token"

    var signInURL: String { "\(ownURL)/\(Self.signInPath)" }
    var authorizationURL: String { "\(ownURL)/\(Self.authorizePath)" }
    var tokenURL: String { "\(ownURL)/\(Self.tokenPath)" }

    /// The domain's challenge; an external provider's endpoints come from its discovery document (cached).
    func challenge(for record: ManagedDomains.Record) async throws -> String {
        if let provider = record.view.oidc {
            let metadata = try await oidc.metadata(issuer: provider.issuer)
            return #"Bearer method="apple-oauth2", authorization-url="\#(metadata.authorizationEndpoint)", "#
                + #"token-url="\#(metadata.tokenEndpoint)", redirect-url="\#(Self.redirectURI)", "#
                + #"client-id="\#(provider.clientID)", scope="\#(provider.scope ?? "openid email")""#
        }
        return challenge(authentication: record.view.authentication ?? "apple-as-web")
    }

    func challenge(authentication: String) -> String {
        if authentication == "apple-oauth2" {
            return #"Bearer method="apple-oauth2", authorization-url="\#(authorizationURL)", token-url="\#(tokenURL)", "#
                + #"redirect-url="\#(Self.redirectURI)", client-id="\#(clientID)", scope="\#(Self.scope)""#
        }
        return #"Bearer method="apple-as-web", url="\#(signInURL)""#
    }
}
