import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// user-enrollment-auth's request context: the client's address, for rate limiting sign-ins per address.
struct AccountRequestContext: RequestContext, RemoteAddressRequestContext {
    var coreContext: CoreRequestContextStorage
    let remoteAddress: SocketAddress?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}
