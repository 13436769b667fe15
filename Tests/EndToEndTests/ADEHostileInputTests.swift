import AppleProtocol
import Foundation
import OrchardCrypto
import OrchardTestSupport
import XCTest

/// The ADE endpoints as an outsider reaches them, before any account exists: they parse what anyone sends.
/// Mutated and truncated signed MachineInfo, random bytes, a set-rooted and an expanding binary plist signed by
/// a genuine (test-)Apple device identity, oversized headers and bodies: every answer a 4xx, never a 5xx, and
/// the gateway keeps serving.
final class ADEHostileInputTests: XCTestCase {
    func testHostileMachineInfoGetsA4xxAndTheGatewayKeepsServing() async throws {
        let stack = try await Fixture.shared.prepare()
        let urls = ["\(stack.gateway)/mdm/ade/enroll", "\(stack.gateway)/mdm/ade/sign-in"]
        let device = try SimulatedADEDevice(udid: newUDID(), serial: "HOSTILE1", product: "iPhone17,1", osVersion: "18.2", appleCA: stack.appleCA)
        let valid = try device.signedMachineInfo()
        var random = SplitMix64(seed: 0xADE)
        var bodies: [[UInt8]] = [[], [0x30], Array(repeating: 0x30, count: 70_000)]
        for _ in 0..<150 {
            var mutated = valid
            for _ in 0..<(1 + Int(random.next() % 4)) {
                let i = Int(random.next() % UInt64(mutated.count))
                mutated[i] ^= UInt8(truncatingIfNeeded: random.next() | 1)
            }
            bodies.append(mutated)
        }
        for _ in 0..<30 { bodies.append(Array(valid.prefix(Int(random.next() % UInt64(valid.count))))) }
        for _ in 0..<30 { bodies.append((0..<Int(random.next() % 2048)).map { _ in UInt8(truncatingIfNeeded: random.next()) }) }
        // Genuinely signed by an Apple device identity, but not a MachineInfo an honest device sends.
        var bomb = BinaryPlistBuilder()
        var level = bomb.add(ascii: "x")
        for _ in 0..<20 { level = bomb.add(marker: 0xAF, refs: Array(repeating: level, count: 15)) }
        let key = bomb.add(ascii: "UDID")
        let root = bomb.add(marker: 0xD1, refs: [key, level])
        for plist in [HostilePlists.setRoot, bomb.document(top: root), Array("<plist><dict><key>UDID</key><string>../../x</string></dict></plist>".utf8),
                      Plist.xml(["UDID": .string("00008030-AAAA"), "SERIAL": .string(String(repeating: "S", count: 5000)),
                                 "PRODUCT": .string("iPhone17,1"), "VERSION": .string("22B83")])] {
            bodies.append(try CMS.sign(plist, identity: device.appleIdentity))
        }
        var statuses: [Int: Int] = [:]
        let started = Date()
        for (n, body) in bodies.enumerated() {
            // The sign-in form carries the signed MachineInfo in its deviceinfo field.
            let form = Array("username=a&password=b&deviceinfo=\(Data(body).base64EncodedString().addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")".utf8)
            let answer = n % 2 == 0
                ? try await http(.POST, urls[0], headers: [("Content-Type", "application/pkcs7-signature")], body: body)
                : try await http(.POST, urls[1], headers: [("Content-Type", "application/x-www-form-urlencoded")], body: form)
            statuses[answer.status, default: 0] += 1
            XCTAssertTrue((400..<500).contains(answer.status), "body \(n) (\(body.count) bytes) → \(answer.status) \(answer.text.prefix(200))")
        }
        for header in [String(repeating: "A", count: 200_000), "not base64 !!!", Data(valid.prefix(100)).base64EncodedString()] {
            let answer = try await http(.GET, urls[0], headers: [("x-apple-aspen-deviceinfo", header)])
            XCTAssertTrue((400..<500).contains(answer.status), "header → \(answer.status)")
        }
        print("ADE hostile inputs: \(bodies.count) bodies in \(String(format: "%.1f", Date().timeIntervalSince(started))) s, statuses \(statuses.sorted { $0.key < $1.key })")
        let health = try await http(.GET, "\(stack.gateway)/healthz")
        XCTAssertEqual(health.status, 200, "the gateway is still serving")
    }
}
