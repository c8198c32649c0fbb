// Verify Breakglass trust bundles and tokens in Node.js (>= 18) with the `jose` library.
// A port of breakglass/core (docs/token-format.md); same checks, same order, same codes,
// sealed-kit tokens included (a kit token's claims are returned with their `kit` member).
//
//   npm install jose
//   node verify.mjs --vectors ../../../tests/verifier/vectors/vectors.json   # self-check
//
//   import { verifyBundle, verifyToken } from './verify.mjs';
//   const bundle = await verifyBundle(bundleText, rootsText, { minVersion: lastSeen });
//   const claims = await verifyToken(token, bundle, { audience: 'sso', scope: 'ssh:login' });
import { createHash, createPublicKey, verify as ed25519Verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { compactVerify, importJWK } from 'jose';

export class VerificationError extends Error {
  constructor(code, message) { super(message); this.code = code; }
}
const fail = (code, message) => { throw new VerificationError(code, message); };

// Strict unpadded base64url: no padding, no foreign characters, no set trailing bits.
function b64u(text, code) {
  if (typeof text !== 'string' || !/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) fail(code, 'not base64url');
  const bytes = Buffer.from(text, 'base64url');
  if (bytes.toString('base64url') !== text) fail(code, 'non-canonical base64url');
  return bytes;
}

// JSON.parse silently keeps the last of duplicate keys and accepts floats: refuse both.
function strictJson(text, code) {
  let value;
  try { value = JSON.parse(text); } catch { fail(code, 'not JSON'); }
  const frames = [];
  const tokens = /"(?:[^"\\]|\\.)*"|[{}[\],:]|[^"{}[\],:\s]+/g;
  for (const [token] of text.matchAll(tokens)) {
    const top = frames[frames.length - 1];
    if (token === '{') frames.push({ keys: new Set(), expectKey: true });
    else if (token === '[') frames.push(null);
    else if (token === '}' || token === ']') frames.pop();
    else if (token === ',') { if (top) top.expectKey = true; }
    else if (token[0] === '"') {
      if (top && top.expectKey) {
        const key = JSON.parse(token);
        if (top.keys.has(key)) fail(code, 'duplicate key in JSON object');
        top.keys.add(key); top.expectKey = false;
      }
    } else if (/[.eE]/.test(token) && /^-?\d/.test(token)) fail(code, 'non-integer number in JSON');
  }
  return value;
}

// Canonical JSON (docs/token-format.md section 4): sorted keys, no whitespace, integers only.
function canonical(value) {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new Error('not a safe integer');
    return String(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  const keys = Object.keys(value).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(',')}}`;
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const isInt = (v) => Number.isSafeInteger(v);
const isTime = (v) => Number.isSafeInteger(v) && v >= 0;
const isText = (v) => typeof v === 'string' && v.length > 0;
const thumbprint = (x) => createHash('sha256').update(`{"crv":"Ed25519","kty":"OKP","x":"${x}"}`).digest('base64url');
const ed25519Key = (x, code) => {
  if (!isText(x) || b64u(x, code).length !== 32) fail(code, 'x must encode 32 bytes');
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' });
};

// At least `threshold` distinct pinned roots signed canonical(payload): bundles and kits alike.
function rootSigned(document, pinned, threshold, code) {
  if (!isObject(document) || Object.keys(document).sort().join() !== 'payload,signatures') fail(code, 'members must be payload and signatures');
  const { payload, signatures } = document;
  if (!isObject(payload) || !Array.isArray(signatures) || signatures.length === 0) fail(code, 'bad document');
  let message;
  try { message = Buffer.from(canonical(payload), 'utf8'); } catch { fail(code, 'payload has no canonical encoding'); }
  const signers = new Set();
  signatures.forEach((signature, index) => {
    if (!isObject(signature) || Object.keys(signature).sort().join() !== 'alg,kid,sig' || !isText(signature.kid) || signature.alg !== 'EdDSA') fail(code, `signature #${index} is malformed`);
    const root = pinned.get(signature.kid);
    if (!root) return; // not a pinned root: neither helps nor hurts
    let good = false;
    try { const sig = b64u(signature.sig, 'bad_signature'); good = sig.length === 64 && ed25519Verify(null, message, root.key, sig); } catch { good = false; }
    if (!good) fail('bad_signature', `signature #${index} by a pinned root does not verify`);
    signers.add(root.x); // distinct keys: one root signing twice counts once
  });
  if (signers.size < threshold) fail('insufficient_signatures', `${signers.size} distinct root signature(s), ${threshold} needed`);
  return payload;
}

