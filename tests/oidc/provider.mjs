// A real OpenID Connect provider for Warden's login tests (node-oidc-provider).
// Usage: node provider.mjs   with PORT, REDIRECT_URIS (comma-separated), USERS_FILE in the environment.
// Users come from USERS_FILE (re-read on every login, so tests can change a user's groups):
//   {"alice": {"email": "...", "name": "...", "groups": ["warden-reviewers"]}, ...}
// With CIBA=1 the provider also offers OpenID Connect CIBA (poll mode) to the client "warden",
// and a test "device" stands in for each user's phone:
//   GET  /test-device/<user>                        the pending requests: [{auth_req_id, binding_message, scope}]
//   POST /test-device/<user>/<auth_req_id>/confirm  the user approves (with mfa)
//   POST /test-device/<user>/<auth_req_id>/deny     the user denies
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

const cibaEnabled = process.env.CIBA === '1';
const CIBA_GRANT = 'urn:openid:params:grant-type:ciba';

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
  ...(cibaEnabled && id === 'warden'
    ? { grant_types: ['authorization_code', CIBA_GRANT], backchannel_token_delivery_mode: 'poll' }
    : {}),
});

// CIBA requests waiting on a user's device, by account id (the "push" a real IdP would send).
const devices = new Map();
const ciba = {
  enabled: true,
  deliveryModes: ['poll'],
  processLoginHint: async (ctx, loginHint) => {
    const all = users();
    if (all[loginHint]) return loginHint;
    return Object.keys(all).find((id) => all[id].email === loginHint);
  },
  // Tighter than the default: a binding message is required, so a device always shows one.
  validateBindingMessage: async (ctx, bindingMessage) => {
    if (!/^[a-zA-Z0-9-._+#]{1,20}$/.test(bindingMessage || '')) {
      throw new errors.InvalidBindingMessage('binding_message is required: 1 - 20 of [a-zA-Z0-9-._+#]');
    }
  },
  validateRequestContext: async () => {},
  verifyUserCode: async () => {},
  triggerAuthenticationDevice: async (ctx, request, account) => {
    const pending = devices.get(account.accountId) || [];
    pending.push({ auth_req_id: request.jti, binding_message: request.params.binding_message, scope: request.scope });
    devices.set(account.accountId, pending);
  },
};

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
    ...(cibaEnabled ? { ciba } : {}),
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
  ttl: {
    Session: 3600, Interaction: 600, Grant: 3600, AuthorizationCode: 60, AccessToken: 600, IdToken: 600,
    BackchannelAuthenticationRequest: (ctx) => Math.min(600, Number(ctx?.oidc?.params?.requested_expiry) || 600),
  },
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

// The test device (CIBA=1 only): what a user's phone would show, and their answer.
provider.use(async (ctx, next) => {
  const match = cibaEnabled && ctx.path.match(/^\/test-device\/([^/]+)(?:\/([^/]+)\/(confirm|deny))?$/);
  if (!match) return next();
  const [, accountId, authReqId, answer] = match;
  const pending = devices.get(accountId) || [];
  ctx.type = 'json';
  if (!answer) {
    ctx.body = pending;
    return undefined;
  }
  const request = await provider.BackchannelAuthenticationRequest.find(authReqId);
  if (ctx.method !== 'POST' || !request || request.accountId !== accountId || !pending.some((p) => p.auth_req_id === authReqId)) {
    ctx.status = 404;
    ctx.body = { error: 'no such request on this device' };
    return undefined;
  }
  if (answer === 'confirm') {
    const grant = new provider.Grant({ accountId, clientId: request.clientId });
    grant.addOIDCScope(request.scope);
    await grant.save();
    await provider.backchannelResult(request, grant, {
      acr: 'urn:warden:mfa', amr: ['pwd', 'mfa'], authTime: Math.floor(Date.now() / 1000),
    });
  } else {
    await provider.backchannelResult(request, new errors.AccessDenied('the user denied the request on their device'));
  }
  devices.set(accountId, pending.filter((p) => p.auth_req_id !== authReqId));
  ctx.body = { done: answer };
  return undefined;
});

provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
