import ArgumentParser
import Foundation
import Hummingbird
import NIOCore
import OrchardSimulator

struct APNs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apns",
        abstract: "A stand-in for Apple's push service, for a local trial: it takes the gateway's pushes and tells simulated devices.",
        discussion: """
            HTTP/2 over TLS on --port (a client certificate from --client-ca required, as APNs requires the MDM push
            certificate); every push answered 200. GET /pushes?after=N on --feed-port (plain HTTP, loopback) lists the
            pushes after the first N, for `orchard-sim fleet` to wake the devices. Never for production: the gateway
            only talks to it when ORCHARD_APNS_URL points here. Example:
              orchard-sim apns --port 2197 --cert apns.pem --key apns.key --client-ca ca.pem --feed-port 8091
            """)
    @Option(help: "TLS port of the push endpoint.") var port = 2197
    @Option(help: "The stand-in's TLS certificate (PEM).") var cert: String
    @Option(help: "Its key (PEM).") var key: String
    @Option(help: "The CA push certificates must chain to (PEM).") var clientCA: String
    @Option(help: "Port of the feed of pushes (loopback).") var feedPort = 8091

    func run() async throws {
        let standIn = APNsStandIn()
        do {
            try standIn.start(port: port, certificatePEM: cert, keyPEM: key, clientCAPEM: clientCA)
        } catch {
            throw SimulatorError("the APNs stand-in cannot start: \(error)")
        }
        let router = Router()
        router.get("pushes") { request, _ -> Response in
            let after = Int(request.uri.queryParameters["after"].map(String.init) ?? "") ?? 0
            let (count, pushes) = standIn.pushes(after: after)
            let body = try JSONSerialization.data(withJSONObject: [
                "count": count, "pushes": pushes.map { ["token": $0.token, "topic": $0.topic ?? ""] }])
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
        router.get("healthz") { _, _ in "ok" }
        print("APNs stand-in (local trial only): pushes on https://127.0.0.1:\(port), its feed on http://127.0.0.1:\(feedPort)/pushes")
        try await Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: feedPort))).runService()
    }
}
