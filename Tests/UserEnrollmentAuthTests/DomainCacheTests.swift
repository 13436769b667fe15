import OrchardSchemas
import XCTest
@testable import UserEnrollmentAuth

final class DomainCacheTests: XCTestCase {
    private func record(_ domain: String) -> ManagedDomains.Record {
        ManagedDomains.Record(view: ManagedDomain(domain: domain, mode: "mdm-byod", directory: "none", ldap: nil, minimumOS: [:],
                                                  baseURL: "https://mdm.example.com", registeredWithABM: false, updatedAt: Date()),
                              ldap: nil, sealedBindPassword: nil)
    }

    func testKnownUnknownAndForgotten() {
        let cache = DomainCache()
        XCTAssertNil(cache.lookup("byod.example.com"), "never read: not known")
        cache.keep(record("byod.example.com"), for: "byod.example.com")
        XCTAssertEqual(cache.lookup("byod.example.com")??.view.mode, "mdm-byod")
        cache.keep(nil, for: "nowhere.example.com")
        XCTAssertNotNil(cache.lookup("nowhere.example.com"), "known not to exist")
        XCTAssertNil(cache.lookup("nowhere.example.com")!)
        cache.forget("byod.example.com")
        XCTAssertNil(cache.lookup("byod.example.com"), "a change on this replica is read again at once")
    }

    /// Made-up domains (discovery is unauthenticated) never make the cache larger than its capacity.
    func testAFloodOfDomainsIsBounded() {
        let cache = DomainCache()
        for i in 0..<(DomainCache.capacity * 3) { cache.keep(nil, for: "d\(i).example.com") }
        let kept = (0..<(DomainCache.capacity * 3)).filter { cache.lookup("d\($0).example.com") != nil }.count
        XCTAssertLessThanOrEqual(kept, DomainCache.capacity)
        XCTAssertGreaterThan(kept, 0)
    }
}
