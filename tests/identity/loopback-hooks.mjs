// Module hooks (node:module register): `cross-fetch`, imported by web-did-resolver, resolves to
// loopback-fetch.mjs.
export async function resolve(specifier, context, nextResolve) {
  if (specifier === 'cross-fetch') {
    return { url: new URL('./loopback-fetch.mjs', import.meta.url).href, shortCircuit: true };
  }
  return nextResolve(specifier, context);
}