// A sealed-kit certificate carried by the bundle (docs/token-format.md, "Kit certificate").
const slug = (v) => isText(v) && v.length <= 100 && /^[A-Za-z0-9._:-]+$/.test(v);
const slugList = (v) => Array.isArray(v) && v.length > 0 && v.every(slug) && new Set(v).size === v.length;
async function kitLoad(document, pinned, threshold, issuer) {
  const k = rootSigned(document, pinned, threshold, 'malformed_kit');
  const custodians = k.custodians;
  if (k.type !== 'breakglass-kit' || !slug(k.kit) || !isText(k.issuer) || k.kty !== 'OKP' || k.crv !== 'Ed25519' || k.alg !== 'EdDSA'
    || !isTime(k.not_before) || !isTime(k.not_after) || k.not_after <= k.not_before || !slugList(k.audiences) || !slugList(k.scopes)
    || !isInt(k.max_lifetime) || k.max_lifetime < 60 || k.max_lifetime > 86400 || !Array.isArray(custodians) || custodians.length < 2 || custodians.length > 16
    || !custodians.every((c) => isObject(c) && Object.keys(c).sort().join() === 'digest,name' && isText(c.name) && isText(c.digest))
    || new Set(custodians.map((c) => c.name)).size !== custodians.length
    || !isInt(k.threshold) || k.threshold < 2 || k.threshold > custodians.length || !isInt(k.share_set) || k.share_set < 0 || k.share_set >= 32768) fail('malformed_kit', 'bad kit payload');
  ed25519Key(k.x, 'malformed_kit');
  if (k.kid !== thumbprint(k.x)) fail('malformed_kit', 'kit kid is not the thumbprint');
  if (k.issuer !== issuer) fail('malformed_bundle', 'kit for another issuer');
  return { kid: k.kid, alg: 'EdDSA', supported: true, not_before: k.not_before, not_after: k.not_after, kit: k, jose: await importJWK({ kty: 'OKP', crv: 'Ed25519', x: k.x }, 'EdDSA') };
}

