import { randomBytes } from 'node:crypto';

export interface IssuedToken {
  readonly clientId: string;
  readonly expiresAt: number;
  revoked: boolean;
}

export interface TokenStore {
  /** A new opaque bearer token for `clientId`, honoured until `expiresAt` (simulator clock). */
  issue(clientId: string, expiresAt: number): string;
  /** The token's record even when expired or revoked, so requests stay attributable to their client. */
  find(token: string): IssuedToken | undefined;
  /** Revokes every token, or only those of `clientId`. */
  revoke(clientId?: string): void;
  clear(): void;
}

// The docs show an RS256 JWT; clients must treat the token as opaque, so only the look is imitated.
const JWT_HEADER = Buffer.from(JSON.stringify({ alg: 'RS256', typ: 'JWT' })).toString('base64url');

/** In-memory store of issued bearer tokens. */
export function createTokenStore(): TokenStore {
  const tokens = new Map<string, IssuedToken>();
  return {
    issue(clientId, expiresAt) {
      const claims = Buffer.from(JSON.stringify({ jti: randomBytes(16).toString('hex') })).toString(
        'base64url',
      );
      const token = `${JWT_HEADER}.${claims}.${randomBytes(32).toString('base64url')}`;
      tokens.set(token, { clientId, expiresAt, revoked: false });
      return token;
    },
    find: (token) => tokens.get(token),
    revoke(clientId) {
      for (const issued of tokens.values()) {
        if (clientId === undefined || issued.clientId === clientId) issued.revoked = true;
      }
    },
    clear: () => tokens.clear(),
  };
}
