import OrchardMessaging
import OrchardServiceKit

// abm-sync: mirrors Apple Business Manager device assignments and ADE profiles.
let runtime = await ServiceRuntime.bootstrap(ServiceDefinition(
    name: "abm-sync", defaultPort: 8083, schema: "abm_sync", migrations: ABMSyncMigrations.all))

await runtime.run(router: runtime.makeRouter(), services: [])
