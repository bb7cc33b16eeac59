// The fetch web-did-resolver is given in tests/identity/did.test.mjs (in place of `cross-fetch`,
// through loopback-hooks.mjs): did:web always resolves over https, and the server under test
// listens on plain http on loopback, so only a loopback URL's scheme is rewritten. Everything
// else (the URL did:web maps the DID to, the request, the response) is the library's own.
export default function loopbackFetch(url, init) {
  const rewritten = String(url).replace(/^https:\/\/(127\.0\.0\.1|localhost)(?=[:/])/, 'http://$1');
  return globalThis.fetch(rewritten, init);
}
