import Foundation
import HTTPTypes
import Hummingbird
import OrchardCrypto
import OrchardStorage

/// Checks `Authorization: Bearer <key>` against the hashed keys in `api_keys` on every request: a key
/// revoked on any replica stops working at once (admin calls are few; one indexed lookup each).
struct AdminAuthentication: RouterMiddleware {
    typealias Context = GatewayContext
    let database: Database

    func handle(_ request: Request, context: GatewayContext,
                next: (Request, GatewayContext) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer "), header.count < 512 else {
            throw HTTPError(.unauthorized, headers: [.wwwAuthenticate: "Bearer"], message: "an API key is required (Authorization: Bearer <key>)")
        }
        let hash = Digest.sha256(Array(header.dropFirst(7).utf8)).hexString
        let key = try await AdminQueries.activeKey(database, hashHex: hash).map {
            AdminKey(id: $0.string("id") ?? "", name: $0.string("name") ?? "",
                     scopes: Set(($0.string("scopes") ?? "").split(separator: ",").map(String.init)))
        }
        guard let key else {
            throw HTTPError(.unauthorized, headers: [.wwwAuthenticate: "Bearer"], message: "unknown or revoked API key")
        }
        guard key.scopes.contains("admin") || (request.method == .get && key.scopes.contains("read")) else {
            throw refuse(.forbidden, "this API key may only read")
        }
        var context = context
        context.adminKey = key
        return try await next(request, context)
    }
}

enum APIKeys {
    /// Installs the key from ORCHARD_ADMIN_API_KEY as `bootstrap` with the admin scope.
    static func installBootstrap(_ key: String, database: Database) async throws {
        try await AdminQueries.installBootstrapKey(database, keyHash: Digest.sha256(Array(key.utf8)))
    }
}
