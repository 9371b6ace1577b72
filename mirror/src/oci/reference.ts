import { isIPv4, isIPv6 } from 'node:net';
import { OciError } from './errors.js';

/** Longest repository name the distribution spec allows (slashes included). */
export const MAX_REPOSITORY_LENGTH = 255;

// One path component of a repository name: alphanumerics joined by `.`, `_`, `__` or runs of `-`.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
// A DNS label: no leading/trailing hyphen; containerd keeps the case the user typed.
const DNS_LABEL = /^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/;
const PORT = /^[0-9]{1,5}$/;
const MAX_HOST_LENGTH = 253 + 6;

/** The registry every docker.io alias is normalised to in containerd image names. */
export const DOCKER_HUB = 'docker.io';
/** Hosts containerd and Docker treat as Docker Hub. */
export const DOCKER_HUB_ALIASES: readonly string[] = ['docker.io', 'index.docker.io', 'registry-1.docker.io'];

/** Validates a repository name (`library/nginx`, `org/team/app`) and returns it; NAME_INVALID otherwise. */
export function parseRepository(name: string): string {
  if (name.length === 0) throw new OciError('NAME_INVALID', { message: 'repository name is empty' });
  if (name.length > MAX_REPOSITORY_LENGTH) {
    throw new OciError('NAME_INVALID', {
      message: `repository name is longer than ${MAX_REPOSITORY_LENGTH} characters`,
    });
  }
  for (const component of name.split('/')) {
    if (!PATH_COMPONENT.test(component)) {
      throw new OciError('NAME_INVALID', {
        message: `invalid repository name ${JSON.stringify(name)}: bad path component ${JSON.stringify(component)}`,
      });
    }
  }
  return name;
}

/** True when `name` is a valid repository name. */
export function isRepository(name: string): boolean {
  return (
    name.length > 0 &&
    name.length <= MAX_REPOSITORY_LENGTH &&
    name.split('/').every((c) => PATH_COMPONENT.test(c))
  );
}

/** Validates a tag (`1.27`, `latest`) and returns it; TAG_INVALID otherwise. */
export function parseTag(tag: string): string {
  if (!TAG.test(tag))
    throw new OciError('TAG_INVALID', { message: `invalid tag ${JSON.stringify(tag.slice(0, 200))}` });
  return tag;
}

/** True when `tag` is a valid tag. */
export function isTag(tag: string): boolean {
  return TAG.test(tag);
}

function isValidHostname(host: string): boolean {
  if (host.length === 0 || host.length > 253) return false;
  return host.split('.').every((label) => DNS_LABEL.test(label));
}

function isValidPort(port: string): boolean {
  return PORT.test(port) && Number(port) >= 1 && Number(port) <= 65535;
}

/**
 * Validates a registry host as containerd sends it in `ns`: `host`, `host:port`, an IPv4 address
 * with optional port, or an IPv6 address in brackets (`[::1]:5000`). Returns it unchanged;
 * NAME_INVALID otherwise.
 */
export function parseRegistryHost(value: string): string {
  const invalid = (): OciError =>
    new OciError('NAME_INVALID', { message: `invalid registry host ${JSON.stringify(value.slice(0, 300))}` });
  if (value.length === 0 || value.length > MAX_HOST_LENGTH) throw invalid();
  if (value.startsWith('[')) {
    const close = value.indexOf(']');
    if (close < 0 || !isIPv6(value.slice(1, close))) throw invalid();
    const rest = value.slice(close + 1);
    if (rest !== '' && !(rest.startsWith(':') && isValidPort(rest.slice(1)))) throw invalid();
    return value;
  }
  const colon = value.lastIndexOf(':');
  const host = colon < 0 ? value : value.slice(0, colon);
  if (colon >= 0 && !isValidPort(value.slice(colon + 1))) throw invalid();
  if (!isIPv4(host) && !isValidHostname(host)) throw invalid();
  return value;
}

/** True when `value` is a valid registry host. */
export function isRegistryHost(value: string): boolean {
  try {
    parseRegistryHost(value);
    return true;
  } catch {
    return false;
  }
}

/** The registry host as containerd names images under it: every Docker Hub alias becomes `docker.io`. */
export function normalizeRegistry(registry: string): string {
  return DOCKER_HUB_ALIASES.includes(registry.toLowerCase()) ? DOCKER_HUB : registry;
}

/**
 * containerd's image name for a tag: `<registry>/<repository>:<tag>`, with Docker Hub's rules —
 * any alias becomes `docker.io`, and a single-component repository gets `library/`
 * (`docker.io` + `nginx` → `docker.io/library/nginx:1.27`).
 */
export function imageName(registry: string, repository: string, tag: string): string {
  const host = normalizeRegistry(registry);
  const repo = host === DOCKER_HUB && !repository.includes('/') ? `library/${repository}` : repository;
  return `${host}/${repo}:${tag}`;
}

/** containerd's rule for registries it talks to over plain http by default: localhost and loopback. */
export function isLoopbackHost(registry: string): boolean {
  let host = registry;
  const bracket = /^\[(.*)\](?::\d+)?$/.exec(registry);
  if (bracket) host = bracket[1]!;
  else if (/^[^:]*:\d+$/.test(registry)) host = registry.slice(0, registry.lastIndexOf(':'));
  return host === 'localhost' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || host === '::1';
}

/**
 * The base URL containerd itself would use for a registry host: Docker Hub (any alias) is served
 * by `https://registry-1.docker.io`, loopback registries speak plain http, the rest https.
 */
export function defaultUpstreamUrl(registry: string): string {
  if (DOCKER_HUB_ALIASES.includes(registry)) return 'https://registry-1.docker.io';
  return `${isLoopbackHost(registry) ? 'http' : 'https'}://${registry}`;
}

/** The base URL containerd would use for a registry host, unless `overrides` names another. */
export function upstreamBaseUrl(registry: string, overrides: Readonly<Record<string, string>> = {}): string {
  const override = overrides[registry];
  if (override !== undefined) return override.replace(/\/+$/, '');
  return defaultUpstreamUrl(registry);
}
