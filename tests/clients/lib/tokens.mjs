// One @azure/msal-node ConfidentialClientApplication for the whole run, configured as an app
// would be configured against the real tenant: authority https://login.microsoftonline.com/<tenant>
// and a client secret, nothing else (no authorityMetadata, no cloudDiscoveryMetadata, no
// knownAuthorities): msal finds its endpoints the way it does in production.

import { ConfidentialClientApplication, LogLevel } from '@azure/msal-node';
import { cfg, env } from './harness.mjs';

export function makeApp({ secret = cfg.secret() } = {}) {
  return new ConfidentialClientApplication({
    auth: {
      clientId: env('CLIENT_ID'),
      authority: `${cfg.authorityHost}/${env('TENANT_ID')}`,
      clientSecret: secret,
    },
    system: {
      // msal's log stays off the output: failures are reported from its errors and the front's log.
      loggerOptions: { piiLoggingEnabled: false, logLevel: LogLevel.Error, loggerCallback: () => {} },
    },
  });
}

let shared;
export function app() {
  shared ??= makeApp();
  return shared;
}

/** An access token for `resource` (its base URL), from the shared app; throws msal's error. */
export async function tokenFor(resource) {
  const r = await app().acquireTokenByClientCredential({ scopes: [`${resource.replace(/\/$/, '')}/.default`] });
  if (!r || !r.accessToken) {
    throw new Error('msal returned no access token');
  }
  return r.accessToken;
}
