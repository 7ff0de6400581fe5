/**
 * Types for undici's `Agent` module, imported on its own (shared/ecourtdate/connection.ts) so that the sender's
 * bundle carries the connection pool but not the rest of the package (fetch, WebSocket, cache, mocks). The module
 * is CommonJS and exports the class itself, the same class as `import { Agent } from 'undici'`
 * (test/unit/connection.test.ts checks it). Use it only as a `fetch` dispatcher: the package's index, not imported
 * here, is what adds `request`, `stream` and the like to the dispatcher classes.
 */
declare module 'undici/lib/dispatcher/agent.js' {
  import type { Agent } from 'undici';

  const AgentClass: typeof Agent;
  export default AgentClass;
}
