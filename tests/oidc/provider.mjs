// A real OpenID Connect provider for Warden's login tests (node-oidc-provider).
// Usage: node provider.mjs   with PORT, REDIRECT_URIS (comma-separated), USERS_FILE in the environment.
// Users come from USERS_FILE (re-read on every login, so tests can change a user's groups):
//   {"alice": {"email": "...", "name": "...", "groups": ["warden-reviewers"]}, ...}
// The login page asks for a user name, the password "pw", and an optional "mfa" box that
// adds "mfa" to the login's amr and sets acr to "urn:warden:mfa".
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import Provider, { errors } from 'oidc-provider';

const port = Number(process.env.PORT || 9100);
const issuer = `http://127.0.0.1:${port}`;
const redirectUris = (process.env.REDIRECT_URIS || '').split(',').filter(Boolean);
const logoutUris = (process.env.POST_LOGOUT_REDIRECT_URIS || '').split(',').filter(Boolean);
const usersFile = process.env.USERS_FILE;

const users = () => JSON.parse(readFileSync(usersFile, 'utf8'));
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'test-key', use: 'sig', alg: 'RS256' };

const client = (id) => ({
  client_id: id,
  client_secret: `${id}-secret`,
  redirect_uris: redirectUris,
  post_logout_redirect_uris: logoutUris,
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_post',
  id_token_signed_response_alg: 'RS256',
});

// Resource servers (RFC 8707) whose access tokens are JWTs (RFC 9068): Warden's API, whose
// audience is Warden's client id, and another client's API at the same IdP.
const resourceServers = {
  'urn:warden:api': { audience: 'warden', scope: 'audit:read' },
  'urn:other:api': { audience: 'other-api', scope: 'audit:read' },
};

const provider = new Provider(issuer, {
  clients: [client('warden'), client('other-client')],
  jwks: { keys: [jwk] },
  cookies: { keys: ['warden-test-cookie-key'] },
  claims: {
    openid: ['sub', 'acr', 'amr', 'auth_time'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name'],
    groups: ['groups'],
  },
  scopes: ['openid', 'email', 'profile', 'groups'],
  acrValues: ['urn:warden:pwd', 'urn:warden:mfa'],
  features: {
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      getResourceServerInfo: async (ctx, indicator) => {
        const server = resourceServers[indicator];
        if (!server) throw new errors.InvalidTarget();
        return { ...server, accessTokenFormat: 'jwt', accessTokenTTL: 600, jwt: { sign: { alg: 'RS256' } } };
      },
    },
    rpInitiatedLogout: {
      enabled: true,
      logoutSource: async (ctx, form) => {
        // Sign out at once (tests and users have already asked Warden to log out).
        ctx.body = `<!doctype html><html><body onload="document.forms[0].submit()">${form}
          <noscript><button form="op.logoutForm" name="logout" value="yes">Sign out</button></noscript>
          <script>document.forms[0].insertAdjacentHTML('beforeend','<input type=hidden name=logout value=yes>')</script>
          </body></html>`;
      },
    },
  },
  pkce: { required: () => true },
  findAccount: async (ctx, id) => {
    const user = users()[id];
    if (!user) return undefined;
    return {
      accountId: id,
      claims: async () => ({
        sub: id, email: user.email, email_verified: true, name: user.name,
        given_name: user.name.split(' ')[0], family_name: user.name.split(' ').slice(1).join(' '),
        groups: user.groups || [],
      }),
    };
  },
  loadExistingGrant: async (ctx) => {
    // First-party client: grant what it asks for, without a consent page.
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    const grant = grantId
      ? await ctx.oidc.provider.Grant.find(grantId)
      : new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid email profile groups');
    grant.addOIDCClaims(['sub', 'acr', 'amr', 'auth_time', 'email', 'email_verified', 'name', 'groups']);
    const resource = ctx.oidc.params.resource;
    if (resource && resourceServers[resource]) grant.addResourceScope(resource, resourceServers[resource].scope);
    await grant.save();
    return grant;
  },
  extraTokenClaims: async (ctx, token) => {
    // JWT access tokens carry the user's groups, as many IdPs' API tokens do.
    if (token.kind !== 'AccessToken' || !token.resourceServer) return undefined;
    return { groups: users()[token.accountId]?.groups || [] };
  },
  ttl: { Session: 3600, Interaction: 600, Grant: 3600, AuthorizationCode: 60, AccessToken: 600, IdToken: 600 },
});
provider.proxy = false;

const page = (title, body) => `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title></head>
<body><h1>${title}</h1>${body}</body></html>`;

const readForm = (req) => new Promise((resolve) => {
  let data = '';
  req.on('data', (chunk) => { data += chunk; });
  req.on('end', () => resolve(Object.fromEntries(new URLSearchParams(data))));
});

provider.use(async (ctx, next) => {
  const match = ctx.path.match(/^\/interaction\/([^/]+)(\/login)?$/);
  if (!match) return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  if (ctx.method === 'GET') {
    ctx.type = 'html';
    ctx.body = page('Test identity provider: sign in', `
      <form method="post" action="/interaction/${details.uid}/login">
        <label>User <input name="login" autofocus></label>
        <label>Password <input name="password" type="password"></label>
        <label><input type="checkbox" name="mfa" value="1"> Second factor</label>
        <button type="submit">Sign in</button>
      </form>`);
    return undefined;
  }
  const form = await readForm(ctx.req);
  if (!users()[form.login] || form.password !== 'pw') {
    ctx.type = 'html';
    ctx.status = 401;
    ctx.body = page('Sign-in failed', '<p>Unknown user or wrong password.</p>');
    return undefined;
  }
  const mfa = form.mfa === '1';
  const result = { login: { accountId: form.login, amr: mfa ? ['pwd', 'mfa'] : ['pwd'], acr: mfa ? 'urn:warden:mfa' : 'urn:warden:pwd' } };
  await provider.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
  return undefined;
});

provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
