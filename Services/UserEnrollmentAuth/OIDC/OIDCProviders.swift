import AsyncHTTPClient
import Foundation
import OrchardCrypto
import NIOConcurrencyHelpers
import NIOCore
import OrchardCore
import OrchardSchemas

/// External OpenID Connect providers of domains that sign their users in elsewhere (item 6): the discovery document
/// (`<issuer>/.well-known/openid-configuration`: the endpoints the challenge names, and `jwks_uri`) and the signing keys,
/// cached; and validation of the JWT access tokens they issue: signature (RS256 or ES256, by `kid`), `iss`, `aud`,
/// `exp`/`nbf` (60 s of leeway), and the user claim, which must be an account of the domain.
final class OIDCProviders: Sendable {
    struct Metadata: Sendable {
        let authorizationEndpoint: String
        let tokenEndpoint: String
        let jwksURI: String
    }

    struct Claims: Sendable {
        let user: String
        let expiresAt: Date
        let issuedAt: Date?
    }

    private let metadata = NIOLockedValueBox<[String: (Metadata, Date)]>([:])
    private let keys = NIOLockedValueBox<[String: (keys: [String: [String: String]], fetchedAt: Date)]>([:])
    static let cacheLifetime: TimeInterval = 600
    static let leeway: TimeInterval = 60

    /// An https URL with a host and no user name, or http to a loopback address (a stand-in on this machine): what an
    /// issuer, its endpoints and its key set may be. `http://127.0.0.1:@evil.example` is evil.example's, not loopback.
    static func isSecure(_ text: String) -> Bool {
        guard let url = URLComponents(string: text), url.user == nil, url.password == nil,
              let host = url.host?.lowercased(), !host.isEmpty else { return false }
        switch url.scheme?.lowercased() {
        case "https": return true
        case "http":
            let v4 = host.split(separator: ".", omittingEmptySubsequences: false)
            let loopbackV4 = v4.count == 4 && v4[0] == "127" && v4.allSatisfy { UInt8($0) != nil }
            return loopbackV4 || host == "localhost" || host == "[::1]" || host == "::1"
        default: return false
        }
    }

    func metadata(issuer: String) async throws -> Metadata {
        if let (cached, at) = metadata.withLockedValue({ $0[issuer] }), Date().timeIntervalSince(at) < Self.cacheLifetime { return cached }
        let document = try await fetchJSON("\(issuer)/.well-known/openid-configuration")
        guard document["issuer"] as? String == issuer, let authorization = document["authorization_endpoint"] as? String,
              let token = document["token_endpoint"] as? String, let jwks = document["jwks_uri"] as? String else {
            throw OIDCError("the discovery document of \(issuer) lacks issuer, endpoints or jwks_uri, or names another issuer")
        }
        guard [authorization, token, jwks].allSatisfy({ $0.count <= 2048 && Self.isSecure($0) }) else {
            throw OIDCError("the discovery document of \(issuer) names an endpoint that is not https (http only for a loopback address)")
        }
        let made = Metadata(authorizationEndpoint: authorization, tokenEndpoint: token, jwksURI: jwks)
        metadata.withLockedValue { $0[issuer] = (made, Date()) }
        return made
    }

    /// The JWK with `kid`; the key set is fetched again for an unknown kid (a rotation), at most every 30 s.
    private func key(_ kid: String, jwksURI: String) async throws -> [String: String]? {
        let cached = keys.withLockedValue { $0[jwksURI] }
        if let cached, let key = cached.keys[kid], Date().timeIntervalSince(cached.fetchedAt) < Self.cacheLifetime { return key }
        if let cached, Date().timeIntervalSince(cached.fetchedAt) < 30 { return cached.keys[kid] }
        let document = try await fetchJSON(jwksURI)
        var set: [String: [String: String]] = [:]
        for entry in document["keys"] as? [[String: Any]] ?? [] {
            guard let id = entry["kid"] as? String else { continue }
            set[id] = entry.compactMapValues { $0 as? String }
        }
        keys.withLockedValue { $0[jwksURI] = (set, Date()) }
        return set[kid]
    }

