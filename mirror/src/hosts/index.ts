// Public face of hosts/: what the CLI (and the chart's cleanup hook, through the CLI) uses.
export { configure, DEFAULT_DIAL_TIMEOUT_MS, HostsStateError } from './configure.js';
export type { ConfigureOptions, ConfigureResult } from './configure.js';
export { cleanup } from './cleanup.js';
export type { CleanupOptions, CleanupResult } from './cleanup.js';
export { parseContainerdVersion, supportsDialTimeout } from './containerd-version.js';
export { HostsTomlError, parseHostsToml } from './existing.js';
export { defaultServer, renderHostsToml } from './render.js';
export type { HostsFile, HostTable, RenderOptions, TomlTable, TomlValue } from './render.js';
export { BACKUP_DIR, DEFAULT_FOLDER, PEILI_HEADER } from './layout.js';
export type { StepHook } from './fs-steps.js';
