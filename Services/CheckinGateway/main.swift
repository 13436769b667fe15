import OrchardMessaging
import OrchardServiceKit

// checkin-gateway: the device-facing MDM endpoints (check-in, command channel, enrollment URLs).
let runtime = await ServiceRuntime.bootstrap(ServiceDefinition(
    name: "checkin-gateway", defaultPort: 8080, schema: "checkin_gateway", migrations: CheckinGatewayMigrations.all), needsRequests: true)

await runtime.run(router: runtime.makeRouter(), services: [])
