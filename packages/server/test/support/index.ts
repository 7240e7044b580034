/**
 * `@taskflow/server/test-support`: a Taskflow node for a test, in the test's own process, and a
 * proxy to put in front of one. For this repository's tests (the server's, the SDK's, the
 * end-to-end ones in test/); not an API for users and not a stable one.
 */
export { startTestService, type TestService } from './service.ts';
export { startProxy, type ProxiedRequest, type ProxyHooks, type RequestAction, type ServiceAnswer, type TestProxy } from './proxy.ts';
