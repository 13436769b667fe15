import OrchardCrypto
import Foundation

/// OAuth 1.0a request signing with HMAC-SHA1 (RFC 5849), as Apple's `/session` requires: consumer
/// (`consumer_key`, `consumer_secret`) and token (`access_token`, `access_secret`) from the server token.
enum OAuth1 {
    struct Credentials: Sendable {
        let consumerKey: String
        let consumerSecret: String
        let token: String
        let tokenSecret: String
    }

    /// The `Authorization` header for `method url` (query parameters are signed too).
    static func authorization(method: String, url: URL, credentials: Credentials, nonce: String, timestamp: Int) -> String {
        var oauth = [
            ("oauth_consumer_key", credentials.consumerKey), ("oauth_token", credentials.token),
            ("oauth_signature_method", "HMAC-SHA1"), ("oauth_timestamp", String(timestamp)),
            ("oauth_nonce", nonce), ("oauth_version", "1.0"),
        ]
        var parameters = oauth
        for item in URLComponents(url: url, resolvingAgainstBaseURL: false)?.queryItems ?? [] {
            parameters.append((item.name, item.value ?? ""))
        }
        // §3.4.1.3.2: encode, then sort by name and value.
        let encoded: [(String, String)] = parameters.map { (percentEncode($0.0), percentEncode($0.1)) }
        let sorted = encoded.sorted { (a: (String, String), b: (String, String)) -> Bool in a.0 == b.0 ? a.1 < b.1 : a.0 < b.0 }
        let normalized = sorted.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
        let base = [method.uppercased(), percentEncode(baseURI(url)), percentEncode(normalized)].joined(separator: "&")
        let key = Array("\(percentEncode(credentials.consumerSecret))&\(percentEncode(credentials.tokenSecret))".utf8)
        let signature = Data(Digest.hmacSHA1(key: key, data: Array(base.utf8))).base64EncodedString()
        oauth.append(("oauth_signature", signature))
        return "OAuth " + oauth.map { "\($0.0)=\"\(percentEncode($0.1))\"" }.joined(separator: ", ")
    }

    /// §3.4.1.2: scheme and host in lower case, the default port left out, no query.
    static func baseURI(_ url: URL) -> String {
        let scheme = (url.scheme ?? "https").lowercased()
        var host = (url.host ?? "").lowercased()
        if let port = url.port, !(scheme == "http" && port == 80) && !(scheme == "https" && port == 443) { host += ":\(port)" }
        let path = url.path.isEmpty ? "/" : url.path
        return "\(scheme)://\(host)\(path)"
    }

    /// §3.6: every byte but ALPHA, DIGIT, '-', '.', '_', '~' as %XX in upper case.
    static func percentEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(Character(UnicodeScalar(byte)))
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }
}
