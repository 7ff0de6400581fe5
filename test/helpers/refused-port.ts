import { connect } from 'node:net';

/**
 * A privileged loopback port, outside the range the operating system hands out for port 0 (so no server of a test
 * running beside this one can take it) and not on the Fetch standard's list of blocked ports (so `fetch` tries it
 * and is refused, rather than refusing it itself).
 */
const PORT = 1023;

/**
 * A loopback port nothing listens on, checked: a connection to it is refused. An ephemeral port opened and closed
 * again is not safe for this, since a test server in another worker may bind it in between.
 *
 * Throws when something does listen on it (naming the port), rather than letting a test wait for a refusal that
 * never comes.
 */
export async function refusedPort(): Promise<number> {
  const code = await new Promise<string | undefined>((resolve) => {
    const socket = connect({ host: '127.0.0.1', port: PORT });
    socket.once('connect', () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code));
  });
  if (code !== 'ECONNREFUSED')
    throw new Error(
      `127.0.0.1:${PORT} should refuse connections for this test, got ${code ?? 'a connection'}`,
    );
  return PORT;
}