// allowExpired: keep a bundle past expires_at for sealed-kit tokens only (verifyToken refuses
// every other token with expired_bundle); docs/operations.md, "The sealed kit".
export async function verifyBundle(bundleText, rootsText, { now = Math.floor(Date.now() / 1000), leeway = 60, minVersion = null, allowExpired = false } = {}) {
  const roots = strictJson(rootsText, 'malformed_roots');
  if (!isObject(roots) || roots.type !== 'breakglass-roots' || !Array.isArray(roots.keys) || roots.keys.length === 0) fail('malformed_roots', 'not a roots file');
  const pinned = new Map(); const seen = new Set();
  for (const entry of roots.keys) {
    if (!isObject(entry) || entry.kty !== 'OKP' || entry.crv !== 'Ed25519' || !isText(entry.kid)) fail('malformed_roots', 'bad root key');
    const key = ed25519Key(entry.x, 'malformed_roots');
    if (entry.kid !== thumbprint(entry.x)) fail('malformed_roots', 'kid is not the thumbprint');
    if (pinned.has(entry.kid) || seen.has(entry.x)) fail('malformed_roots', 'root listed twice');
    pinned.set(entry.kid, { key, x: entry.x }); seen.add(entry.x);
  }
  if (!isInt(roots.threshold) || roots.threshold < 1 || roots.threshold > pinned.size) fail('malformed_roots', 'bad threshold');

  const document = strictJson(bundleText, 'malformed_bundle');
  const payload = rootSigned(document, pinned, roots.threshold, 'malformed_bundle');

  const p = payload;
  if (p.type !== 'breakglass-trust-bundle' || !isInt(p.version) || p.version < 1 || !isText(p.issuer) || !isTime(p.issued_at) || !isTime(p.expires_at) || p.expires_at <= p.issued_at || !isInt(p.max_token_lifetime) || p.max_token_lifetime < 1 || !Array.isArray(p.keys)) fail('malformed_bundle', 'bad payload');
  const revokedJti = p.revoked_jti ?? []; const revokedKids = p.revoked_kids ?? [];
  if (!Array.isArray(revokedJti) || !revokedJti.every((e) => isObject(e) && isText(e.jti) && isTime(e.exp))) fail('malformed_bundle', 'bad revoked_jti');
  if (!Array.isArray(revokedKids) || !revokedKids.every(isText)) fail('malformed_bundle', 'bad revoked_kids');
  const keys = new Map();
  for (const entry of p.keys) {
    if (!isObject(entry) || !isText(entry.kid) || keys.has(entry.kid) || !isText(entry.alg) || !isTime(entry.not_before) || !isTime(entry.not_after) || entry.not_after < entry.not_before) fail('malformed_bundle', 'bad key entry');
    const supported = entry.kty === 'OKP' && entry.crv === 'Ed25519' && entry.alg === 'EdDSA';
    if (supported) { ed25519Key(entry.x, 'malformed_bundle'); if (entry.kid !== thumbprint(entry.x)) fail('malformed_bundle', 'kid is not the thumbprint'); }
    keys.set(entry.kid, { ...entry, supported, jose: supported ? await importJWK({ kty: 'OKP', crv: 'Ed25519', x: entry.x }, 'EdDSA') : null });
  }
  const kits = new Map();
  if (!Array.isArray(p.kits ?? [])) fail('malformed_bundle', 'kits must be a list');
  for (const entry of p.kits ?? []) {
    const kitKey = await kitLoad(entry, pinned, roots.threshold, p.issuer);
    if (kits.has(kitKey.kid) || keys.has(kitKey.kid)) fail('malformed_bundle', 'kit key listed twice');
    kits.set(kitKey.kid, kitKey);
  }
  if (now >= p.expires_at && !allowExpired) fail('expired_bundle', 'bundle expired');
  if (p.issued_at > now + leeway) fail('bundle_not_yet_valid', 'bundle issued in the future');
  if (minVersion !== null && p.version < minVersion) fail('stale_bundle', 'bundle older than one already seen');
  return { ...p, keys, kits, revokedJti: new Set(revokedJti.map((e) => e.jti)), revokedKids: new Set(revokedKids) };
}

