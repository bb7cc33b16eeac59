// A published agent's did:web document resolved by a standard DID resolver (`did-resolver` with
// `web-did-resolver`, pinned in package.json), and a key it lists verifying a private_key_jwt
// client assertion the agent signed (RFC 7523), which the token endpoint also accepts.
//
//   AGENTIDP_BASE_URL=http://127.0.0.1:8787 node --test tests/identity/
//
// scripts/test.sh runs it in the browser stage, against the same fresh native server.
import { register } from 'node:module';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { webcrypto as crypto } from 'node:crypto';

register('./loopback-hooks.mjs', import.meta.url);
const { Resolver } = await import('did-resolver');
const { getResolver } = await import('web-did-resolver');

const BASE = (process.env.AGENTIDP_BASE_URL ?? 'http://127.0.0.1:8787').replace(/\/$/, '');

const b64url = (bytes) => Buffer.from(bytes).toString('base64url');

async function call(method, path, token, body) {
  const response = await fetch(BASE + path, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

async function adminToken() {
  const org = await call('POST', '/v1/orgs', null, { name: `did-${Date.now()}` });
  assert.equal(org.status, 201, JSON.stringify(org.body));
  const { client_id, client_secret } = org.body.admin_credential;
  const response = await fetch(`${BASE}/oauth2/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${client_id}:${client_secret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: 'grant_type=client_credentials',
  });
  return (await response.json()).access_token;
}

async function clientAssertion(privateKey, clientId, audience) {
  const header = { alg: 'ES256', typ: 'JWT', kid: 'agent-key-1' };
  const now = Math.floor(Date.now() / 1000);
  const claims = { iss: clientId, sub: clientId, aud: audience, jti: crypto.randomUUID(), iat: now, exp: now + 60 };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const signature = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, privateKey, new TextEncoder().encode(input));
  return `${input}.${b64url(new Uint8Array(signature))}`;
}

test('a key of the resolved DID document verifies the agent’s private_key_jwt assertion', async () => {
  const token = await adminToken();
  const agent = await call('POST', '/v1/agents', token, {
    name: 'Resolvable', agent_type: 'nlp', visibility: 'public', capabilities: ['docs:read'],
  });
  assert.equal(agent.status, 201, JSON.stringify(agent.body));
  const { id } = agent.body;

  const pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const { kty, crv, x, y } = await crypto.subtle.exportKey('jwk', pair.publicKey);
  const credential = await call('POST', `/v1/agents/${id}/credentials`, token, {
    kind: 'private_key_jwt', public_jwk: { kty, crv, x, y, alg: 'ES256', kid: 'agent-key-1' },
  });
  assert.equal(credential.status, 201, JSON.stringify(credential.body));

  const listing = await call('GET', `/v1/marketplace/agents/${id}`);
  const did = listing.body.did;
  const port = new URL(BASE).port;
  assert.equal(did, `did:web:127.0.0.1%3A${port}:agents:${id}`);

  const resolver = new Resolver(getResolver());
  const resolution = await resolver.resolve(did);
  assert.equal(resolution.didResolutionMetadata.error, undefined, JSON.stringify(resolution.didResolutionMetadata));
  const document = resolution.didDocument;
  assert.equal(document.id, did);
  assert.equal(document.verificationMethod.length, 1);
  const method = document.verificationMethod[0];
  assert.deepEqual(document.assertionMethod, [method.id]);
  assert.deepEqual(document.authentication, [method.id]);

  const assertion = await clientAssertion(pair.privateKey, credential.body.client_id, `${BASE}/oauth2/token`);
  const key = await crypto.subtle.importKey('jwk', method.publicKeyJwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']);
  const [h, p, s] = assertion.split('.');
  const verify = (input) => crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, key, Buffer.from(s, 'base64url'), new TextEncoder().encode(input));
  assert.equal(await verify(`${h}.${p}`), true, 'the DID document’s key verifies the assertion');
  assert.equal(await verify(`${h}.${p}x`), false, 'and nothing else');

  // The identity provider accepts the same assertion: the DID lists the key the agent really uses.
  const issued = await fetch(`${BASE}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: assertion,
      scope: 'docs:read',
    }),
  });
  assert.equal(issued.status, 200, await issued.text());

  // Revoking the key removes it from the resolved document at once.
  const revoked = await call('DELETE', `/v1/agents/${id}/credentials/${credential.body.id}`, token);
  assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
  const after = await new Resolver(getResolver()).resolve(did);
  assert.deepEqual(after.didDocument.verificationMethod, []);

  // A withdrawn agent does not resolve.
  await call('PATCH', `/v1/agents/${id}`, token, { visibility: 'private' });
  const gone = await new Resolver(getResolver(), { cache: false }).resolve(did);
  assert.equal(gone.didDocument, null);
  assert.equal(gone.didResolutionMetadata.error, 'notFound');
});
