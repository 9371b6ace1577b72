// The test bed: real registry, containerd nodes, deterministic images, CRI client, throttling
// proxy. Integration tests, the demo and the benchmarks import from here.
export { createScratchDir, freePort, tailFile, REPO_ROOT, TESTBED_HOME } from './scratch.js';
export { startProcess, killAll, liveProcessCount, waitFor, reapOrphans, PID_DIR } from './process.js';
export type { ManagedProcess, StartProcessOptions, ExitStatus } from './process.js';
export { startRegistry, renderRegistryConfig, parseRequestLog, PROBE_USER_AGENT } from './registry.js';
export type { RegistryOptions, RegistryProcess } from './registry.js';
export {
  startContainerd,
  renderContainerdConfig,
  renderContainerdConfigV3,
  containerdPaths,
  keepLayersPart,
  testbedCriPart,
} from './containerd.js';
export { mergeCriParts, talosBasePart, talosRegistriesPart, CRI_IMAGES } from './talos-cri.js';
export type { CriPart } from './talos-cri.js';
export {
  selectedRuntime,
  runtimeFor,
  parseRuntimeName,
  parsePins,
  cacheDir,
  runtimeBinary,
  RUNTIME_NAMES,
  DEFAULT_RUNTIME,
} from './runtime.js';
export type { ContainerdRuntime, RuntimeName } from './runtime.js';
export type {
  ContainerdNode,
  ContainerdOptions,
  ContainerdPaths,
  CtrOptions,
  Snapshotter,
} from './containerd.js';
export {
  buildImage,
  writeLayout,
  sizedImage,
  specHash,
  seededBytes,
  IMAGES,
  MEDIA_TYPES,
  BUILDER_VERSION,
  DEFAULT_IMAGE_CACHE,
} from './images.js';
export type {
  ImageSpec,
  LayerSpec,
  FileSpec,
  PlatformSpec,
  OciLayout,
  PlatformImage,
  BlobDescriptor,
} from './images.js';
export { pushImage, pushArgs } from './push.js';
export type { PushOptions } from './push.js';
export { createCriClient, CRI_PROTO_PATH } from './cri-client.js';
export type { CriAuth, CriClient, CriClientOptions, CriImage, CriVersion } from './cri-client.js';
export { writeHostsToml, upstreamHostsToml, withHostTable } from './hosts-toml.js';
export { startThrottleProxy } from './throttle-proxy.js';
export type { ThrottleProxy, ThrottleProxyOptions } from './throttle-proxy.js';
export { startCluster } from './cluster.js';
export type { Cluster, ClusterNode, ClusterOptions, Endpoint } from './cluster.js';
export { parseTar, tarStream } from './tar.js';
export type { TarEntry, ParsedTarEntry } from './tar.js';
