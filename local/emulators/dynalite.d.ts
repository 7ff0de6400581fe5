// dynalite ships no type declarations; this covers the part the project uses.
declare module 'dynalite' {
  import type { Server } from 'node:http';

  interface DynaliteOptions {
    /** Milliseconds a table stays CREATING; 0 for tests. */
    createTableMs?: number;
    deleteTableMs?: number;
    updateTableMs?: number;
    /** A LevelDB directory; omitted, everything stays in memory. */
    path?: string;
  }

  export default function dynalite(options?: DynaliteOptions): Server;
}
