import OrchardMessaging
import OrchardServiceKit

// user-enrollment-auth: account-driven User Enrollment: discovery, sign-in, access tokens.
let runtime = await ServiceRuntime.bootstrap(ServiceDefinition(
    name: "user-enrollment-auth", defaultPort: 8084, schema: "user_enrollment_auth", migrations: UserEnrollmentAuthMigrations.all))

await runtime.run(router: runtime.makeRouter(), services: [])
