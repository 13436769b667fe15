import Foundation
import OrchardCrypto
import XCTest

/// Replays the Mdm-Signature fuzzing corpus (Fuzz/corpus/cms, grown by `Deploy/fuzz.sh N cms`) through
/// both verification paths the gateway uses: each input verifies or throws, and none verifies against a
/// body it was not made for.
final class CMSFuzzCorpusTests: XCTestCase {
    func testEveryCorpusInputVerifiesOrIsRefused() throws {
        let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Fuzz/corpus/cms").standardizedFileURL
        let files = try FileManager.default.contentsOfDirectory(at: corpus, includingPropertiesForKeys: nil)
        XCTAssertGreaterThanOrEqual(files.count, 5, "the seed corpus is committed")
        let body = Array(#"<?xml version="1.0"?><plist><dict/></plist>"#.utf8)
        let cache = CertificateCache()
        var verified = 0
        for file in files {
            let input = Array(try Data(contentsOf: file))
            if (try? CMS.verifySignature(input, detachedContent: body, cache: cache)) != nil { verified += 1 }
            _ = try? CMS.verify(input, detachedContent: body, roots: [])
            XCTAssertNil(try? CMS.verifySignature(input, detachedContent: body + [0x20], cache: cache), file.lastPathComponent)
        }
        XCTAssertGreaterThanOrEqual(verified, 3, "the seeds signed by openssl over this body verify")
    }
}
