import AppleProtocol

/// The handler of each check-in message type (`PUT` CheckInURL). The pipeline knows them only by the
/// message they take; the handlers themselves live in `Checkin/`, one file each.
struct CheckinHandlers: Sendable {
    let authenticate: any DeviceMessageHandler<Authenticate>
    let tokenUpdate: any DeviceMessageHandler<TokenUpdate>
    let checkOut: any DeviceMessageHandler<CheckOut>
    let setBootstrapToken: any DeviceMessageHandler<SetBootstrapToken>
    let getBootstrapToken: any DeviceMessageHandler<GetBootstrapToken>
    let declarativeManagement: any DeviceMessageHandler<DeclarativeManagementCheckin>
    let getToken: any DeviceMessageHandler<GetToken>
    let userAuthenticate: any DeviceMessageHandler<UserAuthenticate>
    let returnToService: any DeviceMessageHandler<ReturnToServiceCheckin>
    /// The user channel (macOS): its TokenUpdate keeps the user's push credentials apart from the device's.
    let userTokenUpdate: any DeviceMessageHandler<TokenUpdate>
}

