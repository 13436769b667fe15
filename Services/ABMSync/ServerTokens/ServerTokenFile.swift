import Foundation
import OrchardCore

/// The `.p7m` server token ABM hands out: an S/MIME message (MIME headers, a blank line, base64 of a CMS
/// EnvelopedData). Decrypted, it is again MIME headers followed by the credentials' JSON between
/// `-----BEGIN MESSAGE-----` and `-----END MESSAGE-----` (REFERENCE §4.1).
enum ServerTokenFile {
    struct Malformed: Error { let reason: String }

    /// The OAuth 1.0a credentials inside.
    struct Credentials: Codable, Equatable {
        let consumerKey: String
        let consumerSecret: String
        let accessToken: String
        let accessSecret: String
        let accessTokenExpiry: Date

        enum CodingKeys: String, CodingKey {
            case consumerKey = "consumer_key", consumerSecret = "consumer_secret", accessToken = "access_token"
            case accessSecret = "access_secret", accessTokenExpiry = "access_token_expiry"
        }
    }

    static let maximumSize = 64 * 1024

    /// The DER EnvelopedData of an S/MIME file (headers optional: a bare base64 or DER body is accepted too).
    static func envelope(from file: [UInt8]) throws -> [UInt8] {
        guard !file.isEmpty, file.count <= maximumSize else { throw Malformed(reason: "empty or larger than 64 KiB") }
        if file.first == 0x30 { return file }  // DER already
        guard let text = String(bytes: file, encoding: .utf8) else { throw Malformed(reason: "neither S/MIME text nor DER") }
        let body = afterHeaders(text) ?? text[...]
        let base64 = body.filter { !$0.isWhitespace }
        guard !base64.isEmpty, let der = Data(base64Encoded: base64) else { throw Malformed(reason: "the body is not base64") }
        return Array(der)
    }

    /// The credentials in the decrypted content.
    static func credentials(from content: [UInt8]) throws -> Credentials {
        guard let text = String(bytes: content, encoding: .utf8),
              let begin = text.range(of: "-----BEGIN MESSAGE-----"),
              let end = text.range(of: "-----END MESSAGE-----", range: begin.upperBound..<text.endIndex) else {
            throw Malformed(reason: "no -----BEGIN MESSAGE----- block inside")
        }
        let json = Data(text[begin.upperBound..<end.lowerBound].utf8)
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let value = try decoder.singleValueContainer().decode(String.self)
            guard let date = ISO8601.date(from: value) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unreadable date \(value)"))
            }
            return date
        }
        do {
            let credentials = try decoder.decode(Credentials.self, from: json)
            for (name, value) in [("consumer_key", credentials.consumerKey), ("consumer_secret", credentials.consumerSecret),
                                  ("access_token", credentials.accessToken), ("access_secret", credentials.accessSecret)]
            where value.isEmpty || value.count > 512 {
                throw Malformed(reason: "\(name) is empty or longer than 512 characters")
            }
            return credentials
        } catch let malformed as Malformed {
            throw malformed
        } catch {
            throw Malformed(reason: "the message is not the server token JSON (consumer_key, consumer_secret, access_token, access_secret, access_token_expiry)")
        }
    }

    private static func afterHeaders(_ text: String) -> Substring? {
        for separator in ["\r\n\r\n", "\n\n"] {
            if let range = text.range(of: separator) { return text[range.upperBound...] }
        }
        return nil
    }
}