    /// The token's claims when it is valid for `settings` and `domain`; otherwise why not.
    func validate(_ jwt: String, settings: OIDCProviderSettings, domain: String) async throws -> Result<Claims, OIDCError> {
        let parts = jwt.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerData = Self.base64URLDecode(parts[0]), let payloadData = Self.base64URLDecode(parts[1]),
              let signature = Self.base64URLDecode(parts[2]),
              let header = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any],
              let payload = try? JSONSerialization.jsonObject(with: payloadData) as? [String: Any] else {
            return .failure(OIDCError("not a JWT"))
        }
        guard let alg = header["alg"] as? String, alg == "RS256" || alg == "ES256" else { return .failure(OIDCError("algorithm not RS256 or ES256")) }
        guard let kid = header["kid"] as? String else { return .failure(OIDCError("no kid")) }
        guard payload["iss"] as? String == settings.issuer else { return .failure(OIDCError("issuer is not \(settings.issuer)")) }
        let audience = settings.audience ?? settings.clientID
        let audiences = (payload["aud"] as? [String]) ?? [(payload["aud"] as? String)].compactMap { $0 }
        guard audiences.contains(audience) else { return .failure(OIDCError("audience is not \(audience)")) }
        let now = Date().timeIntervalSince1970
        guard let exp = (payload["exp"] as? NSNumber)?.doubleValue, exp > now - Self.leeway else { return .failure(OIDCError("expired")) }
        if let nbf = (payload["nbf"] as? NSNumber)?.doubleValue, nbf > now + Self.leeway { return .failure(OIDCError("not valid yet")) }
        let claim = settings.userClaim ?? "email"
        guard let user = (payload[claim] as? String)?.lowercased(), user.hasSuffix("@\(domain)") else {
            return .failure(OIDCError("claim \(claim) is not an account of \(domain)"))
        }
        let metadata = try await metadata(issuer: settings.issuer)
        guard let jwk = try await key(kid, jwksURI: metadata.jwksURI) else { return .failure(OIDCError("unknown key \(kid.prefix(64))")) }
        let signingInput = Data("\(parts[0]).\(parts[1])".utf8)
        guard Self.verify(alg: alg, jwk: jwk, signature: signature, signingInput: signingInput) else {
            return .failure(OIDCError("signature does not verify"))
        }
        return .success(Claims(user: user, expiresAt: Date(timeIntervalSince1970: exp),
                               issuedAt: (payload["iat"] as? NSNumber).map { Date(timeIntervalSince1970: $0.doubleValue) }))
    }

    static func verify(alg: String, jwk: [String: String], signature: Data, signingInput: Data) -> Bool {
        switch alg {
        case "RS256":
            // 2048 bits at least, as swift-crypto required before.
            guard jwk["kty"] == "RSA", let n = jwk["n"].flatMap(base64URLDecode), let e = jwk["e"].flatMap(base64URLDecode),
                  n.drop(while: { $0 == 0 }).count >= 256, let key = try? PublicKey(rsaModulus: Array(n), exponent: Array(e)) else { return false }
            return key.isValidJWSSignature(Array(signature), for: Array(signingInput), ecdsa: false)
        case "ES256":
            guard jwk["kty"] == "EC", jwk["crv"] == "P-256", let x = jwk["x"].flatMap(base64URLDecode), let y = jwk["y"].flatMap(base64URLDecode),
                  let key = try? PublicKey(p256X: Array(x), y: Array(y)) else { return false }
            return key.isValidJWSSignature(Array(signature), for: Array(signingInput), ecdsa: true)
        default:
            return false
        }
    }

    static func base64URLDecode<S: StringProtocol>(_ text: S) -> Data? { fromBase64URL(text).map { Data($0) } }

    private func fetchJSON(_ url: String) async throws -> [String: Any] {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Accept", value: "application/json")
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
        guard response.status == .ok else { throw OIDCError("\(url) answered \(response.status.code)") }
        let body = try await response.body.collect(upTo: 1 << 20)
        guard let object = try JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any] else {
            throw OIDCError("\(url) did not answer a JSON object")
        }
        return object
    }
}

struct OIDCError: Error, CustomStringConvertible, Sendable {
    let description: String
    init(_ description: String) { self.description = description }
}
