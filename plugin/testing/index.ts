/**
 * `fastify-boardinghouse/testing`: helpers for testing an app built on fastify-boardinghouse, with
 * any test runner (node:test, Vitest, Jest: it imports none of them).
 *
 *   const kit = await installTestKit(app)                       // in the test setup only
 *   const { schema } = await kit.schema({ t, members: [42] })   // fresh, dropped when t ends
 *   await app.inject({ url: '/items', headers: kit.headers({ userId: 42, schema }) })
 *   await checkIsolation({ app, kit, routes: ['/items'], seed: async (schema, marker) => { … } })
 *   await kit.cleanup()
 */
export { createSchemaFixture } from './fixture.js'
export type { SchemaFixture, SchemaFixtureOptions, TestLike, TestSchema, TestSchemaOptions } from './fixture.js'
export { TEST_IDENTITY_HEADER, installTestKit } from './identity.js'
export type { TestIdentity, TestKit, TestKitOptions, VerifiedIdentity } from './identity.js'
export { IsolationError, checkIsolation } from './isolation.js'
export type { IsolationCallContext, IsolationCheckOptions, IsolationProblem, IsolationReport, IsolationRoute, IsolationUsers } from './isolation.js'
