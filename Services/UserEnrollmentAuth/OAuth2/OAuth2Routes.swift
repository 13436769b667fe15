import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import OrchardCore
import OrchardServiceKit

/// The OAuth 2 flow of account-driven enrollment (`method="apple-oauth2"`, REFERENCE §5.3–5.4), Orchard as the
/// authorization server: the authorization endpoint is the sign-in page (the device opens it with `response_type=code`,
/// `client_id`, `redirect_uri`, `state`, `login_hint`, and PKCE when it sends one); success ends with `308` to the
/// redirect with `code` and `state`. The token endpoint exchanges the code (bound to `client_id`, `redirect_uri` and
/// the PKCE verifier) for `{"token_type":"Bearer","access_token","expires_in","refresh_token","scope"}`, and rotates
/// refresh tokens.
struct OAuth2Routes: Sendable {
    let signIn: SignInRoutes
    let grants: OAuthGrants
    let challenges: AccountChallenges

    static let authorizePath = AccountChallenges.authorizePath
    static let tokenPath = AccountChallenges.tokenPath

    func add(to router: Router<AccountRequestContext>) {
        router.get(RouterPath(stringLiteral: Self.authorizePath)) { request, _ -> Response in
            var params: [String: String] = [:]
            for (name, value) in request.uri.queryParameters where params[String(name)] == nil { params[String(name)] = String(value) }
            switch OAuthRequest.parse(params, challenges: challenges, requireResponseType: true) {
            case .failure(let e):
                return try signIn.errorPage("This sign-in request is not valid (\(e.description)). Start the enrollment again.")
            case .success(let oauth):
                let user = SignInRoutes.clean(params["login_hint"] ?? "") ?? ""
                return try signIn.page(user: user, oauth: oauth, boundTo: user.isEmpty ? nil : user)
            }
        }
        router.post(RouterPath(stringLiteral: Self.tokenPath)) { request, context -> Response in
            let form = FormEncoding.parse(try await request.bodyBytes(limit: 16 * 1024))
            let result: Result<OAuthGrants.TokenResponse, OAuthError>
            switch form["grant_type"] {
            case "authorization_code": result = try await grants.exchange(form, correlationID: context.correlationID)
            case "refresh_token": result = try await grants.refresh(form, correlationID: context.correlationID)
            default: result = .failure(.init("unsupported_grant_type", "grant_type must be authorization_code or refresh_token"))
            }
            switch result {
            case .success(let response): return json(response, status: .ok)
            case .failure(let error): return json(["error": error.code, "error_description": error.description], status: .badRequest)
            }
        }
    }

    private func json<T: Encodable>(_ value: T, status: HTTPResponse.Status) -> Response {
        jsonResponse(status, encoding: value, noStore: true)
    }
}
