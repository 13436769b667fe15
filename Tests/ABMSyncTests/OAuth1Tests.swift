@testable import ABMSync
import Foundation
import XCTest

final class OAuth1Tests: XCTestCase {
    /// RFC 5849's example request, signed by oauthlib (an implementation independent of ours) with
    /// oauth_version="1.0", which Apple's /session expects.
    func testSignatureMatchesAnIndependentImplementation() {
        let header = OAuth1.authorization(
            method: "GET", url: URL(string: "http://photos.example.net/photos?file=vacation.jpg&size=original")!,
            credentials: .init(consumerKey: "dpf43f3p2l4k3l03", consumerSecret: "kd94hf93k423kf44",
                               token: "nnch734d00sl2jdk", tokenSecret: "pfkkdhi9sl3r4s00"),
            nonce: "chapoH", timestamp: 137131202)
        XCTAssertTrue(header.hasPrefix("OAuth "), header)
        XCTAssertTrue(header.contains(#"oauth_signature="1IAE9RzK%2BDqSqVTdQ%2F0zWANXVzs%3D""#), header)
        XCTAssertTrue(header.contains(#"oauth_signature_method="HMAC-SHA1""#))
        XCTAssertTrue(header.contains(#"oauth_version="1.0""#))
    }

    func testPercentEncodingAndBaseURI() {
        XCTAssertEqual(OAuth1.percentEncode("a b+c/~é"), "a%20b%2Bc%2F~%C3%A9")
        XCTAssertEqual(OAuth1.baseURI(URL(string: "HTTPS://MDMEnrollment.Apple.com:443/session?x=1")!), "https://mdmenrollment.apple.com/session")
        XCTAssertEqual(OAuth1.baseURI(URL(string: "http://127.0.0.1:18444/session")!), "http://127.0.0.1:18444/session")
    }
}
