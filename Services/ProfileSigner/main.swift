import OrchardMessaging
import OrchardServiceKit

// profile-signer: builds and CMS-signs enrollment profiles on request.
let runtime = await ServiceRuntime.bootstrap(ServiceDefinition(
    name: "profile-signer", defaultPort: 8082, schema: "profile_signer", migrations: ProfileSignerMigrations.all))

await runtime.run(router: runtime.makeRouter(), services: [])