export async function verifyToken(token, bundle, { audience, scope = null, now = Math.floor(Date.now() / 1000), leeway = 60, allowDrill = false }) {
  if (typeof token !== 'string' || token.length > 16384 || !/^[\x00-\x7f]*$/.test(token)) fail('malformed_token', 'token must be ASCII text');
  const parts = token.split('.');
  if (parts.length !== 3) fail('malformed_token', 'three parts');
  const header = strictJson(b64u(parts[0], 'malformed_token').toString('utf8'), 'malformed_token');
  if (!isObject(header)) fail('malformed_token', 'header must be an object');
  if (Object.keys(header).sort().join() !== 'alg,kid,typ') fail('bad_header', 'header must be exactly alg, typ, kid');
  if (header.typ !== 'JWT') fail('bad_header', 'typ must be JWT');
  if (!isText(header.kid)) fail('bad_header', 'kid must be a string');
  if (bundle.revokedKids.has(header.kid)) fail(bundle.kits.has(header.kid) ? 'retired_kit' : 'revoked_key', 'signing key revoked');
  const key = bundle.keys.get(header.kid) ?? bundle.kits.get(header.kid);
  if (!key) fail('unknown_key', 'signing key not in the bundle');
  if (header.alg !== key.alg) fail('bad_algorithm', 'alg comes from the bundle, never from the token');
  if (!key.supported) fail('unknown_key', 'unsupported key');
  const kit = key.kit ?? null; // a sealed-kit key: its own validity replaces the bundle's expiry
  if (now < key.not_before || now >= key.not_after) fail('key_not_valid', 'key outside its validity');
  if (now >= bundle.expires_at && !kit) fail('expired_bundle', 'bundle expired');
  if (parts[2].length !== 86 || !'AQgw'.includes(parts[2].at(-1))) fail('malformed_token', 'signature must be 64 bytes');
  b64u(parts[2], 'malformed_token');
  try { await compactVerify(token, key.jose, { algorithms: ['EdDSA'] }); } catch { fail('bad_signature', 'signature does not verify'); }

  const claims = strictJson(b64u(parts[1], 'malformed_token').toString('utf8'), 'malformed_token');
  if (!isObject(claims)) fail('malformed_token', 'claims must be an object');
  const { iss, aud, jti, iat, nbf, exp } = claims;
  if (!(typeof iss === 'string' && typeof aud === 'string' && isText(jti) && typeof claims.sub === 'string' && isTime(iat) && isTime(nbf) && isTime(exp))) fail('bad_claims', 'missing or mistyped claims');
  const granted = claims.scope ?? '';
  if (typeof granted !== 'string') fail('bad_claims', 'scope must be a string');
  if (typeof (claims.drill ?? false) !== 'boolean' || typeof (claims.emergency ?? false) !== 'boolean' || typeof (claims.path ?? '') !== 'string' || !(claims.incident == null || typeof claims.incident === 'string')) fail('bad_claims', 'mistyped optional claims');
  if (kit && claims.kit !== kit.kit) fail('bad_claims', 'a kit token must carry its kit claim');
  if (!kit && 'kit' in claims) fail('bad_claims', 'only a kit key may sign a kit claim');
  if ('approvers' in claims && !(Array.isArray(claims.approvers) && claims.approvers.every((a) => typeof a === 'string'))) fail('bad_claims', 'approvers');
  if (iss !== bundle.issuer) fail('wrong_issuer', 'wrong issuer');
  if (aud !== audience) fail('wrong_audience', `token is for ${aud}`);
  // Drill credentials are minted without approval: only a drill probe endpoint opts in.
  if (claims.drill === true && !allowDrill) fail('drill_not_allowed', 'drill credential and drills are not allowed here');
  if (now < nbf - leeway) fail('not_yet_valid', 'not yet valid');
  if (iat > now + leeway) fail('issued_in_future', 'issued in the future');
  if (now >= exp + leeway) fail('expired', 'expired');
  if (exp <= nbf || exp <= iat) fail('bad_claims', 'expires before it becomes valid');
  if (exp - Math.min(iat, nbf) > (kit ? kit.max_lifetime : bundle.max_token_lifetime)) fail(kit ? 'beyond_kit_policy' : 'lifetime_too_long', 'lifetime above the cap');
  if (kit && !kit.audiences.includes(aud)) fail('beyond_kit_policy', 'audience outside the kit');
  if (kit && !granted.split(/\s+/).filter(Boolean).every((s) => kit.scopes.includes(s))) fail('beyond_kit_policy', 'scope outside the kit');
  if (bundle.revokedJti.has(jti)) fail('revoked', 'token revoked');
  const held = granted.split(' ');
  for (const wanted of (scope ?? '').split(/\s+/).filter(Boolean)) if (!held.includes(wanted)) fail('missing_scope', `missing scope ${wanted}`);
  return claims;
}

// Self-check against the golden vectors: node verify.mjs --vectors vectors.json
if (process.argv[2] === '--vectors') {
  const vectors = JSON.parse(readFileSync(process.argv[3], 'utf8'));
  const decide = async (run) => { try { await run(); return 'accept'; } catch (e) { if (e instanceof VerificationError) return e.code; throw e; } };
  let failures = 0; let total = 0;
  for (const c of vectors.bundle_cases) {
    const got = await decide(() => verifyBundle(vectors.bundles[c.bundle], vectors.roots, { now: c.now, leeway: c.leeway, minVersion: c.min_version, allowExpired: c.allow_expired ?? false }));
    total += 1; if (got !== c.expected) { failures += 1; console.log(`bundle ${c.name}: expected ${c.expected}, got ${got}`); }
  }
  for (const c of vectors.token_cases) {
    const bundle = await verifyBundle(vectors.bundles[c.bundle], vectors.roots, { now: c.now, allowExpired: c.allow_expired ?? false });
    const got = await decide(() => verifyToken(c.token, bundle, { audience: c.audience, scope: c.scope, now: c.now, leeway: c.leeway, allowDrill: c.allow_drill ?? false }));
    total += 1; if (got !== c.expected) { failures += 1; console.log(`token ${c.name}: expected ${c.expected}, got ${got}`); }
  }
  console.log(`${total - failures}/${total} golden vectors agree`);
  process.exit(failures ? 1 : 0);
}
