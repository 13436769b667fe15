import AppleProtocol
import Foundation
import OrchardCrypto
import OrchardTestSupport

/// The setup the sign-in attack benchmark and the fault load share: the test PKI, a push certificate, supervised
/// iPhones enrolled through single-use links, and watch enrollment turned on for them.
struct BenchFleet {
    let admin: AdminClient
    let ca: SigningIdentity
    let appleCA: SigningIdentity
    let profileCA: Certificate

    static func prepare(gateway: String, adminKey: String, pki: String) async throws -> BenchFleet {
        func read(_ name: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: "\(pki)/\(name)"))) }
        let admin = AdminClient(baseURL: gateway, key: adminKey)
        let ca = try SigningIdentity(certificate: try Certificate.parsePEM(try read("ca.pem"))[0], key: try PrivateKey(pem: try read("ca.key")))
        let appleCA = try SigningIdentity(certificate: try Certificate.parsePEM(try read("apple-ca.pem"))[0],
                                          key: try PrivateKey(pem: try read("apple-ca.key")))
        let pushID = UUID().uuidString.lowercased()
        let pushKey = try PrivateKey.generateP256()
        let pushCert = try Certificate.issue(subject: "/CN=APSP:\(pushID)/UID=com.apple.mgmt.External.\(pushID)", key: pushKey,
                                             issuer: (ca.certificate, ca.key), usage: .clientIdentity,
                                             validity: Date().addingTimeInterval(-60)...Date().addingTimeInterval(86400))
        _ = try await admin.expect(.PUT, "/push-certificate", json: [
            "certificate": String(decoding: try pushCert.pemRepresentation(), as: UTF8.self),
            "privateKey": String(decoding: try pushKey.pemRepresentation(), as: UTF8.self)])
        let signing = try await admin.expect(.GET, "/signing-identities")
        let profileCA = try Certificate.parsePEM(Array(((signing["certificates"] as? [[String: Any]])?
            .first { $0["role"] as? String == "device-ca" }?["pem"] as? String ?? "").utf8))[0]
        return BenchFleet(admin: admin, ca: ca, appleCA: appleCA, profileCA: profileCA)
    }

    /// `count` supervised iPhones, enrolled and answering their first commands, with watch enrollment on.
    func enrollPhones(_ count: Int, prefix: String) async throws -> [SimulatedDevice] {
        var phones: [SimulatedDevice] = []
        for i in 0..<count {
            let link = try await admin.expect(.POST, "/enrollment-links", json: ["name": "\(prefix) phone \(i)", "maxUses": 1])
            let profile = try await http(.GET, link["url"] as! String)
            let (phone, _) = try SimulatedDevice.installing(profile.body, roots: [profileCA], udid: "\(prefix)-PHONE-\(i)", serial: "BP\(i)")
            _ = try await phone.authenticate()
            _ = try await phone.tokenUpdate()
            while let c = try await phone.idle() {
                _ = try await phone.respond(to: c, status: "Acknowledged", extra: phone.informationAnswers(supervised: true))
            }
            phones.append(phone)
        }
        _ = try await admin.expect(.PUT, "/watch-enrollment", json: ["mode": "all-supervised"])
        for phone in phones { while let c = try await phone.idle() { _ = try await phone.respond(to: c, status: "Acknowledged") } }
        return phones
    }
}
